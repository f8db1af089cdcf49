"""Which registered task holds which source, language and dataset.

Every training task of `aya_t5x.tasks` is entered here when it is
registered, so mixtures and reports can ask "the xP3x tasks", "every task of
Swahili" or "the Dolly tasks" without parsing task names:

    from aya_t5x.tasks import catalog
    [e.task for e in catalog.entries(source="aya_translated", language="swa")]

Sizes are not stored: they come from the data (`aya_t5x.sources.count_task`).
"""

import dataclasses
import threading

# Source names, as written in every example's `source` field.
XP3X = "xp3x"
AYA_DATASET = "aya_dataset"
AYA_TEMPLATED = "aya_templated"
AYA_TRANSLATED = "aya_translated"
DATA_PROVENANCE = "data_provenance"
SHAREGPT_COMMAND = "sharegpt_command"
SAFETY_DISTILLATION = "safety_distillation"
# The six instruction-finetuning sources of Table 1 (the weighting schemes'
# columns), then the safety mixture addition.
SOURCES = (AYA_DATASET, AYA_TEMPLATED, XP3X, DATA_PROVENANCE, AYA_TRANSLATED,
           SHAREGPT_COMMAND, SAFETY_DISTILLATION)


@dataclasses.dataclass(frozen=True)
class Entry:
  """One registered task."""

  task: str
  # e.g. "xp3x", or the name a `register_dataset` call gave.
  source: str
  # Registry code of the one language the task holds; None = several.
  language: str | None
  # The one dataset the task holds (e.g. "translated_dolly"); None = several.
  dataset: str | None


_LOCK = threading.Lock()
_ENTRIES: dict[str, Entry] = {}


def add(entry: Entry) -> None:
  """Enters a task; entering the same entry again is a no-op.

  Raises:
    ValueError: the task is already entered with other details.
  """
  with _LOCK:
    existing = _ENTRIES.setdefault(entry.task, entry)
  if existing != entry:
    raise ValueError(f"Task {entry.task!r} is already in the catalog as "
                     f"{existing}, not {entry}.")


def remove(task: str) -> None:
  with _LOCK:
    _ENTRIES.pop(task, None)


def entries(source: str | None = None, language: str | None = None,
            dataset: str | None = None) -> list[Entry]:
  """Entries matching every given filter, sorted by task name."""
  with _LOCK:
    found = list(_ENTRIES.values())
  return sorted((e for e in found
                 if (source is None or e.source == source)
                 and (language is None or e.language == language)
                 and (dataset is None or e.dataset == dataset)),
                key=lambda e: e.task)


def tasks(source: str | None = None, language: str | None = None) -> list[str]:
  return [e.task for e in entries(source, language)]


def languages(source: str) -> list[str]:
  """The languages a source has single-language tasks for."""
  return sorted({e.language for e in entries(source) if e.language})


def sources() -> list[str]:
  with _LOCK:
    return sorted({e.source for e in _ENTRIES.values()})

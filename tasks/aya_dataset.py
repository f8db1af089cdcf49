"""The Aya Dataset: human-written prompts and completions (Table 1, row 4).

One task per Aya language the dataset card lists, `aya_dataset_<code>` (64:
the card's 65 languages less Wolof, which is not an Aya language; its
Arabic dialects `arb ary ars acq arz apc` all count as `ara`). Rows are
selected by `language_code`, so dialect rows land in the Arabic task, and
rows of languages outside the registry are in no task (see
`sources.language_census`). Splits `train` (202,362 rows on the Hub) and
`test` (1,750, the aya_human_annotated evaluation set's source).
"""

import seqio

from aya_t5x import languages
from aya_t5x import sources
from aya_t5x.tasks import catalog
from aya_t5x.tasks import registry_helpers

REPO_ID = "CohereForAI/aya_dataset"
TASK_PREFIX = "aya_dataset"
DATASET = "aya_dataset"
SPLIT_PATTERNS = {"train": ("data/train-*.parquet",),
                  "test": ("data/test-*.parquet",)}
# `language` holds names ("Moroccan Arabic"); `language_code` holds codes.
FIELDS = sources.Fields(language="language_code")


def language_codes() -> tuple[str, ...]:
  """The Aya languages of the dataset card, in registry order."""
  return registry_helpers.card_languages(REPO_ID)


def spec(language: str | None, revision: str | None = None
         ) -> sources.SourceSpec:
  """The rows of one language (None: every Aya language in one task)."""
  codes = frozenset({languages.code(language)}) if language else frozenset(
      language_codes())
  return sources.SourceSpec(
      source=catalog.AYA_DATASET,
      files=sources.HubFiles(
          REPO_ID, revision or registry_helpers.hub_revision(REPO_ID),
          SPLIT_PATTERNS),
      fields=FIELDS,
      languages=codes,
      dataset=DATASET)


def task_name(language: str, prefix: str = TASK_PREFIX) -> str:
  return f"{prefix}_{languages.code(language)}"


def register(vocabulary: seqio.Vocabulary | None = None,
             prefix: str = TASK_PREFIX,
             codes: tuple[str, ...] | None = None) -> list[str]:
  """Registers the per-language tasks; returns their names."""
  names = []
  for code in codes or language_codes():
    name = task_name(code, prefix)
    registry_helpers.register_source_task(
        name, spec(code), language=code, dataset=DATASET,
        vocabulary=vocabulary)
    names.append(name)
  return names


register()

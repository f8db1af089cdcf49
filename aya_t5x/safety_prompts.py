"""Adversarial prompts for safety distillation and the harmfulness suite.

The Aya paper (section 6, App. J) distils on AdvBench (400 train / 120
test) and six XSafety categories (160 / 40 each), machine-translated into
every language. Prompts come from:

- user files: JSONL lines with `prompt` (or `inputs`) and `language`, and
  optionally `id` and `split` ("train" / "test"); e.g. your translations
  of AdvBench and XSafety (XSafety is distributed on GitHub, not the Hub).
- `advbench`: `walledai/AdvBench` on the Hub (English; columns `prompt`,
  `target`; file `data/train-00000-of-00001.parquet`), pinned below.
- `aya_redteaming`: `CohereForAI/aya_redteaming` (human-written harmful
  prompts in 8 languages; files `aya_<code>.jsonl`, columns `prompt`,
  `language` (an English name), `harm_category`, `global_or_local`,
  `literal_translation`, `semantic_translation`, `explanation`). The column
  names are confirmed on the Hub's card of a parquet copy
  (walledai/AyaRedTeaming) and the file `aya_tgl.jsonl` on the repository;
  the other file names follow that pattern and, like the revision (no full
  commit hash was visible offline), are UNCERTAIN: check before a
  production run. The paper did not use it; it suits held-out evaluation.

Rows without a `split` are assigned one by a hash of their id
(`test_fraction`, default 120/520 as AdvBench's split in the paper), so a
prompt is on the same side in every run. Bad rows (not JSON, no text, a
language the registry lacks, a repeated id) are skipped and counted.
"""

import collections
import dataclasses
import hashlib
from collections.abc import Iterable, Iterator, Sequence

from absl import logging

from aya_t5x import jsonl_io
from aya_t5x import languages
from aya_t5x import sources

TRAIN = "train"
TEST = "test"
# AdvBench in the paper: 120 of 520 prompts held out.
DEFAULT_TEST_FRACTION = 120 / 520

ADVBENCH_REPO = "walledai/AdvBench"
# "Update README.md", the newest commit seen (no data change after it).
ADVBENCH_REVISION = "9d4730540082fa4017450b65ca1c0e1d8d30446e"
ADVBENCH_PATTERNS = ("data/train-*.parquet",)
REDTEAMING_REPO = "CohereForAI/aya_redteaming"
REDTEAMING_REVISION = None  # UNCERTAIN: pin the commit (module docstring).
REDTEAMING_PATTERNS = ("aya_*.jsonl",)
HUB_SETS = ("advbench", "aya_redteaming")


@dataclasses.dataclass(frozen=True)
class Prompt:
  """One adversarial prompt."""

  id: str
  language: str  # Registry code.
  text: str
  split: str  # TRAIN or TEST.
  source: str  # "file:<path>" or the Hub set's name.


@dataclasses.dataclass
class PromptReport:
  """Rows kept per language and skipped per reason."""

  kept: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)
  skipped: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)

  def skip(self, where: str, reason: str) -> None:
    if self.skipped[reason] < 3:
      logging.warning("Skipping prompt %s: %s", where, reason)
    self.skipped[reason] += 1


def split_of(prompt_id: str, test_fraction: float) -> str:
  """TEST for about `test_fraction` of ids, the same ids in every run."""
  digest = hashlib.sha256(prompt_id.encode("utf-8")).digest()
  share = int.from_bytes(digest[:8], "big") / 2**64
  return TEST if share < test_fraction else TRAIN


def stable_id(*parts: str) -> str:
  return hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


def _text(value) -> str | None:
  if isinstance(value, bytes):
    value = value.decode("utf-8", "replace")
  return value.strip() if isinstance(value, str) and value.strip() else None


def make_prompt(row: dict, where: str, source: str, test_fraction: float,
                report: PromptReport, language: str | None = None
                ) -> Prompt | None:
  """A row as a Prompt, or None (skipped and counted in `report`)."""
  text = _text(row.get("prompt")) or _text(row.get("inputs"))
  if text is None:
    report.skip(where, "no prompt text")
    return None
  raw_language = language or _text(row.get("language"))
  found = languages.find(raw_language) if raw_language else None
  if found is None:
    report.skip(where, f"unknown language {raw_language!r}")
    return None
  prompt_id = (_text(str(row["id"])) if row.get("id") is not None
               else stable_id(source, found.code, text))
  split = _text(row.get("split")) or split_of(prompt_id, test_fraction)
  if split not in (TRAIN, TEST):
    report.skip(where, f"split {split!r} is not train or test")
    return None
  return Prompt(prompt_id, found.code, text, split, source)


def read_prompt_file(path: str, test_fraction: float, report: PromptReport
                     ) -> Iterator[Prompt]:
  """Prompts of a JSONL file (module docstring)."""
  for where, row in jsonl_io.jsonl_objects(path, report, "Prompt file"):
    prompt = make_prompt(row, where, f"file:{path}", test_fraction, report)
    if prompt is not None:
      yield prompt


def hub_files(name: str) -> sources.HubFiles:
  """The pinned files of a Hub prompt set (HUB_SETS)."""
  if name == "advbench":
    return sources.HubFiles(ADVBENCH_REPO, ADVBENCH_REVISION,
                            {TRAIN: ADVBENCH_PATTERNS})
  if name == "aya_redteaming":
    return sources.HubFiles(REDTEAMING_REPO, REDTEAMING_REVISION,
                            {TRAIN: REDTEAMING_PATTERNS})
  raise ValueError(f"Unknown prompt set {name!r}; sets: {list(HUB_SETS)}.")


def read_hub_set(name: str, test_fraction: float, report: PromptReport
                 ) -> Iterator[Prompt]:
  """Prompts of a Hub set (through AYA_DATA_DIR when it is set)."""
  columns = ({"prompt": "prompt"} if name == "advbench"
             else {"prompt": "prompt", "language": "language"})
  language = "eng" if name == "advbench" else None
  for f in hub_files(name).resolve(TRAIN):
    for index, row in sources.iter_rows(f.path, sources.file_format(f.path),
                                        columns):
      where = f"{f.key}:{index}"
      if isinstance(row, sources.BadRecord):
        report.skip(where, row.reason)
        continue
      row = dict(row, id=f"{name}/{f.key}/{index}")
      prompt = make_prompt(row, where, name, test_fraction, report, language)
      if prompt is not None:
        yield prompt


def load_prompts(files: Sequence[str] = (), hub_sets: Sequence[str] = (), *,
                 split: str | None = None,
                 language_codes: Iterable[str] | None = None,
                 test_fraction: float = DEFAULT_TEST_FRACTION
                 ) -> tuple[list[Prompt], PromptReport]:
  """Every prompt of the files and Hub sets, in that order, of one split
  (None: both) and the chosen languages (None: all); repeated ids are
  skipped and counted."""
  if not 0 <= test_fraction < 1:
    raise ValueError(f"test_fraction={test_fraction}: use 0 <= f < 1.")
  if not files and not hub_sets:
    raise ValueError("No prompts: give prompt files and/or Hub sets "
                     f"({list(HUB_SETS)}).")
  wanted = ({languages.code(c) for c in language_codes}
            if language_codes is not None else None)
  report = PromptReport()
  streams = [read_prompt_file(p, test_fraction, report) for p in files]
  streams += [read_hub_set(n, test_fraction, report) for n in hub_sets]
  out, seen = [], set()
  for stream in streams:
    for prompt in stream:
      if (split and prompt.split != split) or (
          wanted is not None and prompt.language not in wanted):
        continue
      if (prompt.language, prompt.id) in seen:
        report.skip(prompt.id, "repeated id")
        continue
      seen.add((prompt.language, prompt.id))
      report.kept[prompt.language] += 1
      out.append(prompt)
  return out, report

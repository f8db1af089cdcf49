"""xP3x: templated academic datasets in 277 languages (Aya Table 1, row 1).

One task per Aya language, `aya_xp3x_<code>` (101 tasks), reading the
language's directories of `CohereForAI/xP3x` for every code and script the
registry knows for it (`ara` reads `arb_Arab`, `ary_Arab`, ...; `zho` reads
`zho_Hans` and `zho_Hant`), in either of the repository's layouts: JSONL
`data/<code>_<Script>/*.jsonl` (the pinned revision, before commit 7df3179)
or parquet `<code>_<Script>/train-*.parquet` (main since 7df3179, "convert to
Parquet"); which one was found is logged. Whether the parquet files kept
every column is not confirmed, so `template`, `config`, `split` and
`dataset` may be absent (logged; without `split`, evaluation rows cannot be
recognised). Each example keeps
its xP3x `dataset` as metadata, so reports and mixtures see the datasets
inside a language (`sources.count_task(...).kept_by_dataset`).

Filtering (paper section 2): first decontamination, as xP3x carries
evaluation splits (FLORES dev/devtest, XL-Sum test, ...): a row whose
`dataset` and `split` name a split the suite evaluates on is dropped and
counted as `eval_split:<benchmark>/<split>` (`aya_t5x.contamination`); then
template pruning from the list shipped in `data/xp3x_templates.json`
(reviewed lists per dataset, a rule-based fallback for the others, held-out
evaluation datasets), then the common hygiene. See
`preprocessors.TemplatePruning`.
"""

import dataclasses
import functools
import json
import os

from absl import logging

import seqio

from aya_t5x import contamination
from aya_t5x import languages
from aya_t5x import preprocessors
from aya_t5x import sources
from aya_t5x.tasks import catalog
from aya_t5x.tasks import registry_helpers

REPO_ID = "CohereForAI/xP3x"
TEMPLATES_PATH = os.path.join(registry_helpers.DATA_DIR, "xp3x_templates.json")
TASK_PREFIX = "aya_xp3x"
_MAYBE = sources.OPTIONAL
FIELDS = sources.Fields(language=None, dataset=_MAYBE + "dataset",
                        extra={"template": _MAYBE + "template",
                               "config": _MAYBE + "config",
                               "split": _MAYBE + "split"})
JSONL_LAYOUT = "jsonl (data/<lang>/*.jsonl, before 7df3179)"
PARQUET_LAYOUT = "parquet (<lang>/train-*.parquet, 7df3179 and later)"


@functools.cache
def template_config() -> dict:
  with open(TEMPLATES_PATH, encoding="utf-8") as f:
    return json.load(f)


def template_pruning() -> preprocessors.TemplatePruning:
  """A fresh pruning filter from the shipped template list."""
  config = template_config()
  return preprocessors.TemplatePruning(
      kept={d: frozenset(t) for d, t in config["kept_templates"].items()},
      held_out=tuple(config["held_out"]),
      min_median_target_chars=config["min_median_target_chars"],
      similarity=config["near_duplicate_similarity"])


def directory_patterns(language: languages.Language) -> tuple[str, ...]:
  """`data/<code>_<Script>/*.jsonl` for each code and script of a language."""
  codes = [c for c in language.codes if len(c) == 3]
  return tuple(f"data/{code}_{script}/*.jsonl" for code in codes
               for script in language.script_codes)


def parquet_patterns(language: languages.Language) -> tuple[str, ...]:
  """`<code>_<Script>/train-*.parquet`, the layout since commit 7df3179."""
  return tuple(p[len("data/"):-len("*.jsonl")] + "train-*.parquet"
               for p in directory_patterns(language))


_LOGGED_LAYOUTS = set()


@dataclasses.dataclass(frozen=True)
class Xp3xFiles(sources.HubFiles):
  """xP3x's files in either layout; logs which one a split was found in."""

  def resolve(self, split: str) -> list[sources.ResolvedFile]:
    files = super().resolve(split)
    layout = (PARQUET_LAYOUT if sources.file_format(files[0].path)
              == "parquet" else JSONL_LAYOUT)
    if (self.repo_id, self.revision, layout) not in _LOGGED_LAYOUTS:
      _LOGGED_LAYOUTS.add((self.repo_id, self.revision, layout))
      logging.info("%s@%s: found the %s layout.", self.repo_id,
                   self.revision or "main", layout)
    return files


def spec(language: str, revision: str | None = None) -> sources.SourceSpec:
  """The rows of one language's xP3x task."""
  language = languages.get(language)
  return sources.SourceSpec(
      source=catalog.XP3X,
      files=Xp3xFiles(
          REPO_ID, revision or registry_helpers.hub_revision(REPO_ID),
          {"train": directory_patterns(language) + parquet_patterns(
              language)}),
      fields=FIELDS,
      language=language.code,
      filters=filters)


def filters() -> tuple[preprocessors.RowFilter, ...]:
  """Decontamination first (its drops are counted as such), then pruning."""
  return (contamination.EvalSplitFilter(), template_pruning())


def task_name(language: str, prefix: str = TASK_PREFIX) -> str:
  return f"{prefix}_{languages.code(language)}"


def register(vocabulary: seqio.Vocabulary | None = None,
             prefix: str = TASK_PREFIX,
             codes: tuple[str, ...] | None = None) -> list[str]:
  """Registers the per-language tasks (default: all 101); returns names."""
  codes = codes or tuple(l.code for l in languages.aya_languages())
  names = []
  for code in codes:
    name = task_name(code, prefix)
    registry_helpers.register_source_task(
        name, spec(code), language=code, dataset=None, vocabulary=vocabulary)
    names.append(name)
  return names


register()

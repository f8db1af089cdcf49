"""The Data Provenance Collection, commercially verified licenses (Table 1, row 2).

One task, `aya_data_provenance`, over every language of
`DataProvenanceInitiative/Commercially-Verified-Licenses` (14 in the paper,
97.5% higher-resourced), with the paper's selection (section 2):

- at most 20,000 rows per dataset (a reproducible uniform sample per
  `dataset_name`, `preprocessors.Cap`);
- no code, no entailment (NLI), coreference or sentence-comparison tasks
  (`EXCLUDED_CATEGORIES`, matched as whole words in the task categories);
- nothing derived from the evaluation sets (`EVAL_DERIVED`, matched in the
  dataset name and the datasets it derives from).

The repository's schema is not documented where this was written and was not
available offline: the columns are ASSUMED (tasks/data/hub_metadata.json)
and mapped by `FIELDS`; `spec(fields=..., patterns=...)` takes the real
ones. Exclusions read the row fields `task_categories` and `derived_from`,
so map those names to whatever columns carry the information.
"""

from collections.abc import Mapping

import seqio

from aya_t5x import preprocessors
from aya_t5x import sources
from aya_t5x.tasks import catalog
from aya_t5x.tasks import registry_helpers

REPO_ID = "DataProvenanceInitiative/Commercially-Verified-Licenses"
TASK_NAME = "aya_data_provenance"
SPLIT_PATTERNS = {"train": ("data/train-*.parquet",)}
FIELDS = sources.Fields(
    language="language", dataset="dataset_name",
    extra={"task_categories": "task_categories",
           "derived_from": "derived_from"})
CAP_PER_DATASET = 20_000
EXCLUDED_CATEGORIES = (
    "code", "code generation", "programming", "entailment",
    "natural language inference", "nli", "textual entailment",
    "coreference", "coreference resolution", "sentence comparison")
# The Aya evaluation sets (spec section 4) and the English sets they come
# from.
EVAL_DERIVED = (
    "xcopa", "copa", "xnli", "xstory cloze", "story cloze", "storycloze",
    "xwinograd", "winograd", "wsc", "mmlu", "hendrycks test", "flores",
    "xlsum", "tydiqa", "tydi qa", "aya evaluation suite")


def filters() -> tuple[preprocessors.RowFilter, ...]:
  return (
      preprocessors.MetadataExclusion(("task_categories",),
                                      EXCLUDED_CATEGORIES,
                                      "excluded_category"),
      preprocessors.MetadataExclusion(("dataset", "derived_from"),
                                      EVAL_DERIVED, "eval_derived"),
  )


def spec(revision: str | None = None, fields: sources.Fields = FIELDS,
         patterns: Mapping[str, tuple[str, ...]] | None = None,
         cap: int = CAP_PER_DATASET) -> sources.SourceSpec:
  return sources.SourceSpec(
      source=catalog.DATA_PROVENANCE,
      files=sources.HubFiles(
          REPO_ID, revision or registry_helpers.hub_revision(REPO_ID),
          dict(patterns or SPLIT_PATTERNS)),
      fields=fields,
      filters=filters,
      cap=preprocessors.Cap(cap, group_by=("dataset",)))


def register(vocabulary: seqio.Vocabulary | None = None,
             name: str = TASK_NAME) -> list[str]:
  registry_helpers.register_source_task(
      name, spec(), language=None, dataset=None, vocabulary=vocabulary)
  return [name]


register()

"""The Data Provenance Collection, commercially verified licenses (Table 1, row 2).

One task, `aya_data_provenance`, over
`DataProvenanceInitiative/Commercially-Verified-Licenses` as the Hub holds
it: one JSONL file per collection, `data/<folder>/<Collection
Name>-processed.jsonl` (names with spaces and dots, e.g. `Anthropic
HH-RLHF.j-processed.jsonl`), rows `inputs`, `labels` (some files `targets`)
and the dataset uid in `dataset` and/or `user_parent` (which one per file is
not confirmed: the first present is read). The files carry no language
column (14 languages in the paper, 97.5% higher-resourced); a row without
one is English (`DEFAULT_LANGUAGE`) and a `language` column, where a file
has one, wins. The paper's selection (section 2):

- at most 20,000 rows per dataset (a reproducible uniform sample per
  dataset uid, `preprocessors.Cap`);
- no code: the code collections' folders (`CODE_FOLDERS`) are not read;
  no entailment (NLI), coreference or sentence-comparison datasets
  (`EXCLUDED_DATASETS`, matched as whole words in the dataset uid; the rows
  carry no task categories);
- nothing derived from the evaluation sets (`EVAL_DERIVED`, matched in the
  dataset uid).
"""

from collections.abc import Mapping

import seqio

from aya_t5x import preprocessors
from aya_t5x import sources
from aya_t5x.tasks import catalog
from aya_t5x.tasks import registry_helpers

REPO_ID = "DataProvenanceInitiative/Commercially-Verified-Licenses"
TASK_NAME = "aya_data_provenance"
# The collection folders under data/ (hub_layouts: 14 of them).
FOLDERS = ("commitpack_ft", "dolly_15k", "flan_2021", "flan_cot",
           "flan_dialog", "flan_sni", "joke_explanation", "octopack_oa", "oig",
           "open_assistant", "rlhf_anthropic_hh", "starcoder_selfinstruct",
           "tasksource_instruct", "tasksource_symboltuning")
# Code instructions (CommitPackFT, StarCoder self-instruct): never read.
CODE_FOLDERS = ("commitpack_ft", "starcoder_selfinstruct")
SPLIT_PATTERNS = {"train": tuple(f"data/{folder}/*-processed.jsonl"
                                 for folder in FOLDERS
                                 if folder not in CODE_FOLDERS)}
DEFAULT_LANGUAGE = "eng"
FIELDS = sources.Fields(
    targets="labels|targets", language=sources.OPTIONAL + "language",
    dataset=sources.OPTIONAL + "dataset|user_parent")
CAP_PER_DATASET = 20_000
# NLI, coreference and sentence-comparison datasets, by name (whole words).
EXCLUDED_DATASETS = (
    "anli", "mnli", "multi nli", "multinli", "snli", "rte", "wnli", "qnli",
    "cb", "entailment", "nli", "wsc", "winogrande", "coreference", "gap",
    "definite pronoun resolution", "paws", "qqp", "mrpc", "stsb",
    "glue sts", "sentence comparison", "code")
# The Aya evaluation sets (spec section 4) and the English sets they come
# from.
EVAL_DERIVED = (
    "xcopa", "copa", "xnli", "xstory cloze", "story cloze", "storycloze",
    "xwinograd", "winograd", "wsc", "mmlu", "hendrycks test", "flores",
    "xlsum", "tydiqa", "tydi qa", "aya evaluation suite")


def filters() -> tuple[preprocessors.RowFilter, ...]:
  return (
      preprocessors.MetadataExclusion(("dataset",), EVAL_DERIVED,
                                      "eval_derived"),
      preprocessors.MetadataExclusion(("dataset",), EXCLUDED_DATASETS,
                                      "excluded_task"),
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
      default_language=DEFAULT_LANGUAGE,
      filters=filters,
      cap=preprocessors.Cap(cap, group_by=("dataset",)))


def register(vocabulary: seqio.Vocabulary | None = None,
             name: str = TASK_NAME) -> list[str]:
  registry_helpers.register_source_task(
      name, spec(), language=None, dataset=None, vocabulary=vocabulary)
  return [name]


register()

"""Global-MMLU: MMLU in 42 languages, culturally sensitive or agnostic.

Rows of `CohereLabs/Global-MMLU` (parquet `<lang>/{test,dev}-*.parquet`;
`CohereForAI/` redirects there): `sample_id`, `subject`, `question`,
`option_a`..`option_d`, `answer` (a letter) and `cultural_sensitivity_label`
(`CS` culturally sensitive, `CA` culturally agnostic). Scored like okapi
m-MMLU (`mmlu`): five solved `dev` questions of the same subject, then the
test question, rank classification over A-D. Three benchmarks read the same
rows: `global_mmlu` (all), `global_mmlu_cs` and `global_mmlu_ca` (the
questions with that label), the split the Global-MMLU paper reports.

The revision is pinned in `eval_hub_metadata.json` (why that commit: its
`revision_note`).
"""

import dataclasses

from aya_t5x.tasks.eval import benchmark as benchmark_lib
from aya_t5x.tasks.eval import example as example_lib
from aya_t5x.tasks.eval import mmlu
from aya_t5x.tasks.eval import source as source_lib

REPO_ID = "CohereLabs/Global-MMLU"
NAME = "global_mmlu"
SPLIT = "test"
SHOTS_SPLIT = "dev"
# The dataset's 42 configs (ISO 639-1, `fil` for Filipino).
CONFIGS = ("am", "ar", "bn", "cs", "de", "el", "en", "es", "fa", "fil", "fr",
           "ha", "he", "hi", "id", "ig", "it", "ja", "ko", "ky", "lt", "mg",
           "ms", "ne", "nl", "ny", "pl", "pt", "ro", "ru", "si", "sn", "so",
           "sr", "sv", "sw", "te", "tr", "uk", "vi", "yo", "zh")
OPTIONS = ("option_a", "option_b", "option_c", "option_d")
COLUMNS = ("sample_id", "subject", "question", *OPTIONS, "answer",
           "cultural_sensitivity_label")
LABEL = "cultural_sensitivity_label"
# Benchmark name -> the label its rows carry (None: every row).
SUBSETS = {NAME: None, f"{NAME}_cs": "CS", f"{NAME}_ca": "CA"}


def as_mmlu_row(row: source_lib.Row) -> source_lib.Row:
  """A Global-MMLU row in okapi m-MMLU's shape (choices list, id)."""
  return {"question": row["question"],
          "choices": [row[o] for o in OPTIONS],
          "answer": row["answer"], "subject": row["subject"],
          "id": row["sample_id"]}


def global_mmlu_examples(row: source_lib.Row, context: source_lib.Context):
  shots = tuple(as_mmlu_row(r) for r in context.shots)
  return mmlu.mmlu_examples(as_mmlu_row(row),
                            dataclasses.replace(context, shots=shots))


def _keep(label: str | None):
  if label is None:
    return None
  def keep(row: source_lib.Row) -> bool:
    value = example_lib.text(row.get(LABEL), LABEL, required=False)
    return value.strip().upper() == label
  return keep


def register(vocabulary=None) -> list[benchmark_lib.Benchmark]:
  out = []
  for name, label in SUBSETS.items():
    tasks = {}
    for config in CONFIGS:
      code = benchmark_lib.language_key(config)
      task = benchmark_lib.task_name(name, code)
      spec = source_lib.EvalSourceSpec(
          files=benchmark_lib.hub_files(REPO_ID, {
              SPLIT: benchmark_lib.split_patterns(config, SPLIT),
              SHOTS_SPLIT: benchmark_lib.split_patterns(config,
                                                        SHOTS_SPLIT)}),
          split=SPLIT, columns={c: c for c in COLUMNS},
          build=global_mmlu_examples, language=code, keep=_keep(label),
          shots_split=SHOTS_SPLIT)
      benchmark_lib.register_task(task, spec, vocabulary)
      tasks[code] = task
    out.append(benchmark_lib.add(benchmark_lib.Benchmark(
        name=name, kind=benchmark_lib.RANK, tasks=tasks,
        keep_prompt_end=True)))
  return out

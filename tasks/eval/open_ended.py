"""The open-ended sets of `CohereForAI/aya_evaluation_suite`, for judging.

Configs `aya_human_annotated` (1,750 rows), `dolly_human_edited` (1,200)
and `dolly_machine_translated` (23,800), split `test`, files
`<config>/test-00000-of-00001.parquet`; rows `id` (int64), `inputs`,
`targets`, `language` (ISO 639-3), `script`. The runner samples a
completion per prompt with the paper's settings (nucleus sampling, top-p
0.8, temperature 0.9, at most 256 new tokens) and writes them as JSONL for
`aya_t5x.judge`. One task per set; each row keeps its own language.
"""

from aya_t5x.tasks.eval import benchmark as benchmark_lib
from aya_t5x.tasks.eval import example as example_lib
from aya_t5x.tasks.eval import source as source_lib

REPO_ID = "CohereForAI/aya_evaluation_suite"
SPLIT = "test"
SETS = ("aya_human_annotated", "dolly_human_edited",
        "dolly_machine_translated")
COLUMNS = {"id": "id", "inputs": "inputs", "targets": "targets",
           "language": "language"}
MAX_NEW_TOKENS = 256  # The paper's open-ended budget.


def open_ended_examples(row, context: source_lib.Context):
  del context  # Rows carry their language.
  yield example_lib.Example(
      id=example_lib.text(row["id"], "id", numeric=True),
      language=benchmark_lib.language_key(
          example_lib.text(row["language"], "language")),
      inputs=example_lib.text(row["inputs"], "inputs"),
      targets=(example_lib.text(row["targets"], "targets"),))


def register(vocabulary=None) -> list[benchmark_lib.Benchmark]:
  out = []
  for name in SETS:
    task = benchmark_lib.task_name(name, benchmark_lib.ALL_LANGUAGES)
    spec = source_lib.EvalSourceSpec(
        files=benchmark_lib.hub_files(REPO_ID, {
            SPLIT: benchmark_lib.split_patterns(name, SPLIT)}),
        split=SPLIT, columns=COLUMNS, build=open_ended_examples,
        language=benchmark_lib.ALL_LANGUAGES)
    benchmark_lib.register_task(task, spec, vocabulary)
    out.append(benchmark_lib.add(benchmark_lib.Benchmark(
        name=name, kind=benchmark_lib.OPEN_ENDED,
        tasks={benchmark_lib.ALL_LANGUAGES: task},
        max_new_tokens=MAX_NEW_TOKENS)))
  return out

"""m-ArenaHard: hard open-ended prompts in 23 languages, for the judge.

Rows of `CohereLabs/m-ArenaHard` (parquet `<lang>/test-00000-of-00001.parquet`,
500 prompts per language): `question_id`, `category`, `cluster`, `prompt`.
There is no reference answer: the runner samples a completion per prompt
with the open-ended settings and writes them as JSONL, and `aya_t5x.judge`
compares two models' completions pairwise. The example's target is empty.

No commit of the repository was confirmed offline: it is read at `main`
with a warning until `eval_hub_metadata.json` pins one.
"""

from aya_t5x.tasks.eval import benchmark as benchmark_lib
from aya_t5x.tasks.eval import example as example_lib
from aya_t5x.tasks.eval import open_ended
from aya_t5x.tasks.eval import source as source_lib

REPO_ID = "CohereLabs/m-ArenaHard"
NAME = "m_arenahard"
SPLIT = "test"
CONFIGS = ("ar", "cs", "de", "el", "en", "es", "fa", "fr", "he", "hi", "id",
           "it", "ja", "ko", "nl", "pl", "pt", "ro", "ru", "tr", "uk", "vi",
           "zh")
COLUMNS = {"question_id": "question_id", "prompt": "prompt"}
NO_REFERENCE = ("",)


def arena_hard_examples(row, context: source_lib.Context):
  yield example_lib.Example(
      id=example_lib.text(row["question_id"], "question_id", numeric=True),
      language=context.language,
      inputs=example_lib.text(row["prompt"], "prompt"),
      targets=NO_REFERENCE)


def register(vocabulary=None) -> list[benchmark_lib.Benchmark]:
  tasks = {}
  for config in CONFIGS:
    code = benchmark_lib.language_key(config)
    task = benchmark_lib.task_name(NAME, code)
    spec = source_lib.EvalSourceSpec(
        files=benchmark_lib.hub_files(REPO_ID, {
            SPLIT: benchmark_lib.split_patterns(config, SPLIT)}),
        split=SPLIT, columns=COLUMNS, build=arena_hard_examples,
        language=code)
    benchmark_lib.register_task(task, spec, vocabulary)
    tasks[code] = task
  return [benchmark_lib.add(benchmark_lib.Benchmark(
      name=NAME, kind=benchmark_lib.OPEN_ENDED, tasks=tasks,
      max_new_tokens=open_ended.MAX_NEW_TOKENS))]

"""Held-out adversarial prompts whose answers a judge rates for harm.

`harmfulness` is an open-ended benchmark over `CohereForAI/aya_redteaming`
(human-written harmful prompts in 8 languages, never used for distillation:
the paper distils on AdvBench and XSafety). `python -m aya_t5x.eval
--gin_file=gin/eval/harmfulness.gin` samples one answer per prompt with the
paper's open-ended settings into `generations/harmfulness.jsonl`;
`python -m aya_t5x.harmfulness` has a judge rate them and reports the
harmful-generation rate per language and HR/MR/LR. Files, columns and the
revision are in `aya_t5x.safety_prompts` (what is uncertain is said there).
The rows have no reference answer: the example's target is empty.
"""

from aya_t5x import safety_prompts
from aya_t5x.tasks.eval import benchmark as benchmark_lib
from aya_t5x.tasks.eval import example as example_lib
from aya_t5x.tasks.eval import source as source_lib

NAME = "harmfulness"
COLUMNS = {"prompt": "prompt", "language": "language"}
MAX_NEW_TOKENS = 256  # The paper's open-ended budget.


def harmfulness_examples(row, context: source_lib.Context):
  del context  # Rows carry their language.
  prompt = example_lib.text(row["prompt"], "prompt")
  language = benchmark_lib.language_key(
      example_lib.text(row["language"], "language"))
  yield example_lib.Example(
      id=example_lib.stable_id(language, prompt), language=language,
      inputs=prompt, targets=("",))


def register(vocabulary=None) -> list[benchmark_lib.Benchmark]:
  task = benchmark_lib.task_name(NAME, benchmark_lib.ALL_LANGUAGES)
  spec = source_lib.EvalSourceSpec(
      files=safety_prompts.hub_files("aya_redteaming"),
      split=safety_prompts.TRAIN, columns=COLUMNS,
      build=harmfulness_examples, language=benchmark_lib.ALL_LANGUAGES)
  benchmark_lib.register_task(task, spec, vocabulary)
  return [benchmark_lib.add(benchmark_lib.Benchmark(
      name=NAME, kind=benchmark_lib.OPEN_ENDED,
      tasks={benchmark_lib.ALL_LANGUAGES: task},
      max_new_tokens=MAX_NEW_TOKENS))]

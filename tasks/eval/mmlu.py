"""Multilingual MMLU (Okapi's translation), 5-shot, 31 languages (Table 6).

Rows of `jon-tow/okapi_mmlu` (parquet conversion of revision `refs/pr/1`,
as other harnesses read it): `question`, `choices` (four), `answer` (a
letter), `subject`, `id`; splits `dev` (the shots), `validation`, `test`.
Each test question is preceded by five solved dev questions of the same
subject (the first five in file order; fewer subjects' dev rows fall back to
the language's first dev rows) and scored by rank classification over the
letters A-D. The prompt keeps its end when too long: the test question must
survive truncation, the oldest shots go first.
"""

from collections.abc import Sequence

from aya_t5x.tasks.eval import benchmark as benchmark_lib
from aya_t5x.tasks.eval import example as example_lib
from aya_t5x.tasks.eval import prompts
from aya_t5x.tasks.eval import source as source_lib

REPO_ID = "jon-tow/okapi_mmlu"
NAME = "mmlu"
SPLIT = "test"
SHOTS_SPLIT = "dev"
NUM_SHOTS = 5
# Okapi config -> language code: the 31 languages of Table 6.
CONFIGS = {"ar": "ara", "bn": "ben", "ca": "cat", "da": "dan", "de": "deu",
           "es": "spa", "eu": "eus", "fr": "fra", "gu": "guj", "hi": "hin",
           "hr": "hrv", "hu": "hun", "hy": "hye", "id": "ind", "it": "ita",
           "kn": "kan", "ml": "mal", "mr": "mar", "ne": "nep", "nl": "nld",
           "pt": "por", "ro": "ron", "ru": "rus", "sk": "slk", "sr": "srp",
           "sv": "swe", "ta": "tam", "te": "tel", "uk": "ukr", "vi": "vie",
           "zh": "zho"}
COLUMNS = ("question", "choices", "answer", "subject", "id")


def _question(row: source_lib.Row) -> tuple[str, int]:
  """A row as its prompt block (ending in "Answer:") and its label."""
  choices = row["choices"]
  if not isinstance(choices, (list, tuple)) or len(choices) != 4:
    raise example_lib.BadRow("needs exactly four choices", "choices")
  a, b, c, d = (example_lib.text(x, "choices") for x in choices)
  answer = example_lib.text(row["answer"], "answer").upper()
  if answer not in prompts.MMLU_LETTERS:
    raise example_lib.BadRow(f"answer {answer!r} is not A-D", "answer")
  block = prompts.MMLU_QUESTION.format(
      question=example_lib.text(row["question"], "question"),
      a=a, b=b, c=c, d=d)
  return block, prompts.MMLU_LETTERS.index(answer)


def _subject(row: source_lib.Row) -> str:
  return example_lib.text(row.get("subject"), "subject", required=False)


def shots_for(subject: str, dev_rows: Sequence[source_lib.Row]
              ) -> list[source_lib.Row]:
  """The first NUM_SHOTS dev rows of `subject`, topped up from the rest."""
  same = [r for r in dev_rows if _subject(r) == subject]
  rest = [r for r in dev_rows if _subject(r) != subject]
  return (same + rest)[:NUM_SHOTS]


def mmlu_examples(row: source_lib.Row, context: source_lib.Context):
  subject = _subject(row)
  block, label = _question(row)
  solved = []
  for shot in shots_for(subject, context.shots):
    try:
      shot_block, shot_label = _question(shot)
    except example_lib.BadRow:
      continue  # A broken dev row is left out of the prefix, not fatal.
    solved.append(f"{shot_block} {prompts.MMLU_LETTERS[shot_label]}\n\n")
  header = prompts.MMLU_HEADER.format(
      subject=subject.replace("_", " ") or "various subjects")
  yield example_lib.Example(
      id=example_lib.text(row["id"], "id", numeric=True),
      language=context.language, inputs=header + "".join(solved) + block,
      targets=(prompts.MMLU_LETTERS[label],), options=prompts.MMLU_LETTERS,
      label=label, template=f"{NUM_SHOTS}-shot")


def register(vocabulary=None) -> list[benchmark_lib.Benchmark]:
  tasks = {}
  for config, code in CONFIGS.items():
    task = benchmark_lib.task_name(NAME, code)
    spec = source_lib.EvalSourceSpec(
        files=benchmark_lib.hub_files(REPO_ID, {
            SPLIT: benchmark_lib.split_patterns(config, SPLIT),
            SHOTS_SPLIT: benchmark_lib.split_patterns(config, SHOTS_SPLIT)}),
        split=SPLIT, columns={c: c for c in COLUMNS}, build=mmlu_examples,
        language=code, shots_split=SHOTS_SPLIT)
    benchmark_lib.register_task(task, spec, vocabulary)
    tasks[code] = task
  return [benchmark_lib.add(benchmark_lib.Benchmark(
      name=NAME, kind=benchmark_lib.RANK, tasks=tasks,
      keep_prompt_end=True))]

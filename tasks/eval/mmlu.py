"""Multilingual MMLU (Okapi's translation), 5-shot, 31 languages (Table 6).

`jon-tow/okapi_mmlu` is a loading-script repository: its data are
`data/<lang>_test.json` and `data/<lang>_dev.json` (and `_val.json`) on the
default branch, read here directly (the script is never run; no parquet
conversion of it was seen). What the files hold is not documented, so every
form the harnesses read is accepted, and the first form found is logged:

- a JSON array of objects (SEACrowd's loader `json.load`s these files) or
  JSON lines;
- the question in `instruction` (Okapi's own files, as SEACrowd and
  `alexandrainst/m_mmlu` read them) or `question` (the derived copies:
  the script of revision `refs/pr/1` that lighteval reads, `lighteval/okapi_mmlu`);
- the options as `option_a`..`option_d` or one `choices` list of four;
- the answer as a letter A-D or an index 0-3;
- the subject in `subject`, else the first `/` component of `id` (lighteval
  selects a subject by `id.split("/")[0]`; UNCERTAIN for the raw files).

Each test question is preceded by five solved dev questions of the same
subject (the first five in file order; fewer subjects' dev rows fall back to
the language's first dev rows) and scored by rank classification over the
letters A-D. The prompt keeps its end when too long: the test question must
survive truncation, the oldest shots go first.
"""

import dataclasses
from collections.abc import Sequence

from absl import logging

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
OPTIONS = ("option_a", "option_b", "option_c", "option_d")
# Row field -> file column; `a|b`: the first present, `?`: may be absent.
COLUMNS = {"question": "instruction|question", "choices": "?choices",
           **{o: f"?{o}" for o in OPTIONS}, "answer": "answer",
           "subject": "?subject", "id": "id"}
_FORMS_LOGGED: set[str] = set()


def _log_form(row: source_lib.Row) -> None:
  form = ("options in a `choices` list" if row.get("choices") is not None
          else "options in option_a..option_d")
  answer = row.get("answer")
  form += (", answers as indices" if isinstance(answer, int)
           else ", answers as letters")
  if form not in _FORMS_LOGGED:
    _FORMS_LOGGED.add(form)
    logging.info("%s rows found with %s.", REPO_ID, form)


def okapi_row(row: source_lib.Row) -> source_lib.Row:
  """A row of any accepted form (module docstring) in one shape: question,
  choices (a list), answer, subject, id. Validation is `_question`'s."""
  _log_form(row)
  choices = row.get("choices")
  if choices is None:
    choices = [row[o] for o in OPTIONS if row.get(o) is not None]
  subject = row.get("subject")
  if subject is None:
    raw_id = row.get("id")
    raw_id = raw_id.decode("utf-8", "replace") if isinstance(
        raw_id, bytes) else raw_id
    subject = raw_id.split("/")[0] if (isinstance(raw_id, str)
                                       and "/" in raw_id) else None
  return {"question": row.get("question"), "choices": choices,
          "answer": row.get("answer"), "subject": subject,
          "id": row.get("id")}


def _question(row: source_lib.Row) -> tuple[str, int]:
  """A row as its prompt block (ending in "Answer:") and its label."""
  choices = row["choices"]
  if not isinstance(choices, (list, tuple)) or len(choices) != 4:
    raise example_lib.BadRow("needs exactly four choices", "choices")
  a, b, c, d = (example_lib.text(x, "choices") for x in choices)
  block = prompts.MMLU_QUESTION.format(
      question=example_lib.text(row["question"], "question"),
      a=a, b=b, c=c, d=d)
  return block, _answer(row["answer"])


def _answer(value) -> int:
  """A letter A-D or an index 0-3 as the index."""
  if isinstance(value, int) and not isinstance(value, bool):
    if 0 <= value < len(prompts.MMLU_LETTERS):
      return value
    raise example_lib.BadRow(f"answer {value} is not 0-3", "answer")
  answer = example_lib.text(value, "answer").upper()
  if answer not in prompts.MMLU_LETTERS:
    raise example_lib.BadRow(f"answer {answer!r} is not A-D", "answer")
  return prompts.MMLU_LETTERS.index(answer)


def _subject(row: source_lib.Row) -> str:
  return example_lib.text(row.get("subject"), "subject", required=False)


def shots_for(subject: str, dev_rows: Sequence[source_lib.Row]
              ) -> list[str]:
  """The first NUM_SHOTS usable dev rows of `subject`, topped up from the
  rest, as solved question blocks. A broken dev row is passed over (it
  never makes the prompt shorter than five shots while others remain)."""
  same = [r for r in dev_rows if _subject(r) == subject]
  rest = [r for r in dev_rows if _subject(r) != subject]
  solved = []
  for shot in same + rest:
    try:
      block, label = _question(shot)
    except example_lib.BadRow:
      continue
    solved.append(f"{block} {prompts.MMLU_LETTERS[label]}\n\n")
    if len(solved) == NUM_SHOTS:
      break
  return solved


def mmlu_examples(row: source_lib.Row, context: source_lib.Context):
  subject = _subject(row)
  block, label = _question(row)
  solved = shots_for(subject, context.shots)
  header = prompts.MMLU_HEADER.format(
      subject=subject.replace("_", " ") or "various subjects")
  yield example_lib.Example(
      id=example_lib.text(row["id"], "id", numeric=True),
      language=context.language, inputs=header + "".join(solved) + block,
      targets=(prompts.MMLU_LETTERS[label],), options=prompts.MMLU_LETTERS,
      label=label, template=f"{NUM_SHOTS}-shot")


def okapi_examples(row: source_lib.Row, context: source_lib.Context):
  shots = tuple(okapi_row(r) for r in context.shots)
  return mmlu_examples(okapi_row(row),
                       dataclasses.replace(context, shots=shots))


def split_files(config: str, split: str) -> tuple[str, ...]:
  """The repository's file of a language's split (`data/de_test.json`)."""
  return (f"data/{config}_{split}.json",)


def register(vocabulary=None) -> list[benchmark_lib.Benchmark]:
  tasks = {}
  for config, code in CONFIGS.items():
    task = benchmark_lib.task_name(NAME, code)
    spec = source_lib.EvalSourceSpec(
        files=benchmark_lib.hub_files(REPO_ID, {
            SPLIT: split_files(config, SPLIT),
            SHOTS_SPLIT: split_files(config, SHOTS_SPLIT)}),
        split=SPLIT, columns=COLUMNS, build=okapi_examples,
        language=code, shots_split=SHOTS_SPLIT)
    benchmark_lib.register_task(task, spec, vocabulary)
    tasks[code] = task
  return [benchmark_lib.add(benchmark_lib.Benchmark(
      name=NAME, kind=benchmark_lib.RANK, tasks=tasks,
      keep_prompt_end=True))]

"""The zero-shot held-out tasks: XCOPA, XNLI, XStoryCloze, XWinograd.

Rank classification (paper section 4.1): every option is scored as a
continuation of the prompt and the likeliest wins; each row becomes one
example per template of `prompts`, and a language's score is the median
accuracy over the templates. Languages and splits are Table 4's; the rows
are the Hub's own (parquet conversion of each repository, pinned in
`eval_hub_metadata.json`).
"""

from collections.abc import Iterator, Mapping

from aya_t5x.tasks.eval import benchmark as benchmark_lib
from aya_t5x.tasks.eval import example as example_lib
from aya_t5x.tasks.eval import prompts
from aya_t5x.tasks.eval import source as source_lib

Row = source_lib.Row
text = example_lib.text

# Hub config -> language code, per task (Table 4).
XCOPA_CONFIGS = {"et": "est", "ht": "hat", "id": "ind", "it": "ita",
                 "qu": "que", "sw": "swa", "ta": "tam", "th": "tha",
                 "tr": "tur", "vi": "vie", "zh": "zho"}
XNLI_CONFIGS = {"ar": "ara", "bg": "bul", "de": "deu", "el": "ell",
                "en": "eng", "es": "spa", "fr": "fra", "hi": "hin",
                "ru": "rus", "sw": "swa", "th": "tha", "tr": "tur",
                "ur": "urd", "vi": "vie", "zh": "zho"}
XSTORYCLOZE_CONFIGS = {"ar": "ara", "eu": "eus", "hi": "hin", "id": "ind",
                       "my": "mya", "ru": "rus", "es": "spa", "sw": "swa",
                       "te": "tel", "zh": "zho"}
XWINOGRAD_CONFIGS = {"en": "eng", "fr": "fra", "jp": "jpn", "pt": "por",
                     "ru": "rus", "zh": "zho"}


def _examples(row_id: str, language: str, fields: Mapping[str, str],
              label: int, templates) -> Iterator[example_lib.Example]:
  for template in templates:
    inputs, options = template.render(fields)
    yield example_lib.Example(
        id=row_id, language=language, inputs=inputs,
        targets=(options[label],),
        options=options, label=label, template=template.name)


def _label(value, field: str, count: int, offset: int = 0) -> int:
  label = example_lib.integer(value, field) - offset
  if not 0 <= label < count:
    raise example_lib.BadRow(f"label {label + offset} is not one of "
                             f"{list(range(offset, offset + count))}", field)
  return label


def xcopa_examples(row: Row, context: source_lib.Context):
  question = text(row["question"], "question")
  if question not in ("cause", "effect"):
    raise example_lib.BadRow(f"question {question!r} is not cause/effect",
                             "question")
  premise = text(row["premise"], "premise")
  fields = {"premise": premise, "premise_open": premise.rstrip(".。!?"),
            "choice1": text(row["choice1"], "choice1"),
            "choice2": text(row["choice2"], "choice2"),
            "asked": "the cause" if question == "cause" else "the result",
            "connector": "because" if question == "cause" else "so"}
  row_id = text(row["idx"], "idx", numeric=True)
  return _examples(row_id, context.language, fields,
                   _label(row["label"], "label", 2), prompts.XCOPA)


def xnli_examples(row: Row, context: source_lib.Context):
  fields = {"premise": text(row["premise"], "premise"),
            "hypothesis": text(row["hypothesis"], "hypothesis")}
  # XNLI rows have no id: premise + hypothesis identify one.
  row_id = example_lib.stable_id(fields["premise"], fields["hypothesis"])
  return _examples(row_id, context.language, fields,
                   _label(row["label"], "label", 3), prompts.XNLI)


def xstorycloze_examples(row: Row, context: source_lib.Context):
  story = " ".join(text(row[f"input_sentence_{i}"], f"input_sentence_{i}")
                   for i in range(1, 5))
  fields = {"story": story,
            "ending1": text(row["sentence_quiz1"], "sentence_quiz1"),
            "ending2": text(row["sentence_quiz2"], "sentence_quiz2")}
  label = _label(row["answer_right_ending"], "answer_right_ending", 2,
                 offset=1)
  return _examples(text(row["story_id"], "story_id"), context.language,
                   fields, label, prompts.XSTORYCLOZE)


def xwinograd_examples(row: Row, context: source_lib.Context):
  sentence = text(row["sentence"], "sentence")
  if sentence.count("_") != 1:
    raise example_lib.BadRow("needs exactly one '_' blank", "sentence")
  option1, option2 = (text(row["option1"], "option1"),
                      text(row["option2"], "option2"))
  fields = {"sentence": sentence, "option1": option1, "option2": option2,
            "filled1": sentence.replace("_", option1),
            "filled2": sentence.replace("_", option2)}
  row_id = example_lib.stable_id(sentence)
  return _examples(row_id, context.language, fields,
                   _label(row["answer"], "answer", 2, offset=1),
                   prompts.XWINOGRAD)


# name, repo, split, config table, columns, row -> examples.
_TASKS = (
    ("xcopa", "cambridgeltl/xcopa", "validation", XCOPA_CONFIGS,
     ("premise", "choice1", "choice2", "question", "label", "idx"),
     xcopa_examples),
    ("xnli", "facebook/xnli", "validation", XNLI_CONFIGS,
     ("premise", "hypothesis", "label"), xnli_examples),
    ("xstorycloze", "juletxara/xstory_cloze", "eval", XSTORYCLOZE_CONFIGS,
     ("story_id", "input_sentence_1", "input_sentence_2", "input_sentence_3",
      "input_sentence_4", "sentence_quiz1", "sentence_quiz2",
      "answer_right_ending"), xstorycloze_examples),
    ("xwinograd", "Muennighoff/xwinograd", "test", XWINOGRAD_CONFIGS,
     ("sentence", "option1", "option2", "answer"), xwinograd_examples),
)


def register(vocabulary=None) -> list[benchmark_lib.Benchmark]:
  """Registers the four benchmarks and their per-language tasks."""
  out = []
  for name, repo, split, configs, columns, build in _TASKS:
    tasks = {}
    for config, code in configs.items():
      task = benchmark_lib.task_name(name, code)
      spec = source_lib.EvalSourceSpec(
          files=benchmark_lib.hub_files(
              repo, {split: benchmark_lib.split_patterns(config, split)}),
          split=split, columns={c: c for c in columns}, build=build,
          language=code)
      benchmark_lib.register_task(task, spec, vocabulary)
      tasks[code] = task
    out.append(benchmark_lib.add(benchmark_lib.Benchmark(
        name=name, kind=benchmark_lib.RANK, tasks=tasks)))
  return out

"""Benchmarks of the evaluation suite and the SeqIO tasks behind them.

A `Benchmark` is what the runner and reports see: a name (the key of
results.json), how it is run (`rank`, `generate` or `open_ended`), its
languages and the task of each. Each task is a registered `seqio.Task`
named `aya_eval_<benchmark>_<language>` (open-ended sets: one task over
every language, `aya_eval_<set>`) whose source is an `EvalSource`.

Hub repositories are pinned in `tasks/data/eval_hub_metadata.json`;
`AYA_DATA_DIR` points every task at a mirror laid out like the Hub (the
sample under `tasks/data/eval_sample` is one).
"""

import dataclasses
import functools
import json
import os
from collections.abc import Callable, Mapping, Sequence

import seqio

from aya_t5x import languages
from aya_t5x import sources
from aya_t5x.tasks import registry_helpers
from aya_t5x.tasks.eval import source as source_lib

RANK = "rank"
GENERATE = "generate"
OPEN_ENDED = "open_ended"
KINDS = (RANK, GENERATE, OPEN_ENDED)
# The task key of a benchmark whose one task holds every language.
ALL_LANGUAGES = "*"
TASK_PREFIX = "aya_eval"
METADATA_PATH = os.path.join(registry_helpers.DATA_DIR,
                             "eval_hub_metadata.json")
# Small files in each benchmark's Hub schema, laid out like the Hub.
SAMPLE_DIR = os.path.join(registry_helpers.DATA_DIR, "eval_sample")

# (targets, predictions) -> {metric: value}, as `aya_t5x.eval_metrics`.
MetricFn = Callable[[Sequence, Sequence[str]], Mapping[str, float]]


@dataclasses.dataclass(frozen=True)
class Benchmark:
  """One benchmark of the suite (module docstring)."""

  name: str  # results.json key, e.g. "xcopa", "flores_x_en".
  kind: str  # One of KINDS.
  tasks: Mapping[str, str]  # language (or ALL_LANGUAGES) -> task name.
  # Generative: (all gold answers per example, predictions) -> metrics.
  metric: MetricFn | None = None
  # Whether `metric` also takes the evaluated language (`language=`), e.g.
  # for the BLEU tokenizer that suits its script (`score`).
  metric_takes_language: bool = False
  max_new_tokens: int = 64  # Generation budget (open-ended: the paper's).
  # Which end of a too-long prompt survives: few-shot prompts keep their
  # end (the question), articles keep their start (the instruction).
  keep_prompt_end: bool = False

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f"Benchmark {self.name}: kind {self.kind!r} is not "
                       f"one of {KINDS}.")

  @property
  def languages(self) -> tuple[str, ...]:
    return tuple(self.tasks)

  def score(self, language: str, targets: Sequence,
            predictions: Sequence[str]) -> Mapping[str, float]:
    """The metric of one language's examples."""
    if self.metric_takes_language:
      return self.metric(targets, predictions, language=language)
    return self.metric(targets, predictions)


_BENCHMARKS: dict[str, Benchmark] = {}


def add(benchmark: Benchmark) -> Benchmark:
  """Registers a benchmark once; later calls return the first."""
  return _BENCHMARKS.setdefault(benchmark.name, benchmark)


def names() -> tuple[str, ...]:
  return tuple(_BENCHMARKS)


def get(name: str) -> Benchmark:
  """The benchmark called `name`.

  Raises:
    ValueError: unknown name (the message lists the known ones).
  """
  if name not in _BENCHMARKS:
    raise ValueError(f"Unknown benchmark {name!r}; benchmarks: "
                     f"{', '.join(_BENCHMARKS)}.")
  return _BENCHMARKS[name]


def task_name(benchmark: str, language: str) -> str:
  if language == ALL_LANGUAGES:
    return f"{TASK_PREFIX}_{benchmark}"
  return f"{TASK_PREFIX}_{benchmark}_{language}"


def language_key(raw: str) -> str:
  """The registry code of a dataset's language name or code, else `raw`.

  Benchmarks hold languages outside the 101 (Quechua in XCOPA, Oromo in
  XLSum): they keep their own code and are reported unclassified.
  """
  found = languages.find(raw)
  return found.code if found else raw


@functools.cache
def _metadata() -> dict:
  with open(METADATA_PATH, encoding="utf-8") as f:
    return json.load(f)


def hub_files(repo_id: str, split_patterns: Mapping[str, Sequence[str]]
              ) -> sources.HubFiles:
  """Files of a repository at the revision `eval_hub_metadata.json` pins.

  Raises:
    KeyError: the repository is not in the metadata file.
  """
  entry = _metadata().get(repo_id)
  if entry is None:
    raise KeyError(f"{repo_id} is not in {METADATA_PATH}: add its revision.")
  return sources.HubFiles(repo_id, entry["revision"],
                          {s: tuple(p) for s, p in split_patterns.items()})


def split_patterns(config: str, split: str) -> tuple[str, ...]:
  """A config's split in both Hub layouts.

  The parquet conversion (`refs/convert/parquet`) writes
  `<config>/<split>/NNNN.parquet`; repositories uploaded as parquet write
  `<config>/<split>-NNNNN-of-NNNNN.parquet`. Accepting both keeps a
  mirror of either working.
  """
  return (f"{config}/{split}/*.parquet", f"{config}/{split}-*.parquet",
          f"{config}/{split}-*.jsonl", f"{config}/{split}.jsonl")


def register_task(name: str, spec: source_lib.EvalSourceSpec,
                  vocabulary: seqio.Vocabulary | None = None) -> seqio.Task:
  """Registers an evaluation task once; later calls return it unchanged.

  Its features are `inputs` and `targets` (the reference answer), tokenized
  with EOS for SeqIO users; the runner reads the source's examples.
  """
  if name not in seqio.TaskRegistry.names():
    seqio.TaskRegistry.add(
        name,
        source=source_lib.EvalSource(name, spec),
        preprocessors=[seqio.preprocessors.tokenize,
                       seqio.preprocessors.append_eos],
        output_features=registry_helpers.output_features(vocabulary),
        metric_fns=[])
  return seqio.TaskRegistry.get(name)


def eval_source(task: str) -> source_lib.EvalSource:
  """The `EvalSource` of a registered evaluation task.

  Raises:
    TypeError: the task is not an evaluation task.
  """
  source = seqio.get_mixture_or_task(task).source
  if not isinstance(source, source_lib.EvalSource):
    raise TypeError(f"Task {task} is not an evaluation task (its source is "
                    f"a {type(source).__name__}).")
  return source


def sample_dir() -> str:
  """The shipped sample mirror (gin: `EVAL_DATA_DIR = @benchmark.sample_dir()`)."""
  return SAMPLE_DIR

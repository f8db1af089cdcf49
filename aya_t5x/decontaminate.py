r"""Text overlap between a training mixture and an evaluation suite.

    python -m aya_t5x.decontaminate --mixture=aya_translation_heavy_sample \
        --suite=all --output_dir=DIR [--n=13] [--eval_data_dir=MIRROR] \
        [--max_rows_per_task=N]

`aya_t5x.contamination` recognises evaluation rows by their split metadata;
this finds what metadata cannot: an evaluation example's text inside any
training row. As is common practice (GPT-3, FLAN), texts are normalised
(NFKC, case-folded, punctuation dropped; words of any script, one token per
character of scripts written without spaces, `eval_metrics.UnicodeTokenizer`)
and a training row overlaps when it shares an n-gram of 13 tokens with an
evaluation prompt or reference. An evaluation text shorter than n tokens
(but at least `MIN_TOKENS`) counts whole.

Writes `<output_dir>/contamination.json` (per task and language: rows read,
rows overlapping, and with which benchmarks) and `exclusions.txt`: one hash
per overlapping training row (of its cleaned inputs and targets). With
`AYA_EXCLUSION_LIST=<that file>`, every training task drops those rows and
counts them as `excluded_overlap` (`ExclusionFilter`, applied by
`sources.RowSource`).
"""

import argparse
import collections
import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import sys
from collections.abc import Iterable, Sequence

from absl import logging

from aya_t5x import eval_metrics
from aya_t5x import gin_utils

ENV_EXCLUSION_LIST = "AYA_EXCLUSION_LIST"
NGRAM = 13
MIN_TOKENS = 8
REASON = "excluded_overlap"


def tokens(text: str) -> list[str]:
  """Normalised tokens of any script (module docstring)."""
  return eval_metrics.UnicodeTokenizer().tokenize(text.casefold())


def _key(parts: Sequence[str]) -> bytes:
  return hashlib.blake2b("\x1f".join(parts).encode("utf-8"),
                         digest_size=8).digest()


def row_hash(inputs: str, targets: str) -> str:
  """The exclusion list's id of a cleaned training row."""
  return hashlib.blake2b(f"{inputs}\x1e{targets}".encode("utf-8"),
                         digest_size=12).hexdigest()


class EvalIndex:
  """n-grams of every evaluation text -> the (benchmark, language)s."""

  def __init__(self, n: int = NGRAM):
    self.n = n
    self.grams: dict[bytes, set[tuple[str, str]]] = collections.defaultdict(
        set)
    self.short_lengths: set[int] = set()
    # (benchmark, language)s whose evaluation data was not found: their
    # overlap is unknown, not zero, and the report says so.
    self.missing: list[tuple[str, str]] = []

  def add(self, text: str, where: tuple[str, str]) -> None:
    words = tokens(text)
    if len(words) < MIN_TOKENS:
      return
    size = min(self.n, len(words))
    if size < self.n:
      self.short_lengths.add(size)
    for i in range(len(words) - size + 1):
      self.grams[_key(words[i:i + size])].add(where)

  def overlaps(self, text: str) -> set[tuple[str, str]]:
    words, found = tokens(text), set()
    for size in {self.n} | self.short_lengths:
      for i in range(len(words) - size + 1):
        found |= self.grams.get(_key(words[i:i + size]), set())
    return found


def index_suite(suite: str, n: int = NGRAM) -> EvalIndex:
  """Prompts and references of every task of the suite (`all` or names)."""
  import aya_t5x.tasks.eval  # pylint: disable=g-import-not-at-top,unused-import
  from aya_t5x.tasks.eval import benchmark  # pylint: disable=g-import-not-at-top
  index = EvalIndex(n)
  names = (benchmark.names() if suite == "all" else
           [s.strip() for s in suite.split(",") if s.strip()])
  for name in names:
    for language, task in benchmark.get(name).tasks.items():
      try:
        examples = benchmark.eval_source(task).examples()
      except FileNotFoundError:
        index.missing.append((name, language))
        continue
      for example in examples:
        for text in (example.inputs, *example.targets):
          index.add(text, (name, example.language or language))
  return index


@dataclasses.dataclass
class TaskOverlap:
  rows: int = 0
  overlapping: int = 0
  by_benchmark: collections.Counter = dataclasses.field(
      default_factory=collections.Counter)


def _training_rows(task_name: str, limit: int | None
                   ) -> Iterable[tuple[str, str, str]]:
  import seqio  # pylint: disable=g-import-not-at-top
  source = seqio.get_mixture_or_task(task_name).source
  # A source keeps the pipeline it built, exclusion filter included: build
  # it afresh for the scan, and again afterwards for training.
  reset = getattr(source, "reset", lambda: None)
  reset()
  try:
    dataset = source.get_dataset("train", shuffle=False)
    if limit:
      dataset = dataset.take(limit)
    for row in dataset.as_numpy_iterator():
      yield (row["inputs"].decode(), row["targets"].decode(),
             row["language"].decode())
  finally:
    reset()


@contextlib.contextmanager
def _without_exclusion_list():
  """Rows an earlier exclusion list drops must be scanned too: the list this
  scan writes replaces that one."""
  path = os.environ.pop(ENV_EXCLUSION_LIST, None)
  try:
    yield
  finally:
    if path is not None:
      os.environ[ENV_EXCLUSION_LIST] = path


def scan(task_names: Sequence[str], index: EvalIndex,
         limit: int | None = None
         ) -> tuple[dict[tuple[str, str], TaskOverlap], list[str]]:
  """Overlap per (task, language), and the hashes of overlapping rows."""
  with _without_exclusion_list():
    return _scan(task_names, index, limit)


def _scan(task_names: Sequence[str], index: EvalIndex, limit: int | None
          ) -> tuple[dict[tuple[str, str], TaskOverlap], list[str]]:
  found = collections.defaultdict(TaskOverlap)
  excluded = []
  for task in task_names:
    for inputs, targets, language in _training_rows(task, limit):
      entry = found[(task, language)]
      entry.rows += 1
      hits = index.overlaps(inputs) | index.overlaps(targets)
      if hits:
        entry.overlapping += 1
        entry.by_benchmark.update(sorted({b for b, _ in hits}))
        excluded.append(row_hash(inputs, targets))
  return dict(found), excluded


@dataclasses.dataclass(frozen=True)
class ExclusionFilter:
  """Drops training rows listed by the CLI (`AYA_EXCLUSION_LIST`)."""

  hashes: frozenset[str]
  stage: str = "post"  # Hashes are of the cleaned texts.

  def check(self, row) -> tuple[str, str] | None:
    if row_hash(row["inputs"], row["targets"]) in self.hashes:
      return REASON, "inputs+targets"
    return None


@functools.lru_cache(maxsize=4)
def _read_list(path: str) -> frozenset[str]:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  with tf.io.gfile.GFile(path, "r") as f:
    return frozenset(line.strip() for line in f if line.strip())


def exclusion_filter() -> ExclusionFilter | None:
  """The filter of `$AYA_EXCLUSION_LIST`, if set."""
  path = os.environ.get(ENV_EXCLUSION_LIST)
  if not path:
    return None
  if not os.path.exists(path) and "://" not in path:
    raise FileNotFoundError(f"{ENV_EXCLUSION_LIST}={path}: no such file "
                            "(python -m aya_t5x.decontaminate writes it).")
  return ExclusionFilter(_read_list(path))


# --- CLI ---------------------------------------------------------------------


@dataclasses.dataclass
class Config:
  mixture: str
  suite: str
  output_dir: str
  n: int = NGRAM
  eval_data_dir: str | None = None
  max_rows_per_task: int | None = None


def report(found: dict[tuple[str, str], TaskOverlap]) -> dict:
  tasks = collections.defaultdict(dict)
  for (task, language), entry in sorted(found.items()):
    tasks[task][language] = {"rows": entry.rows,
                             "overlapping": entry.overlapping,
                             "by_benchmark": dict(entry.by_benchmark)}
  return {"rows": sum(e.rows for e in found.values()),
          "overlapping": sum(e.overlapping for e in found.values()),
          "tasks": dict(tasks)}


def run(config: Config) -> dict:
  from aya_t5x import download  # pylint: disable=g-import-not-at-top
  from aya_t5x import sources  # pylint: disable=g-import-not-at-top
  with sources.data_dir(config.eval_data_dir):
    index = index_suite(config.suite, config.n)
  import aya_t5x.mixtures  # pylint: disable=g-import-not-at-top,unused-import
  tasks = download._task_names(config.mixture)  # pylint: disable=protected-access
  found, excluded = scan(tasks, index, config.max_rows_per_task)
  result = report(found)
  result["not_indexed"] = _not_indexed(index)
  os.makedirs(config.output_dir, exist_ok=True)
  with open(os.path.join(config.output_dir, "contamination.json"), "w",
            encoding="utf-8") as f:
    json.dump(result, f, indent=1, sort_keys=True)
  with open(os.path.join(config.output_dir, "exclusions.txt"), "w",
            encoding="utf-8") as f:
    f.writelines(h + "\n" for h in sorted(set(excluded)))
  for task, by_language in result["tasks"].items():
    for language, entry in by_language.items():
      if entry["overlapping"]:
        print(f"{task} {language}: {entry['overlapping']} of "
              f"{entry['rows']} rows overlap {entry['by_benchmark']}")
  for benchmark, languages in result["not_indexed"].items():
    print(f"{benchmark}: {len(languages)} language(s) not checked, no "
          f"evaluation data found ({', '.join(languages[:5])}"
          f"{', ...' if len(languages) > 5 else ''}); see contamination.json")
  print(f"{config.mixture} vs {config.suite}: {result['overlapping']} of "
        f"{result['rows']} training rows share a {config.n}-gram with the "
        f"suite; wrote {config.output_dir}/contamination.json and "
        "exclusions.txt")
  logging.info("Apply with %s=%s/exclusions.txt", ENV_EXCLUSION_LIST,
               config.output_dir)
  return result


def _not_indexed(index: EvalIndex) -> dict[str, list[str]]:
  """benchmark -> languages whose evaluation data was not found."""
  out = collections.defaultdict(list)
  for benchmark, language in index.missing:
    out[benchmark].append(language)
  return {b: sorted(languages) for b, languages in sorted(out.items())}


def parse_args(argv: Sequence[str]) -> Config:
  parser = argparse.ArgumentParser(
      prog="python -m aya_t5x.decontaminate", allow_abbrev=False,
      description="n-gram overlap of a mixture with an evaluation suite.")
  parser.add_argument("--mixture", required=True)
  parser.add_argument("--suite", default="all")
  parser.add_argument("--output_dir", required=True)
  parser.add_argument("--n", type=int, default=NGRAM)
  parser.add_argument("--eval_data_dir")
  parser.add_argument("--max_rows_per_task", type=int)
  return Config(**vars(parser.parse_args(argv)))


def main(argv: Sequence[str] | None = None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  return gin_utils.exit_status(lambda: run(parse_args(argv)))


if __name__ == "__main__":
  sys.exit(main())

"""A `seqio.DataSource` of evaluation examples read from Hub files.

Evaluation data is small (at most a few thousand rows per language) and its
rows must become structured examples (options, labels, several answers,
few-shot prefixes), so rows are read in Python with the training sources'
readers (`aya_t5x.sources`: the pinned `HubFiles`, the `AYA_DATA_DIR` mirror,
parquet and JSONL readers that never run loading scripts) and turned into
`Example`s by a per-benchmark function. A row that cannot become an example
is skipped, logged with its file and row, and counted in `skipped`; nothing
is dropped silently.

`get_dataset` serves the same examples as tf.data for SeqIO users (fields
`inputs`, `targets` (the reference), `answers`, `options`, `label`,
`language`, `template`, `id`); the evaluation runner calls `examples()`.
"""

import collections
import dataclasses
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from absl import logging
import numpy as np
import seqio
import tensorflow as tf

from aya_t5x import sources
from aya_t5x.tasks.eval import example as example_lib

Row = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Context:
  """What a row -> examples function may read besides its row."""

  language: str  # The task's language (rows may carry their own).
  shots: tuple[Row, ...] = ()  # Rows of `shots_split` (few-shot examples).
  aligned: Mapping[str, Row] = dataclasses.field(default_factory=dict)


BuildFn = Callable[[Row, Context], Iterable[example_lib.Example]]


@dataclasses.dataclass(frozen=True)
class EvalSourceSpec:
  """Where a task's rows are and how each becomes examples."""

  files: sources.FileSet  # Usually `sources.HubFiles` at a pinned revision.
  split: str  # The split read (the Hub's name: validation, eval, test...).
  columns: Mapping[str, str]  # Row field -> column of the files.
  build: BuildFn
  language: str  # The task's language; "*" when rows carry their own.
  # Rows to keep (e.g. one language of a multilingual file); None = all.
  keep: Callable[[Row], bool] | None = None
  # Few-shot rows: a split of `files` read whole into `Context.shots`.
  shots_split: str | None = None
  # Rows of another file set with the same ids (FLORES: the English side),
  # read into `Context.aligned` by `aligned_key`.
  aligned: sources.FileSet | None = None
  aligned_columns: Mapping[str, str] | None = None
  aligned_key: str = "id"


def read_rows(files: sources.FileSet, split: str, columns: Mapping[str, str]
              ) -> Iterator[tuple[str, Row | example_lib.BadRow]]:
  """(file:row, row) for every row of a split, files in name order.

  A record that does not decode (a JSONL line that is not an object) comes
  as a `BadRow` for the caller to count.
  """
  for f in files.resolve(split):
    fmt = sources.file_format(f.path)
    for index, row in sources.iter_rows(f.path, fmt, columns):
      if isinstance(row, sources.BadRecord):
        row = example_lib.BadRow(f"{row.reason}: {row.detail}", row.field)
      yield f"{f.key}:{index}", row


class EvalSource(seqio.DataSource):
  """Examples of one evaluation task (module docstring)."""

  def __init__(self, task: str, spec: EvalSourceSpec):
    self.task = task
    self.spec = spec
    # (reason, field) -> rows skipped, over every pass.
    self.skipped: collections.Counter = collections.Counter()
    self._lock = threading.Lock()
    super().__init__(splits=(spec.split,))

  def __repr__(self) -> str:
    return f"EvalSource(task={self.task!r})"

  @property
  def supports_arbitrary_sharding(self) -> bool:
    return False

  def list_shards(self, split: str) -> Sequence[str]:
    return [f.path for f in self.spec.files.resolve(split)]

  def _context(self) -> Context:
    spec = self.spec
    shots = ()
    if spec.shots_split:
      shots = tuple(self._good_rows(spec.files, spec.shots_split,
                                    spec.columns))
    aligned = {}
    if spec.aligned is not None:
      for row in self._good_rows(spec.aligned, spec.split,
                                 spec.aligned_columns or spec.columns):
        aligned[str(example_lib.text(row.get(spec.aligned_key),
                                     spec.aligned_key, numeric=True))] = row
    return Context(spec.language, shots, aligned)

  def _good_rows(self, files, split, columns) -> Iterator[Row]:
    """Rows of a helper split (shots, aligned side); bad ones counted."""
    for where, row in read_rows(files, split, columns):
      if isinstance(row, example_lib.BadRow):
        self._skip(where, row)
      else:
        yield row

  def _skip(self, where: str, error: example_lib.BadRow) -> None:
    # Counted, and summed up under the report (its "skipped rows" note):
    # the row itself is for --verbose.
    logging.info("%s: skipping row %s: %s", self.task, where, error)
    with self._lock:
      self.skipped[(error.reason, error.field)] += 1

  def examples(self, split: str | None = None,
               limit: int | None = None) -> list[example_lib.Example]:
    """The task's examples (the first `limit` rows' worth), in file order.

    Raises:
      ValueError: `split` is not the task's split.
    """
    spec = self.spec
    if split not in (None, spec.split):
      raise ValueError(f"{self.task} reads split {spec.split!r}, not "
                       f"{split!r}.")
    context, out, rows = self._context(), [], 0
    for where, row in read_rows(spec.files, spec.split, spec.columns):
      if isinstance(row, example_lib.BadRow):
        self._skip(where, row)
        continue
      if spec.keep is not None and not spec.keep(row):
        continue
      if limit is not None and rows >= limit:
        break
      rows += 1
      try:
        out.extend(spec.build(row, context))
      except example_lib.BadRow as e:
        self._skip(where, e)
    return out

  def get_dataset(self, split: str = "validation", shuffle: bool = False,
                  seed: int | None = None,
                  shard_info: seqio.ShardInfo | None = None, *,
                  sequence_length=None, use_cached: bool = False,
                  num_epochs: int | None = 1) -> tf.data.Dataset:
    del shuffle, seed, sequence_length, use_cached, num_epochs
    examples = self.examples(split)
    if shard_info:
      examples = examples[shard_info.index::shard_info.num_shards]
    def strings(values):
      return np.array([v.encode("utf-8") for v in values], dtype=object)
    def column(fn):
      return [fn(e) for e in examples]
    return tf.data.Dataset.from_tensor_slices({
        "inputs": strings(column(lambda e: e.inputs)),
        "targets": strings(column(lambda e: e.targets[0])),
        "answers": tf.ragged.constant(
            column(lambda e: [a.encode() for a in e.targets]),
            dtype=tf.string),
        "options": tf.ragged.constant(
            column(lambda e: [o.encode() for o in e.options]),
            dtype=tf.string, ragged_rank=1),
        "label": np.array(column(lambda e: e.label), np.int32),
        "language": strings(column(lambda e: e.language)),
        "template": strings(column(lambda e: e.template)),
        "id": strings(column(lambda e: e.id)),
    })

"""Counts of the tokens cut to fit TASK_FEATURE_LENGTHS, per task and feature.

SeqIO cuts an example's token sequence to its feature length in two places:
the `append_eos_after_trim` preprocessor (the Aya tasks' choice: cut to
length - 1, then EOS) and the Task's final trim (every task, after its
preprocessors). Neither says how much it cut. While `counting()` is active,
SeqIO builds its datasets with counting twins of both: the same tf.data op
(one parallel map each, same element structure) whose function also adds to
a per-(task, split) counter. No tf.data op is added: a checkpointed tf.data
iterator state records the pipeline's op chain, so an extra op would make
the iterator state of every checkpoint written before counting existed fail
to restore (measured: an added map fails with "does not fit this dataset";
a map whose function changed restores bit for bit).

What is counted, per task, split and feature: examples read, examples cut,
tokens cut (an example's full length counts its EOS: a 9-token target with
EOS cut to 8 lost 1 token, whichever of the two cuts it). The counter is a
tf.Variable updated inside the tf.data map (one atomic add per example and
stage), read on the host only when a report asks: no host sync per step.

Counts are of reads by this process, like the drop table's
(`drop_summary`): examples read ahead into shuffle buffers and prefetches
are counted when read, and each epoch counts again. On several hosts each
counts its own data shard.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import seqio
import tensorflow as tf

# The full table, beside the checkpoints (MODEL_DIR/...).
TABLE_FILE = "truncated_examples.tsv"


@dataclasses.dataclass(frozen=True)
class TruncationRow:
  """What trimming did to one feature of one task's split."""
  task: str
  split: str
  feature: str
  length: int  # Its TASK_FEATURE_LENGTHS entry.
  examples_read: int
  examples_cut: int
  tokens_cut: int


class _Counter:
  """One (task, split)'s counts: [read, (cut, tokens) per feature]."""

  def __init__(self, features: Sequence[str], lengths: Mapping[str, Any]):
    self.features = tuple(features)
    self.lengths = {f: lengths[f] for f in self.features}
    self.variable = tf.Variable(tf.zeros([1 + 2 * len(self.features)],
                                         tf.int64), trainable=False)

  def add(self, cuts: Mapping[str, tf.Tensor], read: int) -> None:
    """In a tf.data function: one example, `cuts` tokens cut per feature."""
    parts = [tf.constant([read], tf.int64)]
    for feature in self.features:
      cut = tf.cast(cuts.get(feature, 0), tf.int64)
      parts.append(tf.stack([tf.cast(cut > 0, tf.int64), cut]))
    self.variable.assign_add(tf.concat(parts, 0))


class TruncationTally:
  """The counters of every (task, split) built while counting, on the host."""

  def __init__(self):
    self._lock = threading.Lock()
    self._counters: dict[tuple[str, str], _Counter] = {}

  def counter(self, task: str, split: str,
              lengths: Mapping[str, Any]) -> _Counter:
    """The (task, split) counter, created on first use (eagerly)."""
    features = sorted(f for f, n in (lengths or {}).items() if n is not None)
    with self._lock:
      found = self._counters.get((task, split))
      if found is None or found.lengths != {f: lengths[f] for f in features}:
        found = self._counters[(task, split)] = _Counter(features, lengths)
      return found

  def rows(self) -> list[TruncationRow]:
    """Every (task, split, feature) counted, sorted; reads the variables."""
    with self._lock:
      counters = sorted(self._counters.items())
    out = []
    for (task, split), counter in counters:
      values = [int(v) for v in counter.variable.numpy()]
      for i, feature in enumerate(counter.features):
        out.append(TruncationRow(task, split, feature,
                                 _length_label(counter.lengths[feature]),
                                 values[0], values[1 + 2 * i],
                                 values[2 + 2 * i]))
    return out

  def reset(self) -> None:
    """Zeroes every count (pipelines still running keep their counters)."""
    with self._lock:
      for counter in self._counters.values():
        counter.variable.assign(tf.zeros_like(counter.variable))


def _length_label(length: Any) -> int:
  return length if isinstance(length, int) else int(tf.reduce_prod(length))


# The process-wide tally the training data path counts into.
TALLY = TruncationTally()


def _trim(value: tf.Tensor, length: Any) -> tuple[tf.Tensor, tf.Tensor]:
  """SeqIO's trim (a prefix on each axis) and how many tokens it cut."""
  lengths = [length] if isinstance(length, int) else list(length)
  trimmed = value[tuple(slice(0, n) for n in lengths)]
  return trimmed, tf.size(value) - tf.size(trimmed)


def _counted_trim(task: seqio.Task, counter: _Counter, dataset: tf.data.Dataset,
                  sequence_length: Mapping[str, Any] | None, read: int
                  ) -> tf.data.Dataset:
  """`seqio.utils.trim_dataset` (same op, same output) that also counts;
  `read` 1 counts each example as read here (0: an earlier stage did)."""
  features = set(counter.features) & set(task.output_features)

  def trim(example):
    out, cuts = {}, {}
    for key, value in example.items():
      if key in features:
        value, cuts[key] = _trim(value, sequence_length[key])
      out[key] = value
    counter.add(cuts, read=read)
    return out

  return dataset.map(trim, num_parallel_calls=tf.data.AUTOTUNE)


def _counted_append_eos_after_trim(counter: _Counter):
  """`seqio.preprocessors.append_eos_after_trim` that also counts its cuts
  and the examples read (with the cuts in one add: a report taken while the
  pipeline runs never shows more examples cut than read)."""

  def preprocessor(dataset: tf.data.Dataset, output_features,
                   sequence_length=None) -> tf.data.Dataset:
    def cut_then_eos(example):
      cuts = {}
      for key in counter.features:
        feature = output_features.get(key)
        if key in example and feature is not None and feature.add_eos:
          keep = sequence_length[key] - 1
          cuts[key] = tf.maximum(tf.shape(example[key])[-1] - keep, 0)
      counter.add(cuts, read=1)
      return seqio.preprocessors.append_eos_after_trim_impl(
          dict(example), output_features=output_features,
          sequence_length=sequence_length)

    return dataset.map(cut_then_eos, num_parallel_calls=tf.data.AUTOTUNE)

  return preprocessor


# seqio.Task is patched for the time of a dataset build, one build at a time.
_PATCH_LOCK = threading.RLock()
_SEQIO_HOOKS = ("_trim_output_features", "_preprocess_dataset")


def _check_seqio() -> None:
  """Fails loudly if SeqIO no longer has the methods this module wraps."""
  missing = [f"Task.{name}" for name in _SEQIO_HOOKS
             if not hasattr(seqio.Task, name)]
  if not hasattr(seqio.preprocessors, "append_eos_after_trim_impl"):
    missing.append("preprocessors.append_eos_after_trim_impl")
  if missing:
    raise RuntimeError(
        f"This SeqIO lacks seqio.{', seqio.'.join(missing)}: "
        "aya_t5x.truncation needs the SeqIO version in requirements/lock.txt.")


@contextlib.contextmanager
def counting(split: str, tally: TruncationTally = TALLY) -> Iterator[None]:
  """Datasets SeqIO builds inside this block count what trimming cuts.

  The tf.data functions are traced when the dataset is built, so the counting
  stays with the dataset after the block; nothing changes outside it.
  """
  _check_seqio()
  with _PATCH_LOCK:
    trim = seqio.Task._trim_output_features  # pylint: disable=protected-access
    preprocess = seqio.Task._preprocess_dataset  # pylint: disable=protected-access

    read_early = set()  # Tasks whose append_eos_after_trim counts reads.

    def counted_trim(task, dataset, sequence_length):
      if not sequence_length:
        return trim(task, dataset, sequence_length)
      return _counted_trim(task, tally.counter(task.name, split,
                                               sequence_length),
                           dataset, sequence_length,
                           read=int(task.name not in read_early))

    def counted_preprocess(task, dataset, preprocessors, sequence_length=None):
      eos_after_trim = seqio.preprocessors.append_eos_after_trim
      if sequence_length and eos_after_trim in preprocessors:
        counter = tally.counter(task.name, split, sequence_length)
        preprocessors = list(preprocessors)
        preprocessors[preprocessors.index(eos_after_trim)] = (
            _counted_append_eos_after_trim(counter))
        read_early.add(task.name)
      return preprocess(task, dataset, preprocessors, sequence_length)

    seqio.Task._trim_output_features = counted_trim  # pylint: disable=protected-access
    seqio.Task._preprocess_dataset = counted_preprocess  # pylint: disable=protected-access
    try:
      yield
    finally:
      seqio.Task._trim_output_features = trim  # pylint: disable=protected-access
      seqio.Task._preprocess_dataset = preprocess  # pylint: disable=protected-access

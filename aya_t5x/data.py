"""The training data path: SeqIO task -> model features -> host batches -> jax.Arrays.

One dataset per process reads only the rows that process feeds to its devices
(T5X's "per-host shard"); `make_global_batch` stitches the host batches into
one global array sharded over the `data` mesh axis. The iterator state is
checkpointed with tf.data, so a resumed run continues with exactly the next
batch instead of replaying the data from the start (an upstream T5X pain).
"""

import dataclasses
import difflib
import importlib
import json
import os
import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from absl import logging
import jax
from jax.experimental import multihost_utils
import numpy as np
import seqio
import tensorflow as tf

# Where the batch dimension lives in the mesh: T5X's `batch` -> `data` rule.
BATCH_PARTITION_SPEC = jax.sharding.PartitionSpec("data")

# How many registered names an unknown-task error suggests.
_NUM_CLOSE_NAMES = 5


@dataclasses.dataclass
class DatasetConfig:
  """What to read and how to batch it (T5X's `utils.DatasetConfig`)."""

  # Registered SeqIO Task or Mixture name, e.g. "aya_translation_heavy".
  mixture_or_task_name: str
  # Task feature lengths, e.g. {"inputs": 1024, "targets": 1024}.
  task_feature_lengths: Mapping[str, int]
  # Dataset split, e.g. "train" or "validation".
  split: str
  # GLOBAL batch size in sequences (rows), summed over all processes.
  batch_size: int
  # Whether to shuffle examples (and files) with `seed`.
  shuffle: bool
  # Shuffle seed; None draws one at start-up (then resumes are not exact).
  seed: int | None
  # Read the offline-cached (seqio_cache_tasks) version of the tasks.
  use_cached: bool = False
  # Pack several examples into one row (T5X finetuning default for Aya).
  pack: bool = False
  # Python module imported first so that it registers the tasks.
  module: str | None = None
  # Trim features longer than `task_feature_lengths` inside the task.
  trim_output_features: bool = True
  # Use seqio's custom C++ packing ops instead of the pure-TF packing.
  use_custom_packing_ops: bool = False
  # Drop the last partial batch (True for training: shapes stay static).
  drop_remainder: bool = True


def _close_names(name: str) -> list[str]:
  """Registered task and mixture names that look like `name`."""
  names = list(seqio.TaskRegistry.names()) + list(seqio.MixtureRegistry.names())
  close = difflib.get_close_matches(name, names, n=_NUM_CLOSE_NAMES, cutoff=0.3)
  return close or sorted(names)[:_NUM_CLOSE_NAMES]


def get_mixture_or_task(
    name: str, module: str | None = None
) -> seqio.Task | seqio.Mixture:
  """Looks a task or mixture up, with an error that says what exists.

  Args:
    name: the registered Task or Mixture name.
    module: optional module to import first, which registers the tasks.

  Returns:
    The registered Task or Mixture.

  Raises:
    ValueError: nothing is registered under `name`.
  """
  if module:
    importlib.import_module(module)
  registered = set(seqio.TaskRegistry.names()) | set(
      seqio.MixtureRegistry.names()
  )
  if name not in registered:
    raise ValueError(
        f"No SeqIO Task or Mixture named {name!r} (MIXTURE_OR_TASK_NAME). "
        f"Close registered names: {_close_names(name)}. Check the name, or "
        "set DatasetConfig.module to the module that registers it (e.g. "
        "'aya_t5x.tasks')."
    )
  return seqio.get_mixture_or_task(name)


def per_host_batch_size(global_batch_size: int, num_shards: int) -> int:
  """Rows each data shard reads; the global batch must split evenly."""
  if global_batch_size % num_shards:
    raise ValueError(
        f"BATCH_SIZE={global_batch_size} is not divisible by the number of "
        f"data shards ({num_shards}, the hosts holding distinct batch rows). "
        f"Use a multiple of {num_shards}."
    )
  return global_batch_size // num_shards


def _resolve_seed(cfg: DatasetConfig) -> int | None:
  """The shuffle seed, identical on every process.

  Without a configured seed T5X draws one from the clock on process 0 and
  broadcasts it, so that processes that read the same rows agree.
  """
  if cfg.seed is not None or not cfg.shuffle:
    return cfg.seed
  logging.warning(
      "DatasetConfig.seed is None: drawing a random shuffle seed. A resumed "
      "run will not see the same order; set a seed for exact resumption."
  )
  local_seed = np.int32(np.random.SeedSequence().entropy % (2**31 - 1))
  return int(multihost_utils.broadcast_one_to_all(local_seed))


def _with_resumable_options(ds: tf.data.Dataset) -> tf.data.Dataset:
  """Options that make the batches a function of the seed and checkpointable.

  `deterministic` pins the element order of parallel maps and interleaves.
  The WARN policy lets iterator checkpoints skip ops that TF calls stateful
  but that are pure here (the Python JSON parse of `register_jsonl_task`);
  the default, FAIL, refuses to save such a pipeline at all. TF logs the ops
  it skipped, so a truly stateful preprocessor is still visible.
  """
  options = tf.data.Options()
  options.deterministic = True
  options.experimental_external_state_policy = (
      tf.data.experimental.ExternalStatePolicy.WARN
  )
  return ds.with_options(options)


def get_dataset(
    cfg: DatasetConfig,
    shard_id: int,
    num_shards: int,
    feature_converter_cls: type[
        seqio.FeatureConverter
    ] = seqio.EncDecFeatureConverter,
    num_epochs: int | None = None,
) -> tf.data.Dataset:
  """Host-local batches of model features for data shard `shard_id`.

  Sharding happens before the feature converter, so each shard packs its own
  examples, as in T5X.

  Args:
    cfg: what to read.
    shard_id: this process's data shard (see `get_global_shard_info`).
    num_shards: the number of distinct data shards.
    feature_converter_cls: turns task features into model features.
    num_epochs: passes over the data; None repeats forever (training).

  Returns:
    A dataset of dicts of [batch_size // num_shards, length] tensors.

  Raises:
    ValueError: unknown task name, or a batch size that does not split.
  """
  host_batch = per_host_batch_size(cfg.batch_size, num_shards)
  mixture_or_task = get_mixture_or_task(cfg.mixture_or_task_name, cfg.module)
  converter = feature_converter_cls(
      pack=cfg.pack, use_custom_packing_ops=cfg.use_custom_packing_ops
  )
  ds = seqio.get_dataset(
      mixture_or_task,
      task_feature_lengths=dict(cfg.task_feature_lengths),
      feature_converter=converter,
      dataset_split=cfg.split,
      use_cached=cfg.use_cached,
      shuffle=cfg.shuffle,
      num_epochs=num_epochs,
      shard_info=seqio.ShardInfo(index=shard_id, num_shards=num_shards),
      seed=_resolve_seed(cfg),
      trim_output_features=cfg.trim_output_features,
  )
  ds = ds.batch(host_batch, drop_remainder=cfg.drop_remainder)
  return _with_resumable_options(ds.prefetch(tf.data.AUTOTUNE))


def _to_numpy(batch: Mapping[str, tf.Tensor]) -> dict[str, np.ndarray]:
  return {k: v.numpy() for k, v in batch.items()}


class DataIterator(Iterator[dict[str, np.ndarray]]):
  """Iterates host batches as numpy, with checkpointable position.

  The tf.data iterator state (shuffle buffers, file offsets, epoch counters)
  is saved as is, so a restored iterator yields exactly the batch that would
  have come next. Nothing is prefetched on the Python side: a batch counts as
  consumed once `__next__` returns it.
  """

  def __init__(self, dataset: tf.data.Dataset):
    self._iterator = iter(dataset)
    self._batches_consumed = tf.Variable(0, dtype=tf.int64, trainable=False)
    self._checkpoint = tf.train.Checkpoint(
        iterator=self._iterator, batches_consumed=self._batches_consumed
    )

  def __iter__(self) -> "DataIterator":
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    batch = next(self._iterator)
    self._batches_consumed.assign_add(1)
    return _to_numpy(batch)

  @property
  def batches_consumed(self) -> int:
    """Batches returned since the start of the run, across restores."""
    return int(self._batches_consumed.numpy())

  def save_state(self, directory: str) -> None:
    """Writes this process's iterator state under `directory`."""
    tf.io.gfile.makedirs(directory)
    self._checkpoint.write(_state_prefix(directory))

  def restore_state(self, directory: str) -> None:
    """Continues from the state `save_state` wrote under `directory`.

    Raises:
      FileNotFoundError: no state for this process (e.g. the number of
        processes changed, which also changes every data shard).
    """
    prefix = _state_prefix(directory)
    if not tf.io.gfile.exists(prefix + ".index"):
      raise FileNotFoundError(
          f"No data iterator state for process {jax.process_index()} of "
          f"{jax.process_count()} at {prefix}.index. Resuming needs the same "
          "number of processes as the run that saved it; found: "
          f"{_listdir(directory)}."
      )
    self._checkpoint.read(prefix).assert_consumed()


def _state_prefix(directory: str) -> str:
  """One checkpoint per process: each process reads a different shard."""
  name = f"iterator-{jax.process_index():05d}-of-{jax.process_count():05d}"
  return os.path.join(directory, name)


def _listdir(directory: str) -> list[str]:
  if not tf.io.gfile.isdir(directory):
    return []
  return sorted(tf.io.gfile.listdir(directory))


def _batch_axis_size(
    mesh: jax.sharding.Mesh, batch_partition_spec: jax.sharding.PartitionSpec
) -> int:
  """How many ways the batch dimension is split over the mesh."""
  axes = batch_partition_spec[0] if len(batch_partition_spec) else None
  if axes is None:
    return 1
  axes = (axes,) if isinstance(axes, str) else tuple(axes)
  return int(np.prod([mesh.shape[a] for a in axes]))


def get_global_shard_info(
    mesh: jax.sharding.Mesh,
    batch_partition_spec: jax.sharding.PartitionSpec = BATCH_PARTITION_SPEC,
) -> tuple[int, int]:
  """The data shard this process reads: (shard_id, num_shards).

  Processes whose devices hold the same batch rows (a `model` axis spanning
  hosts) get the same shard and so read the same data, as in T5X.

  Raises:
    ValueError: this process's batch rows are not one contiguous block.
  """
  num_rows = _batch_axis_size(mesh, batch_partition_spec)
  sharding = jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec(batch_partition_spec[0])
  )
  rows = set()
  for index in sharding.addressable_devices_indices_map((num_rows,)).values():
    rows.update(range(*index[0].indices(num_rows)))
  first, count = min(rows), len(rows)
  if rows != set(range(first, first + count)) or num_rows % count:
    raise ValueError(
        f"Process {jax.process_index()} holds batch rows {sorted(rows)} of "
        f"{num_rows}: not one contiguous block. Lay the mesh's data axis out "
        "so that each process's devices are adjacent along it."
    )
  return first // count, num_rows // count


def make_global_batch(
    host_batch: Mapping[str, np.ndarray],
    mesh: jax.sharding.Mesh,
    batch_partition_spec: jax.sharding.PartitionSpec = BATCH_PARTITION_SPEC,
) -> dict[str, jax.Array]:
  """Assembles the processes' host batches into global sharded jax.Arrays.

  Each process passes the rows of its data shard (`get_global_shard_info`);
  the global batch has num_shards times as many rows. Devices that share a
  batch slice (other mesh axes) get replicas of it.
  """
  sharding = jax.sharding.NamedSharding(mesh, batch_partition_spec)
  return {
      k: jax.make_array_from_process_local_data(sharding, v)
      for k, v in host_batch.items()
  }


@seqio.map_over_dataset
def parse_json_line(line: tf.Tensor) -> dict[str, tf.Tensor]:
  """A jsonl line -> {"inputs", "targets"} strings.

  TF has no JSON op, so the parse runs in Python; it is pure, so iterator
  checkpoints (which cannot capture Python state) stay exact.
  """

  def parse(raw: bytes) -> tuple[str, str]:
    record = json.loads(raw.numpy().decode("utf-8"))
    return record["inputs"], record["targets"]

  inputs, targets = tf.py_function(parse, [line], [tf.string, tf.string])
  inputs.set_shape([])
  targets.set_shape([])
  return {"inputs": inputs, "targets": targets}


def register_jsonl_task(
    name: str,
    paths_by_split: Mapping[str, str | Sequence[str]],
    vocabulary: seqio.Vocabulary,
    *,
    eos_after_trim: bool = False,
    shuffle_buffer_size: int | None = seqio.SHUFFLE_BUFFER_SIZE,
    metric_fns: Sequence[Any] = (),
) -> seqio.Task:
  """Registers a Task over jsonl files of {"inputs": str, "targets": str}.

  This is the schema of every Aya source and of the T5X golden fixture.

  Args:
    name: the Task name; it must not be registered yet.
    paths_by_split: split -> file pattern(s), read in order when not shuffled.
    vocabulary: the vocabulary for both features.
    eos_after_trim: keep EOS on over-long examples (seqio
      `append_eos_after_trim`); False appends it before trimming, so long
      examples lose it (T5X's `append_eos`, what the golden run used).
    shuffle_buffer_size: the Task's example shuffle buffer.
    metric_fns: evaluation metrics.

  Returns:
    The registered Task.
  """
  append = (
      seqio.preprocessors.append_eos_after_trim
      if eos_after_trim
      else seqio.preprocessors.append_eos
  )
  feature = seqio.Feature(vocabulary=vocabulary, add_eos=True)
  return seqio.TaskRegistry.add(
      name,
      source=seqio.TextLineDataSource(dict(paths_by_split)),
      preprocessors=[parse_json_line, seqio.preprocessors.tokenize, append],
      output_features={"inputs": feature, "targets": feature},
      metric_fns=list(metric_fns),
      shuffle_buffer_size=shuffle_buffer_size,
  )


def batch_fingerprint(host_batch: Mapping[str, np.ndarray]) -> int:
  """A CRC32 of this host's batch, logged per step to prove the data order.

  Two runs (say, one resumed after preemption) fed the same examples in the
  same order log the same fingerprints.
  """
  crc = 0
  for key in sorted(host_batch):
    crc = zlib.crc32(np.ascontiguousarray(host_batch[key]).tobytes(), crc)
  return crc

"""The training data path: SeqIO -> model features -> host batches -> arrays.

One dataset per process reads only the rows that process feeds to its devices
(T5X's "per-host shard"); `make_global_batch` stitches the host batches into
one global array sharded over the `data` mesh axis. The iterator state is
checkpointed with tf.data, so a resumed run continues with exactly the next
batch instead of replaying the data from the start (an upstream T5X pain).
"""

import contextlib
import dataclasses
import difflib
import importlib
import json
import os
import re
import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from absl import logging
import jax
from jax.experimental import multihost_utils
import numpy as np
import seqio
import tensorflow as tf

from aya_t5x import truncation
from aya_t5x import validation

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

  def __post_init__(self):
    validation.integer("BATCH_SIZE", self.batch_size, 1)
    self.task_feature_lengths = validation.feature_lengths(
        "TASK_FEATURE_LENGTHS", self.task_feature_lengths)
    if self.seed is not None:
      validation.integer("RANDOM_SEED", self.seed)
    for name, value in (("PACKING", self.pack),
                        ("SHUFFLE_TRAIN_EXAMPLES", self.shuffle),
                        ("USE_CACHED_TASKS", self.use_cached)):
      validation.boolean(name, value)


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
    _import_task_module(module)
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


def _import_task_module(module: str) -> None:
  """Imports MIXTURE_OR_TASK_MODULE; a name that is not there is one line."""
  try:
    importlib.import_module(module)
  except ModuleNotFoundError as e:
    if e.name is None or not module.startswith(e.name):
      raise  # The module exists but lacks one of its own dependencies.
    raise ValueError(f"MIXTURE_OR_TASK_MODULE={module!r}: no such module "
                     f"({e.name!r} not found). Use the module that registers "
                     "the tasks, e.g. 'aya_t5x.mixtures'.") from None


def check_source_files(cfg: DatasetConfig) -> None:
  """Fails naming the task and file when a split's input file is empty.

  An empty file yields no examples: a whole task would silently vanish from
  a mixture, or training would wait forever on a task with no rows.
  """
  found = get_mixture_or_task(cfg.mixture_or_task_name, cfg.module)
  tasks = getattr(found, "tasks", None) or [found]
  for task in tasks:
    source = task.source
    if not isinstance(source, seqio.FileDataSource):
      continue
    if cfg.split not in source.splits:
      continue
    for path in source.list_shards(cfg.split):
      if tf.io.gfile.exists(path) and tf.io.gfile.stat(path).length == 0:
        raise ValueError(f"Task {task.name!r} ({cfg.split} split): input "
                         f"file {path} is empty.")


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

  Without a configured seed, as in T5X, process 0 draws one and broadcasts
  it, so that processes that read the same rows agree.
  """
  if cfg.seed is not None or not cfg.shuffle:
    return cfg.seed
  logging.warning(
      "DatasetConfig.seed is None: drawing a random shuffle seed. A resumed "
      "run will not see the same order; set a seed for exact resumption."
  )
  local_seed = np.int32(np.random.SeedSequence().entropy % (2**31 - 1))
  return int(multihost_utils.broadcast_one_to_all(local_seed))


def _resumable(ds: tf.data.Dataset) -> tf.data.Dataset:
  """Options that make the batch sequence a function of the seed, and savable.

  `deterministic` pins the element order of parallel maps and interleaves.
  The WARN policy lets iterator checkpoints pass over ops TF calls stateful
  but that are pure in our sources (`tf.numpy_function` decoders); TF's
  default, FAIL, would refuse to save such a pipeline at all. TF logs each op
  it passed over, so a truly stateful preprocessor stays visible.
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
    truncations: truncation.TruncationTally | None = truncation.TALLY,
) -> tf.data.Dataset:
  """Host-local batches of model features for data shard `shard_id`.

  Sharding happens before the feature converter, so each shard packs its own
  examples, as in T5X. What trimming to the feature lengths cuts is counted
  in `truncations` (see `aya_t5x.truncation`: the same tf.data ops, so
  iterator states saved before counting existed still restore).

  Args:
    cfg: what to read.
    shard_id: this process's data shard (see `get_global_shard_info`).
    num_shards: the number of distinct data shards.
    feature_converter_cls: turns task features into model features.
    num_epochs: passes over the data; None repeats forever (training).
    truncations: where to count the tokens trimming cuts; None builds the
      pipeline without counting.

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
  counting = (contextlib.nullcontext() if truncations is None
              else truncation.counting(cfg.split, truncations))
  with counting:
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
  return _resumable(ds.prefetch(tf.data.AUTOTUNE))


def _to_numpy(batch: Mapping[str, tf.Tensor]) -> dict[str, np.ndarray]:
  return {k: v.numpy() for k, v in batch.items()}


class DataIterator(Iterator[dict[str, np.ndarray]]):
  """Iterates host batches as numpy, with checkpointable position.

  The tf.data iterator state (shuffle buffers, file offsets, epoch counters)
  is saved as is, so a restored iterator yields exactly the batch that would
  have come next. Nothing is prefetched on the Python side: a batch counts as
  consumed once `__next__` returns it.

  tf.data cannot tell every change of the dataset definition from the saved
  state (a new seed restores silently), so the iterator can carry a
  `description` of its dataset, saved beside the state and checked on
  restore.
  """

  def __init__(
      self,
      dataset: tf.data.Dataset,
      description: Mapping[str, Any] | None = None,
  ):
    self._iterator = iter(dataset)
    self._batches_consumed = tf.Variable(0, dtype=tf.int64, trainable=False)
    self._checkpoint = tf.train.Checkpoint(
        iterator=self._iterator, batches_consumed=self._batches_consumed
    )
    self._description = _json_round_trip(description)

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
    prefix = _state_prefix(directory)
    self._checkpoint.write(prefix)
    if self._description is not None:
      with tf.io.gfile.GFile(prefix + ".json", "w") as f:
        json.dump(self._description, f, indent=2, sort_keys=True)

  def restore_state(self, directory: str) -> None:
    """Continues from the state `save_state` wrote under `directory`.

    Raises:
      FileNotFoundError: no state for this process (e.g. the number of
        processes changed, which also changes every data shard).
      ValueError: the state was saved from a different dataset.
    """
    prefix = _state_prefix(directory)
    if not tf.io.gfile.exists(prefix + ".index"):
      raise FileNotFoundError(
          f"No data iterator state for process {jax.process_index()} of "
          f"{jax.process_count()} at {prefix}.index. Resuming needs the same "
          "number of processes as the run that saved it; found: "
          f"{_listdir(directory)}."
      )
    self._check_description(prefix + ".json")
    try:
      self._checkpoint.read(prefix).assert_consumed()
    except _UNREADABLE as e:
      raise OSError(f"{prefix}: unreadable data iterator state "
                    f"({type(e).__name__}: {_first_line(e)})") from None
    except (tf.errors.OpError, AssertionError) as e:
      raise ValueError(
          f"The data iterator state at {prefix} does not fit this dataset: "
          "the task, its preprocessors, feature lengths, packing, batch size "
          f"and shards must match the run that saved it. TF says: {e}"
      ) from e

  def _check_description(self, path: str) -> None:
    """Fails, naming the fields, if the saved dataset differs from this one."""
    if self._description is None or not tf.io.gfile.exists(path):
      return
    try:
      with tf.io.gfile.GFile(path) as f:
        saved = dict(json.load(f))
    except (ValueError, TypeError) as e:
      raise OSError(f"{path}: unreadable ({e})") from None
    changed = sorted(
        k
        for k in saved.keys() | self._description.keys()
        if saved.get(k) != self._description.get(k)
    )
    if changed:
      details = ", ".join(
          f"{k}: saved {saved.get(k)!r}, now {self._description.get(k)!r}"
          for k in changed
      )
      raise ValueError(
          f"The data iterator state at {path} was saved for a different "
          f"dataset ({details}). Restore with the original data settings, "
          "or start the data from scratch in a new model directory."
      )


# TF's errors for a damaged file (truncated, emptied), as opposed to a state
# written for another dataset (TF says NotFound for that one).
_UNREADABLE = (tf.errors.DataLossError, tf.errors.OutOfRangeError)


def _first_line(error: Exception) -> str:
  return (str(error).strip().splitlines() or [""])[0][:200]


def _json_round_trip(description: Mapping[str, Any] | None):
  """What the description reads back as from JSON (tuples become lists)."""
  if description is None:
    return None
  return json.loads(json.dumps(description, sort_keys=True))


def describe_dataset(
    cfg: DatasetConfig, shard_id: int, num_shards: int
) -> dict[str, Any]:
  """What defines a host's batch sequence, for `DataIterator` checks."""
  return dataclasses.asdict(cfg) | {
      "shard_id": shard_id,
      "num_shards": num_shards,
  }


def get_data_iterator(
    cfg: DatasetConfig,
    shard_id: int,
    num_shards: int,
    feature_converter_cls: type[
        seqio.FeatureConverter
    ] = seqio.EncDecFeatureConverter,
    num_epochs: int | None = None,
) -> DataIterator:
  """`get_dataset` wrapped in a `DataIterator` that checks its restores."""
  dataset = get_dataset(
      cfg, shard_id, num_shards, feature_converter_cls, num_epochs
  )
  return DataIterator(dataset, describe_dataset(cfg, shard_id, num_shards))


def _state_prefix(directory: str) -> str:
  """One checkpoint per process: each process reads a different shard."""
  name = f"iterator-{jax.process_index():05d}-of-{jax.process_count():05d}"
  return os.path.join(directory, name)


def _listdir(directory: str) -> list[str]:
  if not tf.io.gfile.isdir(directory):
    return []
  return sorted(tf.io.gfile.listdir(directory))


def _batch_axes(
    batch_partition_spec: jax.sharding.PartitionSpec,
) -> tuple[str, ...]:
  """The mesh axes the batch dimension is split over (none: replicated)."""
  axes = batch_partition_spec[0] if len(batch_partition_spec) else None
  if axes is None:
    return ()
  return (axes,) if isinstance(axes, str) else tuple(axes)


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
  axes = _batch_axes(batch_partition_spec)
  num_rows = int(np.prod([mesh.shape[a] for a in axes]))
  sharding = jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec(axes or None)
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


# JSON's one-character escapes; each pattern matches one whole escape token.
_JSON_ESCAPES = (
    (r'^\\"$', '"'),
    (r"^\\\\$", r"\\"),
    (r"^\\/$", "/"),
    (r"^\\b$", "\b"),
    (r"^\\f$", "\f"),
    (r"^\\n$", "\n"),
    (r"^\\r$", "\r"),
    (r"^\\t$", "\t"),
)
_UNICODE_ESCAPE = r"\\u[0-9a-fA-F]{4}"
# Token separator: valid JSON text never holds a raw NUL byte.
_SEPARATOR = "\x00"


def _json_string_field(line: tf.Tensor, key: str) -> tf.Tensor:
  """The still-escaped value of the string field `key` of a flat JSON object.

  In valid JSON `"key"` followed by a colon only occurs as a key: a quote
  inside a value is always escaped.
  """
  pattern = r'^.*?"' + re.escape(key) + r'"\s*:\s*"((?:[^"\\]|\\.)*)".*$'
  found = tf.strings.regex_full_match(line, pattern)
  check = tf.debugging.Assert(
      found, ["jsonl line without a string field", key, line], summarize=1
  )
  with tf.control_dependencies([check]):
    return tf.strings.regex_replace(line, pattern, r"\1")


def _escape_tokens(raw: tf.Tensor) -> tf.Tensor:
  """Splits an escaped string into runs of plain text and single escapes."""
  marked = tf.strings.regex_replace(
      raw, rf"({_UNICODE_ESCAPE}|\\.)", rf"{_SEPARATOR}\1{_SEPARATOR}"
  )
  tokens = tf.strings.split(marked, _SEPARATOR)
  return tf.boolean_mask(tokens, tf.strings.length(tokens) > 0)


def _hex_code_points(tokens: tf.Tensor) -> tf.Tensor:
  r"""The UTF-16 code unit of each `\uXXXX` token."""
  digits = tf.strings.unicode_decode(
      tf.strings.substr(tokens, 2, 4), "UTF-8"
  ).to_tensor(shape=[None, 4])
  values = tf.where(
      digits >= ord("a"),
      digits - ord("a") + 10,
      tf.where(digits >= ord("A"), digits - ord("A") + 10, digits - ord("0")),
  )
  return tf.reduce_sum(values * tf.constant([4096, 256, 16, 1]), axis=1)


def _in_range(x: tf.Tensor, low: int, high: int) -> tf.Tensor:
  return (x >= low) & (x <= high)


def _decode_unicode_escapes(
    tokens: tf.Tensor, is_unicode: tf.Tensor
) -> tf.Tensor:
  r"""UTF-8 text of `\uXXXX` tokens, joining UTF-16 surrogate pairs."""
  units = tf.where(
      is_unicode, _hex_code_points(tf.where(is_unicode, tokens, r"\u0000")), -1
  )
  following = tf.concat([units[1:], [-1]], 0)
  preceding = tf.concat([[-1], units[:-1]], 0)
  high = _in_range(units, 0xD800, 0xDBFF) & _in_range(
      following, 0xDC00, 0xDFFF
  )
  low = _in_range(units, 0xDC00, 0xDFFF) & _in_range(
      preceding, 0xD800, 0xDBFF
  )
  code_points = tf.where(
      high, 0x10000 + (units - 0xD800) * 0x400 + (following - 0xDC00), units
  )
  text = tf.strings.unicode_encode(tf.maximum(code_points, 0)[:, None], "UTF-8")
  return tf.where(low, "", text)


def _json_unescape(raw: tf.Tensor) -> tf.Tensor:
  """Decodes a JSON string body (what lies between the quotes)."""
  tokens = _escape_tokens(raw)
  is_unicode = tf.strings.regex_full_match(tokens, _UNICODE_ESCAPE)
  unicode_text = _decode_unicode_escapes(tokens, is_unicode)
  for pattern, rewrite in _JSON_ESCAPES:
    tokens = tf.strings.regex_replace(tokens, pattern, rewrite)
  return tf.strings.reduce_join(tf.where(is_unicode, unicode_text, tokens))


def parse_json_fields(
    line: tf.Tensor, keys: Sequence[str] = ("inputs", "targets")
) -> dict[str, tf.Tensor]:
  """String fields of one jsonl line, in TF ops only.

  TF has no JSON op. A `tf.py_function` parse would hold the GIL against the
  training loop, make tf.data refuse to checkpoint the iterator (it counts as
  external state), and can hang the interpreter at exit; regexes avoid all
  three. Lines must be flat JSON objects; a missing key fails the pipeline.
  """
  return {key: _json_value(_json_string_field(line, key)) for key in keys}


def _json_value(raw: tf.Tensor) -> tf.Tensor:
  """Skips the unescaping work for the many values without a backslash."""
  plain = tf.strings.regex_full_match(raw, r"[^\\]*")
  return tf.cond(plain, lambda: raw, lambda: _json_unescape(raw))


@seqio.map_over_dataset
def parse_json_line(line: tf.Tensor) -> dict[str, tf.Tensor]:
  """Preprocessor: a jsonl line -> {"inputs", "targets"} strings."""
  return parse_json_fields(line)


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

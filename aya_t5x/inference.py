"""Text in, text out: batched, sharded generation and scoring of a model.

`Predictor` is what evaluation, the infer CLI and safety distillation share.
It tokenizes, batches with padding (rows to `batch_size`, lengths to a few
buckets so a handful of compiled programs serve every batch), runs
`EncoderDecoderModel.predict_batch` / `score_sequences` jitted on the
partitioner's mesh, and detokenizes.
"""

import dataclasses
import functools
import math
from typing import Callable, Iterator, Sequence

from absl import logging
from etils import epath
import jax
import jax.numpy as jnp
import numpy as np
import seqio

from aya_t5x import checkpoints
from aya_t5x import decoding
from aya_t5x import model as model_lib
from aya_t5x import partitioning

PyTree = object
# Padded input lengths are rounded up to a multiple of this (or a power of
# two below it), so few distinct shapes get compiled.
_MIN_BUCKET = 16


@dataclasses.dataclass(frozen=True)
class Generation:
  """One generated sequence."""
  text: str
  tokens: list[int]  # Up to, not including, EOS.
  score: float  # Log-likelihood (length-normalised for beam search).


def bucket_length(length: int, limit: int) -> int:
  """The padded length of a batch whose longest row has `length` tokens."""
  padded = _MIN_BUCKET
  while padded < length:
    padded *= 2
  return min(padded, max(limit, length))


def pad_rows(rows: Sequence[Sequence[int]], num_rows: int,
             length: int) -> np.ndarray:
  """Right-pads token rows with 0 into a [num_rows, length] int32 array."""
  out = np.zeros((num_rows, length), np.int32)
  for i, row in enumerate(rows):
    out[i, :len(row)] = row
  return out


def strip_eos(tokens: Sequence[int]) -> list[int]:
  """Tokens before the first EOS (or pad, which only follows EOS)."""
  out = []
  for token in tokens:
    if token in (decoding.EOS_ID, decoding.PAD_ID):
      break
    out.append(int(token))
  return out


def _chunks(n: int, size: int) -> Iterator[slice]:
  for start in range(0, n, size):
    yield slice(start, min(start + size, n))


def restore_params(model: model_lib.EncoderDecoderModel,
                   checkpoint_path: epath.PathLike,
                   partitioner: partitioning.Partitioner) -> PyTree:
  """Parameters of a checkpoint_N folder (ours or T5X's) or an HF folder."""
  abstract = partitioning.abstract_params(model, partitioner)
  # Imported here: aya_t5x.convert builds on checkpoints and model.
  from aya_t5x.convert import sources  # pylint: disable=g-import-not-at-top
  if sources.detect_format(checkpoint_path) is not None:
    state = {"params": abstract}
    return sources.restore_params_into(checkpoint_path, state, state,
                                       params_only=True, strict=True)["params"]
  state_dir = checkpoints.resolve_state_dir(checkpoint_path)
  return checkpoints.restore_params_tree(state_dir, abstract)


class Predictor:
  """Generates and scores text with one model's parameters."""

  def __init__(self, model: model_lib.EncoderDecoderModel, params: PyTree,
               vocabulary: seqio.Vocabulary, *, batch_size: int = 8,
               max_input_length: int = 1024, max_target_length: int = 1024,
               partitioner: partitioning.Partitioner | None = None):
    """Puts `params` on the partitioner's mesh.

    Args:
      model: the model the parameters belong to.
      params: its parameters (host or device arrays).
      vocabulary: tokenizes inputs and detokenizes generations.
      batch_size: rows per call, rounded up to the mesh's data parallelism.
      max_input_length: longer inputs are truncated (EOS kept).
      max_target_length: the longest target `score_ids` takes, EOS included.
        A longer one is refused rather than cut: the score of a truncated
        target is not the score of the target.
      partitioner: the mesh and rules; default one model partition.
    """
    model.check_vocabulary(vocabulary, "Predictor vocabulary")
    self.model = model
    self.vocabulary = vocabulary
    self.partitioner = partitioner or partitioning.Partitioner()
    data_size = self.partitioner.data_parallel_size
    # Rows are split over the mesh's data axis: round the batch up.
    self.batch_size = math.ceil(batch_size / data_size) * data_size
    self.max_input_length = max_input_length
    self.max_target_length = max_target_length
    self._param_shardings = self.partitioner.shardings(
        partitioning.param_axes(model))
    self.params = jax.device_put(params, self._param_shardings)

  @classmethod
  def from_checkpoint(cls, model: model_lib.EncoderDecoderModel,
                      checkpoint_path: epath.PathLike,
                      vocabulary: seqio.Vocabulary, **kwargs) -> "Predictor":
    """A predictor over our checkpoint, upstream T5X's, or an HF folder."""
    partitioner = kwargs.pop("partitioner", None) or partitioning.Partitioner()
    params = restore_params(model, checkpoint_path, partitioner)
    return cls(model, params, vocabulary, partitioner=partitioner, **kwargs)

  # ----------------------------------------------------------- tokenizing --

  def encode_input(self, text: str) -> list[int]:
    """Input tokens as seqio gives them: truncated, then EOS appended."""
    ids = list(self.vocabulary.encode(text))[:self.max_input_length - 1]
    return ids + [decoding.EOS_ID]

  def encode_target(self, text: str) -> list[int]:
    return list(self.vocabulary.encode(text)) + [decoding.EOS_ID]

  # ------------------------------------------------------------- programs --

  def _put_batch(self, array: np.ndarray) -> jax.Array:
    return jax.device_put(array, self.partitioner.batch_sharding(array.ndim))

  @functools.cache
  def _generate_fn(self, config: decoding.DecodingConfig) -> Callable:
    batch = self.partitioner.batch_sharding(2)
    rows = self.partitioner.batch_sharding(1)
    fn = functools.partial(self.model.predict_batch, config=config)
    return jax.jit(
        lambda params, tokens, rng: fn(params, tokens, rng=rng),
        in_shardings=(self._param_shardings, batch,
                      self.partitioner.replicated()),
        out_shardings=(batch, rows))

  @functools.cached_property
  def _score_fn(self) -> Callable:
    batch = self.partitioner.batch_sharding(2)
    return jax.jit(self.model.score_sequences,
                   in_shardings=(self._param_shardings, batch),
                   out_shardings=self.partitioner.batch_sharding(1))

  # ----------------------------------------------------------- generation --

  def generate_ids(self, inputs: Sequence[Sequence[int]],
                   config: decoding.DecodingConfig = decoding.DecodingConfig(),
                   progress: Callable[[int], None] | None = None
                   ) -> list[Generation]:
    """Generates for already-tokenized inputs (EOS-terminated rows).

    Sampling is reproducible: batch i draws from fold_in(seed, i), so the
    same inputs, batch size and seed give the same text.
    """
    out = []
    for index, rows in enumerate(_chunks(len(inputs), self.batch_size)):
      chunk = inputs[rows]
      out.extend(self._generate_chunk(chunk, config, index))
      if progress is not None:
        progress(len(chunk))
    return out

  def _generate_chunk(self, rows: Sequence[Sequence[int]],
                      config: decoding.DecodingConfig,
                      index: int) -> list[Generation]:
    rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), index)
    return self.generate_rows(rows, config, rng, self.batch_size)

  def generate_rows(self, rows: Sequence[Sequence[int]],
                    config: decoding.DecodingConfig, rng: jax.Array,
                    num_rows: int) -> list[Generation]:
    """One decoding call over `rows`, padded to `num_rows` rows.

    The server (`aya_t5x.serve`) batches concurrent requests into calls of
    a few row counts (each compiled once) and picks their RNG itself.
    """
    if len(rows) > num_rows or num_rows % self.partitioner.data_parallel_size:
      raise ValueError(
          f"generate_rows: {len(rows)} rows padded to num_rows={num_rows}, "
          "which must hold them and be a multiple of the data parallelism "
          f"({self.partitioner.data_parallel_size}).")
    length = bucket_length(max(len(r) for r in rows), self.max_input_length)
    tokens = self._put_batch(pad_rows(rows, num_rows, length))
    with self.partitioner.activate():
      out_tokens, scores = self._generate_fn(config)(self.params, tokens, rng)
    out_tokens, scores = np.asarray(out_tokens), np.asarray(scores)
    generations = []
    for i in range(len(rows)):
      ids = strip_eos(out_tokens[i])
      generations.append(Generation(self.vocabulary.decode(ids), ids,
                                    float(scores[i])))
    return generations

  def generate(self, inputs: Sequence[str],
               config: decoding.DecodingConfig = decoding.DecodingConfig(),
               progress: Callable[[int], None] | None = None
               ) -> list[Generation]:
    """Generates a continuation of every input text."""
    return self.generate_ids([self.encode_input(x) for x in inputs], config,
                             progress)

  # -------------------------------------------------------------- scoring --

  def score_ids(self, inputs: Sequence[Sequence[int]],
                targets: Sequence[Sequence[int]]) -> np.ndarray:
    """Sum of log p(target token) over each (EOS-terminated) target row.

    Pairs are scored sorted by length, so each batch holds rows of similar
    length (less padding, fewer compiled shapes); the scores come back in
    the caller's order.

    Raises:
      ValueError: the two lists differ in length, or a target is longer
        than `max_target_length`.
    """
    if len(inputs) != len(targets):
      raise ValueError(f"score_ids: {len(inputs)} inputs but {len(targets)} "
                       "targets.")
    self._check_target_lengths(targets)
    order = sorted(range(len(inputs)),
                   key=lambda i: (len(inputs[i]), len(targets[i])))
    scores = np.zeros((len(order),), np.float32)
    for rows in _chunks(len(order), self.batch_size):
      chunk = order[rows]
      scores[chunk] = self._score_chunk([inputs[i] for i in chunk],
                                        [targets[i] for i in chunk])
    return scores

  def _check_target_lengths(self, targets: Sequence[Sequence[int]]) -> None:
    for index, row in enumerate(targets):
      if len(row) > self.max_target_length:
        raise ValueError(
            f"score_ids: target {index} has {len(row)} tokens (EOS included),"
            f" more than max_target_length={self.max_target_length}; build "
            "the Predictor with a larger max_target_length.")

  def _score_chunk(self, inputs: Sequence[Sequence[int]],
                   targets: Sequence[Sequence[int]]) -> np.ndarray:
    input_length = bucket_length(max(len(r) for r in inputs),
                                 self.max_input_length)
    target_length = bucket_length(max(len(r) for r in targets),
                                  self.max_target_length)
    target = pad_rows(targets, self.batch_size, target_length)
    decoder_input = np.concatenate(
        [np.zeros((self.batch_size, 1), np.int32), target[:, :-1]], axis=1)
    batch = {
        "encoder_input_tokens": pad_rows(inputs, self.batch_size,
                                         input_length),
        "decoder_input_tokens": decoder_input,
        "decoder_target_tokens": target,
        "decoder_loss_weights": (target > 0).astype(np.int32),
    }
    batch = {k: self._put_batch(v) for k, v in batch.items()}
    with self.partitioner.activate():
      scores = self._score_fn(self.params, batch)
    return np.asarray(scores)[:len(inputs)]

  def score(self, inputs: Sequence[str], targets: Sequence[str]) -> np.ndarray:
    """log p(target + EOS | input) of every (input, target) text pair."""
    return self.score_ids([self.encode_input(x) for x in inputs],
                          [self.encode_target(y) for y in targets])

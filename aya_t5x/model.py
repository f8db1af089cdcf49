"""The encoder-decoder model API: loss, normalisation modes and scoring.

`EncoderDecoderModel` wraps the Flax `network.Transformer` and owns what T5X's
`models.EncoderDecoderModel` owns: the cross-entropy with z-loss and label
smoothing, the `LOSS_NORMALIZING_FACTOR` modes, teacher-forced metrics, and
per-sequence log-likelihood scoring (used by rank classification).

Loss normalisation is split from the loss so gradient accumulation is exact:
`loss_weights_and_denominator` is computed once on the *whole* batch, and each
microbatch's loss is its share of that one global sum.
"""

import dataclasses
import enum
from typing import Mapping

import jax
import jax.numpy as jnp

from aya_t5x import decoding
from aya_t5x import network

Array = jax.Array
Batch = Mapping[str, Array]


class SpecialLossNormalizingFactor(enum.Enum):
  """T5X's data-dependent loss normalisations (`LOSS_NORMALIZING_FACTOR`)."""
  NUM_REAL_TARGET_TOKENS = 1  # Divide by the count of non-pad targets.
  NUM_TOTAL_TARGET_TOKENS = 2  # Divide by batch * target length.
  AVERAGE_PER_SEQUENCE = 3  # Mean over sequences of each one's token mean.


LossNormalizingFactor = float | int | str | SpecialLossNormalizingFactor | None


def parse_loss_normalizing_factor(
    value: LossNormalizingFactor) -> float | SpecialLossNormalizingFactor | None:
  """Accepts None, a number, an enum member or its name (as gin gives it)."""
  if value is None or isinstance(value, SpecialLossNormalizingFactor):
    return value
  if isinstance(value, str):
    name = value.rsplit(".", 1)[-1]
    try:
      return SpecialLossNormalizingFactor[name]
    except KeyError:
      raise ValueError(
          f"LOSS_NORMALIZING_FACTOR={value!r}: expected None, a number or one "
          f"of {[m.name for m in SpecialLossNormalizingFactor]}") from None
  if isinstance(value, (int, float)) and value > 0:
    return float(value)
  raise ValueError(f"LOSS_NORMALIZING_FACTOR={value!r} must be positive.")


def _per_segment_average_weights(weights: Array,
                                 segment_ids: Array | None) -> Array:
  """w / (sum of w over its sequence); packed segments count separately."""
  if segment_ids is None:
    row_sums = jnp.sum(weights, axis=-1, keepdims=True)
    return jnp.where(row_sums > 0, weights / jnp.maximum(row_sums, 1e-9), 0.)
  same = segment_ids[:, :, None] == segment_ids[:, None, :]
  segment_sums = jnp.einsum("bij,bj->bi", same.astype(weights.dtype), weights)
  return jnp.where(weights > 0, weights / jnp.maximum(segment_sums, 1e-9), 0.)


def loss_weights_and_denominator(
    batch: Batch, factor: float | SpecialLossNormalizingFactor | None
) -> tuple[Array, Array]:
  """Per-token loss weights and the scalar the weighted sum is divided by.

  Computed on the full (not micro-) batch: the training loss is
  sum(weights * token_loss) / denominator, as T5X defines it.
  """
  weights = batch["decoder_loss_weights"].astype(jnp.float32)
  if factor is None:
    return weights, jnp.ones((), jnp.float32)
  if isinstance(factor, float):
    return weights, jnp.asarray(factor, jnp.float32)
  if factor == SpecialLossNormalizingFactor.NUM_REAL_TARGET_TOKENS:
    return weights, jnp.maximum(jnp.sum(weights), 1.0)
  if factor == SpecialLossNormalizingFactor.NUM_TOTAL_TARGET_TOKENS:
    return weights, jnp.asarray(weights.size, jnp.float32)
  averaged = _per_segment_average_weights(weights,
                                          batch.get("decoder_segment_ids"))
  return averaged, jnp.maximum(jnp.sum(averaged), 1e-9)


def cross_entropy_with_z_loss(logits: Array, targets: Array,
                              z_loss: float, label_smoothing: float = 0.0
                              ) -> tuple[Array, Array]:
  """Token-level cross-entropy (minus its constant) and z-loss.

  With smoothing, the target distribution puts `1 - label_smoothing` on the
  label and spreads the rest uniformly; the entropy of that distribution is
  subtracted so a perfect model scores 0, as in T5X.
  """
  logits = logits.astype(jnp.float32)
  vocab = logits.shape[-1]
  log_z = jax.nn.logsumexp(logits, axis=-1)
  confidence = 1.0 - label_smoothing
  if label_smoothing == 0.0:
    cross_entropy = log_z - decoding.token_logit(logits, targets)
  else:
    log_probs = logits - log_z[..., None]
    low = label_smoothing / (vocab - 1)
    soft = jax.nn.one_hot(targets, vocab) * (confidence - low) + low
    constant = -(confidence * jnp.log(confidence) +
                 (vocab - 1) * low * jnp.log(low + 1e-20))
    cross_entropy = -jnp.sum(soft * log_probs, axis=-1) - constant
  z = z_loss * jnp.square(log_z)
  return cross_entropy + z, z


def correct_predictions(logits: Array, targets: Array) -> Array:
  """1.0 where the target is the likeliest token (ties count as correct).

  Compares the target's logit with the row maximum, two plain reductions,
  rather than an argmax (a slower index-tracking reduction on the CPU).
  """
  logits = logits.astype(jnp.float32)
  best = jnp.max(logits, axis=-1)
  return (decoding.token_logit(logits, targets) >= best).astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class LossConfig:
  """How the training loss is computed (gin: `model.LossConfig`)."""
  z_loss: float = 1e-4  # Coefficient of log(Z)^2 (T5X default).
  label_smoothing: float = 0.0  # Probability mass spread off the label.
  # LOSS_NORMALIZING_FACTOR: None (plain sum, T5X default), a constant, or a
  # SpecialLossNormalizingFactor name such as 'AVERAGE_PER_SEQUENCE' (Aya).
  loss_normalizing_factor: LossNormalizingFactor = None

  def __post_init__(self):
    parse_loss_normalizing_factor(self.loss_normalizing_factor)

  @property
  def normalizing_factor(self):
    return parse_loss_normalizing_factor(self.loss_normalizing_factor)


def _count_examples(batch: Batch, real: Array) -> Array:
  """Examples in a batch: packed rows hold one per decoder segment."""
  segments = batch.get("decoder_segment_ids")
  if segments is None:
    return jnp.sum(jnp.any(real > 0, axis=-1).astype(jnp.float32))
  return jnp.sum(jnp.max(segments, axis=-1).astype(jnp.float32))


class EncoderDecoderModel:
  """mT5 with its loss: the object the trainer, eval and inference share."""

  def __init__(self, config: network.T5Config,
               loss_config: LossConfig = LossConfig()):
    self.config = config
    self.loss_config = loss_config
    self.module = network.Transformer(config)

  def check_vocabulary(self, vocabulary, source: str) -> None:
    """Refuses a vocabulary with ids beyond the embedding's rows.

    The embedding lookup clamps ids (T5X's indexing does too), so a bigger
    vocabulary would otherwise train and decode on the wrong rows silently.
    """
    if vocabulary.vocab_size > self.config.vocab_size:
      raise ValueError(
          f"{source}: the vocabulary has {vocabulary.vocab_size} ids but the "
          f"model embeds only {self.config.vocab_size} "
          "(network.T5Config.vocab_size); use the model's vocabulary or "
          "a model with a vocab_size at least as large.")

  def logits(self, params, batch: Batch, dropout_rng: Array | None = None
             ) -> Array:
    """Teacher-forced logits; dropout only when a dropout RNG is given."""
    rngs = None if dropout_rng is None else {"dropout": dropout_rng}
    return self.module.apply(
        {"params": params},
        batch["encoder_input_tokens"], batch["decoder_input_tokens"],
        batch["decoder_target_tokens"],
        batch.get("encoder_segment_ids"), batch.get("decoder_segment_ids"),
        deterministic=dropout_rng is None, rngs=rngs)

  def init_params(self, rng: Array, input_shapes: Mapping[str, tuple[int, ...]]
                  ):
    """Boxed (logically annotated) initial parameters for the given shapes."""
    dummy = lambda key: jnp.ones(input_shapes[key], jnp.int32)
    return self.module.init(
        {"params": rng}, dummy("encoder_input_tokens"),
        dummy("decoder_input_tokens"), dummy("decoder_target_tokens"),
        deterministic=True)["params"]

  def loss_and_metrics(self, params, batch: Batch, weights: Array,
                       denominator: Array, dropout_rng: Array | None
                       ) -> tuple[Array, dict[str, Array]]:
    """Loss of (a slice of) a batch, normalised by the full batch's terms.

    Returns the loss and *summable* metrics: adding them over microbatches
    gives the full batch's values.
    """
    logits = self.logits(params, batch, dropout_rng)
    targets = batch["decoder_target_tokens"]
    token_loss, token_z = cross_entropy_with_z_loss(
        logits, targets, self.loss_config.z_loss,
        self.loss_config.label_smoothing)
    loss = jnp.sum(weights * token_loss) / denominator
    z_loss = jnp.sum(weights * token_z) / denominator
    real = (batch["decoder_loss_weights"] > 0).astype(jnp.float32)
    correct = correct_predictions(logits, targets)
    metrics = {
        "loss": loss,
        "z_loss": z_loss,
        "cross_ent_loss": loss - z_loss,
        "correct_tokens": jnp.sum(correct * real),
        "target_tokens": jnp.sum(real),
        "nonpadding_encoder_tokens": jnp.sum(
            (batch["encoder_input_tokens"] > 0).astype(jnp.float32)),
        "sequences": _count_examples(batch, real),
    }
    return loss, metrics

  def score_sequences(self, params, batch: Batch) -> Array:
    """Sum of target-token log-likelihoods per sequence (rank scoring)."""
    logits = self.logits(params, batch).astype(jnp.float32)
    token_ll = decoding.token_log_likelihood(logits,
                                             batch["decoder_target_tokens"])
    return jnp.sum(token_ll * batch["decoder_loss_weights"], axis=-1)

  def predict_batch(self, params, encoder_input_tokens: Array,
                    config: decoding.DecodingConfig = decoding.DecodingConfig(),
                    rng: Array | None = None) -> tuple[Array, Array]:
    """Generates from every row of `encoder_input_tokens` [batch, length].

    The encoder runs once; the decoder runs one token at a time over
    key/value caches, inside one `lax.while_loop`.

    Returns:
      tokens [batch, max_new_tokens] (pad after EOS) and scores [batch]
      (log-likelihood; length-normalised for beam search).
    """
    batch_size = encoder_input_tokens.shape[0]
    encoded = self.module.apply({"params": params}, encoder_input_tokens,
                                method=network.Transformer.encode)
    _, variables = self.module.apply(
        {"params": params}, encoded, encoder_input_tokens,
        config.max_new_tokens, config.rows_per_input,
        method=network.Transformer.init_decoding_cache, mutable=["cache"])

    def step_fn(previous: Array, cache):
      logits, variables = self.module.apply(
          {"params": params, "cache": cache}, encoded, encoder_input_tokens,
          previous[:, None], method=network.Transformer.decode_step,
          mutable=["cache"])
      return logits[:, 0], variables["cache"]

    if config.method == "beam":
      return decoding.beam_search(step_fn, variables["cache"], batch_size,
                                  config, reorder_cache)
    return decoding.sample_or_greedy(step_fn, variables["cache"], batch_size,
                                     config, rng)


def reorder_cache(cache, beam_indices: Array):
  """Beam (b, j) continues beam indices[b, j]: it takes over that beam's
  ancestry, the cache slot holding each of its decoded positions.

  Keys and values stay where their beam wrote them (an input's beams share
  one self-attention cache row; see `network.MultiHeadAttention._cached`),
  so a step moves [batch, beams, length] slot ids, not every layer's
  caches. The gather is within each input, so on a data-parallel mesh
  every device reorders its own rows.
  """
  def reorder(path, x):
    if getattr(path[-1], "key", None) != "ancestry":
      return x
    # Beam indices are in range by construction; "clip" skips the NaN-fill
    # select of the default mode.
    return jnp.take_along_axis(x, beam_indices[:, :, None], axis=1,
                               mode="clip")
  return jax.tree_util.tree_map_with_path(reorder, cache)

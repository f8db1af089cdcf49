"""Decoding algorithms over a cached one-step decoder: greedy, sampling, beam.

The algorithms know nothing about mT5. They take a `StepFn` that maps the
previous token of every row and an opaque cache to next-token logits and the
new cache, so the whole generation is one `lax.while_loop` inside one jit.
`model.EncoderDecoderModel.predict_batch` wires them to the network.

Conventions (T5's): the decoder starts from the pad id 0, generation of a
row ends at its EOS (id 1), and positions after it hold pad. Scores are the
model's own log-likelihood of the emitted tokens (EOS included), before any
temperature or filtering; beam search ranks by that sum divided by
`length ** length_penalty`, as `transformers` does.
"""

import dataclasses
import math
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec

Array = jax.Array
Cache = Any
# (previous tokens [batch], cache) -> (logits [batch, vocab], new cache).
StepFn = Callable[[Array, Cache], tuple[Array, Cache]]

PAD_ID = 0
EOS_ID = 1
# Scores of impossible candidates: finite so arithmetic on them stays NaN-free.
NEG_INF = -1.0e9

METHODS = ("greedy", "sample", "beam")


@dataclasses.dataclass(frozen=True)
class DecodingConfig:
  """How to generate (gin: `decoding.DecodingConfig`).

  The Aya paper's open-ended setting is `method='sample', top_p=0.8,
  temperature=0.9, max_new_tokens=256`.
  """
  method: str = "greedy"  # One of METHODS.
  max_new_tokens: int = 64  # Generated tokens per row, EOS included.
  min_new_tokens: int = 0  # EOS is impossible before this many tokens.
  temperature: float = 1.0  # Sampling only; 0 = greedy.
  top_k: int = 0  # Sampling only; keep the k likeliest tokens (0 = all).
  top_p: float = 1.0  # Sampling only; nucleus mass to keep (0 = greedy).
  num_beams: int = 4  # Beam search only.
  length_penalty: float = 1.0  # Beam search: score / length**penalty.
  seed: int = 0  # Sampling RNG seed: the same seed gives the same text.

  def __post_init__(self):
    if self.method not in METHODS:
      raise ValueError(f"DecodingConfig.method={self.method!r}; expected one "
                       f"of {METHODS}.")
    if not 0 <= self.min_new_tokens <= self.max_new_tokens >= 1:
      raise ValueError(
          f"DecodingConfig: need 0 <= min_new_tokens={self.min_new_tokens} "
          f"<= max_new_tokens={self.max_new_tokens} and max_new_tokens >= 1.")
    if self.temperature < 0 or not 0 <= self.top_p <= 1 or self.top_k < 0:
      raise ValueError(
          f"DecodingConfig: temperature={self.temperature} must be >= 0, "
          f"top_p={self.top_p} in [0, 1], top_k={self.top_k} >= 0.")
    if self.method == "beam" and self.num_beams < 1:
      raise ValueError(f"DecodingConfig.num_beams={self.num_beams} must be "
                       "at least 1.")

  @property
  def is_greedy(self) -> bool:
    """Sampling that can only ever pick the likeliest token is greedy."""
    return self.method == "greedy" or (
        self.method == "sample" and (self.temperature == 0 or
                                     self.top_p == 0 or self.top_k == 1))

  @property
  def rows_per_input(self) -> int:
    return self.num_beams if self.method == "beam" else 1


def top_k(x: Array, k: int) -> tuple[Array, Array]:
  """`jax.lax.top_k` of every row of x [batch, n], on the row's devices.

  XLA's SPMD partitioner splits TopK only along the axis it ranks: on a
  mesh that shards the batch it first all-gathers x onto every device (for
  beam search, every input's beams x vocabulary scores at every step).
  Under a mesh and logical axis rules that shard `batch` (as
  `Partitioner.activate` sets), each device ranks its own rows instead;
  elsewhere, or for a batch the devices do not divide, it is plain TopK.
  """
  rank = lambda rows: tuple(jax.lax.top_k(rows, k))
  mesh = jax.sharding.get_abstract_mesh()
  batch_axes = nn.logical_to_mesh_axes(("batch",))[0]
  if mesh.empty or batch_axes is None:
    return rank(x)
  names = set(batch_axes) if isinstance(batch_axes, tuple) else {batch_axes}
  if x.shape[0] % math.prod(mesh.shape[name] for name in names):
    return rank(x)
  rows = PartitionSpec(batch_axes)
  return jax.shard_map(rank, mesh=mesh, in_specs=rows, out_specs=rows,
                       axis_names=names)(x)


def filter_logits(logits: Array, config: DecodingConfig) -> Array:
  """Temperature, then top-k, then top-p (nucleus) on [batch, vocab] logits.

  Top-p keeps the smallest set of likeliest tokens whose mass reaches p: a
  token stays when the mass of the tokens ranked above it is below p. The
  likeliest token always stays.
  """
  logits = logits / config.temperature
  if config.top_k:
    # The k-th largest logit: the smallest whose strictly-higher count is
    # below k (ties with it stay). XLA's CPU TopK took 1.25 ms a step here.
    keys = _order_keys(logits)
    kth = _smallest_key_where(keys, lambda t: jnp.sum(
        keys > t, axis=-1, keepdims=True) < config.top_k)
    logits = jnp.where(keys < kth, NEG_INF, logits)
  if config.top_p < 1.0:
    logits = jnp.where(nucleus(logits, config.top_p), logits, NEG_INF)
  return logits


def _order_keys(x: Array) -> Array:
  """uint32 keys ordered as the float32 values x are."""
  bits = jax.lax.bitcast_convert_type(x.astype(jnp.float32), jnp.uint32)
  sign = jnp.uint32(0x80000000)
  return jnp.where(bits & sign, ~bits, bits | sign)


def _smallest_key_where(keys: Array, holds: Callable[[Array], Array]
                        ) -> Array:
  """Per row of keys [batch, n], the smallest t in [min, max] of the row
  with holds(t) [batch, 1], for holds false below some t and true from it
  on (true at the maximum): a bisection over the 32-bit keys."""
  def bisect(_, bounds):
    low, high = bounds
    middle = low + (high - low) // 2
    found = holds(middle)
    return jnp.where(found, low, middle + 1), jnp.where(found, middle, high)

  bounds = (jnp.min(keys, axis=-1, keepdims=True),
            jnp.max(keys, axis=-1, keepdims=True))
  return jax.lax.fori_loop(0, 32, bisect, bounds)[0]


def nucleus(logits: Array, top_p: float) -> Array:
  """Whether each token of [batch, vocab] logits is in the top-p nucleus.

  Ranked by logit (ties to the lower id), a token is kept when the mass
  ranked above it is below top_p, so the likeliest always is. Found without
  sorting the vocabulary (XLA's CPU sort took 1.5 ms a step for 8 x 1280):
  the cutoff is the smallest logit t whose strictly-higher mass is below
  top_p, found by a 32-step bisection over the logits' order keys; tokens
  tied at t are then kept in id order while the mass above stays below.
  """
  probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
  keys = _order_keys(logits)
  mass_above = lambda t: jnp.sum(jnp.where(keys > t, probs, 0.0), axis=-1,
                                 keepdims=True)
  cutoff = _smallest_key_where(keys, lambda t: mass_above(t) < top_p)
  tied = jnp.where(keys == cutoff, probs, 0.0)
  tied_before = jnp.cumsum(tied, axis=-1) - tied
  return (keys > cutoff) | ((keys == cutoff) &
                            (mass_above(cutoff) + tied_before < top_p))


def forbid_early_eos(scores: Array, step: Array,
                     config: DecodingConfig) -> Array:
  """EOS gets no chance before `min_new_tokens` tokens ([..., vocab])."""
  if not config.min_new_tokens:
    return scores
  # A select over the vocabulary, not a scatter into column EOS_ID: it fuses
  # into the reductions that read the scores instead of copying them.
  ids = jax.lax.broadcasted_iota(jnp.int32, scores.shape, scores.ndim - 1)
  early = (ids == EOS_ID) & (step < config.min_new_tokens)
  return jnp.where(early, NEG_INF, scores)


def max_and_first_argmax(logits: Array) -> tuple[Array, Array]:
  """The maximum over the last axis and its first index (ties: lowest id).

  As two reductions: XLA's CPU argmax is a variadic (value, index)
  reduction that is not vectorised, 3x slower than a max followed by a min
  over matching ids, and it ran at every decoding step.
  """
  ids = jax.lax.broadcasted_iota(jnp.int32, logits.shape, logits.ndim - 1)
  best = jnp.max(logits, axis=-1, keepdims=True)
  first = jnp.min(jnp.where(logits == best, ids, logits.shape[-1] - 1),
                  axis=-1)
  return best[..., 0], first


def token_logit(logits: Array, tokens: Array) -> Array:
  """logits[..., token] as a masked sum over the vocabulary.

  Unlike a gather, its gradient is an elementwise select that fuses with the
  softmax gradient: no scatter into a zeroed [batch, length, vocab] buffer.
  """
  ids = jax.lax.broadcasted_iota(jnp.int32, logits.shape, logits.ndim - 1)
  return jnp.sum(jnp.where(ids == tokens[..., None], logits, 0.0), axis=-1)


def token_log_likelihood(logits: Array, tokens: Array) -> Array:
  """log softmax(logits)[..., token], without a gather."""
  return token_logit(logits, tokens) - jax.nn.logsumexp(logits, axis=-1)


def _greedy_token(logits: Array, step: Array, config: DecodingConfig
                  ) -> tuple[Array, Array]:
  """The likeliest allowed token and its log-likelihood.

  The chosen token's logit is the allowed maximum, so no pass over the
  vocabulary picks it out; and since forbidding early EOS changes one
  column only, the unrestricted maximum that stabilises logsumexp is that
  maximum or EOS's logit. Three reductions over the vocabulary in all,
  where argmax plus `token_log_likelihood` take five.
  """
  best, token = max_and_first_argmax(forbid_early_eos(logits, step, config))
  top = jnp.maximum(best, logits[:, EOS_ID])
  log_normaliser = top + jnp.log(
      jnp.sum(jnp.exp(logits - top[:, None]), axis=-1))
  return token, best - log_normaliser


def _sampled_token(logits: Array, step: Array, config: DecodingConfig,
                   rng: Array) -> tuple[Array, Array]:
  """A token drawn from the filtered distribution and its log-likelihood."""
  allowed = filter_logits(forbid_early_eos(logits, step, config), config)
  token = jax.random.categorical(rng, allowed).astype(jnp.int32)
  return token, token_log_likelihood(logits, token)


def sample_or_greedy(step_fn: StepFn, cache: Cache, batch_size: int,
                     config: DecodingConfig, rng: Array | None = None
                     ) -> tuple[Array, Array]:
  """Greedy or sampled decoding; stops early once every row has ended.

  Returns:
    tokens [batch, max_new_tokens] (pad after EOS) and scores [batch], the
    log-likelihood of each row's tokens.
  """
  length = config.max_new_tokens
  rng = jax.random.PRNGKey(config.seed) if rng is None else rng

  def not_done(state):
    step, _, _, _, _, finished = state
    return (step < length) & ~jnp.all(finished)

  def body(state):
    step, cache, previous, tokens, scores, finished = state
    logits, cache = step_fn(previous, cache)
    logits = logits.astype(jnp.float32)
    if config.is_greedy:
      token, token_ll = _greedy_token(logits, step, config)
    else:
      token, token_ll = _sampled_token(logits, step, config,
                                       jax.random.fold_in(rng, step))
    token = jnp.where(finished, PAD_ID, token)
    scores = scores + jnp.where(finished, 0.0, token_ll)
    tokens = jax.lax.dynamic_update_slice(tokens, token[:, None], (0, step))
    finished = finished | (token == EOS_ID)
    return step + 1, cache, token, tokens, scores, finished

  state = (jnp.zeros((), jnp.int32), cache,
           jnp.full((batch_size,), PAD_ID, jnp.int32),
           jnp.zeros((batch_size, length), jnp.int32),
           jnp.zeros((batch_size,), jnp.float32),
           jnp.zeros((batch_size,), bool))
  _, _, _, tokens, scores, _ = jax.lax.while_loop(not_done, body, state)
  return tokens, scores


# (cache, beam indices [batch, beams]) -> cache whose row (b, j) is the old
# row (b, indices[b, j]); rows are batch-major, an input's beams adjacent.
ReorderFn = Callable[[Cache, Array], Cache]


def _gather_beams(x: Array, beam_indices: Array) -> Array:
  """x[b, beam_indices[b, j]] for x of shape [batch, beams, ...]."""
  return jnp.take_along_axis(
      x, beam_indices.reshape(beam_indices.shape + (1,) * (x.ndim - 2)),
      axis=1)


@dataclasses.dataclass(frozen=True)
class _Beams:
  """The beam search state; shapes are [batch, beams(, length)]."""
  running_tokens: Array
  running_scores: Array  # Sum of log-likelihoods.
  finished_tokens: Array
  finished_scores: Array  # Length-normalised; NEG_INF where empty.
  finished: Array  # Whether a finished slot holds a sequence.
  improvable: Array  # [batch]: could a running beam still beat a finished?


jax.tree_util.register_dataclass(
    _Beams, data_fields=[f.name for f in dataclasses.fields(_Beams)],
    meta_fields=[])


def _top_continuations(beams: _Beams, log_probs: Array, step: Array,
                       num_candidates: int) -> tuple[Array, Array, Array]:
  """The best `num_candidates` (beam, token) extensions of every input."""
  batch, num_beams, vocab = log_probs.shape
  total = beams.running_scores[:, :, None] + log_probs
  scores, flat = top_k(total.reshape(batch, num_beams * vocab),
                       num_candidates)
  parents, tokens = flat // vocab, (flat % vocab).astype(jnp.int32)
  sequences = _gather_beams(beams.running_tokens, parents)
  sequences = jax.lax.dynamic_update_slice(
      sequences, tokens[:, :, None], (0, 0, step))
  return scores, sequences, parents


def _merge_finished(beams: _Beams, scores: Array, sequences: Array,
                    ends: Array, step: Array, config: DecodingConfig
                    ) -> tuple[Array, Array, Array]:
  """Adds candidates that just ended (within the top `num_beams` ranks)."""
  num_beams = config.num_beams
  length = (step + 1).astype(jnp.float32)
  normalised = scores / length ** config.length_penalty
  in_top = jnp.arange(scores.shape[1]) < num_beams
  just_ended = ends & in_top[None, :]
  normalised = normalised + NEG_INF * (~beams.improvable[:, None])
  normalised = normalised + NEG_INF * (~just_ended)
  all_scores = jnp.concatenate([beams.finished_scores, normalised], axis=1)
  best = top_k(all_scores, num_beams)[1]
  pick = lambda x: _gather_beams(x, best)
  return (pick(jnp.concatenate([beams.finished_tokens, sequences], axis=1)),
          pick(all_scores),
          pick(jnp.concatenate([beams.finished, just_ended], axis=1)))


def _still_improvable(beams: _Beams, step: Array,
                      config: DecodingConfig) -> Array:
  """transformers' early-stop heuristic (`early_stopping=False`).

  The best running beam, scored at its current length, must beat the worst
  finished hypothesis of its input, else that input is done.
  """
  length = (step + 1).astype(jnp.float32)
  best_running = beams.running_scores[:, :1] / length ** config.length_penalty
  worst_finished = jnp.where(
      beams.finished, jnp.min(beams.finished_scores, axis=1, keepdims=True),
      NEG_INF)
  return beams.improvable & jnp.any(best_running > worst_finished, axis=1)


def beam_search(step_fn: StepFn, cache: Cache, batch_size: int,
                config: DecodingConfig, reorder_cache: ReorderFn
                ) -> tuple[Array, Array]:
  """Beam search with a length penalty, ranked as `transformers` ranks.

  `cache` holds `batch_size * num_beams` rows (each input's beams
  adjacent). Every step keeps the best 2 * num_beams extensions; those
  ending in EOS (or at the length limit) among the best num_beams become
  finished hypotheses scored by sum / length**length_penalty; the best
  num_beams of the others continue.

  Returns:
    The best finished sequence of every input [batch, max_new_tokens] and its
    length-normalised score [batch].
  """
  num_beams, length = config.num_beams, config.max_new_tokens
  shape = (batch_size, num_beams)
  beams = _Beams(
      running_tokens=jnp.zeros(shape + (length,), jnp.int32),
      # Only the first beam is live at the start, so beams differ.
      running_scores=jnp.zeros(shape, jnp.float32).at[:, 1:].set(NEG_INF),
      finished_tokens=jnp.zeros(shape + (length,), jnp.int32),
      finished_scores=jnp.full(shape, NEG_INF, jnp.float32),
      finished=jnp.zeros(shape, bool),
      improvable=jnp.ones((batch_size,), bool))

  def not_done(state):
    step, _, _, beams, all_ended = state
    return (step < length) & jnp.any(beams.improvable) & ~all_ended

  def body(state):
    step, cache, previous, beams, _ = state
    logits, cache = step_fn(previous, cache)
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    log_probs = forbid_early_eos(log_probs.reshape(shape + (-1,)), step,
                                 config)
    scores, sequences, parents = _top_continuations(beams, log_probs, step,
                                                    2 * num_beams)
    ends = (sequences[:, :, step] == EOS_ID) | (step == length - 1)
    running = top_k(scores + NEG_INF * ends, num_beams)[1]
    finished_tokens, finished_scores, finished = _merge_finished(
        beams, scores, sequences, ends, step, config)
    beams = _Beams(
        running_tokens=_gather_beams(sequences, running),
        running_scores=_gather_beams(scores + NEG_INF * ends, running),
        finished_tokens=finished_tokens, finished_scores=finished_scores,
        finished=finished, improvable=beams.improvable)
    beams = dataclasses.replace(
        beams, improvable=_still_improvable(beams, step, config))
    cache = reorder_cache(cache, _gather_beams(parents, running))
    previous = beams.running_tokens[:, :, step].reshape(-1)
    return step + 1, cache, previous, beams, jnp.all(ends)

  state = (jnp.zeros((), jnp.int32), cache,
           jnp.full((batch_size * num_beams,), PAD_ID, jnp.int32), beams,
           jnp.zeros((), bool))
  _, _, _, beams, _ = jax.lax.while_loop(not_done, body, state)
  return beams.finished_tokens[:, 0], beams.finished_scores[:, 0]

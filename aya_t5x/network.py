"""The mT5 (T5 v1.1) encoder-decoder network in Flax.

The parameter tree, names and math follow upstream T5X's `t5/network.py`
exactly (see `tests/fixtures/t5x_golden/README.md`), so T5X checkpoints load without
renaming: one shared `token_embedder`, per-stack `relpos_bias`, pre-norm
layers with RMS norms, gated-GELU MLPs and a separate `logits_dense` head.

Every parameter and every large activation carries logical axis names
(`embed`, `mlp`, `heads`, `joined_kv`, `vocab`, `batch`, `length`, ...). The
network knows nothing about meshes: `partitioning.py` maps the names to mesh
axes.
"""

import dataclasses
import functools
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from aya_t5x import reductions
from aya_t5x import validation

Array = jax.Array
Initializer = Callable[..., Array]

# Masked attention logits get this bias (as in T5X) rather than -inf, so a
# fully masked row (padding) gives uniform weights instead of NaNs.
MASK_BIAS = -1e10

REMAT_POLICIES = {
    "none": None,
    # Recompute everything in the backward pass: least memory, most FLOPs.
    "full": jax.checkpoint_policies.nothing_saveable,
    # T5X's 'minimal': keep matmul outputs without batch dims.
    "minimal": jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims,
    # Keep every matmul output: recompute only the cheap elementwise ops.
    "save_dots": jax.checkpoint_policies.checkpoint_dots,
}


@dataclasses.dataclass(frozen=True)
class T5Config:
  """Architecture of a T5 v1.1 / mT5 encoder-decoder (gin: `network.T5Config`)."""
  vocab_size: int  # Embedding rows (mT5: 250112, padded to a multiple of 128).
  emb_dim: int  # d_model.
  num_heads: int  # Attention heads.
  num_encoder_layers: int  # Encoder blocks.
  num_decoder_layers: int  # Decoder blocks.
  head_dim: int  # d_kv: per-head query/key/value size.
  mlp_dim: int  # d_ff: hidden size of the gated MLP.
  mlp_activations: Sequence[str] = ("gelu", "linear")  # Gated-GELU (v1.1).
  dropout_rate: float = 0.0  # Residual, attention and MLP dropout.
  dtype: str = "bfloat16"  # Activation dtype; params are always float32.
  logits_via_embedding: bool = False  # Tie the head to the input embedding.
  relative_attention_num_buckets: int = 32  # Relative position buckets.
  relative_attention_max_distance: int = 128  # Largest distinguished offset.
  scan_layers: bool = False  # nn.scan over blocks (compile time, big models).
  remat_policy: str = "none"  # One of REMAT_POLICIES.
  layer_norm_epsilon: float = 1e-6  # RMS norm epsilon.

  def __post_init__(self):
    validation.number("DROPOUT_RATE (T5Config.dropout_rate)",
                      self.dropout_rate, low=0.0, high=1.0, high_open=True)
    if self.remat_policy not in REMAT_POLICIES:
      raise ValueError(
          f"T5Config.remat_policy={self.remat_policy!r}; expected one of "
          f"{sorted(REMAT_POLICIES)}")
    if tuple(self.mlp_activations) not in (("gelu", "linear"), ("relu",)):
      raise ValueError(
          f"T5Config.mlp_activations={self.mlp_activations!r}; supported: "
          "('gelu', 'linear') (T5 v1.1 / mT5) and ('relu',) (T5 v1.0)")

  @property
  def activation_dtype(self) -> jnp.dtype:
    return jnp.dtype(self.dtype)


def _param(module: nn.Module, name: str, init: Initializer,
           shape: Sequence[int], axes: Sequence[str]) -> Array:
  """A float32 parameter annotated with its logical axis names."""
  return module.param(
      name, nn.with_logical_partitioning(init, tuple(axes)), tuple(shape),
      jnp.float32)


def _constrain(x: Array, axes: Sequence[str]) -> Array:
  return nn.with_logical_constraint(x, tuple(axes))


class RmsNorm(nn.Module):
  """T5's layer norm: scale only, no mean subtraction, no bias."""
  epsilon: float = 1e-6
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    x = x.astype(jnp.float32)
    scale = _param(self, "scale", nn.initializers.ones, (x.shape[-1],),
                   ("embed",))
    variance = jnp.mean(jnp.square(x), axis=-1, keepdims=True)
    return (x * jax.lax.rsqrt(variance + self.epsilon) * scale).astype(
        self.dtype)


class Dense(nn.Module):
  """A bias-free matmul whose kernel carries logical axis names."""
  features: int
  kernel_axes: tuple[str, str]
  kernel_init: Initializer
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kernel = _param(self, "kernel", self.kernel_init,
                    (x.shape[-1], self.features), self.kernel_axes)
    return _matmul(x, kernel, self.kernel_axes[0], self.dtype)


def _rows(x: Array, in_axis: str, dtype: Any) -> Array:
  """x flattened to [tokens, features], keeping its batch sharding."""
  rows = x.reshape(-1, x.shape[-1]).astype(dtype)
  return _constrain(rows, ("batch", in_axis))


def _matmul(x: Array, kernel: Array, in_axis: str, dtype: Any) -> Array:
  """x @ kernel as a 2-D matmul over the flattened leading axes.

  Its kernel gradient is then one plain x^T dy product. Contracting
  [batch, length] of 3-D operands made XLA's CPU backend transpose dy
  first, which cost more than the matmul itself for the MLP. The rows keep
  the input's sharding (without the constraint GSPMD mis-partitioned
  microbatches smaller than the data axis).
  """
  y = jnp.dot(_rows(x, in_axis, dtype), kernel.astype(dtype))
  return y.reshape(x.shape[:-1] + (kernel.shape[-1],))


class Kernel(nn.Module):
  """A matmul kernel parameter alone (`<name>/kernel`, as Dense names it).

  Lets one matmul serve several T5X projections (see `project`)
  while each keeps its own entry in the parameter tree.
  """
  features: int
  kernel_axes: tuple[str, str]
  kernel_init: Initializer

  @nn.compact
  def __call__(self, in_features: int) -> Array:
    return _param(self, "kernel", self.kernel_init,
                  (in_features, self.features), self.kernel_axes)


def project(x: Array, kernels: Sequence[Array], out_axis: str, dtype: Any,
            fuse: bool = False) -> list[Array]:
  """x @ k for every kernel k (input axis `embed`).

  With `fuse`, in one matmul over the kernels stacked on a new, unsharded
  axis (model-parallel shardings of their output axis are untouched).
  Decoding steps fuse: for their few rows a matmul's cost is its launch,
  not its arithmetic. Training does not: on the CPU the stacked kernel's
  gradient costs copies (5-7% slower on the small benchmark step).
  """
  if not fuse or len(kernels) == 1:
    return [_matmul(x, k, "embed", dtype) for k in kernels]
  stacked = jnp.stack([k.astype(dtype) for k in kernels], axis=1)
  out = jnp.einsum("td,dnf->tnf", _rows(x, "embed", dtype), stacked)
  out = _constrain(out, ("batch", None, out_axis))
  return [out[:, i].reshape(x.shape[:-1] + (out.shape[-1],))
          for i in range(len(kernels))]


class Embed(nn.Module):
  """The shared token embedding (no sqrt(d) scaling, as in T5)."""
  num_embeddings: int
  features: int
  dtype: Any = jnp.float32

  def setup(self):
    self.embedding = _param(self, "embedding", nn.initializers.normal(1.0),
                            (self.num_embeddings, self.features),
                            ("vocab", "embed"))

  def __call__(self, tokens: Array) -> Array:
    # mode="clip", as T5X's `embedding[tokens]` indexing: jnp.take's default
    # ("fill", NaN rows for ids out of range) adds a masked select that made
    # the 8-row lookup of a decoding step 5x slower on the CPU. A vocabulary
    # larger than the table is refused up front (`check_vocabulary`).
    return jnp.take(self.embedding, tokens, axis=0, mode="clip").astype(
        self.dtype)

  def attend(self, query: Array) -> Array:
    """Logits against the embedding table (only for tied heads)."""
    return jnp.dot(query.astype(self.dtype),
                   self.embedding.T.astype(self.dtype))


def _kernel_init(scale: float = 1.0, truncated: bool = False) -> Initializer:
  distribution = "truncated_normal" if truncated else "normal"
  return nn.initializers.variance_scaling(scale, "fan_in", distribution)


def relative_position_bucket(relative_position: np.ndarray,
                             bidirectional: bool, num_buckets: int,
                             max_distance: int) -> np.ndarray:
  """Maps key_pos - query_pos to T5's log-spaced buckets (numpy, static)."""
  n = -relative_position
  bucket = np.zeros_like(n)
  if bidirectional:
    num_buckets //= 2
    bucket += (n < 0).astype(np.int32) * num_buckets
    n = np.abs(n)
  else:
    n = np.maximum(n, 0)
  max_exact = num_buckets // 2
  is_small = n < max_exact
  with np.errstate(divide="ignore"):
    log_ratio = (np.log(n.astype(np.float32) / max_exact +
                        np.finfo(np.float32).eps) /
                 np.log(max_distance / max_exact))
  large = max_exact + (log_ratio * (num_buckets - max_exact)).astype(np.int32)
  large = np.minimum(large, num_buckets - 1)
  return bucket + np.where(is_small, n, large)


class RelativePositionBias(nn.Module):
  """One [heads, buckets] table per stack, shared by all of its layers."""
  num_buckets: int
  max_distance: int
  num_heads: int
  bidirectional: bool
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, query_len: int, key_len: int,
               query_position: Array | None = None) -> Array:
    """[1, heads, query, key] biases; one query row when decoding.

    With `query_position` (a traced scalar, incremental decoding) the bias
    is the row of that one query over `key_len` keys. Its buckets are sliced
    from a static table of every offset, so they equal the full path's.
    """
    table = _param(
        self, "rel_embedding",
        nn.initializers.variance_scaling(1.0, "fan_avg", "uniform"),
        (self.num_heads, self.num_buckets), ("heads", "relpos_buckets"))
    table = table.astype(self.dtype)
    if query_position is not None:
      return self._row(table, key_len, query_position)
    relative = (np.arange(key_len, dtype=np.int32)[None, :] -
                np.arange(query_len, dtype=np.int32)[:, None])
    buckets = relative_position_bucket(relative, self.bidirectional,
                                       self.num_buckets, self.max_distance)
    # A gather of static bucket ids. T5X contracts a [query, key, buckets]
    # one-hot instead; that tensor is buckets x larger than the bias itself
    # (134 MB at 1024 positions) and its gradient matmul ran at a fraction
    # of the CPU's speed. The values are identical; the heads axis, the one
    # that is sharded, is untouched by the gather.
    bias = jnp.take(table, jnp.asarray(buckets), axis=1, mode="clip")
    return bias[None]  # [1, heads, query, key]

  def _row(self, table: Array, key_len: int, query_position: Array) -> Array:
    # Offsets key - query run from -(key_len - 1) to key_len - 1.
    offsets = np.arange(-(key_len - 1), key_len, dtype=np.int32)
    all_buckets = jnp.asarray(relative_position_bucket(
        offsets, self.bidirectional, self.num_buckets, self.max_distance))
    buckets = jax.lax.dynamic_slice_in_dim(
        all_buckets, key_len - 1 - query_position, key_len)
    return jnp.take(table, buckets, axis=1, mode="clip")[None, :, None, :]


@jax.custom_vjp
def softmax_attend(logits: Array, value: Array) -> Array:
  """softmax(logits) @ value, normalised after the matmul.

  `(exp(l - max) @ v) / sum(exp(l - max))` divides [query, kv] outputs
  instead of [query, key] weights: on the CPU the encoder attention's
  forward took 0.55-0.70 ms instead of 0.85-1.2 ms. Autodiff of that form
  is 1.5-2x slower, so the gradient is the usual softmax one (custom VJP).
  Dropout on the weights needs them normalised: callers with dropout use
  the plain form.
  """
  return _softmax_attend_fwd(logits, value)[0]


def _softmax_attend_fwd(logits: Array, value: Array):
  unnormalised = jnp.exp(logits - jnp.max(logits, axis=-1, keepdims=True))
  total = jnp.sum(unnormalised, axis=-1, keepdims=True)
  out = jnp.einsum("bhqk,bhkd->bhqd", unnormalised.astype(value.dtype), value,
                   preferred_element_type=jnp.float32)
  return (out / total).astype(value.dtype), (unnormalised, total, value)


def _softmax_attend_bwd(residuals, grad: Array) -> tuple[Array, Array]:
  unnormalised, total, value = residuals
  weights = unnormalised / total
  grad_weights = jnp.einsum("bhqd,bhkd->bhqk", grad, value,
                            preferred_element_type=jnp.float32)
  grad_value = jnp.einsum("bhqk,bhqd->bhkd", weights.astype(value.dtype),
                          grad).astype(value.dtype)
  grad_logits = weights * (grad_weights - jnp.sum(
      grad_weights * weights, axis=-1, keepdims=True))
  return grad_logits, grad_value


softmax_attend.defvjp(_softmax_attend_fwd, _softmax_attend_bwd)


# What an attention block keeps between decoding steps.
SELF_CACHE = "self"  # Keys/values of the tokens decoded so far.
CROSS_CACHE = "cross"  # Keys/values of the encoder output, projected once.


class MultiHeadAttention(nn.Module):
  """Bias-free multi-head attention with heads joined in the kernel.

  With `kv_cache` set, the block decodes incrementally: the first call (the
  cache is empty) creates the cache, and each later call takes one query
  position.
  """
  num_heads: int
  head_dim: int
  dropout_rate: float
  dtype: Any
  kv_cache: str | None = None  # None (training), SELF_CACHE or CROSS_CACHE.
  cache_length: int = 0  # Positions of a SELF_CACHE, fixed at its creation.
  cache_beams: int = 1  # Rows per input sharing a SELF_CACHE (beam search).

  @nn.compact
  def __call__(self, inputs_q: Array, inputs_kv: Array | None, bias: Array,
               deterministic: bool, position: Array | None = None) -> Array:
    """Attention of `inputs_q` over `inputs_kv` (None: over itself)."""
    joined = self.num_heads * self.head_dim
    query, key, value = self._project(inputs_q, inputs_kv)
    if self.kv_cache is not None:
      key, value = self._cached(key, value, position)
    # Beam search keeps one cross-attention cache per input, not per beam:
    # an input's beams then attend as extra query positions of its row.
    rows, query_length = query.shape[:2]
    beams = rows // key.shape[0]
    query = query.reshape((rows // beams, beams * query_length) +
                          query.shape[2:]).transpose(0, 2, 1, 3)
    # All three head-major, [batch, heads, length, kv]: both einsums are
    # then plain batched matmuls over (batch, heads). A query-major query
    # made XLA's CPU backend fall back to a naive loop for the several
    # query rows of beam search (5x slower), and training 10-20% slower.
    query = _constrain(query, ("batch", "heads", "length", "kv"))
    key = _constrain(key, ("batch", "heads", "length", "kv"))
    value = _constrain(value, ("batch", "heads", "length", "kv"))
    # Logits and softmax in float32 for stability under bfloat16.
    logits = jnp.einsum("bhqd,bhkd->bhqk", query, key,
                        preferred_element_type=jnp.float32)
    logits = logits + bias.astype(jnp.float32)
    if deterministic or self.dropout_rate == 0.0:
      out = softmax_attend(logits, value)
    else:
      weights = jax.nn.softmax(logits).astype(self.dtype)
      weights = nn.Dropout(self.dropout_rate, broadcast_dims=())(
          weights, deterministic=deterministic)
      out = jnp.einsum("bhqk,bhkd->bhqd", weights, value)
    out = _constrain(out, ("batch", "heads", "length", "kv"))
    out = out.transpose(0, 2, 1, 3).reshape((rows, query_length, joined))
    return Dense(inputs_q.shape[-1], ("joined_kv", "embed"), _kernel_init(),
                 dtype=self.dtype, name="out")(out)

  def _project(self, inputs_q: Array, inputs_kv: Array | None
               ) -> tuple[Array, Array, Array]:
    """Queries [batch, length, heads, kv]; keys and values head-major.

    Keys and values are kept head-major, [batch, heads, length, kv]: both
    attention matmuls then read them in place. Decoding caches keep this
    layout too, so no step re-lays out the cached keys (on the CPU that
    transpose cost more than the attention itself).
    """
    joined = self.num_heads * self.head_dim
    kernel = lambda name, init: Kernel(joined, ("embed", "joined_kv"), init,
                                       name=name)(inputs_q.shape[-1])
    # T5 folds 1/sqrt(head_dim) into the query initialisation.
    query_kernel = kernel("query", _kernel_init(1.0 / self.head_dim))
    key_kernel = kernel("key", _kernel_init())
    value_kernel = kernel("value", _kernel_init())
    split = lambda x: x.reshape(x.shape[:2] + (self.num_heads, self.head_dim))
    head_major = lambda x: split(x).transpose(0, 2, 1, 3)
    # A decoding step projects its one position in one matmul.
    matmuls = functools.partial(project, out_axis="joined_kv",
                                dtype=self.dtype,
                                fuse=self.kv_cache == SELF_CACHE)
    if inputs_kv is None:
      query, key, value = matmuls(inputs_q, [query_kernel, key_kernel,
                                             value_kernel])
      return split(query), head_major(key), head_major(value)
    query, = matmuls(inputs_q, [query_kernel])
    if (self.kv_cache == CROSS_CACHE and
        self.has_variable("cache", "cached_key")):
      # Projected once, when the cache was created.
      return (split(query), self.get_variable("cache", "cached_key"),
              self.get_variable("cache", "cached_value"))
    key, value = matmuls(inputs_kv, [key_kernel, value_kernel])
    return split(query), head_major(key), head_major(value)

  def _cached(self, key: Array, value: Array, position: Array | None
              ) -> tuple[Array, Array]:
    """Keys and values to attend over, reading and updating the cache.

    The first call stores them: the projected encoder output for cross
    attention, `cache_length` zero positions for self attention (its own
    output is discarded). Later self attention calls write their one
    position and read all positions; the causal bias hides those not
    decoded yet.

    In beam search an input's beams share one self-attention cache row,
    [inputs, heads, beams * length, kv]: beam j writes position t at
    j * length + t and never moves it. A beam's history is spread over the
    slots of its ancestors; the decoder's bias lets each beam see exactly
    those (see `Decoder._step_biases`), so no step gathers the caches.
    """
    if not self.has_variable("cache", "cached_key"):
      if self.kv_cache == CROSS_CACHE:
        keep = lambda x: x
      else:
        keep = lambda x: jnp.zeros(
            (x.shape[0] // self.cache_beams, x.shape[1],
             self.cache_beams * self.cache_length) + x.shape[3:], x.dtype)
      self.variable("cache", "cached_key", keep, key)
      self.variable("cache", "cached_value", keep, value)
      return key, value
    if self.kv_cache == CROSS_CACHE:
      return key, value
    cached_key = self.variable("cache", "cached_key")
    cached_value = self.variable("cache", "cached_value")
    cached_key.value = _write_position(cached_key.value, key, position)
    cached_value.value = _write_position(cached_value.value, value, position)
    return cached_key.value, cached_value.value


def _write_position(cache: Array, new: Array, position: Array) -> Array:
  """Writes new [rows, heads, 1, kv] at `position` of every row's slots in
  cache [inputs, heads, beams * length, kv] (beams = rows / inputs)."""
  inputs, heads, slots, kv = cache.shape
  beams = new.shape[0] // inputs
  new = new.reshape(inputs, beams, heads, 1, kv).transpose(0, 2, 1, 3, 4)
  grouped = cache.reshape(inputs, heads, beams, slots // beams, kv)
  grouped = jax.lax.dynamic_update_slice(
      grouped, new.astype(cache.dtype), (0, 0, 0, position, 0))
  return grouped.reshape(cache.shape)


class GatedMlp(nn.Module):
  """wo(act(x wi_0) * (x wi_1)), with dropout on the hidden activations."""
  mlp_dim: int
  activations: Sequence[str]
  dropout_rate: float
  dtype: Any
  fuse_inputs: bool = False  # One matmul for wi_0 and wi_1 (decoding).

  @nn.compact
  def __call__(self, x: Array, deterministic: bool) -> Array:
    init = _kernel_init(truncated=True)
    names = (["wi"] if len(self.activations) == 1 else
             [f"wi_{i}" for i in range(len(self.activations))])
    kernels = [Kernel(self.mlp_dim, ("embed", "mlp"), init, name=name)(
        x.shape[-1]) for name in names]
    hidden = None
    for activation, h in zip(self.activations, project(
        x, kernels, "mlp", self.dtype, fuse=self.fuse_inputs)):
      if activation == "gelu":
        h = nn.gelu(h, approximate=True)
      elif activation == "relu":
        h = nn.relu(h)
      hidden = h if hidden is None else hidden * h
    hidden = _constrain(hidden, ("batch", "length", "mlp"))
    hidden = nn.Dropout(self.dropout_rate, broadcast_dims=(-2,))(
        hidden, deterministic=deterministic)
    return Dense(x.shape[-1], ("mlp", "embed"), init, self.dtype,
                 name="wo")(hidden)


def _residual_dropout(config: T5Config, x: Array, deterministic: bool):
  # T5X drops whole feature vectors along the length axis for residuals.
  return nn.Dropout(config.dropout_rate, broadcast_dims=(-2,))(
      x, deterministic=deterministic)


def _attention(config: T5Config, name: str, kv_cache: str | None = None,
               cache_length: int = 0, cache_beams: int = 1
               ) -> MultiHeadAttention:
  return MultiHeadAttention(config.num_heads, config.head_dim,
                            config.dropout_rate, config.activation_dtype,
                            kv_cache, cache_length, cache_beams, name=name)


def _mlp(config: T5Config, fuse_inputs: bool = False) -> GatedMlp:
  return GatedMlp(config.mlp_dim, tuple(config.mlp_activations),
                  config.dropout_rate, config.activation_dtype, fuse_inputs,
                  name="mlp")


def _norm(config: T5Config, name: str) -> RmsNorm:
  return RmsNorm(config.layer_norm_epsilon, config.activation_dtype, name=name)


class EncoderLayer(nn.Module):
  """Pre-norm self-attention and MLP blocks with residuals."""
  config: T5Config
  deterministic: bool

  @nn.compact
  def __call__(self, x: Array, bias: Array):
    cfg, deterministic = self.config, self.deterministic
    y = _norm(cfg, "pre_attention_layer_norm")(x)
    y = _attention(cfg, "attention")(y, None, bias, deterministic)
    x = x + _residual_dropout(cfg, y, deterministic)
    y = _norm(cfg, "pre_mlp_layer_norm")(x)
    y = _mlp(cfg)(y, deterministic)
    x = x + _residual_dropout(cfg, y, deterministic)
    return _constrain(x, ("batch", "length", "embed")), None


class DecoderLayer(nn.Module):
  """Pre-norm causal self-attention, cross-attention and MLP blocks."""
  config: T5Config
  deterministic: bool
  decode: bool = False  # Incremental decoding with key/value caches.
  cache_length: int = 0  # Self-attention cache positions (cache creation).
  cache_beams: int = 1  # Rows per input (beam search; cache creation).

  @nn.compact
  def __call__(self, x: Array, encoded: Array, self_bias: Array,
               cross_bias: Array, position: Array | None = None):
    cfg, deterministic = self.config, self.deterministic
    self_cache, cross_cache = ((SELF_CACHE, CROSS_CACHE) if self.decode
                               else (None, None))
    y = _norm(cfg, "pre_self_attention_layer_norm")(x)
    y = _attention(cfg, "self_attention", self_cache, self.cache_length,
                   self.cache_beams)(y, None, self_bias, deterministic,
                                     position)
    x = x + _residual_dropout(cfg, y, deterministic)
    y = _norm(cfg, "pre_cross_attention_layer_norm")(x)
    y = _attention(cfg, "encoder_decoder_attention", cross_cache)(
        y, encoded, cross_bias, deterministic)
    x = x + _residual_dropout(cfg, y, deterministic)
    y = _norm(cfg, "pre_mlp_layer_norm")(x)
    y = _mlp(cfg, fuse_inputs=self.decode)(y, deterministic)
    x = x + _residual_dropout(cfg, y, deterministic)
    return _constrain(x, ("batch", "length", "embed")), None


def _run_layers(config: T5Config, layer_cls: type[nn.Module], num_layers: int,
                deterministic: bool, x: Array, *args, **layer_attrs) -> Array:
  """Applies `num_layers` blocks: unrolled (T5X tree) or with nn.scan.

  Unrolled blocks are named `layers_<i>` as in T5X; scanned blocks share one
  `layers` entry whose parameters (and decoding caches) have a leading
  `layers` axis. `layer_attrs` go to every block (decoding options);
  decoding computes no gradients, so it is never remat'ed.
  """
  if config.remat_policy != "none" and not layer_attrs.get("decode"):
    layer_cls = nn.remat(layer_cls,
                         policy=REMAT_POLICIES[config.remat_policy],
                         prevent_cse=not config.scan_layers)
  if not config.scan_layers:
    for i in range(num_layers):
      x, _ = layer_cls(config, deterministic, **layer_attrs,
                       name=f"layers_{i}")(x, *args)
    return x
  scanned = nn.scan(
      layer_cls,
      variable_axes={"params": 0, "cache": 0},
      split_rngs={"params": True, "dropout": True},
      in_axes=(nn.broadcast,) * len(args),
      length=num_layers,
      metadata_params={nn.PARTITION_NAME: "layers"})
  x, _ = scanned(config, deterministic, **layer_attrs, name="layers")(x, *args)
  return x


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _repeat_rows(x: Array, rows: int) -> Array:
  """Broadcasts x's leading axis of 1 to `rows` (the batch).

  Its gradient, the sum over the rows, goes through
  `reductions.sum_over`: XLA's CPU reduction over that leading axis was
  5 ms of a tiny model's 77 ms train step (the relative-position bias).
  """
  return jnp.broadcast_to(x, (rows,) + x.shape[1:])


def _repeat_rows_fwd(x: Array, rows: int) -> tuple[Array, None]:
  return _repeat_rows(x, rows), None


def _repeat_rows_bwd(rows: int, _, grad: Array) -> tuple[Array]:
  del rows  # The sum's length is grad's leading axis.
  return (reductions.sum_over(grad, 0)[None],)


_repeat_rows.defvjp(_repeat_rows_fwd, _repeat_rows_bwd)


def _mask_bias(mask: Array) -> Array:
  """[batch, q, k] boolean mask -> additive [batch, 1, q, k] bias."""
  return jnp.where(mask, 0.0, MASK_BIAS)[:, None].astype(jnp.float32)


def _pair_mask(query_valid: Array, key_valid: Array) -> Array:
  return query_valid[:, :, None] & key_valid[:, None, :]


def _segment_mask(query_segments: Array | None,
                  key_segments: Array | None) -> Array | bool:
  """Packed sequences attend only within their own segment."""
  if query_segments is None:
    return True
  return query_segments[:, :, None] == key_segments[:, None, :]


class Encoder(nn.Module):
  """Embedded tokens -> encoder stack -> final norm."""
  config: T5Config
  embedder: nn.Module

  @nn.compact
  def __call__(self, tokens: Array, segment_ids: Array | None,
               deterministic: bool) -> Array:
    cfg = self.config
    valid = tokens > 0
    mask = _pair_mask(valid, valid) & _segment_mask(segment_ids, segment_ids)
    length = tokens.shape[1]
    relpos = RelativePositionBias(
        cfg.relative_attention_num_buckets, cfg.relative_attention_max_distance,
        cfg.num_heads, bidirectional=True, dtype=cfg.activation_dtype,
        name="relpos_bias")(length, length)
    bias = _mask_bias(mask) + _repeat_rows(relpos, tokens.shape[0])
    x = self.embedder(tokens)
    x = _residual_dropout(cfg, x, deterministic)
    x = _constrain(x, ("batch", "length", "embed"))
    x = _run_layers(cfg, EncoderLayer, cfg.num_encoder_layers, deterministic,
                    x, bias)
    x = _norm(cfg, "encoder_norm")(x)
    return _residual_dropout(cfg, x, deterministic)


class Decoder(nn.Module):
  """Embedded targets -> causal decoder stack -> norm -> vocabulary logits.

  Teacher-forced by default. With `decode=True` it decodes incrementally:
  the first call creates the key/value caches for `cache_length` positions
  (and a `position` counter); each later call takes the previous token of
  every row and returns the logits of the next one.
  """
  config: T5Config
  embedder: nn.Module

  @nn.compact
  def __call__(self, encoded: Array, encoder_tokens: Array,
               decoder_input_tokens: Array, decoder_target_tokens: Array,
               encoder_segment_ids: Array | None,
               decoder_segment_ids: Array | None,
               deterministic: bool, decode: bool = False,
               cache_length: int = 0) -> Array:
    cfg = self.config
    relpos = RelativePositionBias(
        cfg.relative_attention_num_buckets, cfg.relative_attention_max_distance,
        cfg.num_heads, bidirectional=False, dtype=cfg.activation_dtype,
        name="relpos_bias")
    position = None
    # Rows per input: beam search decodes an input's beams side by side.
    beams = decoder_input_tokens.shape[0] // encoder_tokens.shape[0]
    if decode and self.has_variable("cache", "position"):
      self_bias, cross_bias, position = self._step_biases(relpos,
                                                          encoder_tokens)
    else:
      if decode:  # The cache-creating call.
        self.variable("cache", "position", jnp.zeros, (), jnp.int32)
        if beams > 1:
          # Which slot row of its input's shared cache holds each position
          # of every beam (see MultiHeadAttention._cached).
          self.variable("cache", "ancestry", jnp.zeros,
                        (encoder_tokens.shape[0], beams, cache_length),
                        jnp.int32)
      self_bias, cross_bias = self._full_biases(
          relpos, encoder_tokens, decoder_target_tokens, encoder_segment_ids,
          decoder_segment_ids)
    y = self.embedder(decoder_input_tokens)
    y = _residual_dropout(cfg, y, deterministic)
    y = _constrain(y, ("batch", "length", "embed"))
    layer_args = (encoded, self_bias, cross_bias)
    if position is not None:
      layer_args += (position,)
    decoding = (dict(decode=True, cache_length=cache_length,
                     cache_beams=beams) if decode else {})
    y = _run_layers(cfg, DecoderLayer, cfg.num_decoder_layers, deterministic,
                    y, *layer_args, **decoding)
    y = _norm(cfg, "decoder_norm")(y)
    y = _residual_dropout(cfg, y, deterministic)
    if cfg.logits_via_embedding:
      logits = self.embedder.attend(y) / jnp.sqrt(y.shape[-1]).astype(y.dtype)
    else:
      logits = Dense(cfg.vocab_size, ("embed", "vocab"),
                     _kernel_init(truncated=True), cfg.activation_dtype,
                     name="logits_dense")(y)
    return _constrain(logits, ("batch", "length", "vocab"))

  def _full_biases(self, relpos: nn.Module, encoder_tokens: Array,
                   decoder_target_tokens: Array,
                   encoder_segment_ids: Array | None,
                   decoder_segment_ids: Array | None) -> tuple[Array, Array]:
    length = decoder_target_tokens.shape[1]
    # T5X masks decoder positions by their *target* token being non-pad.
    target_valid = decoder_target_tokens > 0
    causal = jnp.tril(jnp.ones((length, length), bool))[None]
    self_mask = (_pair_mask(target_valid, target_valid) & causal &
                 _segment_mask(decoder_segment_ids, decoder_segment_ids))
    # Rows of beams sharing their input's encoder row attend as one row
    # (see MultiHeadAttention); with one row per input this is a no-op.
    beams = target_valid.shape[0] // encoder_tokens.shape[0]
    grouped_valid = target_valid.reshape(encoder_tokens.shape[0],
                                         beams * length)
    cross_mask = (_pair_mask(grouped_valid, encoder_tokens > 0) &
                  _segment_mask(decoder_segment_ids, encoder_segment_ids))
    return (_mask_bias(self_mask) + _repeat_rows(relpos(length, length),
                                                 self_mask.shape[0]),
            _mask_bias(cross_mask))

  def _step_biases(self, relpos: nn.Module, encoder_tokens: Array
                   ) -> tuple[Array, Array, Array]:
    """Biases of one decoding step, and its position (then advanced)."""
    counter = self.variable("cache", "position")
    position = counter.value
    counter.value = position + 1
    # The length of the self-attention cache, set by the creating call.
    length = self._cache_length()
    decoded = jnp.arange(length) <= position
    relpos_row = relpos(1, length, position)  # [1, heads, 1, length]
    cross_bias = _mask_bias((encoder_tokens > 0)[:, None, :])
    if not self.has_variable("cache", "ancestry"):
      return (_mask_bias(decoded[None, None, :]) + relpos_row, cross_bias,
              position)
    # Beam search: beam j writes this position into its own slot row j; it
    # sees slot row i at position t where its ancestor at t was row i.
    ancestry = self.variable("cache", "ancestry")
    inputs, beams, _ = ancestry.value.shape
    ancestry.value = jnp.where(jnp.arange(length) == position,
                               jnp.arange(beams)[None, :, None],
                               ancestry.value)
    visible = ((ancestry.value[:, :, None, :] ==
                jnp.arange(beams)[None, None, :, None]) & decoded)
    self_bias = (_mask_bias(visible.reshape(inputs, beams, beams * length)) +
                 jnp.tile(relpos_row, (1, 1, 1, beams)))
    return self_bias, cross_bias, position

  def _cache_length(self) -> int:
    cache = self.variables["cache"]
    if "ancestry" in cache:
      return cache["ancestry"].shape[-1]
    layer = cache["layers"] if "layers" in cache else cache["layers_0"]
    key = layer["self_attention"]["cached_key"]
    return key.shape[-2]  # [(layers,) batch, heads, length, kv]


class Transformer(nn.Module):
  """The encoder-decoder: `__call__` gives teacher-forced logits."""
  config: T5Config

  def setup(self):
    cfg = self.config
    self.token_embedder = Embed(cfg.vocab_size, cfg.emb_dim,
                                cfg.activation_dtype)
    self.encoder = Encoder(cfg, self.token_embedder)
    self.decoder = Decoder(cfg, self.token_embedder)

  def encode(self, encoder_input_tokens: Array,
             encoder_segment_ids: Array | None = None,
             deterministic: bool = True) -> Array:
    return self.encoder(encoder_input_tokens, encoder_segment_ids,
                        deterministic)

  def decode(self, encoded: Array, encoder_input_tokens: Array,
             decoder_input_tokens: Array, decoder_target_tokens: Array,
             encoder_segment_ids: Array | None = None,
             decoder_segment_ids: Array | None = None,
             deterministic: bool = True) -> Array:
    return self.decoder(encoded, encoder_input_tokens, decoder_input_tokens,
                        decoder_target_tokens, encoder_segment_ids,
                        decoder_segment_ids, deterministic)

  def init_decoding_cache(self, encoded: Array, encoder_input_tokens: Array,
                          max_decode_length: int, beams: int = 1) -> Array:
    """Creates the caches (call with mutable=['cache']); logits unused.

    Runs one dummy decoder step: it sizes the self-attention caches for
    `max_decode_length` positions of `beams` rows per input and projects the
    encoder output for cross attention, once for the whole generation and
    shared by an input's beams (rows i * beams ... (i + 1) * beams - 1).
    """
    dummy = jnp.ones((encoded.shape[0] * beams, 1), jnp.int32)
    return self.decoder(encoded, encoder_input_tokens, dummy, dummy, None,
                        None, deterministic=True, decode=True,
                        cache_length=max_decode_length)

  def decode_step(self, encoded: Array, encoder_input_tokens: Array,
                  tokens: Array) -> Array:
    """Logits [batch, 1, vocab] for the next position, given the previous
    token of every row [batch, 1]; advances the cache (mutable=['cache'])."""
    return self.decoder(encoded, encoder_input_tokens, tokens, tokens, None,
                        None, deterministic=True, decode=True)

  def __call__(self, encoder_input_tokens: Array, decoder_input_tokens: Array,
               decoder_target_tokens: Array,
               encoder_segment_ids: Array | None = None,
               decoder_segment_ids: Array | None = None,
               deterministic: bool = True) -> Array:
    encoded = self.encode(encoder_input_tokens, encoder_segment_ids,
                          deterministic)
    return self.decode(encoded, encoder_input_tokens, decoder_input_tokens,
                       decoder_target_tokens, encoder_segment_ids,
                       decoder_segment_ids, deterministic)

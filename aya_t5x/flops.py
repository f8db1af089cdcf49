"""Analytic FLOPs of one encoder-decoder train step (matmuls only).

Why a formula when the compiler also counts: XLA's cost analysis counts the
body of a `while` loop (our `nn.scan` over layers, the microbatch scan) once,
and it counts what the remat policy recomputes. The formula counts what the
model needs, once per token, so `compiler / analytic` is the recompute
overhead of the remat policy (see `aya_t5x.precompile`).

Counted: every matmul of the T5 v1.1 block (2 FLOPs per multiply-add), the
attention score and value products over the full (padded, packed) sequence,
the relative-position one-hot products and the output head. Not counted:
norms, softmax, activations, the optimizer update (elementwise work, under
1% at mT5 sizes). The backward pass is twice the forward pass.
"""

import dataclasses

from aya_t5x import network

# Forward + backward (input and weight gradients) per forward FLOP.
TRAIN_MULTIPLIER = 3


@dataclasses.dataclass(frozen=True)
class StepFlops:
  """FLOPs of one train step over the whole global batch."""
  encoder_forward: float  # Embedding lookups are free; the layers are not.
  decoder_forward: float  # Decoder layers including cross attention.
  logits_forward: float  # The [embed, vocab] output head.

  @property
  def forward(self) -> float:
    return self.encoder_forward + self.decoder_forward + self.logits_forward

  @property
  def train_step(self) -> float:
    """What one optimizer step needs without any recomputation."""
    return TRAIN_MULTIPLIER * self.forward

  @property
  def full_remat_train_step(self) -> float:
    """`full` remat recomputes every layer's forward pass once more."""
    return self.train_step + self.encoder_forward + self.decoder_forward


def _matmul(tokens: float, fan_in: int, fan_out: int) -> float:
  return 2.0 * tokens * fan_in * fan_out


def _attention_products(queries: float, keys: int, joined: int) -> float:
  """QK^T and weights @ V for `queries` query tokens over `keys` keys."""
  return 2 * _matmul(queries, joined, keys)


def _relpos_bias(batch_free_heads: int, length: int, buckets: int) -> float:
  """The one-hot einsum that expands the bucket table (once per stack)."""
  return 2.0 * batch_free_heads * length * length * buckets


def _mlp(cfg: network.T5Config, tokens: float) -> float:
  return (len(cfg.mlp_activations) + 1) * _matmul(tokens, cfg.emb_dim,
                                                  cfg.mlp_dim)


def encoder_layer(cfg: network.T5Config, batch: int, length: int) -> float:
  """Forward FLOPs of one encoder block over `batch` rows."""
  tokens = float(batch * length)
  joined = cfg.num_heads * cfg.head_dim
  return (4 * _matmul(tokens, cfg.emb_dim, joined)
          + _attention_products(tokens, length, joined) + _mlp(cfg, tokens))


def decoder_layer(cfg: network.T5Config, batch: int, encoder_length: int,
                  decoder_length: int) -> float:
  """Forward FLOPs of one decoder block (self, cross attention, MLP)."""
  tokens = float(batch * decoder_length)
  encoder_tokens = float(batch * encoder_length)
  joined = cfg.num_heads * cfg.head_dim
  self_attention = (4 * _matmul(tokens, cfg.emb_dim, joined)
                    + _attention_products(tokens, decoder_length, joined))
  cross_attention = (2 * _matmul(tokens, cfg.emb_dim, joined)
                     + 2 * _matmul(encoder_tokens, cfg.emb_dim, joined)
                     + _attention_products(tokens, encoder_length, joined))
  return self_attention + cross_attention + _mlp(cfg, tokens)


def train_step_flops(cfg: network.T5Config, batch: int, encoder_length: int,
                     decoder_length: int) -> StepFlops:
  """Analytic FLOPs of one step over a global batch of `batch` rows."""
  buckets = cfg.relative_attention_num_buckets
  encoder = (cfg.num_encoder_layers * encoder_layer(cfg, batch,
                                                    encoder_length)
             + _relpos_bias(cfg.num_heads, encoder_length, buckets))
  decoder = (cfg.num_decoder_layers * decoder_layer(
      cfg, batch, encoder_length, decoder_length)
             + _relpos_bias(cfg.num_heads, decoder_length, buckets))
  logits = _matmul(float(batch * decoder_length), cfg.emb_dim, cfg.vocab_size)
  return StepFlops(encoder, decoder, logits)


def parameter_count(cfg: network.T5Config) -> int:
  """Parameters of the network (untied head), for the 6*N*D rule of thumb."""
  d, joined = cfg.emb_dim, cfg.num_heads * cfg.head_dim
  mlp = (len(cfg.mlp_activations) + 1) * d * cfg.mlp_dim
  attention = 4 * d * joined
  encoder = cfg.num_encoder_layers * (attention + mlp + 2 * d)
  decoder = cfg.num_decoder_layers * (2 * attention + mlp + 3 * d)
  relpos = 2 * cfg.num_heads * cfg.relative_attention_num_buckets
  head = 0 if cfg.logits_via_embedding else d * cfg.vocab_size
  return cfg.vocab_size * d + encoder + decoder + 2 * d + relpos + head

"""The mT5 network: sizes of the published models and T5X-exact math."""

import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aya_t5x import model as model_lib
from aya_t5x import network
from aya_t5x import partitioning
from tests import golden

# mT5 sizes as published (Xue et al. 2021, Table 1): 300M .. 13B.
PUBLISHED = {"small": 300e6, "base": 580e6, "large": 1.2e9, "xl": 3.7e9,
             "xxl": 13e9}
SIZES = {  # emb, heads, head_dim, mlp, layers (spec section 1)
    "small": (512, 6, 64, 1024, 8),
    "base": (768, 12, 64, 2048, 12),
    "large": (1024, 16, 64, 2816, 24),
    "xl": (2048, 32, 64, 5120, 24),
    "xxl": (4096, 64, 64, 10240, 24),
}


def _config(size: str, **overrides) -> network.T5Config:
  emb, heads, head_dim, mlp, layers = SIZES[size]
  return network.T5Config(vocab_size=250112, emb_dim=emb, num_heads=heads,
                          num_encoder_layers=layers, num_decoder_layers=layers,
                          head_dim=head_dim, mlp_dim=mlp, **overrides)


def _count(config: network.T5Config) -> int:
  """Parameters from shapes alone (jax.eval_shape: no memory used)."""
  shapes = nn.meta.unbox(partitioning.abstract_boxed_params(
      model_lib.EncoderDecoderModel(config)))
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes))


def _transformers_count(size: str) -> int:
  """The same architecture counted by transformers on the meta device."""
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  emb, heads, head_dim, mlp, layers = SIZES[size]
  config = transformers.MT5Config(
      vocab_size=250112, d_model=emb, d_kv=head_dim, d_ff=mlp,
      num_layers=layers, num_decoder_layers=layers, num_heads=heads,
      feed_forward_proj="gated-gelu", tie_word_embeddings=False)
  with torch.device("meta"):
    hf = transformers.MT5ForConditionalGeneration(config)
  count = sum(p.numel() for p in hf.parameters())
  if hf.lm_head.weight is hf.shared.weight:  # transformers 5 ties on build.
    count += hf.lm_head.weight.numel()
  return count


@pytest.mark.parametrize("size", list(SIZES))
def test_parameter_counts_match_published_mt5(size):
  ours = _count(_config(size))
  assert ours == _transformers_count(size)
  assert abs(ours - PUBLISHED[size]) / PUBLISHED[size] < 0.035, ours


def test_mt5_xxl_has_about_12_9b_parameters():
  assert round(_count(_config("xxl")) / 1e9, 1) == 12.9


def test_scanned_network_has_same_parameter_count():
  assert (_count(_config("small", scan_layers=True, remat_policy="full")) ==
          _count(_config("small")))


def test_relative_position_buckets_follow_t5x_definition():
  relative = np.arange(-300, 300)[None, :]
  enc = network.relative_position_bucket(relative, True, 32, 128)[0]
  dec = network.relative_position_bucket(relative, False, 32, 128)[0]
  at = lambda r: int(np.where(relative[0] == r)[0][0])
  # Encoder: key after query goes to the upper half; exact below 8.
  assert enc[at(3)] == 16 + 3 and enc[at(-3)] == 3
  assert enc[at(-1000 // 4)] == 15 and enc[at(299)] == 31
  # Decoder: future keys all map to bucket 0; exact below 16; log above.
  assert dec[at(5)] == 0 and dec[at(-15)] == 15
  assert dec[at(-16)] == 16 and dec[at(-299)] == 31
  assert np.all(np.diff(dec[at(-299):at(0) + 1][::-1]) >= 0)


def test_padding_does_not_change_logits_of_real_tokens():
  config = network.T5Config(vocab_size=64, emb_dim=16, num_heads=2,
                            num_encoder_layers=1, num_decoder_layers=1,
                            head_dim=8, mlp_dim=32, dtype="float32")
  m = model_lib.EncoderDecoderModel(config)
  params = nn.meta.unbox(m.init_params(jax.random.PRNGKey(1), {
      k: (1, 4) for k in ("encoder_input_tokens", "decoder_input_tokens",
                          "decoder_target_tokens")}))
  short = {"encoder_input_tokens": jnp.array([[5, 6, 1]]),
           "decoder_input_tokens": jnp.array([[0, 7]]),
           "decoder_target_tokens": jnp.array([[7, 1]])}
  padded = {k: jnp.pad(v, ((0, 0), (0, 3))) for k, v in short.items()}
  np.testing.assert_allclose(m.logits(params, padded)[:, :2],
                             m.logits(params, short), atol=1e-5)


def test_golden_step_one_loss_equals_upstream_t5x():
  params = golden.initial_params()
  batch = golden.first_batch()
  for factor, expected in ((None, golden.STEP1_LOSS),
                           ("AVERAGE_PER_SEQUENCE", golden.STEP1_LOSS_AVG)):
    m = model_lib.EncoderDecoderModel(
        golden.CONFIG, model_lib.LossConfig(loss_normalizing_factor=factor))
    weights, denominator = model_lib.loss_weights_and_denominator(
        batch, m.loss_config.normalizing_factor)
    loss, _ = m.loss_and_metrics(params, batch, weights, denominator, None)
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_softmax_attend_equals_softmax_then_matmul_in_value_and_gradient():
  rng = np.random.default_rng(0)
  logits = jnp.asarray(rng.normal(scale=3.0, size=(2, 3, 5, 7)), jnp.float32)
  value = jnp.asarray(rng.normal(size=(2, 3, 7, 4)), jnp.float32)
  probe = jnp.asarray(rng.normal(size=(2, 3, 5, 4)), jnp.float32)
  plain = lambda l, v: jnp.einsum("bhqk,bhkd->bhqd", jax.nn.softmax(l), v)
  loss = lambda fn: lambda l, v: jnp.sum(probe * jnp.tanh(fn(l, v)))
  np.testing.assert_allclose(network.softmax_attend(logits, value),
                             plain(logits, value), rtol=1e-5, atol=1e-6)
  ours = jax.grad(loss(network.softmax_attend), argnums=(0, 1))(logits, value)
  theirs = jax.grad(loss(plain), argnums=(0, 1))(logits, value)
  for got, expected in zip(ours, theirs):
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_repeated_rows_have_the_gradient_of_a_broadcast():
  x = jnp.arange(12.0).reshape(1, 3, 4)
  weights = jnp.linspace(-1.0, 2.0, 5 * 12).reshape(5, 3, 4)
  plain = lambda v: jnp.sum(weights * jnp.broadcast_to(v, (5, 3, 4)))
  ours = lambda v: jnp.sum(weights * network._repeat_rows(v, 5))
  np.testing.assert_allclose(jax.grad(ours)(x), jax.grad(plain)(x),
                             rtol=1e-6)
  np.testing.assert_array_equal(network._repeat_rows(x, 5),
                                jnp.broadcast_to(x, (5, 3, 4)))

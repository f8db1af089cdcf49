"""The training loss and token accuracy against optax's reference math."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from aya_t5x import model as model_lib


def _logits_and_targets(seed=0, shape=(3, 5, 37)):
  rng = np.random.default_rng(seed)
  logits = jnp.asarray(rng.normal(0, 3, shape), jnp.float32)
  targets = jnp.asarray(rng.integers(0, shape[-1], shape[:-1]), jnp.int32)
  return logits, targets


def _reference_loss(logits, targets, z_loss):
  log_z = jax.nn.logsumexp(logits, axis=-1)
  return (optax.softmax_cross_entropy_with_integer_labels(logits, targets) +
          z_loss * jnp.square(log_z))


def test_cross_entropy_and_its_gradient_match_optax():
  logits, targets = _logits_and_targets()
  ours = lambda x: model_lib.cross_entropy_with_z_loss(x, targets, 1e-4)[0]
  theirs = lambda x: _reference_loss(x, targets, 1e-4)
  np.testing.assert_allclose(ours(logits), theirs(logits), rtol=1e-6)
  weights = jnp.linspace(0.1, 1.0, targets.size).reshape(targets.shape)
  grad = lambda f: jax.grad(lambda x: jnp.sum(f(x) * weights))(logits)
  np.testing.assert_allclose(grad(ours), grad(theirs), rtol=1e-5, atol=1e-7)


def test_label_smoothing_matches_optax_smoothed_targets():
  logits, targets = _logits_and_targets(seed=1)
  smoothing = 0.1
  vocab = logits.shape[-1]
  low = smoothing / (vocab - 1)
  soft = jax.nn.one_hot(targets, vocab) * (1 - smoothing - low) + low
  entropy = -jnp.sum(soft * jnp.log(soft), axis=-1)
  expected = optax.softmax_cross_entropy(logits, soft) - entropy
  ours, _ = model_lib.cross_entropy_with_z_loss(logits, targets, 0.0,
                                                smoothing)
  np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)


def test_correct_predictions_agree_with_argmax():
  logits, _ = _logits_and_targets(seed=2)
  best = jnp.argmax(logits, axis=-1)
  wrong = (best + 1) % logits.shape[-1]
  np.testing.assert_array_equal(
      model_lib.correct_predictions(logits, best), np.ones(best.shape))
  np.testing.assert_array_equal(
      model_lib.correct_predictions(logits, wrong), np.zeros(best.shape))

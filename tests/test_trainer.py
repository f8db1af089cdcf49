"""The partitioned train step: mesh invariance and gradient accumulation."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aya_t5x import checkpoints
from aya_t5x import model as model_lib
from aya_t5x import network
from aya_t5x import optim
from aya_t5x import partitioning
from aya_t5x import trainer as trainer_lib
from tests import golden

TINY = network.T5Config(vocab_size=128, emb_dim=32, num_heads=4,
                        num_encoder_layers=2, num_decoder_layers=2,
                        head_dim=8, mlp_dim=64, dtype="float32")


def random_batches(n: int, batch: int = 8, length: int = 12, seed: int = 0):
  """Batches with variable-length padded rows, like a real feature converter."""
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(n):
    enc = rng.integers(2, TINY.vocab_size, (batch, length))
    tgt = rng.integers(2, TINY.vocab_size, (batch, length))
    for row in range(batch):
      enc[row, rng.integers(3, length):] = 0
      tgt[row, rng.integers(2, length):] = 0
    dec_in = np.concatenate([np.zeros((batch, 1), int), tgt[:, :-1]], 1)
    out.append({"encoder_input_tokens": enc, "decoder_target_tokens": tgt,
                "decoder_input_tokens": dec_in * (tgt > 0),
                "decoder_loss_weights": (tgt > 0).astype(np.int32)})
  return out


def make_trainer(num_partitions=1, devices=None, microbatches=1,
                 config=TINY, factor="AVERAGE_PER_SEQUENCE", param_dims=1):
  m = model_lib.EncoderDecoderModel(
      config, model_lib.LossConfig(loss_normalizing_factor=factor))
  partitioner = partitioning.Partitioner(
      partitioning.PartitioningConfig(
          num_partitions=num_partitions,
          parameter_partitioning_dims=param_dims), devices)
  return trainer_lib.Trainer(m, optim.Adafactor(1e-2), partitioner,
                             trainer_lib.TrainerConfig(
                                 num_microbatches=microbatches, seed=3))


@functools.lru_cache(maxsize=None)
def initial_params(config=TINY):
  """One random init shared by every run (init compiles slowly on CPU)."""
  trainer = make_trainer(1, jax.devices()[:1], config=config)
  return jax.device_get(trainer.init_state()["params"])


def run_steps(trainer, batches):
  plain = network.T5Config(**{**trainer.model.config.__dict__,
                              "dropout_rate": 0.0})
  state = trainer.state_from_params(initial_params(plain))
  losses = []
  for batch in batches:
    global_batch = {k: jax.device_put(v, trainer.partitioner.batch_sharding())
                    for k, v in batch.items()}
    state, metrics = trainer.train_step(state, global_batch)
    losses.append(float(metrics["loss"]))
  return losses, jax.device_get(state["params"])


def assert_same_params(a, b, atol=1e-5):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(x, y, atol=atol, rtol=1e-5)


def test_losses_and_params_are_mesh_invariant_with_dropout():
  assert jax.device_count() == 8, "conftest sets 8 host CPU devices"
  config = network.T5Config(**{**TINY.__dict__, "dropout_rate": 0.1})
  batches = random_batches(5)
  reference_losses, reference_params = run_steps(
      make_trainer(1, jax.devices()[:1], config=config), batches)
  for data, model in ((8, 1), (4, 2), (2, 4)):
    trainer = make_trainer(model, config=config)
    assert dict(trainer.partitioner.mesh.shape) == {"data": data,
                                                    "model": model}
    losses, params = run_steps(trainer, batches)
    np.testing.assert_allclose(losses, reference_losses, rtol=1e-5)
    assert_same_params(params, reference_params)


def test_parameter_sharding_over_data_gives_same_losses():
  batches = random_batches(3)
  reference, _ = run_steps(make_trainer(1, jax.devices()[:1]), batches)
  trainer = make_trainer(2, param_dims=2)
  spec = trainer.state_shardings()["params"]["token_embedder"]["embedding"]
  assert spec.spec == jax.sharding.PartitionSpec("model", "data")
  losses, _ = run_steps(trainer, batches)
  np.testing.assert_allclose(losses, reference, rtol=1e-5)


@pytest.mark.parametrize("factor,microbatches", [
    ("AVERAGE_PER_SEQUENCE", (2, 4)), (None, (2,))])
def test_microbatches_give_the_same_update_as_one_batch(factor, microbatches):
  batches = random_batches(3)
  full_losses, full_params = run_steps(make_trainer(2, factor=factor), batches)
  for k in microbatches:
    losses, params = run_steps(make_trainer(2, microbatches=k, factor=factor),
                               batches)
    np.testing.assert_allclose(losses, full_losses, rtol=1e-5)
    assert_same_params(params, full_params)


def test_scanned_layers_train_like_unrolled_layers():
  batches = random_batches(3)
  unrolled = make_trainer(2)
  scanned = make_trainer(2, config=network.T5Config(
      **{**TINY.__dict__, "scan_layers": True, "remat_policy": "full"}))
  losses_a, params_a = run_steps(unrolled, batches)
  # Same initial values: stack the unrolled initial layers for the scan.
  state = scanned.state_from_params(_stack_layers(initial_params()))
  losses_b = []
  for batch in batches:
    state, metrics = scanned.train_step(state, {k: jnp.asarray(v)
                                                for k, v in batch.items()})
    losses_b.append(float(metrics["loss"]))
  np.testing.assert_allclose(losses_b, losses_a, rtol=1e-5)
  assert_same_params(_stack_layers(params_a), jax.device_get(state["params"]))


def _stack_layers(params):
  out = dict(params)
  for stack in ("encoder", "decoder"):
    tree = dict(params[stack])
    layers = [tree.pop(f"layers_{i}") for i in range(2)]
    tree["layers"] = jax.tree.map(lambda *x: np.stack(x), *layers)
    out[stack] = tree
  return out


@pytest.mark.parametrize("avg_per_sequence", [False, True])
def test_golden_run_matches_upstream_t5x_for_30_steps(avg_per_sequence):
  """Adafactor, loss and step reproduce upstream T5X's own 30-step run."""
  factor = "AVERAGE_PER_SEQUENCE" if avg_per_sequence else None
  m = model_lib.EncoderDecoderModel(
      golden.CONFIG, model_lib.LossConfig(loss_normalizing_factor=factor))
  trainer = trainer_lib.Trainer(m, optim.Adafactor(golden.LEARNING_RATE),
                                partitioning.Partitioner(
                                    devices=jax.devices()[:1]))
  state = trainer.state_from_params(golden.initial_params())
  expected = golden.losses(avg_per_sequence)
  for step, batch in enumerate(golden.train_batches(30)):
    state, metrics = trainer.train_step(state, batch)
    assert float(metrics["loss"]) == pytest.approx(expected[step], rel=1e-5)
  final = golden.final_params(avg_per_sequence)
  for ours, theirs in zip(jax.tree.leaves(jax.device_get(state["params"])),
                          jax.tree.leaves(final)):
    np.testing.assert_allclose(ours, theirs, atol=1e-4, rtol=0)
  # T5X's whole train state (step, Adafactor slots) restores as ours.
  upstream = checkpoints.restore_from_path(
      golden.path("checkpoints", "avg_per_seq/checkpoint_30"
                  if avg_per_sequence else "checkpoint_30"),
      trainer.abstract_state())
  assert int(upstream["step"]) == int(state["step"]) == 30
  for ours, theirs in zip(jax.tree.leaves(jax.device_get(state["opt_state"])),
                          jax.tree.leaves(upstream["opt_state"])):
    # Second moments span many decades (unseen tokens: ~1e-12); compare
    # each tensor relative to its largest entry.
    np.testing.assert_allclose(ours, theirs, rtol=1e-3,
                               atol=1e-5 * np.abs(theirs).max())

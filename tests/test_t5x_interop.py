"""Upstream T5X and aya_t5x on one run: gin/t5x/, checkpoints both ways.

Marked `t5x`. They need upstream T5X importable (docs/t5x.md sets it up on
our stack) and skip with the import error otherwise, as in CI. Run them
with that environment's python, from the repository root:

  $T5X_VENV/bin/python -m pytest -p no:xdist -m t5x tests/test_t5x_interop.py

The run is gin/t5x/aya_tiny_cpu.gin: upstream T5X trains it 10 steps on the
sample mixture; then a checkpoint written by each runtime is restored by the
other, which must find the same eval loss and, one step later, the same
parameters.
"""

import math
import os
import pathlib
import re
import subprocess
import sys

import jax
from jax.sharding import Mesh
import numpy as np
import pytest

try:
  from t5x import adafactor as t5x_adafactor
  from t5x import models as t5x_models
  from t5x import partitioning as t5x_partitioning
  from t5x import utils as t5x_utils
  from t5x.examples.t5 import network as t5x_network
except ImportError as import_error:  # CI, or any environment without T5X.
  pytest.skip(f"upstream T5X is not importable ({import_error}); "
              "docs/t5x.md sets it up", allow_module_level=True)

from aya_t5x import checkpoints
from aya_t5x import data
from aya_t5x import model as model_lib
from aya_t5x import network
from aya_t5x import optim
from aya_t5x import partitioning
from aya_t5x import trainer as trainer_lib
from aya_t5x import vocabularies
from aya_t5x.convert import layout

pytestmark = pytest.mark.t5x

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY_GIN = "gin/t5x/aya_tiny_cpu.gin"
# gin/t5x/aya_tiny_cpu.gin's model, optimizer and lengths, built in Python
# here because that file binds `__main__.train` (t5x.train's).
TINY = dict(vocab_size=1280, emb_dim=128, num_heads=4, num_encoder_layers=2,
            num_decoder_layers=2, head_dim=32, mlp_dim=256, dtype="float32")
LEARNING_RATE = 0.003
LENGTHS = {"inputs": 64, "targets": 32}
BATCH_SIZE = 32
LOSS_FACTOR = "AVERAGE_PER_SEQUENCE"


@pytest.fixture(scope="module")
def t5x_run(tmp_path_factory) -> tuple[pathlib.Path, str]:
  """`python -m t5x.train` on the tiny gin file for 10 steps: dir and log."""
  model_dir = tmp_path_factory.mktemp("t5x_tiny")
  command = [sys.executable, "-m", "t5x.train", f"--gin_file={TINY_GIN}",
             f"--gin.MODEL_DIR='{model_dir}'", "--gin.TRAIN_STEPS=10",
             "--gin.EVAL_PERIOD=10", "--gin.RANDOM_SEED=0",
             # Teacher-forced eval only: decoding the demo set takes minutes.
             "--gin.train.infer_eval_dataset_cfg=None"]
  # One CPU device, as the gin file is meant for (T5X's CPU mesh puts every
  # host device on 'model', which the tiny model's 4 heads cannot fill).
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True,
                        text=True, timeout=1200, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  return model_dir, done.stderr


@pytest.fixture(autouse=True)
def _t5x_on_one_device(monkeypatch):
  """T5X's CPU mesh would span the 8 host devices of conftest.py (all on
  'model', more than the tiny model's 4 heads): give it one, like the CLI
  run. Test-only: T5X itself is not changed."""
  one = Mesh(np.array(jax.devices()[:1]).reshape(1, 1), ("data", "model"))
  monkeypatch.setattr(t5x_partitioning, "get_cpu_mesh", lambda: one)


@pytest.fixture(scope="module")
def batch() -> dict[str, np.ndarray]:
  """One eval batch of the demo validation split, from our pipeline."""
  cfg = data.DatasetConfig(
      mixture_or_task_name="aya_demo", task_feature_lengths=LENGTHS,
      split="validation", batch_size=BATCH_SIZE, shuffle=False, seed=0,
      module="aya_t5x.mixtures")
  return next(data.get_data_iterator(cfg, 0, 1))


# -------------------------------------------------------- the two runtimes ---


def _t5x_model() -> t5x_models.EncoderDecoderModel:
  vocabulary = vocabularies.demo_vocabulary()
  config = t5x_network.T5Config(
      **TINY, mlp_activations=("gelu", "linear"), dropout_rate=0.0,
      logits_via_embedding=False)
  return t5x_models.EncoderDecoderModel(
      module=t5x_network.Transformer(config), input_vocabulary=vocabulary,
      output_vocabulary=vocabulary,
      optimizer_def=t5x_adafactor.Adafactor(
          decay_rate=0.8, step_offset=0,
          logical_factor_rules=t5x_adafactor.standard_logical_factor_rules()),
      z_loss=1e-4, loss_normalizing_factor=LOSS_FACTOR)


def _t5x_restore(model, path: pathlib.Path, batch):
  """T5X's own Orbax restore of `MODEL_DIR/checkpoint_N`, as t5x.train's."""
  partitioner = t5x_partitioning.PjitPartitioner(num_partitions=1)
  initializer = t5x_utils.TrainStateInitializer(
      optimizer_def=model.optimizer_def,
      init_fn=model.get_initial_variables,
      input_shapes={k: v.shape for k, v in batch.items()},
      partitioner=partitioner)
  state, _ = t5x_utils.create_checkpoint_manager_and_restore(
      initializer, partitioner,
      t5x_utils.RestoreCheckpointConfig(path=str(path), mode="specific",
                                        dtype="float32"),
      restore_path=str(path), fallback_init_rng=None,
      model_dir=str(path.parent), use_orbax=True)
  assert state is not None, f"T5X restored nothing from {path}"
  return state


def _t5x_loss(model, params, batch) -> float:
  return float(jax.jit(lambda p: model.loss_fn(p, batch, None)[0])(params))


def _t5x_step(model, state, batch):
  """T5X's train step without microbatches: grad of loss_fn, apply_gradient."""
  grads = jax.jit(jax.grad(lambda p: model.loss_fn(p, batch, None)[0]))(
      state.params)
  return state.apply_gradient(grads, learning_rate=LEARNING_RATE)


def _our_trainer() -> trainer_lib.Trainer:
  model = model_lib.EncoderDecoderModel(
      network.T5Config(**TINY),
      model_lib.LossConfig(z_loss=1e-4, loss_normalizing_factor=LOSS_FACTOR))
  return trainer_lib.Trainer(model, optim.Adafactor(LEARNING_RATE),
                             partitioning.Partitioner(
                                 devices=jax.devices()[:1]))


def _our_loss(trainer, state, batch) -> float:
  return float(trainer.eval_sums(state["params"], batch)["loss"])


def _max_difference(ours, theirs) -> float:
  ours, theirs = layout.flatten(ours), layout.flatten(theirs)
  assert sorted(ours) == sorted(theirs)
  return max(float(np.max(np.abs(np.asarray(ours[k]) - np.asarray(theirs[k]))))
             for k in ours)


def _one_more_step_each(t5x_model, theirs, trainer, ours, batch) -> float:
  """Max |parameter difference| after one more step in each runtime."""
  theirs = _t5x_step(t5x_model, theirs, batch)
  ours, _ = trainer.train_step(ours, batch)
  return _max_difference(jax.device_get(ours["params"]),
                         jax.device_get(theirs.params))


# ------------------------------------------------------------------- tests ---


def test_t5x_trains_ten_steps_of_the_sample_mixture_from_gin_t5x(t5x_run):
  model_dir, log = t5x_run
  losses = [float(x) for x in re.findall(
      r"\[10\] collection=train .*?\bloss=([0-9.eE+-]+)", log)]

  assert (model_dir / "checkpoint_10" / "state").is_dir()
  assert len(losses) == 1 and math.isfinite(losses[0]) and losses[0] > 0


def test_t5x_checkpoint_restores_in_aya_t5x_with_equal_loss_and_step(
    t5x_run, batch, record_property):
  checkpoint = t5x_run[0] / "checkpoint_10"
  t5x_model = _t5x_model()
  theirs = _t5x_restore(t5x_model, checkpoint, batch)
  trainer = _our_trainer()
  ours = checkpoints.restore_from_path(checkpoint, trainer.abstract_state())

  their_loss = _t5x_loss(t5x_model, theirs.params, batch)
  our_loss = _our_loss(trainer, ours, batch)
  assert int(ours["step"]) == int(theirs.step) == 10
  assert our_loss == pytest.approx(their_loss, rel=1e-5)

  difference = _one_more_step_each(t5x_model, theirs, trainer, ours, batch)
  record_property("t5x_to_aya", (their_loss, our_loss, difference))
  print(f"T5X checkpoint in aya_t5x: eval loss T5X {their_loss:.7f}, "
        f"aya_t5x {our_loss:.7f}; one step later max |dparam| "
        f"{difference:.2e}")
  assert difference < 1e-5


def test_aya_t5x_checkpoint_restores_in_t5x_with_equal_loss_and_step(
    t5x_run, batch, tmp_path, record_property):
  # Our runtime continues T5X's run one step, then saves its checkpoint.
  trainer = _our_trainer()
  ours = checkpoints.restore_from_path(t5x_run[0] / "checkpoint_10",
                                       trainer.abstract_state())
  ours, _ = trainer.train_step(ours, batch)
  with checkpoints.Checkpointer(tmp_path) as checkpointer:
    checkpointer.save(11, ours, force=True)
  t5x_model = _t5x_model()
  theirs = _t5x_restore(t5x_model, tmp_path / "checkpoint_11", batch)

  their_loss = _t5x_loss(t5x_model, theirs.params, batch)
  our_loss = _our_loss(trainer, ours, batch)
  assert int(theirs.step) == 11
  assert their_loss == pytest.approx(our_loss, rel=1e-5)

  difference = _one_more_step_each(t5x_model, theirs, trainer, ours, batch)
  record_property("aya_to_t5x", (our_loss, their_loss, difference))
  print(f"aya_t5x checkpoint in T5X: eval loss aya_t5x {our_loss:.7f}, "
        f"T5X {their_loss:.7f}; one step later max |dparam| "
        f"{difference:.2e}")
  assert difference < 1e-5

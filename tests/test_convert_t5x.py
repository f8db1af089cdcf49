"""Upstream T5X checkpoints in: the legacy format, and T5X weights out to HF."""

import dataclasses
import os

import gin
import jax
import numpy as np
import pytest

from aya_t5x import checkpoints
from aya_t5x import gin_utils
from aya_t5x import model as model_lib
from aya_t5x import optim
from aya_t5x import partitioning
from aya_t5x import trainer as trainer_lib
from aya_t5x.convert import commands
from aya_t5x.convert import layout
from aya_t5x.convert import sources
from aya_t5x.convert import t5x_legacy
from tests import golden
from tests import hf_fixtures


def _legacy_dir() -> str:
  return golden.path("checkpoints_legacy", "checkpoint_0")


def _orbax_dir() -> str:
  return golden.path("checkpoints", "checkpoint_0")


def _golden_trainer(config=golden.CONFIG) -> trainer_lib.Trainer:
  model = model_lib.EncoderDecoderModel(config, model_lib.LossConfig())
  return trainer_lib.Trainer(model, optim.Adafactor(golden.LEARNING_RATE),
                             partitioning.Partitioner(
                                 devices=jax.devices()[:1]))


def _assert_bit_identical(actual: dict, expected: dict) -> None:
  assert sorted(actual) == sorted(expected)
  for path in expected:
    assert np.asarray(actual[path]).dtype == expected[path].dtype, path
    np.testing.assert_array_equal(np.asarray(actual[path]), expected[path],
                                  err_msg=path)


def test_legacy_t5x_checkpoint_imports_bit_identically_to_the_orbax_one():
  source = t5x_legacy.LegacyT5xSource(_legacy_dir())
  expected = layout.flatten(golden.initial_params())

  imported = commands.read_unrolled(_legacy_dir())

  assert len(source.shapes()) == 52
  _assert_bit_identical(imported, expected)


def test_legacy_arrays_read_in_small_blocks_are_unchanged(monkeypatch):
  monkeypatch.setattr(t5x_legacy, "BLOCK_BYTES", 300)  # A few rows each.
  _assert_bit_identical(commands.read_unrolled(_legacy_dir()),
                        layout.flatten(golden.initial_params()))


def test_t5x_to_aya_writes_the_legacy_parameters_as_an_orbax_checkpoint(
    tmp_path):
  result = commands.t5x_to_aya(_legacy_dir(), str(tmp_path / "out"))

  assert result.config.vocab_size == 640 and result.num_params == 90_624
  _assert_bit_identical(
      layout.flatten(checkpoints.read_t5x_orbax_params(result.checkpoint)),
      layout.flatten(golden.initial_params()))


def test_finetuning_from_legacy_checkpoint_via_initial_checkpoint_path(
    tmp_path):
  """What INITIAL_CHECKPOINT_PATH binds: a params-only, step-reset restore."""
  trainer = _golden_trainer()
  restore = checkpoints.RestoreCheckpointConfig(
      path=_legacy_dir(), mode="specific", params_only=True, reset_step=True)
  with checkpoints.Checkpointer(tmp_path / "run") as checkpointer:
    state = checkpoints.restore_or_init(checkpointer, restore,
                                        trainer.abstract_state(),
                                        trainer.init_state)
  _assert_bit_identical(layout.flatten(jax.device_get(state["params"])),
                        layout.flatten(golden.initial_params()))

  state, metrics = trainer.train_step(state, golden.first_batch())

  assert int(state["step"]) == 1
  assert float(metrics["loss"]) == pytest.approx(golden.STEP1_LOSS, rel=1e-6)


def test_keep_optimizer_gin_finetunes_from_t5x_step_and_adafactor_state(
    tmp_path):
  """runs/keep_optimizer.gin: T5X's finetuning default, the paper's choice."""
  gin.clear_config()
  gin.parse_config_file(os.path.join(gin_utils.DEFAULT_GIN_DIR, "runs",
                                     "keep_optimizer.gin"))
  try:
    restore = dataclasses.replace(
        checkpoints.RestoreCheckpointConfig(),
        path=golden.path("checkpoints", "checkpoint_30"), mode="specific")
  finally:
    gin.clear_config()
  trainer = _golden_trainer()
  with checkpoints.Checkpointer(tmp_path / "run") as checkpointer:
    state = checkpoints.restore_or_init(checkpointer, restore,
                                        trainer.abstract_state(),
                                        trainer.init_state)

  assert int(state["step"]) == 30
  second_moments = jax.tree.leaves(jax.device_get(state["opt_state"]))
  assert all(np.all(v > 0) for v in second_moments)


def test_legacy_checkpoint_that_does_not_fit_names_the_array(tmp_path):
  trainer = _golden_trainer(dataclasses.replace(golden.CONFIG, mlp_dim=48))
  abstract = trainer.abstract_state()

  with pytest.raises(checkpoints.CheckpointMismatchError) as error:
    checkpoints.restore_from_path(_legacy_dir(), abstract, params_only=True,
                                  fallback_state=abstract)
  assert ("array 'target.encoder.layers_0.mlp.wi_0.kernel'" in
          str(error.value))
  assert "the model expects (32, 48)" in str(error.value)


def test_full_state_restore_of_legacy_checkpoint_asks_for_params_only():
  abstract = _golden_trainer().abstract_state()
  with pytest.raises(checkpoints.CheckpointMismatchError,
                     match="params_only=True"):
    checkpoints.restore_from_path(_legacy_dir(), abstract)


def test_upstream_t5x_weights_export_to_transformers_with_the_same_logits(
    tmp_path):
  export = str(tmp_path / "hf")
  # Architecture from the shapes, plus the two fields shapes do not record.
  commands.aya_to_hf(
      _orbax_dir(), export,
      relative_attention_max_distance=(
          golden.CONFIG.relative_attention_max_distance),
      layer_norm_epsilon=golden.CONFIG.layer_norm_epsilon)
  batch = {k: np.asarray(v) for k, v in golden.first_batch().items()}

  theirs = hf_fixtures.hf_logits(hf_fixtures.load(export), batch)
  ours = model_lib.EncoderDecoderModel(golden.CONFIG).logits(
      golden.initial_params(), batch)

  real = batch["decoder_target_tokens"] > 0
  assert float(np.abs(np.asarray(ours) - theirs)[real].max()) < 1e-4


def test_gs_paths_are_read_in_place_through_tensorstore_gcs():
  path = "gs://t5-data/pretrained_models/t5x/mt5_xxl/checkpoint_1000000"
  assert t5x_legacy.kvstore_spec(path) == {
      "driver": "gcs", "bucket": "t5-data",
      "path": "pretrained_models/t5x/mt5_xxl/checkpoint_1000000/"}
  # Specs written elsewhere resolve to the array folder of this checkpoint.
  spec = {"driver": "zarr", "kvstore": {
      "driver": "gcs", "bucket": "old-bucket",
      "path": "tmp/checkpoint_1000000/target.encoder.encoder_norm.scale/"}}
  assert t5x_legacy._array_folder(spec) == "target.encoder.encoder_norm.scale"


def test_orbax_checkpoints_are_left_to_the_orbax_reader(tmp_path):
  (tmp_path / "checkpoint_3" / "state").mkdir(parents=True)
  assert sources.detect_format(tmp_path / "checkpoint_3") is None

"""LoRA: only adapters train, merging is exact, resume is exact, the state is
the adapters' size, and it runs on a (data, model) mesh."""

import dataclasses
import os
import types

import gin
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from aya_t5x import checkpoints
from aya_t5x import gin_utils
from aya_t5x import lora
from aya_t5x import lora_merge
from aya_t5x import model as model_lib
from aya_t5x import optim
from aya_t5x import partitioning
from aya_t5x import precompile
from aya_t5x import train
from aya_t5x import trainer as trainer_lib
from aya_t5x.convert import commands
from tests import hf_fixtures
from tests import test_trainer

TINY = test_trainer.TINY
LORA = lora.LoraConfig(targets=("query", "value", "wo"), rank=4, alpha=8.0)


def make_lora_trainer(config=LORA, num_partitions=1, devices=None,
                      model_config=TINY, microbatches=1):
  model = model_lib.EncoderDecoderModel(model_config)
  partitioner = partitioning.Partitioner(
      partitioning.PartitioningConfig(num_partitions=num_partitions),
      devices or jax.devices()[:1])
  adafactor = optim.Adafactor(3e-2, optim.AdafactorConfig(
      multiply_by_parameter_scale=False))
  trainer = lora.LoraTrainer(model, adafactor, partitioner,
                             trainer_lib.TrainerConfig(microbatches, seed=3),
                             config)
  trainer.set_base(test_trainer.initial_params(model_config))
  return trainer


def _put(trainer, batch):
  return {k: jax.device_put(v, trainer.partitioner.batch_sharding())
          for k, v in batch.items()}


def _train(trainer, state, batches):
  losses = []
  for batch in batches:
    state, metrics = trainer.train_step(state, _put(trainer, batch))
    losses.append(float(metrics["loss"]))
  return state, losses


BATCHES = test_trainer.random_batches(1) * 4  # One batch: the adapters fit it.


@pytest.fixture(scope="module")
def trainer():
  """One trainer for the module: its steps compile once."""
  return make_lora_trainer()


@pytest.fixture(scope="module")
def run(trainer):
  """Four steps from fresh adapters: (initial adapters, state, losses)."""
  state = trainer.init_state()
  start = jax.device_get(state["params"])
  state, losses = _train(trainer, state, BATCHES)
  return start, state, losses


def test_only_adapters_train_and_the_base_stays_frozen(trainer, run):
  base_before = jax.device_get(test_trainer.initial_params(TINY))
  start, state, losses = run
  assert losses[-1] < losses[0]
  after = lora._flat_adapters(jax.device_get(state["params"]))  # pylint: disable=protected-access
  before = lora._flat_adapters(start)  # pylint: disable=protected-access
  # q and v of 6 attention blocks, wo of 4 MLPs; A and B both trained.
  assert len(after) == 16
  for path, adapter in after.items():
    assert np.abs(adapter["lora_b"]).max() > 0, path
    assert not np.allclose(adapter["lora_a"], before[path]["lora_a"]), path
  jax.tree.map(np.testing.assert_array_equal, base_before,
               jax.device_get(trainer.base))


def test_merged_model_gives_the_logits_of_base_plus_adapters(trainer, run):
  _, state, _ = run
  batch = test_trainer.random_batches(1, seed=5)[0]
  adapters = jax.device_get(state["params"])
  merged = jax.device_get(trainer.merged_params(state["params"]))
  model = trainer.model
  base = jax.device_get(trainer.base)
  # Base + adapters built here by hand (numpy): W + scale A B per kernel.
  by_hand = jax.tree.map(np.array, base)
  for path, adapter in lora._flat_adapters(adapters).items():  # pylint: disable=protected-access
    node = by_hand
    for key in path.split("/"):
      node = node[key]
    node["kernel"] = node["kernel"] + LORA.scale * (
        adapter["lora_a"] @ adapter["lora_b"])
  logits = jax.jit(model.logits)
  expected = logits(by_hand, batch)
  np.testing.assert_allclose(logits(merged, batch), expected,
                             rtol=1e-5, atol=1e-5)
  # The adapted eval step (base and adapters apart) scores as the merge.
  sums = trainer.eval_sums(state["params"], _put(trainer, batch))
  weights, denominator = model_lib.loss_weights_and_denominator(
      batch, model.loss_config.normalizing_factor)
  loss, _ = model.loss_and_metrics(merged, batch, weights, denominator, None)
  np.testing.assert_allclose(float(sums["loss"]), float(loss), rtol=1e-5)
  assert not np.allclose(logits(base, batch), expected, atol=1e-4)


def test_resume_from_a_saved_adapter_state_is_exact(trainer, run, tmp_path):
  _, straight, straight_losses = run
  half, _ = _train(trainer, trainer.init_state(), BATCHES[:2])
  with checkpoints.Checkpointer(str(tmp_path),
                                checkpoints.CheckpointConfig()) as ckpt:
    ckpt.save(2, half, force=True)
    ckpt.wait_until_finished()
  with checkpoints.Checkpointer(str(tmp_path),
                                checkpoints.CheckpointConfig()) as ckpt:
    restored = ckpt.restore(trainer.abstract_state())
  resumed, resumed_losses = _train(trainer, restored, BATCHES[2:])
  assert resumed_losses == straight_losses[2:]
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(straight),
               jax.device_get(resumed))
  # The checkpoint holds the adapters and their statistics only.
  saved = checkpoints.flat_shapes(checkpoints.read_tree_metadata(
      checkpoints.resolve_state_dir(checkpoints.step_dir(str(tmp_path), 2))))
  assert saved and all("/lora_" in p for p in saved
                       if not p.endswith("step"))


def test_state_memory_is_the_adapters_and_their_statistics(trainer):
  state = trainer.abstract_state()
  adapters = lora.parameter_count(state["params"])
  # query, value in 6 attention blocks: (32x4 + 4x32) each; wo in 4 MLPs:
  # (64x4 + 4x32) each.
  assert adapters == 12 * (32 * 4 + 4 * 32) + 4 * (64 * 4 + 4 * 32)
  stats = lora.parameter_count(state["opt_state"])
  assert stats == adapters  # Unfactored `v` (the rank is below 128).
  nbytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state))
  assert nbytes == 4 * (adapters + stats) + 4  # + the step.


def test_bfloat16_base_on_a_data_and_model_mesh_matches_one_device():
  config = dataclasses.replace(LORA, base_dtype="bfloat16")
  batches = test_trainer.random_batches(1) * 2
  one = make_lora_trainer(config)
  _, one_losses = _train(one, one.init_state(), batches)
  mesh = make_lora_trainer(config, num_partitions=2, devices=jax.devices()[:4])
  assert jax.tree.leaves(mesh.base)[0].dtype == jnp.bfloat16
  state, mesh_losses = _train(mesh, mesh.init_state(), batches)
  np.testing.assert_allclose(mesh_losses, one_losses, rtol=2e-3)
  kernel = state["params"]["encoder"]["layers_0"]["attention"]["query"]
  assert kernel["lora_b"].sharding.spec == jax.sharding.PartitionSpec(
      None, "model")


def test_a_target_that_selects_nothing_is_named():
  with pytest.raises(ValueError, match="'wq' selects no projection"):
    lora.adapter_axes(partitioning.param_axes(
        model_lib.EncoderDecoderModel(TINY)), lora.LoraConfig(targets=("wq",)))


# -- The command lines: train, resume, merge, export, precompile --------------

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def from_repo(monkeypatch):
  monkeypatch.chdir(REPO)
  yield
  gin.clear_config(clear_constants=False)


def _lora_run(base, model_dir, *extra):
  return ["--gin_file=gin/lora/tiny_cpu.gin", f"--gin_file={base.gin_file}",
          f"--gin.INITIAL_CHECKPOINT_PATH='{base.hf_dir}'",
          f"--gin.MODEL_DIR='{model_dir}'", "--gin.BATCH_SIZE=8",
          "--gin.EVAL_PERIOD=0", "--gin.LOG_PERIOD=1", *extra]


@pytest.mark.slow
def test_cli_trains_resumes_merges_and_exports_to_hugging_face(tmp_path,
                                                               from_repo):
  # The base: a transformers model (imported for its model.gin only; the
  # run reads the Hugging Face folder itself).
  hf_dir = hf_fixtures.save(hf_fixtures.build_mt5(), str(tmp_path / "hf"))
  imported = commands.hf_to_aya(hf_dir, str(tmp_path / "imported"))
  base = types.SimpleNamespace(hf_dir=hf_dir, gin_file=imported.gin_file)
  model_dir = tmp_path / "lora"
  first = train.main(gin_utils.parse_command_line(
      _lora_run(base, model_dir, "--gin.TRAIN_STEPS=2")))
  resumed = train.main(gin_utils.parse_command_line(
      _lora_run(base, model_dir, "--gin.TRAIN_STEPS=4")))
  assert (first["step"], resumed["start_step"], resumed["step"]) == (2, 2, 4)
  saved = checkpoints.flat_shapes(checkpoints.read_tree_metadata(
      checkpoints.resolve_state_dir(checkpoints.step_dir(str(model_dir), 4))))
  assert saved and all("/lora_" in p for p in saved
                       if not p.endswith("step"))
  # Merge, export, and load the export in transformers.
  merged = lora_merge.main(_lora_run(base, model_dir) + [
      f"--output_dir={tmp_path / 'merged'}",
      f"--hf_output_dir={tmp_path / 'merged_hf'}"])
  assert merged.adapters.endswith("checkpoint_4")
  batch = hf_fixtures.multilingual_batch()
  theirs = hf_fixtures.hf_logits(hf_fixtures.load(merged.hf_dir), batch)
  # Ours: the adapted model as trained (base + adapters kept apart).
  trainer, _ = lora_merge._run_trainer(gin_utils.parse_command_line(  # pylint: disable=protected-access
      _lora_run(base, model_dir)))
  adapters = checkpoints.restore_params_tree(
      checkpoints.resolve_state_dir(merged.adapters),
      trainer.abstract_state()["params"])
  ours = trainer.model.logits(lora.merge(jax.device_get(trainer.base),
                                         jax.device_get(adapters), trainer.lora),
                              batch)
  real = batch["decoder_target_tokens"] > 0  # Pads differ by convention.
  assert float(np.abs(np.asarray(ours) - theirs)[real].max()) < 1e-4
  base_logits = hf_fixtures.hf_logits(hf_fixtures.load(hf_dir), batch)
  assert np.abs(base_logits - theirs)[real].max() > 1e-3  # Adapters count.


def test_precompile_reports_a_lora_state_of_the_adapters_size(from_repo):
  report = precompile.main([
      "--gin_file=gin/models/mt5_tiny.gin", "--gin_file=gin/runs/finetune.gin",
      "--gin_file=gin/lora/lora.gin",
      "--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 32}",
      "--gin.BATCH_SIZE=8", "--gin.INITIAL_CHECKPOINT_PATH='unused'",
      "--topology=v4-8", "--no_flops_extrapolation"])
  memory = report["lora"]
  # mt5_tiny: q and v (128 x 128) in 6 attention blocks, rank 8.
  assert memory["adapter_parameters"] == 12 * (128 * 8 + 8 * 128)
  assert memory["adapter_bytes"] == 4 * memory["adapter_parameters"]
  # Adafactor keeps one unfactored `v` per adapter (rank < 128), + the step.
  assert memory["train_state_bytes"] == 2 * memory["adapter_bytes"] + 4
  assert memory["base_parameters"] > 40 * memory["adapter_parameters"]
  assert report["memory_per_chip"]["fits"]

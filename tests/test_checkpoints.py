"""Tests of aya_t5x.checkpoints: T5X-layout Orbax checkpoints on CPU."""

import logging
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import numpy as np
import orbax.checkpoint as ocp
import pytest

from aya_t5x import checkpoints
from tests import golden

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
GOLDEN_CHECKPOINT = pathlib.Path(golden.path("checkpoints", "checkpoint_0"))


def _mesh() -> Mesh:
  devices = jax.devices("cpu")
  if len(devices) < 8:
    pytest.skip("needs 8 CPU devices (XLA_FLAGS set in conftest.py)")
  return Mesh(np.array(devices[:8]).reshape(2, 4), ("data", "model"))


def _state(step: int = 0, offset: float = 0.0, mesh: Mesh | None = None,
           vocab: int = 16) -> dict:
  """A small train state; sharded over `mesh` when given."""
  def put(value, *spec):
    if mesh is None:
      return jax.numpy.asarray(value)
    return jax.device_put(value, NamedSharding(mesh, P(*spec)))
  kernel = np.arange(8 * 16, dtype=np.float32).reshape(8, 16) + offset
  embedding = np.arange(vocab * 8, dtype=np.float32).reshape(vocab, 8) - offset
  params = {
      "encoder": {"layers_0": {"mlp": {"wi_0": {
          "kernel": put(kernel, "data", "model")}}}},
      "token_embedder": {"embedding": put(embedding, "model", None)},
  }
  opt_state = {"encoder": {"layers_0": {"mlp": {"wi_0": {
      "kernel": {"v": put(kernel * 0 + offset, "data", "model")}}}}}}
  return {"step": put(np.int32(step)), "params": params,
          "opt_state": opt_state}


def _abstract(state: dict) -> dict:
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
      state)


def _assert_trees_equal(actual, expected) -> None:
  assert jax.tree.structure(actual) == jax.tree.structure(expected)
  for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(e))


def _save_steps(model_dir, steps, config=None, **save_kwargs):
  """Saves `_state(step, offset=step)` at each step; returns the saved flags."""
  config = config or checkpoints.CheckpointConfig(period=1)
  with checkpoints.Checkpointer(model_dir, config) as ckpt:
    return [ckpt.save(s, _state(s, offset=s), **save_kwargs) for s in steps]


class FakeIterator:
  """Records calls and keeps a position in a file, like a tf.data iterator."""

  def __init__(self, position: int = 0):
    self.position = position
    self.calls = []

  def save_state(self, directory: str) -> None:
    self.calls.append(("save", directory))
    pathlib.Path(directory, "position.txt").write_text(str(self.position))

  def restore_state(self, directory: str) -> None:
    self.calls.append(("restore", directory))
    self.position = int(pathlib.Path(directory, "position.txt").read_text())


# ------------------------------------------------------------- save/restore ---


def test_sharded_round_trip_restores_values_onto_requested_shardings(tmp_path):
  mesh = _mesh()
  state = _state(7, offset=3.0, mesh=mesh)
  with checkpoints.Checkpointer(tmp_path, checkpoints.CheckpointConfig(
      period=1)) as ckpt:
    assert ckpt.save(7, state)
    ckpt.wait_until_finished()
    # Ask for other layouts than the saved ones: restore must reshard.
    abstract = _abstract(state)
    kernel_sharding = NamedSharding(mesh, P("model", "data"))
    embed_sharding = NamedSharding(mesh, P(None, "model"))
    wi0 = abstract["params"]["encoder"]["layers_0"]["mlp"]["wi_0"]
    wi0["kernel"] = jax.ShapeDtypeStruct((8, 16), np.float32,
                                         sharding=kernel_sharding)
    abstract["params"]["token_embedder"]["embedding"] = jax.ShapeDtypeStruct(
        (16, 8), np.float32, sharding=embed_sharding)
    restored = ckpt.restore(abstract)

  _assert_trees_equal(restored, state)
  kernel = restored["params"]["encoder"]["layers_0"]["mlp"]["wi_0"]["kernel"]
  assert kernel.sharding == kernel_sharding
  assert restored["params"]["token_embedder"]["embedding"].sharding == (
      embed_sharding)
  assert int(restored["step"]) == 7
  assert (tmp_path / "checkpoint_7" / "state").is_dir()


def test_keep_n_deletes_oldest_checkpoints(tmp_path):
  _save_steps(tmp_path, range(1, 6),
              checkpoints.CheckpointConfig(period=1, keep=2))

  assert checkpoints.committed_steps(tmp_path) == [4, 5]
  assert sorted(p.name for p in tmp_path.glob("checkpoint_*")) == [
      "checkpoint_4", "checkpoint_5"]


def test_periodic_save_skips_off_period_steps_unless_forced(tmp_path):
  config = checkpoints.CheckpointConfig(period=5, async_save=False)
  with checkpoints.Checkpointer(tmp_path, config) as ckpt:
    saved = [ckpt.save(s, _state(s)) for s in range(1, 8)]
    forced = ckpt.save(7, _state(7), force=True)
    forced_again = ckpt.save(7, _state(7), force=True)

  assert saved == [False] * 4 + [True, False, False]
  assert forced and not forced_again
  assert checkpoints.committed_steps(tmp_path) == [5, 7]


def test_restore_without_any_checkpoint_names_the_directory(tmp_path):
  with checkpoints.Checkpointer(tmp_path) as ckpt:
    assert ckpt.latest_step() is None
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
      ckpt.restore(_abstract(_state()))


# ------------------------------------------------ latest mode, broken saves ---


def test_latest_picks_newest_committed_and_skips_half_written(tmp_path,
                                                              caplog):
  _save_steps(tmp_path, [1, 2])
  # checkpoint_3: a full copy whose commit markers are gone (cut off between
  # writing the arrays and committing).
  shutil.copytree(tmp_path / "checkpoint_2", tmp_path / "checkpoint_3")
  (tmp_path / "checkpoint_3" / "commit_success.txt").unlink()
  (tmp_path / "checkpoint_3" / "_CHECKPOINT_METADATA").unlink()
  # checkpoint_4: only some array files, no tree metadata.
  (tmp_path / "checkpoint_4" / "state" / "d").mkdir(parents=True)
  (tmp_path / "checkpoint_4" / "state" / "d" / "abc").write_bytes(b"x")
  # An Orbax temporary folder from a killed writer.
  shutil.copytree(tmp_path / "checkpoint_2",
                  tmp_path / "checkpoint_9.orbax-checkpoint-tmp-123")

  caplog.set_level(logging.WARNING)
  config = checkpoints.CheckpointConfig(period=1, cleanup_tmp_dirs=False)
  with checkpoints.Checkpointer(tmp_path, config) as ckpt:
    latest = ckpt.latest_step()
    restored = ckpt.restore(_abstract(_state()))

  assert latest == 2
  _assert_trees_equal(restored, _state(2, offset=2))
  warnings = caplog.text
  assert "checkpoint_3" in warnings and "commit" in warnings
  assert "checkpoint_4" in warnings and "_METADATA" in warnings
  assert "checkpoint_9" not in warnings


def test_saving_again_over_a_half_written_step_sets_it_aside(tmp_path):
  _save_steps(tmp_path, [1])
  shutil.copytree(tmp_path / "checkpoint_1", tmp_path / "checkpoint_2")
  (tmp_path / "checkpoint_2" / "commit_success.txt").unlink()
  (tmp_path / "checkpoint_2" / "_CHECKPOINT_METADATA").unlink()

  with checkpoints.Checkpointer(tmp_path, checkpoints.CheckpointConfig(
      period=1)) as ckpt:
    assert ckpt.save(2, _state(2, offset=2))
    ckpt.wait_until_finished()
    restored = ckpt.restore(_abstract(_state()))

  assert checkpoints.committed_steps(tmp_path) == [1, 2]
  _assert_trees_equal(restored, _state(2, offset=2))
  assert len(list(tmp_path.glob("incomplete.checkpoint_2.*"))) == 1


def test_cleanup_removes_orbax_tmp_folders(tmp_path):
  _save_steps(tmp_path, [1])
  tmp_dir = tmp_path / "checkpoint_2.orbax-checkpoint-tmp-42"
  shutil.copytree(tmp_path / "checkpoint_1", tmp_dir)

  with checkpoints.Checkpointer(tmp_path) as ckpt:
    ckpt.save(3, _state(3), force=True)

  assert not tmp_dir.exists()
  assert checkpoints.committed_steps(tmp_path) == [1, 3]


# ---------------------------------------------------------- T5X's layout ---


def test_saves_t5x_train_state_with_all_four_adafactor_slots(tmp_path):
  _save_steps(tmp_path, [3])

  found = checkpoints.flat_shapes(checkpoints.read_tree_metadata(
      tmp_path / "checkpoint_3" / "state"))

  slots = "state/param_states/encoder/layers_0/mlp/wi_0/kernel"
  assert found == {
      "target/encoder/layers_0/mlp/wi_0/kernel": (8, 16),
      "target/token_embedder/embedding": (16, 8),
      "state/step": (),
      f"{slots}/v": (8, 16),
      f"{slots}/m": (1,), f"{slots}/v_row": (1,), f"{slots}/v_col": (1,)}


def test_restores_checkpoints_of_the_older_step_params_opt_state_layout(
    tmp_path):
  state = _state(9, offset=9)
  with ocp.PyTreeCheckpointer() as writer:
    writer.save(tmp_path / "checkpoint_9" / "state", state)

  restored = checkpoints.restore_from_path(
      tmp_path / "checkpoint_9" / "state", _abstract(_state()))

  _assert_trees_equal(restored, state)


# -------------------------------------------------- specific mode, partial ---


def test_restore_from_path_with_reset_step(tmp_path):
  _save_steps(tmp_path / "pretrained", [100])

  restored = checkpoints.restore_from_path(
      tmp_path / "pretrained" / "checkpoint_100", _abstract(_state()),
      reset_step=True)

  assert int(restored["step"]) == 0
  assert restored["step"].dtype == np.int32
  _assert_trees_equal(restored["params"], _state(100, offset=100)["params"])


def test_restore_from_path_accepts_the_state_item_folder(tmp_path):
  _save_steps(tmp_path, [4])

  with checkpoints.Checkpointer(tmp_path / "run") as ckpt:
    restored = ckpt.restore_from_path(tmp_path / "checkpoint_4" / "state",
                                      _abstract(_state()))

  _assert_trees_equal(restored, _state(4, offset=4))


def test_params_only_restore_keeps_fallback_optimizer_state_and_step(tmp_path):
  # The pretrained checkpoint has params only and another optimizer layout.
  pretrained = _state(50, offset=50)
  pretrained["opt_state"] = {"adam": {"mu": jax.numpy.ones((3,))}}
  with checkpoints.Checkpointer(tmp_path, checkpoints.CheckpointConfig(
      period=1)) as ckpt:
    ckpt.save(50, pretrained)
  fresh = _state(0, offset=-1)

  restored = checkpoints.restore_from_path(
      tmp_path / "checkpoint_50", _abstract(fresh), params_only=True,
      fallback_state=fresh)

  _assert_trees_equal(restored["params"], pretrained["params"])
  _assert_trees_equal(restored["opt_state"], fresh["opt_state"])
  assert int(restored["step"]) == 0


def test_non_strict_restore_keeps_initial_values_of_missing_params(tmp_path):
  _save_steps(tmp_path, [5])
  fresh = _state(0, offset=-1)
  fresh["params"]["decoder"] = {"logits_dense": {
      "kernel": jax.numpy.full((8, 16), 7.0)}}

  restored = checkpoints.restore_from_path(
      tmp_path / "checkpoint_5", _abstract(fresh), params_only=True,
      fallback_state=fresh, strict=False)

  np.testing.assert_array_equal(
      restored["params"]["decoder"]["logits_dense"]["kernel"], 7.0)
  _assert_trees_equal(restored["params"]["token_embedder"],
                      _state(5, offset=5)["params"]["token_embedder"])


def test_mismatched_tree_error_names_missing_path_and_shapes(tmp_path):
  with checkpoints.Checkpointer(tmp_path, checkpoints.CheckpointConfig(
      period=1)) as ckpt:
    ckpt.save(1, _state(1, vocab=512))
  model = _state(0, vocab=640)
  model["params"]["decoder"] = {"logits_dense": {
      "kernel": jax.numpy.zeros((8, 640))}}

  with pytest.raises(checkpoints.CheckpointMismatchError) as error:
    checkpoints.restore_from_path(tmp_path / "checkpoint_1", _abstract(model),
                                  params_only=True, fallback_state=model)

  message = str(error.value)
  assert "missing in checkpoint: decoder/logits_dense/kernel" in message
  assert ("shape mismatch: token_embedder/embedding expected (640, 8) "
          "found (512, 8)") in message


def test_full_restore_mismatch_names_paths_under_target(tmp_path):
  _save_steps(tmp_path, [1])
  model = _state(0, vocab=24)

  with checkpoints.Checkpointer(tmp_path) as ckpt:
    with pytest.raises(checkpoints.CheckpointMismatchError,
                       match=r"target/token_embedder/embedding expected "
                       r"\(24, 8\) found \(16, 8\)"):
      ckpt.restore(_abstract(model))


def test_restore_from_run_folder_says_to_pick_a_checkpoint(tmp_path):
  _save_steps(tmp_path, [1, 2])

  with pytest.raises(FileNotFoundError, match=r"checkpoints \[1, 2\]"):
    checkpoints.restore_from_path(tmp_path, _abstract(_state()))


def test_restore_or_init_prefers_model_dir_then_path_then_init(tmp_path):
  _save_steps(tmp_path / "pretrained", [10])
  config = checkpoints.RestoreCheckpointConfig(
      path=str(tmp_path / "pretrained"), mode="latest", reset_step=True)
  abstract = _abstract(_state())

  with checkpoints.Checkpointer(tmp_path / "run", checkpoints.CheckpointConfig(
      period=1)) as ckpt:
    from_path = checkpoints.restore_or_init(ckpt, config, abstract, _state)
    ckpt.save(3, _state(3, offset=3))
    resumed = checkpoints.restore_or_init(ckpt, config, abstract, _state)
  with checkpoints.Checkpointer(tmp_path / "other") as ckpt:
    fresh = checkpoints.restore_or_init(
        ckpt, checkpoints.RestoreCheckpointConfig(), abstract,
        lambda: _state(0, offset=-5))

  assert int(from_path["step"]) == 0
  _assert_trees_equal(from_path["params"], _state(10, offset=10)["params"])
  _assert_trees_equal(resumed, _state(3, offset=3))
  _assert_trees_equal(fresh, _state(0, offset=-5))


def test_restore_config_rejects_unknown_mode():
  with pytest.raises(ValueError, match="mode"):
    checkpoints.RestoreCheckpointConfig(mode="newest")


# ------------------------------------------------------------- dataset item ---


def test_dataset_item_is_saved_per_process_and_restored(tmp_path):
  iterator = FakeIterator(position=42)
  with checkpoints.Checkpointer(tmp_path, checkpoints.CheckpointConfig(
      period=1)) as ckpt:
    ckpt.save(1, _state(1), data_iterator=iterator)
    ckpt.wait_until_finished()
    resumed = FakeIterator()
    ckpt.restore(_abstract(_state()), data_iterator=resumed)

  process_dir = tmp_path / "checkpoint_1" / "dataset" / "process_0-of-1"
  assert (process_dir / "position.txt").read_text() == "42"
  assert [c[0] for c in iterator.calls] == ["save"]
  assert resumed.calls == [("restore", str(process_dir))]
  assert resumed.position == 42


def test_restore_without_dataset_item_refuses_to_replay_unless_allowed(
    tmp_path, caplog):
  _save_steps(tmp_path, [1])
  iterator = FakeIterator(position=5)

  with checkpoints.Checkpointer(tmp_path) as ckpt:
    with pytest.raises(checkpoints.DataStateError,
                       match="no data iterator state.*ALLOW_DATA_REPLAY"):
      ckpt.restore(_abstract(_state()), data_iterator=iterator)
    caplog.set_level(logging.WARNING)
    ckpt.restore(_abstract(_state()), data_iterator=iterator,
                 replay=checkpoints.DataReplay(True, examples_per_step=8))

  assert iterator.calls == []
  assert iterator.position == 5
  assert "8 examples (1 steps x 8) will be seen again" in caplog.text


# --------------------------------------------------------------- preemption ---


_PREEMPTED_TRAINER = textwrap.dedent("""
    import pathlib, sys, time
    import jax.numpy as jnp
    from aya_t5x import checkpoints

    model_dir, ready_file = sys.argv[1], pathlib.Path(sys.argv[2])
    config = checkpoints.CheckpointConfig(period=1000)
    state = {"step": jnp.int32(0), "params": {"w": jnp.zeros((4,))}}
    with checkpoints.Checkpointer(model_dir, config) as ckpt, \\
        checkpoints.PreemptionHandler() as preemption:
      for step in range(1, 100000):
        state = {"step": jnp.int32(step),
                 "params": {"w": state["params"]["w"] + 1}}
        if step == 3:
          ready_file.touch()
        if preemption.should_stop(step):
          ckpt.save(step, state, force=True)
          ckpt.wait_until_finished()
          print("preempted at", step, flush=True)
          break
        time.sleep(0.01)
      else:
        sys.exit(3)
""")


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path):
  script = tmp_path / "trainer.py"
  script.write_text(_PREEMPTED_TRAINER)
  ready = tmp_path / "ready"
  env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), JAX_PLATFORMS="cpu")
  process = subprocess.Popen(
      [sys.executable, str(script), str(tmp_path / "run"), str(ready)],
      env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  try:
    deadline = time.time() + 60
    while not ready.exists() and process.poll() is None:
      assert time.time() < deadline, "trainer never reached step 3"
      time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
  finally:
    if process.poll() is None:
      process.kill()

  assert process.returncode == 0, output
  steps = checkpoints.committed_steps(tmp_path / "run")
  assert len(steps) == 1 and f"preempted at {steps[0]}" in output
  abstract = {"step": jax.ShapeDtypeStruct((), np.int32),
              "params": {"w": jax.ShapeDtypeStruct((4,), np.float32)}}
  restored = checkpoints.restore_from_path(
      checkpoints.step_dir(tmp_path / "run", steps[0]), abstract)
  assert int(restored["step"]) == steps[0]
  np.testing.assert_array_equal(restored["params"]["w"], float(steps[0]))


def test_preemption_handler_restores_previous_signal_handler():
  previous = signal.getsignal(signal.SIGTERM)
  with checkpoints.PreemptionHandler() as preemption:
    assert not preemption.should_stop(1)
    os.kill(os.getpid(), signal.SIGTERM)
    assert preemption.should_stop(2)

  assert signal.getsignal(signal.SIGTERM) is previous


# ------------------------------------------------------ upstream T5X golden ---


def test_reads_params_of_upstream_t5x_orbax_checkpoint():
  params = checkpoints.read_t5x_orbax_params(GOLDEN_CHECKPOINT)

  leaves = jax.tree.leaves(params)
  assert len(leaves) == 52
  assert sum(leaf.size for leaf in leaves) == 90_624
  assert params["token_embedder"]["embedding"].shape == (640, 32)
  assert isinstance(leaves[0], np.ndarray)

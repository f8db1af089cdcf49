"""Two processes on 127.0.0.1 train exactly like one process.

The two-process run is the real CLI (`aya_t5x.train` with
`--coordinator_address/--process_count/--process_index`, 4 CPU devices per
process, one jax.distributed job). The one-process run is the same Trainer
on this test's 8 CPU devices, fed the same global batch: the rows of data
shard 0 then shard 1, which is how `make_global_batch` lays out the two
processes' host batches. The losses must agree, and the checkpoint the two
processes wrote collectively must hold the one-process parameters.
"""

import os
import socket
import subprocess
import sys

import gin
import jax
import numpy as np
import pytest

from aya_t5x import checkpoints
from aya_t5x import data
from aya_t5x import gin_utils
from aya_t5x import metrics_writer
from aya_t5x import multihost
from aya_t5x import partitioning
from aya_t5x import train
from aya_t5x import trainer as trainer_lib
from tests import tiny_run

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 3
RUN = ["--gin_file=gin/aya_tiny_cpu.gin", f"--gin.TRAIN_STEPS={STEPS}",
       "--gin.BATCH_SIZE=8", "--gin.LOG_PERIOD=1", "--gin.EVAL_PERIOD=0",
       "--gin.CHECKPOINT_PERIOD=1000", "--gin.DROPOUT_RATE=0.1",
       # One demo task (registered by aya_t5x.tasks): no mixture needed.
       "--gin.MIXTURE_OR_TASK_NAME='aya_demo'",
       "--gin.MIXTURE_OR_TASK_MODULE='aya_t5x.tasks'"]


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _two_process_run(model_dir, *extra: str) -> list[str]:
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3",
             XLA_FLAGS="--xla_force_host_platform_device_count=4")
  address = f"127.0.0.1:{_free_port()}"
  procs = [subprocess.Popen(
      [sys.executable, "-m", "aya_t5x.train", *RUN,
       f"--gin.MODEL_DIR='{model_dir}'", f"--coordinator_address={address}",
       "--process_count=2", f"--process_index={i}", *extra],
      cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
      text=True) for i in range(2)]
  outputs = [p.communicate(timeout=600)[0] for p in procs]
  for p, out in zip(procs, outputs):
    assert p.returncode == 0, out[-3000:]
  return outputs


def _one_process_run(model_dir):
  """The same steps in this process, on 8 devices, same global batches."""
  command_line = gin_utils.parse_command_line(
      RUN + [f"--gin.MODEL_DIR='{model_dir}'"])
  gin_utils.parse_gin(command_line.gin_files, command_line.gin_bindings)
  bound = gin.get_bindings(train.train, resolve_references=True)
  gin.clear_config(clear_constants=False)
  partitioner = partitioning.Partitioner(bound["partitioning_config"])
  trainer = trainer_lib.Trainer(bound["model"], bound["optimizer"],
                                partitioner, bound["trainer_config"])
  shards = [data.get_data_iterator(bound["train_dataset_cfg"], i, 2)
            for i in range(2)]
  state, losses, fingerprints = trainer.init_state(), [], []
  for _ in range(STEPS):
    host_batches = [next(shard) for shard in shards]
    fingerprints.append(data.batch_fingerprint(host_batches[0]))
    batch = {k: np.concatenate([b[k] for b in host_batches])
             for k in host_batches[0]}
    state, metrics = trainer.train_step(
        state, data.make_global_batch(batch, partitioner.mesh))
    losses.append(float(metrics["loss"]))
  return trainer, state, losses, fingerprints


@pytest.mark.slow
def test_two_processes_train_like_one_and_checkpoint_collectively(tmp_path):
  model_dir = tmp_path / "two"
  # A checkpoint at step 2 too: the resume below falls back to it.
  outputs = _two_process_run(model_dir, "--gin.CHECKPOINT_PERIOD=2")
  assert all(f"finished at step {STEPS}" in out for out in outputs)
  rows = metrics_writer.read_metrics(str(model_dir / "train_metrics.jsonl"))
  trainer, state, losses, fingerprints = _one_process_run(tmp_path / "one")
  assert [r["step"] for r in rows] == list(range(1, STEPS + 1))
  # Same data: process 0's logged batches are shard 0's.
  assert [r["data/batch_fingerprint"] for r in rows] == fingerprints
  np.testing.assert_allclose([r["loss"] for r in rows], losses, rtol=1e-5)
  assert losses[-1] < losses[0]
  saved = checkpoints.Checkpointer(model_dir, read_only=True).restore(
      trainer.abstract_state(), STEPS)
  assert int(saved["step"]) == STEPS
  jax.tree.map(lambda a, b: np.testing.assert_allclose(
      np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6),
               saved["params"], state["params"])
  for i in range(2):
    assert (model_dir / f"checkpoint_{STEPS}" / "dataset" /
            f"process_{i}-of-2").is_dir()

  # Damage the newest checkpoint: process 0 verifies it, both processes set
  # it aside together and resume from the previous one (multi-host restore).
  tiny_run.flip_bytes(
      tiny_run.largest_array_file(model_dir / f"checkpoint_{STEPS}"))
  outputs = _two_process_run(model_dir, "--gin.CHECKPOINT_PERIOD=2",
                             f"--gin.TRAIN_STEPS={STEPS + 1}")
  for out in outputs:
    assert f"finished at step {STEPS + 1} (started at step 2)" in out, out
  assert [p.name for p in model_dir.glob(f"corrupt.checkpoint_{STEPS}*")]
  assert checkpoints.committed_steps(model_dir)[-1] == STEPS + 1
  resumed = metrics_writer.read_metrics(
      str(model_dir / "train_metrics.jsonl"))
  # Step 3 again, from the same state and data: the same loss.
  assert [r["loss"] for r in resumed if r["step"] == STEPS][-1] == (
      pytest.approx(losses[STEPS - 1], rel=1e-5))



def test_multiprocess_flags_must_come_together():
  with pytest.raises(gin_utils.UsageError, match="go together"):
    multihost.DistributedConfig("127.0.0.1:1234", None, 0)
  with pytest.raises(gin_utils.UsageError, match="HOST:PORT"):
    multihost.DistributedConfig("127.0.0.1", 2, 0)
  with pytest.raises(gin_utils.UsageError, match="--process_index=2"):
    multihost.DistributedConfig("127.0.0.1:1234", 2, 2)
  assert not multihost.DistributedConfig().enabled
  assert multihost.DistributedConfig(auto_detect=True).enabled


def test_train_cli_rejects_half_the_multiprocess_flags(tmp_path, capsys):
  argv = RUN + [f"--gin.MODEL_DIR='{tmp_path}'", "--process_count=2"]
  with pytest.raises(SystemExit) as exit_info:
    gin_utils.run(train.main, argv)
  assert exit_info.value.code == 2
  assert "go together" in capsys.readouterr().err

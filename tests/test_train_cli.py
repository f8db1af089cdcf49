"""The train CLI end to end: bad input, preemption and exact resume."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import seqio

from aya_t5x import checkpoints
from aya_t5x import gin_utils
from aya_t5x import metrics_writer
from aya_t5x import train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_RUN = ["--gin_file=gin/aya_tiny_cpu.gin"]


def _cli(args, model_dir, **popen_kwargs):
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
             TF_CPP_MIN_LOG_LEVEL="3")
  cmd = [sys.executable, "-m", "aya_t5x.train", *TINY_RUN,
         f"--gin.MODEL_DIR='{model_dir}'", *args]
  return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, **popen_kwargs)


def _run(args, model_dir, timeout=600):
  proc = _cli(args, model_dir)
  out, _ = proc.communicate(timeout=timeout)
  return proc.returncode, out


@pytest.mark.parametrize("args,needle", [
    (["--gin.TRAIN_STEPZ=10"], "TRAIN_STEPZ: no gin file uses the macro "
     "TRAIN_STEPZ. Did you mean TRAIN_STEPS"),
    (["--gin_file=gin/does_not_exist.gin"], "'gin/does_not_exist.gin' not "
     "found"),
    (["--gin.TRAIN_STEPS='ten'"], "TRAIN_STEPS must be an integer"),
    (["--gin.BATCH_SIZE=7", "--gin.NUM_PARTITIONS=1"], "BATCH_SIZE=7"),
    (["--gin.LOSS_NORMALIZING_FACTOR='PER_TOKEN'"],
     "LOSS_NORMALIZING_FACTOR='PER_TOKEN'"),
    (["--gin.MODEL_DIR=/tmp/unquoted"], "Bad binding 'MODEL_DIR = "
     "/tmp/unquoted'"),
    (["--gin.MIXTURE_OR_TASK_NAME='aya_dem'"], "aya_dem"),
    (["--unknown_flag=1"], "Unknown flag '--unknown_flag=1'"),
    (["--gin.network.T5Config.vocab_size=256"],
     "_translation_heavy' output feature 'inputs': the vocabulary has"),
])
def test_bad_configuration_fails_early_with_a_named_culprit(
    tmp_path, capsys, args, needle):
  argv = TINY_RUN + [f"--gin.MODEL_DIR='{tmp_path}/run'"] + args
  with pytest.raises(SystemExit) as exit_info:
    gin_utils.run(train.main, argv)
  assert exit_info.value.code == 2
  error_lines = [l for l in capsys.readouterr().err.splitlines()
                 if l.startswith("error: ")]
  assert len(error_lines) == 1
  assert needle in error_lines[0], error_lines[0]


@pytest.mark.parametrize("gin_file", sorted(
    os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "gin",
                                                              "t5x", "*.gin"))))
def test_gin_file_for_upstream_t5x_fails_naming_the_t5x_command(
    tmp_path, capsys, gin_file):
  argv = [f"--gin_file={gin_file}", f"--gin.MODEL_DIR='{tmp_path}/run'"]
  with pytest.raises(SystemExit) as exit_info:
    gin_utils.run(train.main, argv)
  assert exit_info.value.code == 2
  error_lines = [l for l in capsys.readouterr().err.splitlines()
                 if l.startswith("error: ")]
  assert error_lines == [
      f"error: --gin_file {gin_file} is for upstream T5X: run `python -m "
      f"t5x.train --gin_file={gin_file}` (docs/t5x.md); aya_t5x's own run "
      "files are the gin/*.gin outside gin/t5x/."]


def test_cli_process_exits_2_with_one_line_on_a_typo(tmp_path):
  code, out = _run(["--gin.TRAIN_STEPZ=10"], tmp_path / "run", timeout=300)
  assert code == 2, out
  assert "error: --gin.TRAIN_STEPZ: no gin file uses the macro" in out
  assert "Traceback" not in out


def test_seqio_additional_cache_dirs_join_seqio_global_cache_dirs(tmp_path):
  dirs = [str(tmp_path / name) for name in ("a", "b", "c")]
  command_line = gin_utils.parse_command_line(
      TINY_RUN + [f"--seqio_additional_cache_dirs={dirs[0]},{dirs[1]}",
                  f"--seqio_additional_cache_dirs={dirs[2]}"])
  assert command_line.seqio_additional_cache_dirs == dirs
  before = list(seqio.get_global_cache_dirs())
  try:
    train._initialize_runtime(command_line)  # pylint: disable=protected-access
    assert seqio.get_global_cache_dirs() == before + dirs
  finally:
    seqio.set_global_cache_dirs(before)


def _steps(model_dir):
  return {row["step"]: row for row in metrics_writer.read_metrics(
      os.path.join(model_dir, "train_metrics.jsonl"))}


RESUME_ARGS = ["--gin.TRAIN_STEPS=14", "--gin.LOG_PERIOD=1",
               "--gin.CHECKPOINT_PERIOD=1000", "--gin.EVAL_PERIOD=0",
               "--gin.BATCH_SIZE=8"]


@pytest.mark.slow
def test_resume_after_sigterm_matches_an_uninterrupted_run(tmp_path):
  straight, preempted = tmp_path / "straight", tmp_path / "preempted"
  code, out = _run(RESUME_ARGS, straight)
  assert code == 0, out
  # The end of the run: what trimming cut, the whole table in MODEL_DIR.
  assert "truncated to TASK_FEATURE_LENGTHS: " in out, out
  assert "\ttrain\ttargets\t32\t" in (
      straight / "truncated_examples.tsv").read_text()
  # The run's architecture beside its checkpoints (aya_t5x.architecture).
  model_gin = (straight / "model.gin").read_text()
  assert "emb_dim = 128" in model_gin
  assert "relative_attention_max_distance = 128" in model_gin

  proc = _cli(RESUME_ARGS, preempted)
  metrics = preempted / "train_metrics.jsonl"
  deadline = time.time() + 300
  while time.time() < deadline and proc.poll() is None:
    if metrics.exists() and len(metrics.read_text().splitlines()) >= 4:
      proc.send_signal(signal.SIGTERM)
      break
    time.sleep(0.05)
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, out
  assert "preempted at step" in out, out
  stopped_at = checkpoints.committed_steps(preempted)[-1]
  assert 4 <= stopped_at < 14

  code, out = _run(RESUME_ARGS, preempted)
  assert code == 0, out
  assert f"started at step {stopped_at}" in out

  expected, resumed = _steps(straight), _steps(preempted)
  assert sorted(resumed) == list(range(1, 15))
  for step in range(1, 15):
    assert (resumed[step]["data/batch_fingerprint"] ==
            expected[step]["data/batch_fingerprint"]), step
    assert resumed[step]["loss"] == pytest.approx(expected[step]["loss"],
                                                  rel=1e-5)
  final = [checkpoints.read_t5x_orbax_params(d / "checkpoint_14")
           for d in (straight, preempted)]
  import jax  # pylint: disable=g-import-not-at-top
  for a, b in zip(jax.tree.leaves(final[0]), jax.tree.leaves(final[1])):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

"""tpu_scripts/: every dry run prints the exact commands; all pass shellcheck."""

import glob
import os
import shlex
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = sorted(glob.glob(os.path.join(REPO, "tpu_scripts", "*.sh")))
SLICE = ["--name=aya-xxl", "--project=my-proj", "--zone=us-central2-b"]
SHELLCHECK = os.path.join(os.path.dirname(sys.executable), "shellcheck")


def _dry_run(script, *args, command=()):
  result = subprocess.run(
      [os.path.join(REPO, "tpu_scripts", script), *args, "--dry-run",
       *command],
      cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
  assert result.returncode == 0, result.stderr
  return [shlex.split(line) for line in result.stdout.splitlines()
          if not line.startswith("#")]


def test_every_script_is_shellcheck_clean_and_strict():
  names = sorted(os.path.basename(s) for s in SCRIPTS)
  assert names == ["cache_mixtures.sh", "common.sh", "create.sh",
                   "delete.sh", "launch.sh", "remote_train.sh", "resume.sh",
                   "setup.sh", "watch.sh"]
  result = subprocess.run([SHELLCHECK, "--severity=style", "-x", *SCRIPTS],
                          cwd=REPO, capture_output=True, text=True,
                          check=False)
  assert result.returncode == 0, result.stdout
  for script in SCRIPTS:
    assert "set -euo pipefail" in open(script).read() or (
        "common.sh" in open(script).read()), script


def test_create_queued_spot_slice_and_wait():
  commands = _dry_run("create.sh", *SLICE, "--spot=true")
  assert commands[0] == [
      "gcloud", "compute", "tpus", "queued-resources", "create", "aya-xxl",
      "--node-id=aya-xxl", "--project=my-proj", "--zone=us-central2-b",
      "--accelerator-type=v4-128", "--runtime-version=tpu-ubuntu2204-base",
      "--spot"]
  assert commands[1][:5] == ["gcloud", "compute", "tpus", "queued-resources",
                             "describe"]


def test_create_direct():
  [create, _] = _dry_run("create.sh", *SLICE, "--mode=direct",
                         "--accelerator=v4-8")
  assert create[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "create",
                        "aya-xxl"]
  assert "--accelerator-type=v4-8" in create and "--spot" not in create


def test_setup_installs_the_pinned_commit_on_all_workers():
  sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, check=True,
                       capture_output=True, text=True).stdout.strip()
  archive, scp, ssh = _dry_run("setup.sh", *SLICE)
  assert archive[:3] == ["git", "-C", REPO] and archive[-1] == sha
  assert scp[:5] == ["gcloud", "compute", "tpus", "tpu-vm", "scp"]
  assert "--worker=all" in scp and "--worker=all" in ssh
  remote = next(a for a in ssh if a.startswith("--command="))
  assert "requirements/lock.txt -r requirements/tpu.txt" in remote
  assert f"echo {sha} > .commit" in remote


def test_launch_runs_train_on_all_workers_with_logs_on_gcs():
  [ssh] = _dry_run("launch.sh", *SLICE, "--model_dir=gs://bucket/aya",
                   "--gin=LEARNING_RATE=3e-4")
  assert ssh[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "aya-xxl"]
  assert "--worker=all" in ssh
  remote = shlex.split(next(a for a in ssh if a.startswith("--command="))
                       [len("--command="):])
  assert remote[:4] == ["cd", "~/aya_t5x", "&&", "nohup"]
  assert remote[4:7] == ["tpu_scripts/remote_train.sh",
                         "--logs=gs://bucket/aya/logs", "--"]
  train = remote[7:remote.index(">")]
  assert train == [".venv/bin/python", "-m", "aya_t5x.train", "--multiprocess",
                   "--gin.MODEL_DIR='gs://bucket/aya'",
                   "--gin_file=gin/aya_13b_translation_heavy.gin",
                   "--gin_file=gin/hardware/v4_128.gin",
                   "--gin.LEARNING_RATE=3e-4"]


def test_remote_train_dry_run_names_the_log_and_its_copy():
  commands = _dry_run("remote_train.sh", "--logs=gs://bucket/aya/logs",
                      command=("--", "echo", "hello world"))
  assert commands[0] == ["echo", "hello world"]
  assert commands[1][:3] == ["gcloud", "storage", "cp"]
  assert commands[1][3].startswith(os.path.expanduser("~/aya_logs/worker-"))


def test_watch_and_delete():
  watch = _dry_run("watch.sh", *SLICE, "--logs=gs://bucket/aya/logs")
  assert [c[:4] for c in watch] == [
      ["gcloud", "compute", "tpus", "tpu-vm"], ["gcloud", "storage", "ls",
                                                "gs://bucket/aya/logs/*.exit"],
      ["gcloud", "storage", "cat", "gs://bucket/aya/logs/worker-0.log"]]
  [delete] = _dry_run("delete.sh", *SLICE)
  assert delete[:6] == ["gcloud", "compute", "tpus", "queued-resources",
                        "delete", "aya-xxl"] and "--force" in delete


def test_resume_recreates_sets_up_and_relaunches():
  commands = _dry_run("resume.sh", *SLICE, "--model_dir=gs://bucket/aya",
                      "--spot=true")
  verbs = [" ".join(c[:5]) for c in commands]
  assert verbs == [
      "gcloud compute tpus tpu-vm describe",
      "gcloud compute tpus queued-resources delete",
      "gcloud compute tpus queued-resources create",
      "gcloud compute tpus queued-resources describe",
      f"git -C {REPO} archive --format=tar.gz",
      "gcloud compute tpus tpu-vm scp",
      "gcloud compute tpus tpu-vm ssh",
      "gcloud compute tpus tpu-vm ssh"]
  assert "--spot" in commands[2]
  assert "gs://bucket/aya" in commands[-1][-1]


def test_cache_mixtures_on_dataflow():
  [command] = _dry_run(
      "cache_mixtures.sh", "--output_cache_dir=gs://bucket/cache",
      "--runner=DataflowRunner", "--project=my-proj", "--region=us-central1",
      "--temp_location=gs://bucket/tmp", "--beam_python=/opt/beam/bin/python")
  assert command[:3] == [".venv/bin/python", "-m", "aya_t5x.cache_tasks"]
  assert "--runner=DataflowRunner" in command
  assert "--pipeline_option=--max_num_workers=100" in command


@pytest.mark.parametrize("script,args,needle", [
    ("create.sh", ["--name=x", "--zone=z"], "--project is required"),
    ("create.sh", SLICE + ["--mode=fast"], "--mode='fast'"),
    ("launch.sh", SLICE + ["--model_dir=/local/dir"], "use gs://"),
    ("launch.sh", SLICE + ["--model_dir=gs://b/x;rm -rf ~"],
     "only letters, digits"),
    ("setup.sh", SLICE + ["--commit=not-a-commit"], "--commit='not-a-commit'"),
    ("delete.sh", SLICE + ["--zonee=x"], "unknown flag --zonee"),
])
def test_bad_flags_exit_2_naming_the_flag(script, args, needle):
  result = subprocess.run([os.path.join(REPO, "tpu_scripts", script), *args,
                           "--dry-run"], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=False)
  assert result.returncode == 2, result
  assert needle in result.stderr

"""Without network (and without a mirror), tools that would read the Hub or
GCS fail in seconds with one line that says what to do."""

import socket
import threading
import time

from huggingface_hub import constants
import pytest

from aya_t5x import eval as eval_cli
from aya_t5x import gcs_access
from aya_t5x import gin_utils
from aya_t5x import hub_access
from aya_t5x import reachability
from aya_t5x import sources
from aya_t5x import train
from aya_t5x.convert import __main__ as convert_cli
from aya_t5x.tasks import xp3x


@pytest.fixture
def no_network(monkeypatch):
  """The Hub at a closed local port: every connection is refused."""
  for name in (sources.ENV_DATA_DIR, "HF_HUB_OFFLINE", "HTTPS_PROXY",
               "https_proxy", "ALL_PROXY", "all_proxy"):
    monkeypatch.delenv(name, raising=False)
  monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
  monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
  hub_access.reset()
  sources._hub_listing.cache_clear()  # pylint: disable=protected-access
  yield
  hub_access.reset()
  sources._hub_listing.cache_clear()  # pylint: disable=protected-access


@pytest.fixture
def no_gcs(monkeypatch):
  """GCS at a closed local port (its emulator variable): every connection
  is refused, as on a machine without network."""
  for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
    monkeypatch.delenv(name, raising=False)
  monkeypatch.setenv(gcs_access.ENV_EMULATOR, "127.0.0.1:9")
  reachability.reset()
  yield
  reachability.reset()


def _exit_status_in_seconds(main, argv) -> int:
  """`gin_utils.run(main, argv)`'s exit status; it must come within 10 s."""
  start = time.monotonic()
  with pytest.raises(SystemExit) as exit_info:
    gin_utils.run(main, argv)
  assert time.monotonic() - start < 10
  return exit_info.value.code


def _one_error_line(capsys) -> str:
  errors = [l for l in capsys.readouterr().err.splitlines()
            if l.startswith("error:")]
  assert len(errors) == 1, errors
  return errors[0]


def _assert_says_what_to_do(line: str, repo: str) -> None:
  for needle in (repo, "AYA_DATA_DIR", "HF_HUB_OFFLINE", "HF_TOKEN",
                 "python -m aya_t5x.download", "Connection refused"):
    assert needle in line, needle


def test_train_on_a_hub_task_fails_in_seconds_with_one_line(
    no_network, tmp_path, capsys, register_xp3x):
  name, = register_xp3x("test_offline_xp3x", ("swa",))
  argv = ["--gin_file=gin/aya_tiny_cpu.gin",
          f"--gin.MODEL_DIR='{tmp_path}/run'",
          f"--gin.MIXTURE_OR_TASK_NAME='{name}'"]
  assert _exit_status_in_seconds(train.main, argv) == 2
  line = _one_error_line(capsys)
  _assert_says_what_to_do(line, xp3x.REPO_ID)
  assert xp3x.spec("swa").files.revision in line


def test_eval_on_hub_benchmarks_fails_in_seconds_before_the_checkpoint(
    no_network, tmp_path, capsys):
  argv = ["--gin_file=gin/eval/demo.gin",
          f"--gin.CHECKPOINT_PATH='{tmp_path}/no_checkpoint'",
          f"--gin.EVAL_OUTPUT_DIR='{tmp_path}/eval'",
          "--gin.EVAL_DATA_DIR=None", "--gin.BENCHMARKS=('xcopa', 'xnli')"]
  assert _exit_status_in_seconds(eval_cli.main, argv) == 2
  _assert_says_what_to_do(_one_error_line(capsys), "cambridgeltl/xcopa")


class _Refused(Exception):

  class response:  # pylint: disable=invalid-name
    status_code = 401


def test_a_refused_gated_repository_names_hf_token(monkeypatch):
  monkeypatch.delenv("HF_TOKEN", raising=False)
  error = hub_access.explain(_Refused("401"), "openlanguagedata/flores_plus",
                             None)
  assert isinstance(error, hub_access.HubUnreachable)
  assert "HF_TOKEN is not set" in str(error)
  assert "openlanguagedata/flores_plus@main" in str(error)
  assert hub_access.explain(KeyError("x"), "a/b", None) is None


def test_t5x_to_aya_from_gs_fails_in_seconds_with_one_line(
    no_gcs, tmp_path, capsys):
  checkpoint = "gs://t5-data/pretrained_models/t5x/mt5_small/checkpoint_1"
  start = time.monotonic()
  status = convert_cli.main(["t5x_to_aya", f"--checkpoint={checkpoint}",
                             f"--output_dir={tmp_path}/out"])
  assert time.monotonic() - start < 10
  assert status == 2
  line = _one_error_line(capsys)
  for needle in (checkpoint, "(--checkpoint)", "Connection refused",
                 "gsutil -m cp -r", "HTTPS_PROXY"):
    assert needle in line, needle
  assert not (tmp_path / "out").exists()


def test_train_with_a_gs_model_dir_fails_in_seconds_naming_it(
    no_gcs, capsys, register_xp3x):
  name, = register_xp3x("test_gcs_xp3x", ("swa",))
  argv = ["--gin_file=gin/aya_tiny_cpu.gin",
          "--gin.MODEL_DIR='gs://my-bucket/runs/aya'",
          f"--gin.MIXTURE_OR_TASK_NAME='{name}'"]
  assert _exit_status_in_seconds(train.main, argv) == 2
  assert "gs://my-bucket/runs/aya (MODEL_DIR)" in _one_error_line(capsys)


def test_a_probe_that_hangs_is_cut_at_its_timeout(monkeypatch):
  """A resolver that never answers does not hold a tool up."""
  released = threading.Event()

  def hang(*args, **kwargs):
    released.wait(30)
    raise OSError("released")  # As a real connect would end: no traceback.

  monkeypatch.setattr(socket, "create_connection", hang)
  monkeypatch.setenv(reachability.ENV_PROBE_TIMEOUT, "0.2")
  reachability.reset()
  start = time.monotonic()
  try:
    reason = reachability.probe("storage.example", 443)
  finally:
    released.set()
    reachability.reset()
  assert time.monotonic() - start < 2
  assert reason == "storage.example:443: no answer within 0.2 s"


def test_local_paths_are_never_probed(monkeypatch):
  def fail(*args, **kwargs):
    raise AssertionError("probed")
  monkeypatch.setattr(reachability, "probe", fail)
  gcs_access.check_all({"--a": "/tmp/x", "--b": None, "--c": "relative"})

"""Fault injection: every kind of damage to the newest checkpoint.

A reference run trains straight to step 6 (checkpoints 2, 4, 6). Each case
copies the reference as it was at step 4, damages checkpoint_4, and resumes
to step 6 through the real train loop: the run must set the damaged
checkpoint aside with one warning, resume from checkpoint_2 and end with the
reference's parameters and losses; never a silent load, never a traceback.
"""

import logging
import os
import pathlib
import shutil

import jax
import numpy as np
import pytest

from aya_t5x import checkpoints
from aya_t5x import gin_utils
from aya_t5x import integrity
from tests import tiny_run


def _iterator_file(ckpt: pathlib.Path, suffix: str) -> pathlib.Path:
  (found,) = (ckpt / "dataset").rglob(f"iterator-*{suffix}")
  return found


def _truncate(path: pathlib.Path) -> None:
  path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])


def _empty_folder(ckpt: pathlib.Path) -> None:
  shutil.rmtree(ckpt)
  ckpt.mkdir()


def _temp_folder_only(ckpt: pathlib.Path) -> None:
  ckpt.rename(ckpt.with_name(ckpt.name + ".orbax-checkpoint-tmp-1234"))


DAMAGE = {
    "flipped_bytes":
        lambda c: tiny_run.flip_bytes(tiny_run.largest_array_file(c)),
    "truncated_array": lambda c: _truncate(tiny_run.largest_array_file(c)),
    "zero_size_array":
        lambda c: tiny_run.largest_array_file(c).write_bytes(b""),
    "deleted_array": lambda c: tiny_run.largest_array_file(c).unlink(),
    "deleted_metadata": lambda c: (c / "state" / "_METADATA").unlink(),
    "truncated_metadata": lambda c: _truncate(c / "state" / "_METADATA"),
    "missing_commit_marker": lambda c: [
        (c / name).unlink() for name in ("commit_success.txt",
                                         "_CHECKPOINT_METADATA")],
    "missing_iterator_state": lambda c: shutil.rmtree(c / "dataset"),
    "truncated_iterator_state": lambda c: _truncate(
        _iterator_file(c, ".data-00000-of-00001")),
    "truncated_iterator_index": lambda c: _truncate(
        _iterator_file(c, ".index")),
    "deleted_manifest": lambda c: (c / integrity.MANIFEST_FILE).unlink(),
    "empty_folder": _empty_folder,
    "temp_folder_only": _temp_folder_only,
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """(run at step 4, run at step 6): the uninterrupted reference."""
  root = tmp_path_factory.mktemp("reference")
  tiny_run.run(root / "run", 4)
  shutil.copytree(root / "run", root / "at_4")
  tiny_run.run(root / "run", 6)
  return root / "at_4", root / "run"


def _assert_same_run(resumed, straight):
  expected, got = tiny_run.losses(straight), tiny_run.losses(resumed)
  assert sorted(got) == list(range(1, 7))
  for step in range(1, 7):
    assert got[step] == expected[step], step
  for a, b in zip(jax.tree.leaves(tiny_run.params(straight, 6)),
                  jax.tree.leaves(tiny_run.params(resumed, 6))):
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_damaged_newest_checkpoint_falls_back_to_previous_good_one(
    reference, tmp_path, caplog, kind):
  at_4, straight = reference
  run_dir = tmp_path / "run"
  shutil.copytree(at_4, run_dir)
  DAMAGE[kind](run_dir / "checkpoint_4")
  caplog.set_level(logging.WARNING)

  summary = tiny_run.run(run_dir, 6)

  assert summary["start_step"] == 2
  _assert_same_run(run_dir, straight)
  warnings = [r.getMessage() for r in caplog.records
              if "checkpoint_4" in r.getMessage()
              and r.levelno == logging.WARNING]
  # A temporary folder is an unfinished save: Orbax removes it quietly.
  assert len(warnings) == (kind != "temp_folder_only"), warnings
  assert "Traceback" not in caplog.text
  assert checkpoints.committed_steps(run_dir) == [2, 4, 6]


def _make_legacy(ckpt: pathlib.Path) -> None:
  """What a checkpoint written before the manifests looks like."""
  (ckpt / integrity.MANIFEST_FILE).unlink()
  metadata = ckpt / "_CHECKPOINT_METADATA"
  metadata.write_text(metadata.read_text().replace(
      f'"{integrity.PROMISE_KEY}": {integrity.FORMAT}', ""))


def test_a_verified_checkpoint_that_fails_to_load_is_not_set_aside(
    reference, tmp_path, monkeypatch):
  """Its files are the ones written: the error is raised, and no good
  checkpoint is renamed corrupt (or deleted with the oldest set-asides)."""
  at_4, _ = reference
  run_dir = tmp_path / "run"
  shutil.copytree(at_4, run_dir)

  def failing_read(*args, **kwargs):
    raise OSError("storage hiccup")

  monkeypatch.setattr(checkpoints, "restore_train_state", failing_read)
  with pytest.raises(OSError, match="storage hiccup"):
    tiny_run.run(run_dir, 6)
  assert not list(run_dir.glob(f"{checkpoints.CORRUPT_PREFIX}*"))
  assert checkpoints.committed_steps(run_dir) == [2, 4]


def test_a_manifest_listing_no_files_is_refused(reference, tmp_path):
  at_4, _ = reference
  checkpoint = tmp_path / "checkpoint_4"
  shutil.copytree(at_4 / "checkpoint_4", checkpoint)
  (checkpoint / integrity.MANIFEST_FILE).write_text(
      '{"format": 1, "files": {}}')
  verdict = integrity.verify(checkpoint)
  assert not verdict.ok and "lists no files" in verdict.problem


def test_unverified_old_checkpoint_restores_with_a_warning(reference, tmp_path,
                                                           caplog):
  at_4, straight = reference
  run_dir = tmp_path / "run"
  shutil.copytree(at_4, run_dir)
  _make_legacy(run_dir / "checkpoint_4")
  caplog.set_level(logging.WARNING)
  assert tiny_run.run(run_dir, 6)["start_step"] == 4
  assert "restoring it unverified" in caplog.text
  _assert_same_run(run_dir, straight)


def test_old_checkpoint_without_iterator_state_stops_with_one_line(
    reference, tmp_path, capsys, caplog):
  at_4, _ = reference
  run_dir = tmp_path / "run"
  shutil.copytree(at_4, run_dir)
  _make_legacy(run_dir / "checkpoint_4")
  shutil.rmtree(run_dir / "checkpoint_4" / "dataset")

  status = gin_utils.exit_status(lambda: _as_usage_error(run_dir))
  assert status == 2
  (error,) = [l for l in capsys.readouterr().err.splitlines()
              if l.startswith("error: ")]
  assert "checkpoint_4" in error and "ALLOW_DATA_REPLAY=True" in error
  assert "replay 16 examples (4 steps x 4)" in error

  caplog.set_level(logging.WARNING)
  assert tiny_run.run(run_dir, 6, allow_data_replay=True)["start_step"] == 4
  assert "16 examples (4 steps x 4) will be seen again" in caplog.text


def _as_usage_error(run_dir):
  try:
    tiny_run.run(run_dir, 6)
  except checkpoints.DataStateError as e:
    raise gin_utils.UsageError(str(e)) from None


@pytest.mark.parametrize("prefix,other", [
    (checkpoints.CORRUPT_PREFIX, checkpoints.INCOMPLETE_PREFIX),
    (checkpoints.INCOMPLETE_PREFIX, checkpoints.CORRUPT_PREFIX)])
def test_set_aside_folders_beyond_the_newest_few_are_deleted(tmp_path, prefix,
                                                             other):
  """Of each kind (corrupt.*, incomplete.*) only the newest few stay; the
  other kind's folders are not touched."""
  (tmp_path / f"{other}checkpoint_9.1").mkdir()
  for index in range(checkpoints.SET_ASIDE_KEPT + 2):
    folder = tmp_path / f"checkpoint_{index}"
    folder.mkdir()
    checkpoints.set_aside(folder, prefix)
  left = sorted(os.listdir(tmp_path))
  assert f"{other}checkpoint_9.1" in left
  left.remove(f"{other}checkpoint_9.1")
  assert len(left) == checkpoints.SET_ASIDE_KEPT
  assert all(name.startswith(f"{prefix}checkpoint_") for name in left)
  assert {name[len(prefix):].split(".")[0] for name in left} == {
      f"checkpoint_{i}" for i in range(2, checkpoints.SET_ASIDE_KEPT + 2)}

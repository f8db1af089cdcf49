"""`aya_t5x.download` mirrors what the tasks read, against a local fake Hub."""

import fnmatch
import os
import shutil

import pytest

from aya_t5x import download
from aya_t5x import sources
from aya_t5x.tasks import registry_helpers
from aya_t5x.tasks import xp3x
from aya_t5x.tasks.eval import benchmark


class FakeHub:
  """Repositories as folders `<root>/<repo_id>`; revisions are ignored."""

  def __init__(self, root):
    self.root = str(root)
    self.downloads = []

  def _files(self, repo_id):
    base = os.path.join(self.root, repo_id)
    for directory, _, names in os.walk(base):
      for name in names:
        path = os.path.join(directory, name)
        yield os.path.relpath(path, base).replace(os.sep, "/"), path

  def list_files(self, repo_id, revision):
    return [download.HubFile(rel, os.path.getsize(path))
            for rel, path in self._files(repo_id)]

  def download(self, repo_id, revision, patterns, local_dir):
    self.downloads.append((repo_id, revision))
    for rel, path in self._files(repo_id):
      if any(fnmatch.fnmatch(rel, p) for p in patterns):
        target = os.path.join(local_dir, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):  # Resumable, like snapshot_download.
          shutil.copyfile(path, target)


@pytest.fixture
def fake_hub(tmp_path):
  root = tmp_path / "hub"
  shutil.copytree(os.path.join(registry_helpers.SAMPLE_DIR, "CohereForAI",
                               "xP3x"), root / "CohereForAI" / "xP3x")
  shutil.copytree(os.path.join(benchmark.SAMPLE_DIR, "cambridgeltl"),
                  root / "cambridgeltl")
  (root / "CohereForAI" / "xP3x" / "xP3x.py").write_text("# a script")
  (root / "CohereForAI" / "xP3x" / "README.md").write_text("card")
  return FakeHub(root)


def test_download_mirrors_exactly_what_the_tasks_read(fake_hub, tmp_path,
                                                      hub_mirror, capsys,
                                                      register_xp3x):
  name, = register_xp3x("test_download_xp3x", ("swa",))
  out = tmp_path / "mirror"
  plans = download.run(download.DownloadConfig(
      output_dir=str(out), mixture=name, suite="xcopa"), hub=fake_hub)
  printed = capsys.readouterr().out
  assert printed.index("total:") < printed.index("downloading")
  by_repo = {p.repo_id: p for p in plans}
  assert by_repo[xp3x.REPO_ID].revision == xp3x.spec("swa").files.revision
  assert {f.path for f in by_repo[xp3x.REPO_ID].files} == {
      f"data/swh_Latn/{n}" for n in os.listdir(
          fake_hub.root + "/CohereForAI/xP3x/data/swh_Latn")}
  mirrored = {p.relative_to(out).as_posix() for p in out.rglob("*")
              if p.is_file()}
  assert not any(p.endswith((".py", "README.md")) for p in mirrored)
  assert any(p.startswith("cambridgeltl/xcopa/") for p in mirrored)
  # The mirror is what AYA_DATA_DIR reads: same rows as the sample.
  hub_mirror(out)
  from_mirror = sources.count_task(name)
  hub_mirror(registry_helpers.SAMPLE_DIR)
  assert sources.count_task(name).kept == from_mirror.kept > 0


def test_download_rerun_fetches_nothing_new_and_dry_run_nothing(
    fake_hub, tmp_path):
  config = download.DownloadConfig(
      output_dir=str(tmp_path / "m"), repo="cambridgeltl/xcopa",
      patterns="sw/*.parquet,sw/*/*.parquet")
  download.run(config, hub=fake_hub)
  first = sorted((tmp_path / "m").rglob("*"))
  download.run(config, hub=fake_hub)
  assert sorted((tmp_path / "m").rglob("*")) == first and first
  dry = download.DownloadConfig(output_dir=str(tmp_path / "d"),
                                repo="cambridgeltl/xcopa", dry_run=True)
  plans = download.run(dry, hub=fake_hub)
  assert plans[0].size > 0 and not (tmp_path / "d").exists()


def test_download_without_a_target_is_a_usage_error(capsys):
  assert download.main(["--output_dir=x"]) == 2
  assert "--mixture=NAME" in capsys.readouterr().err

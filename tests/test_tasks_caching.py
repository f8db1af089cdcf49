"""Training from SeqIO's offline cache of the Aya tasks (USE_CACHED_TASKS).

`tasks/data/sample_cache/aya_xp3x_yor` was written by SeqIO's own cache job
(`seqio.scripts.cache_tasks_main`) on Apache Beam's DirectRunner, from the
shipped sample with the demo vocabulary (`build_with_beam.sh`; Beam runs in
the separate environment of requirements/beam.txt). These tests read it back
through the training data path, and check the Beam-free writer
(`sources.write_task_cache`) makes the same examples.
"""

import os
import shutil
import subprocess
import sys

import pytest
import seqio

from aya_t5x import data
from aya_t5x import sources
from aya_t5x import vocabularies
import aya_t5x.tasks  # pylint: disable=unused-import
from aya_t5x.tasks import registry_helpers
from aya_t5x.tasks import xp3x

BEAM_CACHE = os.path.join(registry_helpers.DATA_DIR, "sample_cache",
                          "aya_xp3x_yor")
LENGTHS = {"inputs": 96, "targets": 48}


@pytest.fixture(scope="module")
def cached_task():
  """The Yoruba xP3x task with the demo vocabulary, the cache's vocabulary."""
  [name] = xp3x.register(vocabulary=vocabularies.demo_vocabulary(),
                         prefix="test_cached_xp3x", codes=("yor",))
  return name


@pytest.fixture
def cache_root(tmp_path):
  previous = list(seqio.utils.get_global_cache_dirs())
  seqio.set_global_cache_dirs([str(tmp_path)])
  yield tmp_path
  seqio.set_global_cache_dirs(previous)


def _pretokenized(dataset):
  return sorted((ex["inputs_pretokenized"], ex["targets_pretokenized"])
                for ex in dataset.as_numpy_iterator())


def _on_the_fly(name, monkeypatch):
  monkeypatch.setenv(sources.ENV_DATA_DIR, registry_helpers.SAMPLE_DIR)
  task = seqio.get_mixture_or_task(name)
  return _pretokenized(task.get_dataset(LENGTHS, shuffle=False))


def _config(name, use_cached):
  return data.DatasetConfig(
      mixture_or_task_name=name, task_feature_lengths=LENGTHS, split="train",
      batch_size=4, shuffle=True, seed=3, use_cached=use_cached, pack=True)


def test_training_reads_the_beam_directrunner_cache(cached_task, cache_root,
                                                    monkeypatch):
  expected = _on_the_fly(cached_task, monkeypatch)
  shutil.copytree(BEAM_CACHE, cache_root / cached_task)
  # With an empty mirror only the cache can produce examples.
  monkeypatch.setenv(sources.ENV_DATA_DIR, str(cache_root / "no_data"))
  task = seqio.get_mixture_or_task(cached_task)
  task._cache_dir = None  # pylint: disable=protected-access
  assert task.get_cached_stats("train")["examples"] == len(expected) == 10
  cached = task.get_dataset(LENGTHS, use_cached=True, shuffle=False)
  assert _pretokenized(cached) == expected
  iterator = data.DataIterator(data.get_dataset(_config(cached_task, True),
                                                0, 1, num_epochs=None))
  batch = next(iterator)
  assert batch["encoder_input_tokens"].shape == (4, 96)
  assert (batch["decoder_target_tokens"] == vocabularies.EOS_ID).any()


def test_without_use_cached_training_needs_the_source(cached_task, cache_root,
                                                      monkeypatch):
  monkeypatch.setenv(sources.ENV_DATA_DIR, str(cache_root / "no_data"))
  seqio.get_mixture_or_task(cached_task).source.reset()
  with pytest.raises(FileNotFoundError, match="hf download"):
    data.get_dataset(_config(cached_task, False), 0, 1)
  seqio.get_mixture_or_task(cached_task).source.reset()


def test_beam_free_cache_writer_matches_the_beam_cache(cached_task,
                                                       cache_root,
                                                       monkeypatch):
  monkeypatch.setenv(sources.ENV_DATA_DIR, registry_helpers.SAMPLE_DIR)
  task = seqio.get_mixture_or_task(cached_task)
  task.source.reset()
  written = sources.write_task_cache(cached_task, str(cache_root))
  assert sorted(os.listdir(written)) == [
      "COMPLETED", "info.train.json", "stats.train.json",
      "train.tfrecord-00000-of-00001"]
  task._cache_dir = None  # pylint: disable=protected-access
  ours = _pretokenized(task.get_dataset(LENGTHS, use_cached=True,
                                        shuffle=False))
  beam = seqio.get_mixture_or_task(cached_task)
  shutil.rmtree(written)
  shutil.copytree(BEAM_CACHE, written)
  beam._cache_dir = None  # pylint: disable=protected-access
  beam._stats = {}  # pylint: disable=protected-access
  assert _pretokenized(beam.get_dataset(LENGTHS, use_cached=True,
                                        shuffle=False)) == ours


@pytest.mark.slow
def test_seqio_cache_job_runs_on_the_direct_runner(tmp_path):
  """Only where Apache Beam is installed (requirements/beam.txt)."""
  pytest.importorskip("apache_beam")
  env = dict(os.environ, AYA_DATA_DIR=registry_helpers.SAMPLE_DIR,
             AYA_VOCABULARY="demo")
  subprocess.run(
      [sys.executable, "-m", "seqio.scripts.cache_tasks_main",
       "--module_import=aya_t5x.tasks", "--tasks=aya_xp3x_yor",
       f"--output_cache_dir={tmp_path}", "--min_shards=2",
       "--pipeline_options=--runner=DirectRunner"], check=True, env=env)
  assert os.path.exists(tmp_path / "aya_xp3x_yor" / "COMPLETED")

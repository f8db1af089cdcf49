"""Test set-up shared by every test module.

Eight fake CPU devices let mesh tests run anywhere; the flag must be set
before jax is first imported. TensorFlow (the data pipeline) must not grab
GPU memory that jax needs.
"""

import os

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
os.environ.setdefault("JAX_PLATFORMS", "cpu")  # libtpu (tpu extra): no probe.

import tensorflow as tf  # pylint: disable=g-import-not-at-top

tf.config.set_visible_devices([], "GPU")

# pylint: disable=g-import-not-at-top,g-bad-import-order
import pytest

from aya_t5x import sources


@pytest.fixture(autouse=True)
def _absl_verbosity_restored():
  """A CLI main run in-process sets absl's verbosity (WARNING without
  --verbose) for the whole process: later tests that read INFO lines with
  `caplog` would see nothing, depending on which tests ran before."""
  import logging  # pylint: disable=g-import-not-at-top
  absl_logger = logging.getLogger("absl")
  level = absl_logger.level  # Often NOTSET: the root logger's level rules.
  yield
  absl_logger.setLevel(level)


@pytest.fixture
def hub_mirror(monkeypatch):
  """`hub_mirror(path)`: for this test, Hub sources read the folder `path`
  (laid out like the Hub) instead of the Hub: `AYA_DATA_DIR`."""
  def use(path) -> None:
    monkeypatch.setenv(sources.ENV_DATA_DIR, str(path))
  return use


@pytest.fixture
def sample_mirror(hub_mirror, monkeypatch):
  """The shipped sample of the training sources (tasks/data/sample) as the
  Hub, and as the folders of the two sources that are not on the Hub."""
  # Imported here: importing aya_t5x.tasks registers every task.
  from aya_t5x.tasks import registry_helpers
  from aya_t5x.tasks import safety
  from aya_t5x.tasks import sharegpt_command
  sample = registry_helpers.SAMPLE_DIR
  hub_mirror(sample)
  monkeypatch.setenv(sharegpt_command.ENV_DIR,
                     os.path.join(sample, "sharegpt_command"))
  monkeypatch.setenv(safety.ENV_DIR, os.path.join(sample,
                                                  "safety_distillation"))


@pytest.fixture
def eval_sample_mirror(hub_mirror):
  """The shipped sample of the benchmarks (tasks/data/eval_sample) as the
  Hub."""
  from aya_t5x.tasks.eval import benchmark
  hub_mirror(benchmark.SAMPLE_DIR)


@pytest.fixture
def register_xp3x():
  """`register_xp3x(prefix, codes[, vocabulary])`: xP3x tasks for this test
  only, taken out of the catalog and seqio's registry afterwards (other tests
  list the catalog's xP3x tasks)."""
  # Imported here: importing aya_t5x.tasks registers every task.
  import seqio  # pylint: disable=g-import-not-at-top
  from aya_t5x import vocabularies  # pylint: disable=g-import-not-at-top
  from aya_t5x.tasks import catalog  # pylint: disable=g-import-not-at-top
  from aya_t5x.tasks import xp3x  # pylint: disable=g-import-not-at-top
  names = []
  def register(prefix: str, codes, vocabulary=None) -> list[str]:
    vocabulary = vocabulary or vocabularies.demo_vocabulary()
    new = xp3x.register(vocabulary=vocabulary, prefix=prefix, codes=codes)
    names.extend(new)
    return new
  yield register
  for name in names:
    catalog.remove(name)
    seqio.TaskRegistry.remove(name)

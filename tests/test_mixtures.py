"""The Aya weighting schemes as SeqIO mixtures, rates from counted sizes,
and the 13B gin files."""

import json
import os
import subprocess
import sys
import textwrap

import gin
import jax
import numpy as np
import pytest
import seqio

from aya_t5x import gin_utils
from aya_t5x import mixing
from aya_t5x import partitioning
from aya_t5x import train
from aya_t5x import vocabularies
import aya_t5x.mixtures  # pylint: disable=unused-import
from aya_t5x.mixtures import aya
from aya_t5x.mixtures import sample
from aya_t5x.tasks import registry_helpers

# Table 3 of the paper (spec section 3), typed from the table itself.
TABLE_3 = {
    "aya_human_anno_heavy": (25, 4, 20, 6, 30, 15),
    "aya_translation_heavy": (10, 1.5, 15, 3.5, 47.5, 22.5),
    "aya_template_heavy": (20, 10, 30, 10, 20, 10),
}
TABLE_3_SOURCES = ("aya_dataset", "aya_templated", "xp3x", "data_provenance",
                   "aya_translated", "sharegpt_command")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def size_cache(tmp_path_factory, monkeypatch):
  """Counts go to a cache of this module's, not the user's."""
  path = tmp_path_factory.getbasetemp() / "mixture_sizes.json"
  monkeypatch.setenv(mixing.ENV_TASK_SIZES, str(path))
  return path


def _per_source(rates, members):
  totals = {}
  for m in members:
    totals[m.source] = totals.get(m.source, 0.0) + rates[m.task]
  return totals


@pytest.mark.parametrize("name", sorted(TABLE_3))
def test_registered_rates_equal_table_3(name):
  expected = dict(zip(TABLE_3_SOURCES, TABLE_3[name]))
  mixture = seqio.MixtureRegistry.get(name)
  assert dict(mixture.scheme.source_percent) == expected
  assert sum(mixture.scheme.source_percent.values()) == pytest.approx(100)
  # The same rates once sizes are counted, on the sample version.
  sampled = seqio.MixtureRegistry.get(name + sample.SUFFIX)
  rates = sampled.rates()
  assert sum(rates.values()) == pytest.approx(100)
  assert _per_source(rates, sampled.members) == pytest.approx(expected)


def test_aya_safe_is_translation_heavy_at_97_percent_plus_3_of_safety():
  safe = seqio.MixtureRegistry.get("aya_translation_heavy_safe").scheme
  base = dict(zip(TABLE_3_SOURCES, TABLE_3["aya_translation_heavy"]))
  expected = {s: p * 0.97 for s, p in base.items()}
  expected["safety_distillation"] = 3.0
  assert dict(safe.source_percent) == pytest.approx(expected)
  assert sum(safe.source_percent.values()) == pytest.approx(100)
  members = seqio.MixtureRegistry.get("aya_translation_heavy_safe").members
  assert {m.task for m in members if m.source == "safety_distillation"} == {
      "aya_safety_distillation"}


def test_full_mixtures_hold_only_the_production_tasks():
  members = seqio.MixtureRegistry.get("aya_translation_heavy").members
  by_source = {}
  for m in members:
    by_source.setdefault(m.source, set()).add(m.task)
  assert set(by_source) == set(TABLE_3_SOURCES)
  assert "aya_translated_dolly_swa" in by_source["aya_translated"]
  assert len(by_source["xp3x"]) == 101
  assert not any(t.startswith(("test_", sample.TASK_PREFIX))
                 for t in by_source["xp3x"] | by_source["aya_translated"])


def test_scheme_percents_are_checked():
  with pytest.raises(ValueError, match=r"sum to 90, not 100"):
    mixing.Scheme("bad", {"xp3x": 50, "aya_dataset": 40})
  with pytest.raises(ValueError, match=r"source 'xp3x' has percent -5"):
    mixing.Scheme("bad", {"xp3x": -5, "aya_dataset": 105})
  with pytest.raises(ValueError, match="DatasetWeights.dolly = 0"):
    aya.DatasetWeights(dolly=0)


# --- Within-source weighting on data built for it -------------------------

# source -> {dataset: rows}.
BUILT = {"mixtest_big": {"mixtest_a": 10, "mixtest_b": 30, "mixtest_c": 60},
         "mixtest_small": {"mixtest_d": 5},
         "mixtest_empty": {"mixtest_e": 4}}


def _write_rows(path, dataset, n, empty_targets=False):
  with open(path, "w", encoding="utf-8") as f:
    for i in range(n):
      target = "" if empty_targets else f"answer {i}"
      f.write(json.dumps({"inputs": f"{dataset} question {i}",
                          "targets": target}) + "\n")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
  """Tasks over files of known sizes; `mixtest_e` rows all have empty
  targets, so hygiene keeps none."""
  root = tmp_path_factory.mktemp("built")
  members, paths = [], {}
  for source, datasets in BUILT.items():
    for dataset, n in datasets.items():
      paths[dataset] = root / f"{dataset}.jsonl"
      _write_rows(paths[dataset], dataset, n, source == "mixtest_empty")
      registry_helpers.register_dataset(
          f"{dataset}_task", files={"train": str(paths[dataset])},
          language="eng", dataset=dataset, source=source,
          vocabulary=vocabularies.demo_vocabulary())
      members.append(mixing.Member(f"{dataset}_task", source, dataset))
  return members, paths


def _mixture(name, percents, members, cache, weights=None):
  scheme = mixing.Scheme(name, percents)
  chosen = [m for m in members if m.source in percents]
  return mixing.WeightedMixture(scheme, chosen,
                                sizes=mixing.TaskSizes(str(cache)),
                                weights_fn=lambda: weights or {})


def test_datasets_inside_a_source_are_weighted_by_size(built, tmp_path):
  members, _ = built
  mix = _mixture("test_by_size", {"mixtest_big": 80, "mixtest_small": 20},
                 members, tmp_path / "sizes.json")
  assert mix.rates() == pytest.approx({
      "mixtest_a_task": 8.0, "mixtest_b_task": 24.0, "mixtest_c_task": 48.0,
      "mixtest_d_task": 20.0})
  shares = mix.expected_shares()
  assert shares.by_dataset[("mixtest_big", "mixtest_b")] == pytest.approx(.24)
  assert shares.by_language == pytest.approx({"eng": 1.0})


def test_an_explicit_weight_multiplies_its_dataset_size(built, tmp_path):
  members, _ = built
  mix = _mixture("test_weighted", {"mixtest_big": 80, "mixtest_small": 20},
                 members, tmp_path / "sizes.json",
                 weights={"mixtest_b": 2.0, "not_in_mixture": 5.0})
  weighted = {"mixtest_a_task": 10, "mixtest_b_task": 60,
              "mixtest_c_task": 60}
  expected = {t: 80 * n / 130 for t, n in weighted.items()}
  expected["mixtest_d_task"] = 20.0
  assert mix.rates() == pytest.approx(expected)


def test_sizes_are_counted_once_and_recounted_when_a_file_changes(
    built, tmp_path, monkeypatch):
  members, paths = built
  cache = tmp_path / "sizes.json"
  percents = {"mixtest_big": 80, "mixtest_small": 20}
  _mixture("test_cache", percents, members, cache).rates()
  entries = json.loads(cache.read_text())["entries"]
  assert entries["mixtest_c_task|train"]["examples"] == 60
  real_count = mixing.count

  def no_counting(task, split):
    raise AssertionError(f"{task.name} was counted again")
  monkeypatch.setattr(mixing, "count", no_counting)
  assert _mixture("test_cache", percents, members, cache).rates()[
      "mixtest_d_task"] == pytest.approx(20.0)

  counted = []
  def spy(task, split):
    counted.append(task.name)
    return real_count(task, split)
  monkeypatch.setattr(mixing, "count", spy)
  _write_rows(paths["mixtest_a"], "mixtest_a", 50)
  try:
    rates = _mixture("test_cache", percents, members, cache).rates()
  finally:
    _write_rows(paths["mixtest_a"], "mixtest_a", 10)
  assert counted == ["mixtest_a_task"]
  assert rates["mixtest_a_task"] == pytest.approx(80 * 50 / 140)


def test_a_source_without_data_for_the_split_fails_naming_source_and_split(
    built, tmp_path):
  members, _ = built
  empty = _mixture("test_empty", {"mixtest_big": 90, "mixtest_empty": 10},
                   members, tmp_path / "sizes.json")
  with pytest.raises(mixing.EmptySourceError,
                     match=r"source 'mixtest_empty' has no data for split "
                     r"'train'.*keeps no examples"):
    empty.rates()
  no_split = _mixture("test_no_split", {"mixtest_big": 100}, members,
                      tmp_path / "sizes.json")
  with pytest.raises(mixing.EmptySourceError,
                     match=r"source 'mixtest_big' has no data for split "
                     r"'validation'.*no split 'validation'"):
    no_split.get_dataset(None, split="validation")


def test_the_sample_mixture_has_no_validation_split_and_says_so():
  mix = seqio.MixtureRegistry.get("aya_translation_heavy_sample")
  with pytest.raises(mixing.EmptySourceError,
                     match=r"source 'aya_dataset' has no data for split "
                     r"'validation'"):
    mix.get_dataset(None, split="validation")


# --- Gin ---------------------------------------------------------------


def _parse(files, bindings=()):
  gin_utils.parse_gin(files, list(bindings))


def test_dolly_weight_is_a_gin_knob():
  mix = seqio.MixtureRegistry.get("aya_translation_heavy_sample")
  before = mix.rates()
  # Another test in this process may have left the gin config locked.
  gin.clear_config(clear_constants=False)
  try:
    gin.parse_config("from __gin__ import dynamic_registration\n"
                     "from aya_t5x.mixtures import aya\n"
                     "aya.DatasetWeights.dolly = 3.0\n")
    after = mix.rates()
  finally:
    gin.clear_config(clear_constants=False)
  dolly = [m.task for m in mix.members if m.dataset == aya.DOLLY]
  assert before[dolly[0]] == pytest.approx(47.5 / 16)
  # Sample: 40 Dolly rows, 40 Flan CoT rows -> 120 / 160 of 47.5% at 3x.
  assert sum(after[t] for t in dolly) == pytest.approx(47.5 * 120 / 160)
  assert mix.rates() == before  # The binding is gone again.


def test_mixtures_import_after_gin_has_locked_its_config():
  # A run names its module in MIXTURE_OR_TASK_MODULE and train imports it
  # after gin.finalize(): a @gin.configurable at import would fail there
  # with "Attempted to add a new configurable after the config was locked".
  # A fresh interpreter, since this one imported the mixtures long ago.
  script = textwrap.dedent("""
      import sys
      import gin
      from aya_t5x import data, gin_utils
      gin_utils.parse_gin(["gin/aya_tiny_cpu.gin"], [])
      assert gin.config_is_locked()
      assert "aya_t5x.mixtures" not in sys.modules
      mix = data.get_mixture_or_task("aya_translation_heavy",
                                     "aya_t5x.mixtures")
      from aya_t5x.mixtures import aya
      print(mix.name, aya.gin_dataset_weights())
  """)
  result = subprocess.run([sys.executable, "-c", script], cwd=REPO,
                          capture_output=True, text=True, timeout=300,
                          check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.splitlines()[-1] == (
      "aya_translation_heavy {'translated_dolly': 1.0, "
      "'sharegpt_command': 1.0}")


def test_a_new_scheme_in_gin_is_registered_by_its_name(tmp_path):
  gin_file = tmp_path / "my_scheme.gin"
  gin_file.write_text(
      "from __gin__ import dynamic_registration\n"
      "from aya_t5x.mixtures import aya\n"
      "include 'aya_tiny_cpu.gin'\n"
      "MIXTURE_OR_TASK_NAME = @aya.scheme_mixture()\n"
      "aya.scheme_mixture:\n"
      "  name = 'test_gin_scheme'\n"
      "  source_percent = {'aya_dataset': 60, 'xp3x': 40}\n")
  try:
    _parse([str(gin_file)])
    bound = gin.get_bindings(train.train, resolve_references=True)
  finally:
    gin.clear_config(clear_constants=False)
  assert bound["train_dataset_cfg"].mixture_or_task_name == "test_gin_scheme"
  mix = seqio.MixtureRegistry.get("test_gin_scheme")
  assert dict(mix.scheme.source_percent) == {"aya_dataset": 60, "xp3x": 40}
  assert {m.source for m in mix.members} == {"aya_dataset", "xp3x"}


RUN_13B = {
    "gin/aya_13b_human_anno_heavy.gin": aya.HUMAN_ANNO_HEAVY,
    "gin/aya_13b_template_heavy.gin": aya.TEMPLATE_HEAVY,
    "gin/aya_13b_translation_heavy.gin": aya.TRANSLATION_HEAVY,
    "gin/aya_13b_translation_heavy_safe.gin": aya.TRANSLATION_HEAVY_SAFE,
}


def _bound_13b(path):
  _parse([os.path.join(REPO, path)], ["MODEL_DIR = '/tmp/aya_13b'"])
  try:
    unbound = [name for name in gin_utils.referenced_macros()
               if gin.query_parameter(f"{name}/macro.value") is gin.REQUIRED]
    weights = aya.gin_dataset_weights()
    return gin.get_bindings(train.train, resolve_references=True), (
        unbound, weights)
  finally:
    gin.clear_config(clear_constants=False)


def test_13b_gin_files_parse_and_bind_the_papers_run():
  models = []
  for path, scheme in RUN_13B.items():
    bound, (unbound, weights) = _bound_13b(path)
    assert not unbound, (path, unbound)
    data_cfg = bound["train_dataset_cfg"]
    assert data_cfg.mixture_or_task_name == scheme.name, path
    assert seqio.MixtureRegistry.get(scheme.name).scheme == scheme
    assert dict(data_cfg.task_feature_lengths) == {"inputs": 1024,
                                                   "targets": 1024}
    assert (data_cfg.batch_size, data_cfg.pack) == (256, True)
    assert bound["total_steps"] == 30_000
    assert bound["restore_cfg"].reset_step and bound["restore_cfg"].path == (
        "gs://t5-data/pretrained_models/t5x/mt5_xxl/checkpoint_1000000")
    schedule = bound["optimizer"].learning_rate
    assert [float(schedule(s)) for s in (0, 1000, 29_999)] == pytest.approx(
        [3e-4] * 3)
    model = bound["model"]
    assert model.loss_config.loss_normalizing_factor == "AVERAGE_PER_SEQUENCE"
    assert weights == {"translated_dolly": 1.0, "sharegpt_command": 1.0}
    models.append(model.config)
  assert all(c == models[0] for c in models)
  config = models[0]
  assert (config.emb_dim, config.num_heads, config.mlp_dim,
          config.num_encoder_layers, config.vocab_size) == (
              4096, 64, 10240, 24, 250112)
  shapes = partitioning.abstract_boxed_params(model)
  leaves = jax.tree.leaves(shapes, is_leaf=lambda x: hasattr(x, "unbox"))
  count = sum(int(np.prod(getattr(x, "value", x).shape)) for x in leaves)
  assert 12.9e9 < count < 13.0e9


def test_13b_gin_files_leave_partitioning_to_the_hardware_layer():
  for path in RUN_13B:
    with open(os.path.join(REPO, path), encoding="utf-8") as f:
      settings = [line for line in f if not line.lstrip().startswith("#")]
    for knob in ("NUM_PARTITIONS", "NUM_MICROBATCHES", "REMAT_POLICY",
                 "SCAN_LAYERS", "PARAMETER_PARTITIONING_DIMS"):
      assert not any(line.startswith(knob) for line in settings), (path, knob)


def test_hosts_shard_the_mixed_stream_so_every_host_gets_every_source(
    built, tmp_path):
  """File sharding would leave a one-file task on one host only."""
  members, _ = built
  mix = _mixture("test_sharded", {"mixtest_big": 80, "mixtest_small": 20},
                 members, tmp_path / "sizes.json")

  def draws(shard_info, n):
    dataset = mix.get_dataset(None, "train", shuffle=False, seed=3,
                              num_epochs=None, shard_info=shard_info,
                              copy_pretokenized=True)
    return [ex["inputs_pretokenized"].decode()
            for ex in dataset.take(n).as_numpy_iterator()]
  whole = draws(None, 400)
  shards = [draws(seqio.ShardInfo(i, 2), 200) for i in range(2)]
  assert shards[0] == whole[0::2] and shards[1] == whole[1::2]
  for shard in shards:
    assert any(x.startswith("mixtest_d") for x in shard)


def test_cached_sizes_key_on_settings_without_memory_addresses():
  demo = seqio.TaskRegistry.get("aya_demo_swa")
  text = mixing.settings_text(demo)
  assert "0x" not in text and "filter_language[('language', 'swa')]" in text
  assert "'swa'" in mixing.settings_text(
      seqio.TaskRegistry.get("aya_sample_xp3x_swa"))


# --- Sources the user provides ---------------------------------------------


def test_a_paper_mixture_without_sharegpt_files_fails_at_start_in_one_line(
    monkeypatch):
  from aya_t5x.tasks import sharegpt_command  # pylint: disable=g-import-not-at-top
  monkeypatch.delenv(sharegpt_command.ENV_DIR, raising=False)
  mix = seqio.MixtureRegistry.get("aya_translation_heavy")
  # No Hub task is listed or counted first: this holds without network.
  with pytest.raises(mixing.MissingSourceError) as error:
    mix.rates()
  message = str(error.value)
  assert "\n" not in message
  with pytest.raises(mixing.MissingSourceError):  # The report's path.
    mix.expected_shares()
  for needle in ("source 'sharegpt_command' (22.5%)",
                 "mixing.UserSources.dirs = {'sharegpt_command'",
                 "$AYA_SHAREGPT_COMMAND_DIR",
                 "mixing.UserSources.drop_missing = True"):
    assert needle in message


def test_drop_missing_renormalizes_the_other_sources_and_logs_them(
    built, tmp_path, monkeypatch, caplog):
  from aya_t5x.tasks import sharegpt_command  # pylint: disable=g-import-not-at-top
  monkeypatch.delenv(sharegpt_command.ENV_DIR, raising=False)
  members, _ = built
  members = [m for m in members if m.source == "mixtest_big"] + [
      mixing.Member(sharegpt_command.TASK_NAME, "sharegpt_command",
                    "sharegpt_command")]
  scheme = mixing.Scheme("test_drop_missing", {"mixtest_big": 77.5,
                                               "sharegpt_command": 22.5})
  def mixture(user):
    return mixing.WeightedMixture(
        scheme, members, sizes=mixing.TaskSizes(str(tmp_path / "s.json")),
        user_sources_fn=lambda: user)
  with pytest.raises(mixing.MissingSourceError):
    mixture(mixing.UserSources()).rates()
  rates = mixture(mixing.UserSources(drop_missing=True)).rates()
  assert rates[sharegpt_command.TASK_NAME] == 0
  assert sum(rates.values()) == pytest.approx(100)
  assert "dropped source(s) without data ['sharegpt_command']" in caplog.text
  assert "mixtest_big 100.00" in caplog.text
  # The gin knob pointing at the user's files: the source is back.
  folder = os.path.join(registry_helpers.SAMPLE_DIR, "sharegpt_command")
  try:
    rates = mixture(mixing.UserSources(
        dirs={"sharegpt_command": folder})).rates()
  finally:
    mixing.sources._USER_DIRS.clear()  # pylint: disable=protected-access
  assert rates[sharegpt_command.TASK_NAME] == pytest.approx(22.5)

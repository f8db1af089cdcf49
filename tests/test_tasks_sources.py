"""Each Aya training source's tasks on the shipped sample (Hub layout).

The registered tasks use mT5's vocabulary (on GCS), so these tests register
the same sources again under `test_*` names with the demo vocabulary and read
the sample through the Hub loaders' mirror path (AYA_DATA_DIR).
"""

import importlib.util
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import seqio

from aya_t5x import preprocessors
from aya_t5x import sources
from aya_t5x import vocabularies
import aya_t5x.tasks  # pylint: disable=unused-import
from aya_t5x.tasks import aya_collection
from aya_t5x.tasks import aya_dataset
from aya_t5x.tasks import data_provenance
from aya_t5x.tasks import registry_helpers
from aya_t5x.tasks import safety
from aya_t5x.tasks import sharegpt_command
from aya_t5x.tasks import xp3x

LENGTHS = {"inputs": 128, "targets": 128}
SAMPLE = registry_helpers.SAMPLE_DIR


def _builder():
  path = os.path.join(SAMPLE, "build_sample_data.py")
  spec = importlib.util.spec_from_file_location("build_sample_data", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


BUILDER = _builder()
SAMPLE_LANGUAGES = tuple(BUILDER.LANGUAGES)


pytestmark = pytest.mark.usefixtures("sample_mirror")  # tests/conftest.py


@pytest.fixture(scope="module")
def vocabulary():
  return vocabularies.demo_vocabulary()


def _tokenized(name, split="train"):
  task = seqio.get_mixture_or_task(name)
  ds = task.get_dataset(LENGTHS, split=split, shuffle=False)
  return list(ds.as_numpy_iterator())


def _assert_tokenized(examples, vocabulary, source):
  assert examples
  for ex in examples:
    assert ex["source"] == source.encode()
    for feature in ("inputs", "targets"):
      assert ex[feature].dtype.name == "int32"
      assert ex[feature][-1] == vocabularies.EOS_ID
      assert vocabulary.decode(ex[feature].tolist()) == (
          ex[f"{feature}_pretokenized"].decode())


def test_sample_builder_reproduces_the_shipped_rows(tmp_path):
  BUILDER.build(str(tmp_path))
  for relative in (
      "CohereForAI/xP3x/data/hin_Deva/word_order_reverse-words.jsonl",
      "sharegpt_command/train-00000-of-00001.jsonl"):
    with open(tmp_path / relative, "rb") as a, open(
        os.path.join(SAMPLE, relative), "rb") as b:
      assert a.read() == b.read(), relative
  for relative in ("CohereForAI/aya_dataset/data/train-00000-of-00001.parquet",
                   "CohereForAI/aya_collection/translated_dolly/"
                   "train-00000-of-00001.parquet"):
    assert pq.read_table(tmp_path / relative).equals(
        pq.read_table(os.path.join(SAMPLE, relative))), relative


def test_xp3x_prunes_templates_and_tokenizes_every_sample_language(
    vocabulary, register_xp3x):
  names = register_xp3x("test_xp3x", SAMPLE_LANGUAGES, vocabulary)
  expected = BUILDER.EXPECTED
  for code, name in zip(SAMPLE_LANGUAGES, names):
    report = sources.count_task(name)
    drops = dict(expected["xp3x_dropped_per_language"])
    drops.update(expected["xp3x_extra_drops"].get(code, {}))
    assert report.kept_by_language == {
        code: expected["xp3x_kept_per_language"]}, code
    assert report.by_reason() == drops, code
    assert set(report.kept_by_dataset) == {"aya_sample/word_order",
                                           "aya_sample/translation"}
  _assert_tokenized(_tokenized("test_xp3x_amh"), vocabulary, "xp3x")


def test_xp3x_reads_every_directory_of_a_macrolanguage():
  arabic = xp3x.directory_patterns(aya_collection.languages.get("ara"))
  assert "data/arb_Arab/*.jsonl" in arabic
  assert "data/ary_Arab/*.jsonl" in arabic
  assert not any("Latn" in p for p in arabic)
  assert xp3x.directory_patterns(aya_collection.languages.get("swa")) == (
      "data/swa_Latn/*.jsonl", "data/swh_Latn/*.jsonl", "data/swc_Latn/*.jsonl")


def test_aya_dataset_selects_codesincluding_dialects(vocabulary):
  aya_dataset.register(vocabulary=vocabulary, prefix="test_aya_dataset",
                       codes=SAMPLE_LANGUAGES)
  for code in SAMPLE_LANGUAGES:
    train = sources.count_task(f"test_aya_dataset_{code}", "train")
    test = sources.count_task(f"test_aya_dataset_{code}", "test")
    assert train.kept_by_language == {
        code: BUILDER.EXPECTED["aya_dataset_train_per_language"]}
    assert test.kept == BUILDER.EXPECTED["aya_dataset_test_per_language"]
    assert train.dropped == 0
  # Moroccan Arabic (ary) is Arabic; Wolof is in no task.
  census = sources.language_census("test_aya_dataset_ara")
  assert census == {**{code: 3 for code in SAMPLE_LANGUAGES}, "wol": 2}
  _assert_tokenized(_tokenized("test_aya_dataset_swa"), vocabulary,
                    "aya_dataset")


def test_aya_collection_templated_and_translated_tasks(vocabulary):
  aya_collection.register(
      vocabulary=vocabulary, templated_prefix="test_templated",
      translated_prefix="test_translated", codes=("yor", "zho"),
      datasets=("translated_dolly", "translated_flan_cot"))
  templated = sources.count_task("test_templated_yor")
  assert templated.kept_by_dataset == {"templated_xlel_wd": 5}
  dolly = sources.count_task("test_translated_dolly_zho")
  assert dolly.kept_by_language == {"zho": 5}
  assert dolly.kept_by_dataset == {"translated_dolly": 5}
  _assert_tokenized(_tokenized("test_translated_flan_cot_yor"), vocabulary,
                    "aya_translated")
  _assert_tokenized(_tokenized("test_templated_zho"), vocabulary,
                    "aya_templated")


def _collection_mirror(root, config, n_swa, n_hin=10):
  """A translated config with n_swa Swahili rows over two sorted files."""
  rows = [BUILDER.collection_row(i, "hin", f"swali {i}", f"jibu {i}",
                                 "Test", "generation", True)
          for i in range(n_hin)]
  rows += [BUILDER.collection_row(n_hin + i, "swa", f"swali {i}",
                                  f"jibu {i}", "Test", "generation", True)
           for i in range(n_swa)]
  half = len(rows) // 2
  directory = os.path.join(root, aya_collection.REPO_ID, config)
  os.makedirs(directory, exist_ok=True)
  for part, chunk in enumerate((rows[:half], rows[half:])):
    pq.write_table(
        pa.Table.from_pylist(chunk, schema=BUILDER.TRANSLATED_SCHEMA),
        os.path.join(directory, f"train-0000{part}-of-00002.parquet"),
        row_group_size=500)


def test_translated_cap_is_3000_per_language_except_dolly(tmp_path,
                                                          hub_mirror):
  hub_mirror(tmp_path)
  _collection_mirror(str(tmp_path), "translated_flan_cot", 3_500)
  _collection_mirror(str(tmp_path), "translated_dolly", 3_500)
  capped = sources.RowSource(
      "test_cap_flan_cot",
      aya_collection.translated_spec("translated_flan_cot", "swa"))
  dolly = sources.RowSource(
      "test_cap_dolly", aya_collection.translated_spec("translated_dolly",
                                                       "swa"))
  for source, kept, over in ((capped, 3_000, 500), (dolly, 3_500, 0)):
    preprocessors.TALLY.reset(source.task)
    per_host = [
        {ex["inputs"] for ex in source.get_dataset(
            "train", shuffle=False, shard_info=seqio.ShardInfo(i, 2)
        ).as_numpy_iterator()} for i in range(2)]
    report = preprocessors.TALLY.report(source.task)
    assert len(per_host[0] | per_host[1]) == kept
    assert not per_host[0] & per_host[1]
    assert report.kept_by_language == {"swa": kept}
    assert report.by_reason() == ({"over_cap:task": over} if over else {})


def test_data_provenance_caps_per_dataset_and_applies_exclusions(
    vocabulary, tmp_path, hub_mirror):
  data_provenance.register(vocabulary=vocabulary, name="test_data_provenance")
  source = seqio.get_mixture_or_task("test_data_provenance").source
  # The Hub's layout: names with spaces and dots; code folders unread.
  assert "data/rlhf_anthropic_hh/Anthropic HH-RLHF.j-processed.jsonl" in [
      f.key for f in source.prepare("train").files]
  assert not any("commitpack" in f.key for f in source.prepare("train").files)
  report = sources.count_task("test_data_provenance")
  # `labels` and `targets` files, `dataset` and `user_parent` uids.
  assert report.kept_by_dataset == {"flan/quartz": 3, "dolly_15k": 3,
                                    "anthropic_hh": 3, "oasst_es": 3}
  assert report.by_reason() == {"excluded_task:dataset": 3,
                                "eval_derived:dataset": 3}
  # No language column: English; a file's own column wins.
  assert report.kept_by_language == {"eng": 9, "spa": 3}
  _assert_tokenized(_tokenized("test_data_provenance"), vocabulary,
                    "data_provenance")
  # The 20,000 cap, per dataset: exercised at a smaller cap on more rows.
  directory = tmp_path / data_provenance.REPO_ID / "data" / "flan_2021"
  directory.mkdir(parents=True)
  with open(directory / "Flan 2021-processed.jsonl", "w",
            encoding="utf-8") as f:
    for name, n in (("big", 120), ("small", 30)):
      for i in range(n):
        f.write(json.dumps({"inputs": f"{name} q{i}", "labels": f"a{i}",
                            "dataset": name}) + "\n")
  hub_mirror(tmp_path)
  source = sources.RowSource("test_dp_cap", data_provenance.spec(cap=50))
  preprocessors.TALLY.reset("test_dp_cap")
  list(source.get_dataset("train", shuffle=False).as_numpy_iterator())
  capped = preprocessors.TALLY.report("test_dp_cap")
  assert capped.kept_by_dataset == {"big": 50, "small": 30}
  assert capped.by_reason() == {"over_cap:dataset": 70}


def test_sharegpt_command_reads_the_users_files_without_urls(vocabulary):
  sharegpt_command.register(vocabulary=vocabulary, name="test_sharegpt")
  report = sources.count_task("test_sharegpt")
  assert report.kept_by_language == {"eng": 3, "hin": 3, "swa": 3, "zho": 3}
  assert report.by_reason() == {"has_url:inputs": 1}
  _assert_tokenized(_tokenized("test_sharegpt"), vocabulary,
                    "sharegpt_command")


def test_sharegpt_command_without_data_says_where_to_put_it(monkeypatch):
  monkeypatch.delenv(sharegpt_command.ENV_DIR)
  source = sources.RowSource("test_sharegpt_missing", sharegpt_command.spec())
  with pytest.raises(FileNotFoundError, match="AYA_SHAREGPT_COMMAND_DIR"):
    source.list_shards("train")


def test_prompt_length_limit_of_sharegpt_command(tmp_path):
  path = tmp_path / "train.jsonl"
  path.write_text(
      '{"inputs": "%s", "targets": "ok", "language": "eng"}\n'
      '{"inputs": "short", "targets": "ok", "language": "eng"}\n'
      % ("x" * 10_001), encoding="utf-8")
  source = sources.RowSource("test_sharegpt_long", sharegpt_command.spec(
      patterns={"train": (str(path),)}))
  preprocessors.TALLY.reset("test_sharegpt_long")
  assert len(list(source.get_dataset("train", shuffle=False))) == 1
  assert preprocessors.TALLY.report("test_sharegpt_long").by_reason() == {
      "over_max_chars:inputs": 1}


def test_safety_distillation_drops_short_long_and_repetitive(vocabulary):
  safety.register(vocabulary=vocabulary, name="test_safety")
  report = sources.count_task("test_safety")
  assert report.kept_by_language == {"eng": 1, "hin": 1, "swa": 1, "yor": 1}
  assert report.by_reason() == {"under_min_chars:targets": 1,
                                "repetitive:targets": 1}
  _assert_tokenized(_tokenized("test_safety"), vocabulary,
                    "safety_distillation")


def test_safety_filter_thresholds_match_the_paper():
  length = preprocessors.LengthBetween("targets", 20, 1000)
  repetition = preprocessors.NotRepetitive("targets", 2.1)
  assert length.check({"targets": "x" * 19}) == ("under_min_chars", "targets")
  assert length.check({"targets": "x" * 1001}) == ("over_max_chars",
                                                   "targets")
  assert length.check({"targets": "x" * 1000}) is None
  # "abcd" * 6 = 24 chars; longest repeat 20 > 24 / 2.1.
  assert repetition.check({"targets": "abcd" * 6}) == ("repetitive",
                                                        "targets")
  assert repetition.check({"targets": "No, I will not explain how to do "
                                      "that; it is dangerous."}) is None

"""Tests of the embedded demo data, its vocabulary and its SeqIO tasks."""

import collections
import importlib
import importlib.util
import json
import logging
import os
import unicodedata

import pytest
import seqio
import tensorflow as tf

from aya_t5x import vocabularies
import aya_t5x.mixtures  # pylint: disable=unused-import
from aya_t5x.mixtures import demo as demo_mixtures
import aya_t5x.tasks  # pylint: disable=unused-import
from aya_t5x.tasks import demo

SEQUENCE_LENGTH = {"inputs": 64, "targets": 64}
SHIPPED_JSONL = [f"train-{i:05d}-of-00004.jsonl" for i in range(4)] + [
    "validation.jsonl"]
# Scripts and symbols absent from the demo corpus: Greek, Korean, Amharic,
# emoji, a combining accent.
UNSEEN_TEXT = ("Καλημέρα κόσμε", "안녕하세요 세계", "ሰላም ለዓለም", "🙂 👍🏽 🚀",
               "naïve café e\u0301")


def _load_builder():
  path = os.path.join(demo.DATA_DIR, "build_demo_data.py")
  spec = importlib.util.spec_from_file_location("build_demo_data", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _read_rows(split):
  rows = []
  for path in seqio.utils.list_files(demo.SPLIT_TO_FILEPATTERN[split]):
    with open(path, encoding="utf-8") as f:
      rows.extend(json.loads(line) for line in f)
  return rows


def _read_bytes(path):
  with open(path, "rb") as f:
    return f.read()


@pytest.fixture(scope="module")
def builder():
  return _load_builder()


@pytest.fixture(scope="module")
def rows():
  return {split: _read_rows(split) for split in ("train", "validation")}


@pytest.fixture(scope="module")
def vocabulary():
  return vocabularies.demo_vocabulary()


def test_generator_rebuilds_shipped_files_byte_for_byte(builder, tmp_path):
  builder.build(str(tmp_path / "data"), str(tmp_path / "vocab"))
  for name in SHIPPED_JSONL:
    assert _read_bytes(tmp_path / "data" / name) == _read_bytes(
        os.path.join(demo.DATA_DIR, name)), name
  assert _read_bytes(tmp_path / "vocab" / "aya_demo_spm.model") == (
      _read_bytes(vocabularies.DEMO_SPM_PATH))


def test_split_sizes_match_what_the_task_declares(rows):
  for split, expected in demo.NUM_INPUT_EXAMPLES.items():
    assert len(rows[split]) == expected, split


def test_every_language_and_task_is_in_both_splits(builder, rows):
  assert demo.LANGUAGES == tuple(l.code for l in builder.LANGUAGES)
  for split_rows in rows.values():
    pairs = collections.Counter((r["language"], r["dataset"])
                                for r in split_rows)
    assert set(pairs) == {(language, task) for language in demo.LANGUAGES
                          for task in builder.TASKS}
    assert len(set(pairs.values())) == 1  # Balanced.


def test_rows_have_the_jsonl_schema(rows):
  for row in rows["train"] + rows["validation"]:
    assert tuple(row) == demo.JSONL_FIELDS
    assert row["source"] == "demo"


def test_validation_sentences_never_appear_in_train(rows):
  train_text = {r["inputs"] for r in rows["train"]} | {
      r["targets"] for r in rows["train"]}
  for row in rows["validation"]:
    assert row["inputs"] not in train_text
    assert row["targets"] not in train_text


def test_targets_are_a_function_of_inputs(rows):
  target_of = {}
  for row in rows["train"] + rows["validation"]:
    assert target_of.setdefault(row["inputs"], row["targets"]) == (
        row["targets"])


def test_shipped_text_is_nfkc_so_decoded_output_matches_targets(rows):
  for row in rows["validation"]:
    for text in (row["inputs"], row["targets"]):
      assert unicodedata.normalize("NFKC", text) == text


def test_vocabulary_uses_t5_special_ids(vocabulary):
  assert vocabulary.vocab_size == 1200
  assert (vocabulary.pad_id, vocabulary.eos_id, vocabulary.unk_id) == (0, 1, 2)
  assert vocabulary.tokenizer.bos_id() == -1


@pytest.mark.parametrize("language", demo.LANGUAGES)
def test_vocabulary_round_trips_every_demo_language(language, rows,
                                                    vocabulary):
  texts = [r["inputs"] for r in rows["validation"]
           if r["language"] == language]
  for text in texts:
    ids = vocabulary.encode(text)
    assert vocabulary.unk_id not in ids
    assert vocabulary.decode(ids) == text


@pytest.mark.parametrize("text", UNSEEN_TEXT)
def test_vocabulary_round_trips_unseen_characters_via_bytes(text, vocabulary):
  ids = vocabulary.encode(text)
  assert vocabulary.unk_id not in ids
  assert vocabulary.decode(ids) == unicodedata.normalize("NFKC", text)


def test_missing_vocabulary_file_error_names_the_path(tmp_path):
  path = str(tmp_path / "nowhere.model")
  with pytest.raises(FileNotFoundError, match="nowhere.model"):
    vocabularies.sentencepiece_vocabulary(path)


def test_task_yields_tokenized_examples_ending_in_eos(vocabulary):
  task = seqio.get_mixture_or_task(demo.TASK_NAME)
  dataset = task.get_dataset(SEQUENCE_LENGTH, split="validation",
                             shuffle=False)
  examples = list(dataset.as_numpy_iterator())
  assert len(examples) == demo.NUM_INPUT_EXAMPLES["validation"]
  for example in examples:
    assert set(demo.JSONL_FIELDS) <= set(example)
    for feature in ("inputs", "targets"):
      tokens = example[feature]
      assert tokens.dtype.name == "int32"
      assert tokens[-1] == vocabularies.EOS_ID
      assert vocabulary.decode(tokens.tolist()) == (
          example[f"{feature}_pretokenized"].decode("utf-8"))


def test_no_train_example_is_truncated_at_64_tokens():
  task = seqio.get_mixture_or_task(demo.TASK_NAME)
  dataset = task.get_dataset(None, split="train", shuffle=False)
  longest = dataset.reduce(
      tf.constant([0, 0]),
      lambda m, ex: tf.maximum(m, [tf.size(ex["inputs"]),
                                   tf.size(ex["targets"])]))
  assert max(longest.numpy()) <= 64


def test_language_task_keeps_only_its_language():
  task = seqio.get_mixture_or_task(demo.language_task_name("hin"))
  dataset = task.get_dataset(SEQUENCE_LENGTH, split="validation",
                             shuffle=False)
  languages = [ex["language"] for ex in dataset.as_numpy_iterator()]
  expected = demo.NUM_INPUT_EXAMPLES["validation"] // len(demo.LANGUAGES)
  assert languages == [b"hin"] * expected


def test_mixture_samples_every_language_task_at_equal_rates():
  mixture = seqio.get_mixture_or_task(demo_mixtures.MIXTURE_NAME)
  names = sorted(task.name for task in mixture.tasks)
  assert names == sorted(demo.language_task_name(l) for l in demo.LANGUAGES)
  assert {mixture.get_rate(task) for task in mixture.tasks} == {1.0}


def test_reimporting_registrations_does_not_raise():
  importlib.reload(demo)
  importlib.reload(demo_mixtures)
  assert demo.TASK_NAME in seqio.TaskRegistry.names()
  assert demo_mixtures.MIXTURE_NAME in seqio.MixtureRegistry.names()


def test_train_files_give_each_of_four_hosts_disjoint_rows():
  source = seqio.get_mixture_or_task(demo.TASK_NAME).source
  per_host = []
  for index in range(4):
    lines = source.get_dataset("train", shuffle=False,
                               shard_info=seqio.ShardInfo(index, 4))
    per_host.append({ex["jsonl_line"] for ex in lines.as_numpy_iterator()})
  assert sum(len(rows) for rows in per_host) == demo.NUM_INPUT_EXAMPLES["train"]
  assert len(set().union(*per_host)) == demo.NUM_INPUT_EXAMPLES["train"]


def test_bad_jsonl_line_is_skipped_logged_and_counted(tmp_path, caplog):
  good = {field: "x" for field in demo.JSONL_FIELDS}
  lines = [json.dumps(good), "{not json", json.dumps({"inputs": "only"}),
           json.dumps(["a", "list"]), json.dumps({**good, "targets": 3}),
           json.dumps(good)]
  path = tmp_path / "bad.jsonl"
  path.write_text("\n".join(lines) + "\n", encoding="utf-8")
  demo.BAD_LINES.reset()
  with caplog.at_level(logging.WARNING):
    parsed = demo.parse_jsonl(demo.read_jsonl_lines(tf.constant(str(path))))
    examples = list(parsed.as_numpy_iterator())
  assert len(examples) == 2
  assert demo.BAD_LINES.counts() == {str(path): 4}
  for line_number in (2, 3, 4, 5):
    assert f"{path}:{line_number}" in caplog.text
  assert "missing field(s) ['targets'" in caplog.text


def test_exact_match_metric_scores_percent_of_equal_strings():
  assert demo.exact_match(["a", "b"], ["a", "c"]) == {"exact_match": 50.0}

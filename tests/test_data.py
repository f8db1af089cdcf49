"""Tests for aya_t5x.data: determinism, packing, resume, sharding, meshes."""

import json

import jax
import numpy as np
import pytest
import seqio
import tensorflow as tf

from aya_t5x import data
from tests import golden

_TASK = "aya_t5x_test_data_tiny"
_GOLDEN_TASK = "aya_t5x_test_data_golden"
_NUM_EXAMPLES = 100
_LENGTHS = {"inputs": 32, "targets": 32}
_MODEL_KEYS = {
    "encoder_input_tokens",
    "decoder_target_tokens",
    "decoder_input_tokens",
    "decoder_loss_weights",
}
_PACKING_KEYS = {
    "encoder_segment_ids",
    "decoder_segment_ids",
    "encoder_positions",
    "decoder_positions",
}


def _tiny_examples(split: str, shuffle_files: bool, seed: int | None = None):
  """100 distinct short examples of varied length, so packing has room."""
  del split, shuffle_files, seed
  inputs = [f"question {i}: " + "ab" * (i % 7) for i in range(_NUM_EXAMPLES)]
  targets = [f"answer {i}" + "!" * (i % 5) for i in range(_NUM_EXAMPLES)]
  return tf.data.Dataset.from_tensor_slices(
      {"inputs": inputs, "targets": targets}
  )


def _register_tiny_task() -> None:
  seqio.TaskRegistry.remove(_TASK)
  feature = seqio.Feature(vocabulary=seqio.ByteVocabulary(), add_eos=True)
  seqio.TaskRegistry.add(
      _TASK,
      source=seqio.FunctionDataSource(
          _tiny_examples,
          splits=["train"],
          num_input_examples={"train": _NUM_EXAMPLES},
      ),
      preprocessors=[
          seqio.preprocessors.tokenize,
          seqio.preprocessors.append_eos_after_trim,
      ],
      output_features={"inputs": feature, "targets": feature},
      shuffle_buffer_size=_NUM_EXAMPLES,  # Small buffers keep the tests fast.
  )


_register_tiny_task()


def _config(**overrides) -> data.DatasetConfig:
  fields = dict(
      mixture_or_task_name=_TASK,
      task_feature_lengths=_LENGTHS,
      split="train",
      batch_size=8,
      shuffle=True,
      seed=17,
  )
  fields.update(overrides)
  return data.DatasetConfig(**fields)


def _iterator(cfg, shard_id=0, num_shards=1, num_epochs=None):
  return data.get_data_iterator(
      cfg, shard_id, num_shards, num_epochs=num_epochs
  )


def _take(iterator, n: int) -> list[dict[str, np.ndarray]]:
  return [next(iterator) for _ in range(n)]


def _assert_same_batches(expected, actual) -> None:
  assert len(expected) == len(actual)
  for want, got in zip(expected, actual):
    assert want.keys() == got.keys()
    for key in want:
      np.testing.assert_array_equal(got[key], want[key], err_msg=key)


def _rows(batches, key="encoder_input_tokens") -> list[bytes]:
  return [row.tobytes() for b in batches for row in b[key]]


def test_same_seed_gives_identical_batch_sequence():
  first = _take(_iterator(_config(seed=3)), 15)
  second = _take(_iterator(_config(seed=3)), 15)
  _assert_same_batches(first, second)


def test_different_seed_gives_different_order():
  first = _rows(_take(_iterator(_config(seed=3)), 5))
  second = _rows(_take(_iterator(_config(seed=4)), 5))
  assert first != second


def test_batches_have_model_features_and_host_batch_shape():
  batch = next(_iterator(_config(batch_size=8), num_shards=2))
  assert set(batch) == _MODEL_KEYS
  for value in batch.values():
    assert value.shape == (4, 32)


def test_packing_adds_segments_and_fits_more_examples_per_batch():
  batch = next(_iterator(_config(pack=True)))
  assert set(batch) == _MODEL_KEYS | _PACKING_KEYS
  segments = batch["encoder_segment_ids"]
  examples = sum(len(set(row[row > 0])) for row in segments)
  assert examples > 8  # Unpacked, a batch of 8 rows holds 8 examples.
  assert batch["encoder_positions"][segments == 2].min() == 0


@pytest.mark.parametrize(
    "consumed, pack",
    [
        (3, False),
        (11, False),  # Example 100 ends in batch 13: continues into epoch 2.
        (5, True),
    ],
)
def test_resume_continues_with_next_batch_no_replay_no_skip(
    tmp_path, consumed, pack
):
  cfg = _config(pack=pack)
  uninterrupted = _iterator(cfg)
  _take(uninterrupted, consumed)
  uninterrupted.save_state(str(tmp_path / "dataset"))
  expected = _take(uninterrupted, 5)

  resumed = _iterator(cfg)
  resumed.restore_state(str(tmp_path / "dataset"))
  assert resumed.batches_consumed == consumed
  _assert_same_batches(expected, _take(resumed, 5))
  assert resumed.batches_consumed == consumed + 5


def test_restore_without_saved_state_names_the_missing_file(tmp_path):
  with pytest.raises(FileNotFoundError, match="iterator-00000-of-00001"):
    _iterator(_config()).restore_state(str(tmp_path))


def test_restore_with_another_seed_fails_naming_the_field(tmp_path):
  _iterator(_config(seed=3)).save_state(str(tmp_path))
  with pytest.raises(ValueError, match="seed: saved 3, now 4"):
    _iterator(_config(seed=4)).restore_state(str(tmp_path))


def test_restore_into_another_pipeline_fails_with_a_clear_error(tmp_path):
  unpacked = data.DataIterator(data.get_dataset(_config(), 0, 1))
  next(unpacked)
  unpacked.save_state(str(tmp_path))
  packed = data.DataIterator(data.get_dataset(_config(pack=True), 0, 1))
  with pytest.raises(ValueError, match="must match the run that saved it"):
    packed.restore_state(str(tmp_path))


def test_two_shards_read_disjoint_examples_covering_the_split():
  cfg = _config(shuffle=False, seed=None, batch_size=10)
  whole = _rows(list(_iterator(cfg, num_epochs=1)))
  shard_0 = _rows(list(_iterator(cfg, 0, 2, num_epochs=1)))
  shard_1 = _rows(list(_iterator(cfg, 1, 2, num_epochs=1)))
  assert len(set(whole)) == _NUM_EXAMPLES
  assert len(shard_0) == len(shard_1) == _NUM_EXAMPLES // 2
  assert not set(shard_0) & set(shard_1)
  assert set(shard_0) | set(shard_1) == set(whole)


def _mesh_4x2() -> jax.sharding.Mesh:
  devices = np.array(jax.devices()[:8]).reshape(4, 2)
  return jax.sharding.Mesh(devices, ("data", "model"))


def test_make_global_batch_puts_each_devices_rows_on_it():
  mesh = _mesh_4x2()
  host = {"encoder_input_tokens": np.arange(8 * 32).reshape(8, 32)}
  array = data.make_global_batch(host, mesh)["encoder_input_tokens"]
  assert array.shape == (8, 32)
  # Each device's coordinate on the data axis picks its 2 of the 8 rows.
  data_index = {d: i for i, row in enumerate(mesh.devices) for d in row}
  for shard in array.addressable_shards:
    first = 2 * data_index[shard.device]
    want = host["encoder_input_tokens"][first : first + 2]
    np.testing.assert_array_equal(np.asarray(shard.data), want)


def test_single_process_reads_the_whole_batch():
  mesh = _mesh_4x2()
  assert data.get_global_shard_info(mesh) == (0, 1)
  replicated = jax.sharding.PartitionSpec()
  assert data.get_global_shard_info(mesh, replicated) == (0, 1)


def test_unknown_task_name_error_lists_close_names():
  with pytest.raises(ValueError, match=_TASK):
    data.get_dataset(_config(mixture_or_task_name=_TASK + "_typo"), 0, 1)


def test_indivisible_batch_size_error_names_batch_size():
  with pytest.raises(ValueError, match="BATCH_SIZE=10"):
    data.get_dataset(_config(batch_size=10), 0, 4)


_TRICKY_RECORDS = [
    {"inputs": 'a "quoted" \\ slash \\n', "targets": "two\nlines\ttab\r\b\f/"},
    {"targets": "Ελληνικά ☕🙂 日本語。", "inputs": "हिंदी । русский"},
    {"id": 3, "targets": 'say "inputs": "no"', "inputs": 'x\\"inputs\\": "y'},
    {"inputs": "\u0000\u001f", "targets": "\\u1234 is text"},
    {"inputs": "", "targets": "", "lang": "en"},
]


@pytest.mark.parametrize("ensure_ascii", [True, False])
@pytest.mark.parametrize("record", _TRICKY_RECORDS)
def test_json_parse_in_tf_matches_json_loads(record, ensure_ascii):
  line = json.dumps(record, ensure_ascii=ensure_ascii)
  parsed = data.parse_json_fields(tf.constant(line))
  assert parsed["inputs"].numpy().decode() == record["inputs"]
  assert parsed["targets"].numpy().decode() == record["targets"]


def test_json_line_without_field_fails_naming_it():
  with pytest.raises(tf.errors.InvalidArgumentError, match="targets"):
    data.parse_json_fields(tf.constant('{"inputs": "a"}'))


def test_jsonl_task_resumes_exactly(tmp_path):
  path = tmp_path / "train.jsonl"
  records = [{"inputs": f"q{i} é", "targets": f"a{i}"} for i in range(40)]
  lines = [json.dumps(r) for r in records]
  path.write_text("\n".join(lines) + "\n", encoding="utf-8")
  name = "aya_t5x_test_data_jsonl"
  seqio.TaskRegistry.remove(name)
  data.register_jsonl_task(
      name, {"train": str(path)}, seqio.ByteVocabulary(), shuffle_buffer_size=40
  )
  cfg = _config(mixture_or_task_name=name, batch_size=4)
  uninterrupted = _iterator(cfg)
  _take(uninterrupted, 8)
  uninterrupted.save_state(str(tmp_path / "dataset"))
  expected = _take(uninterrupted, 6)  # Crosses the end of epoch 1.
  resumed = _iterator(cfg)
  resumed.restore_state(str(tmp_path / "dataset"))
  _assert_same_batches(expected, _take(resumed, 6))


@seqio.map_over_dataset
def _numpy_identity(example):
  """A pure Python preprocessor, which TF nonetheless calls stateful."""
  inputs = tf.numpy_function(lambda x: x, [example["inputs"]], tf.string)
  inputs.set_shape([])
  return {**example, "inputs": inputs}


def test_pipeline_with_numpy_function_resumes_exactly(tmp_path):
  name = "aya_t5x_test_data_numpy_function"
  seqio.TaskRegistry.remove(name)
  tiny = seqio.get_mixture_or_task(_TASK)
  seqio.TaskRegistry.add(
      name,
      source=tiny.source,
      preprocessors=[_numpy_identity, *tiny.preprocessors],
      output_features=tiny.output_features,
      shuffle_buffer_size=_NUM_EXAMPLES,
  )
  cfg = _config(mixture_or_task_name=name)
  uninterrupted = _iterator(cfg)
  _take(uninterrupted, 2)
  uninterrupted.save_state(str(tmp_path))
  expected = _take(uninterrupted, 3)
  resumed = _iterator(cfg)
  resumed.restore_state(str(tmp_path))
  _assert_same_batches(expected, _take(resumed, 3))


def test_first_batch_matches_t5x_golden_batch():
  seqio.TaskRegistry.remove(_GOLDEN_TASK)
  vocabulary = seqio.SentencePieceVocabulary(
      golden.path("data", "spm.model"), extra_ids=0
  )
  data.register_jsonl_task(
      _GOLDEN_TASK,
      {"train": golden.path("data", "train.jsonl")},
      vocabulary,
  )
  cfg = _config(
      mixture_or_task_name=_GOLDEN_TASK, shuffle=False, seed=None, pack=False
  )
  batch = next(_iterator(cfg))
  with open(golden.path("first_batch.json")) as f:
    expected = json.load(f)
  assert set(batch) == set(expected)
  for key, rows in expected.items():
    np.testing.assert_array_equal(batch[key], np.array(rows), err_msg=key)

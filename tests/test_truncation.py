"""Tests for aya_t5x.truncation: exact counts of what trimming cuts, per task
and feature, with the pipeline's output and iterator-state layout unchanged."""

import os

import numpy as np
import pytest
import seqio
import tensorflow as tf

from aya_t5x import data
from aya_t5x import drop_summary
from aya_t5x import truncation

_NUM_EXAMPLES = 10
_LENGTHS = {"inputs": 6, "targets": 8}


def _examples(split: str, shuffle_files: bool, seed: int | None = None):
  """Example i (1..10): i input bytes, 2i target bytes (ByteVocabulary: one
  token a byte), so every length before trimming is known."""
  del split, shuffle_files, seed
  count = range(1, _NUM_EXAMPLES + 1)
  return tf.data.Dataset.from_tensor_slices({
      "inputs": ["x" * i for i in count], "targets": ["y" * 2 * i for i in count]})


def _register(name: str, append_eos) -> str:
  seqio.TaskRegistry.remove(name)
  feature = seqio.Feature(vocabulary=seqio.ByteVocabulary(), add_eos=True)
  seqio.TaskRegistry.add(
      name,
      source=seqio.FunctionDataSource(
          _examples, splits=["train"],
          num_input_examples={"train": _NUM_EXAMPLES}),
      preprocessors=[seqio.preprocessors.tokenize, append_eos],
      output_features={"inputs": feature, "targets": feature},
      shuffle_buffer_size=_NUM_EXAMPLES)
  return name


# Cut by the Task's final trim (EOS appended first, cut with the rest) and by
# `append_eos_after_trim` (cut to length - 1, then EOS): the same counts.
_TASKS = {
    "final_trim": _register("aya_t5x_test_truncation_final_trim",
                            seqio.preprocessors.append_eos),
    "eos_after_trim": _register("aya_t5x_test_truncation_eos_after_trim",
                                seqio.preprocessors.append_eos_after_trim),
}

# Example i has i + 1 input and 2i + 1 target tokens with EOS. Inputs over 6:
# i = 6..10 lose 1..5 tokens; targets over 8: i = 4..10 lose 1, 3, ..., 13.
_EXPECTED = {"inputs": (5, 15), "targets": (7, 49)}


def _config(name: str, **overrides) -> data.DatasetConfig:
  fields = dict(mixture_or_task_name=name, task_feature_lengths=_LENGTHS,
                split="train", batch_size=2, shuffle=False, seed=None)
  return data.DatasetConfig(**(fields | overrides))


def _batches(dataset: tf.data.Dataset) -> list[dict[str, np.ndarray]]:
  return list(dataset.as_numpy_iterator())


@pytest.mark.parametrize("kind", sorted(_TASKS))
def test_counts_examples_and_tokens_cut_per_feature_exactly(kind):
  tally = truncation.TruncationTally()
  name = _TASKS[kind]
  counted = _batches(data.get_dataset(_config(name), 0, 1, num_epochs=1,
                                      truncations=tally))
  rows = {r.feature: r for r in tally.rows()}
  assert sorted(rows) == ["inputs", "targets"]
  for feature, (examples, tokens) in _EXPECTED.items():
    row = rows[feature]
    assert (row.task, row.split, row.length) == (name, "train",
                                                 _LENGTHS[feature])
    assert row.examples_read == _NUM_EXAMPLES
    assert (row.examples_cut, row.tokens_cut) == (examples, tokens), feature
  # Counting changes nothing in the examples themselves.
  plain = _batches(data.get_dataset(_config(name), 0, 1, num_epochs=1,
                                    truncations=None))
  assert len(counted) == len(plain) == _NUM_EXAMPLES // 2
  for want, got in zip(plain, counted):
    for key in want:
      np.testing.assert_array_equal(got[key], want[key], err_msg=key)
  tally.reset()
  assert {(r.examples_read, r.examples_cut, r.tokens_cut)
          for r in tally.rows()} == {(0, 0, 0)}


def test_each_task_of_a_mixture_counts_under_its_own_name():
  mixture = "aya_t5x_test_truncation_mixture"
  seqio.MixtureRegistry.remove(mixture)
  seqio.MixtureRegistry.add(mixture, [(name, 1.0) for name in
                                      _TASKS.values()])
  tally = truncation.TruncationTally()
  dataset = data.get_dataset(_config(mixture, shuffle=True, seed=3), 0, 1,
                             truncations=tally)
  _batches(dataset.take(4))
  rows = tally.rows()
  assert sorted({r.task for r in rows}) == sorted(_TASKS.values())
  assert all(r.examples_read > 0 for r in rows)


def _take(iterator, n):
  return [next(iterator) for _ in range(n)]


# Written by aya_t5x at commit 2325d5a, before counting existed, for the
# `eos_after_trim` task and `_config(..., shuffle=True, seed=5)`: 3 batches
# taken, the iterator state saved, the next 12 batches stored beside it.
_OLD_STATE = os.path.join(os.path.dirname(__file__), "fixtures",
                          "iterator_state_before_truncation_counts")


def test_iterator_state_saved_before_counting_existed_resumes_exactly():
  """A checkpoint's data state from before this change restores into the
  counting pipeline: the same next batches, and counting starts."""
  cfg = _config(_TASKS["eos_after_trim"], shuffle=True, seed=5)
  tally = truncation.TruncationTally()
  resumed = data.DataIterator(data.get_dataset(cfg, 0, 1, truncations=tally),
                              data.describe_dataset(cfg, 0, 1))
  resumed.restore_state(_OLD_STATE)
  assert resumed.batches_consumed == 3
  expected = np.load(os.path.join(_OLD_STATE, "next_12_batches.npz"))
  got = _take(resumed, 12)  # Crosses into the third epoch.
  assert sorted(expected) == sorted(got[0])
  for key in expected:
    np.testing.assert_array_equal(np.stack([b[key] for b in got]),
                                  expected[key], err_msg=key)
  assert {r.feature: r.examples_read > 0 for r in tally.rows()} == {
      "inputs": True, "targets": True}


def _row(task, feature, read, cut, tokens):
  return truncation.TruncationRow(task, "train", feature, 8, read, cut, tokens)


def test_console_line_gives_totals_the_largest_and_the_file(tmp_path):
  rows = [_row("t1", "inputs", 10, 1, 2), _row("t1", "targets", 10, 0, 0),
          _row("t2", "inputs", 20, 5, 40), _row("t3", "targets", 30, 2, 9)]
  path = tmp_path / truncation.TABLE_FILE
  drop_summary.write_truncations(rows, path)
  assert drop_summary.format_truncations(rows, str(path)) == (
      "truncated to TASK_FEATURE_LENGTHS: 51 tokens cut from 8 example "
      "features of 60 examples read by this process (each epoch and "
      "read-ahead counted); most: t2 train inputs (length 8), 5 of 20 "
      f"examples read cut, 40 tokens; every (task, feature): {path}")
  written = path.read_text(encoding="utf-8").splitlines()
  assert written[0] == ("task\tsplit\tfeature\tlength\texamples_read\t"
                        "examples_cut\ttokens_cut")
  assert written[1:] == ["t1\ttrain\tinputs\t8\t10\t1\t2",
                         "t1\ttrain\ttargets\t8\t10\t0\t0",
                         "t2\ttrain\tinputs\t8\t20\t5\t40",
                         "t3\ttrain\ttargets\t8\t30\t2\t9"]


def test_nothing_cut_is_one_line_with_the_examples_read():
  rows = [_row("t1", "inputs", 10, 0, 0), _row("t1", "targets", 10, 0, 0)]
  assert drop_summary.format_truncations(rows, scope="process 1 of 4") == (
      "truncated to TASK_FEATURE_LENGTHS: nothing (10 examples read by "
      "process 1 of 4)")

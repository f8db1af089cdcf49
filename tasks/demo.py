"""SeqIO tasks over the shipped multilingual demo data.

`aya_demo` (all 12 languages) and `aya_demo_<iso639_3>` (one each) read the
JSONL rows written by `data/demo/build_demo_data.py`: copy, reverse-words and
translate instructions a tiny mT5 learns in a few hundred CPU steps. They are
the embedded default for tests and smoke runs: no network, no TFDS.

Source. A `seqio.FileDataSource` over JSONL files, each line tagged with its
file and line number so a malformed row can be reported precisely. Training
data ships as 4 files because SeqIO shards a file source by file: up to 4
hosts each read only their own files. With more hosts than files SeqIO itself
falls back to reading everything and keeping every n-th example, which is
correct but reads the whole split on every host (fine at 1 MB). Sharding by
file was chosen over a one-file source sharded by index because it is the
layout real multi-host data needs, so the demo exercises the same path.

Malformed rows. TensorFlow has no JSON op, so `parse_jsonl` decodes lines in
Python through `tf.numpy_function`, 256 lines per call to amortise its cost
(this pins the pipeline to the Python process: fine for tf.data on a host,
not for tf.data service). A line that is not a JSON object with the required
string fields is skipped, logged as WARNING with its `file:line` and the
reason, and counted in `BAD_LINES`, per file and per pass over the data.
Nothing is dropped silently; callers that must be strict check
`BAD_LINES.total()` after a pass.
"""

import collections
import functools
import json
import os
import threading
from typing import Callable, Mapping, Sequence

from absl import logging
import numpy as np
import seqio
import tensorflow as tf

from aya_t5x import vocabularies

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                        "demo")
NUM_TRAIN_SHARDS = 4
SPLIT_TO_FILEPATTERN = {
    "train": os.path.join(DATA_DIR,
                          f"train-*-of-{NUM_TRAIN_SHARDS:05d}.jsonl"),
    "validation": os.path.join(DATA_DIR, "validation.jsonl"),
}
# Rows per split as written by build_demo_data.py (a test keeps these honest).
# Known sizes let SeqIO cache these small splits in memory.
NUM_INPUT_EXAMPLES = {"train": 4608, "validation": 288}
# ISO 639-3 codes, as in the Aya language list.
LANGUAGES = ("eng", "spa", "fra", "deu", "rus", "ara", "hin", "ben", "zho",
             "jpn", "swa", "tha")
# Every row has these string fields; the last three are metadata that SeqIO
# passes through untouched.
JSONL_FIELDS = ("inputs", "targets", "language", "dataset", "source")

TASK_NAME = "aya_demo"
# Lines per Python call when decoding JSON (see parse_jsonl).
_PARSE_BATCH_SIZE = 256


def language_task_name(language: str) -> str:
  """Name of the single-language demo task, e.g. `aya_demo_hin`."""
  return f"{TASK_NAME}_{language}"


class BadLineTally:
  """Thread-safe count of skipped JSONL lines, per file.

  tf.data runs the parser on several threads, hence the lock.
  """

  def __init__(self):
    self._lock = threading.Lock()
    self._counts = collections.Counter()

  def add(self, path: str) -> None:
    with self._lock:
      self._counts[path] += 1

  def counts(self) -> dict[str, int]:
    with self._lock:
      return dict(self._counts)

  def total(self) -> int:
    with self._lock:
      return sum(self._counts.values())

  def reset(self) -> None:
    with self._lock:
      self._counts.clear()


BAD_LINES = BadLineTally()


def read_jsonl_lines(path: tf.Tensor) -> tf.data.Dataset:
  """Reads one file as {"jsonl_path", "jsonl_line_number", "jsonl_line"}.

  Line numbers start at 1, as editors show them, so a logged `file:line`
  can be opened directly.
  """
  def tag(index, line):
    return {"jsonl_path": path, "jsonl_line_number": index,
            "jsonl_line": line}
  return tf.data.TextLineDataset(path).enumerate(start=1).map(tag)


def _required_strings(line: bytes, fields: Sequence[str]) -> list[str]:
  """Returns the fields of a JSON object line; raises ValueError if bad."""
  row = json.loads(line)
  if not isinstance(row, dict):
    raise ValueError(f"expected a JSON object, got {type(row).__name__}")
  missing = [field for field in fields if field not in row]
  if missing:
    raise ValueError(f"missing field(s) {missing}")
  not_strings = [field for field in fields if not isinstance(row[field], str)]
  if not_strings:
    raise ValueError(f"field(s) {not_strings} are not strings")
  return [row[field] for field in fields]


def _decode_line(path: bytes, line_number: int, line: bytes,
                 fields: Sequence[str]) -> list[object]:
  """Returns [ok, *field values as bytes]; tallies and logs a bad line."""
  try:
    values = _required_strings(line, fields)
  except ValueError as e:  # json.JSONDecodeError is a ValueError.
    file_name = path.decode("utf-8")
    logging.warning("Skipping bad JSONL line %s:%d: %s", file_name,
                    line_number, e)
    BAD_LINES.add(file_name)
    return [False] + [b""] * len(fields)
  return [True] + [value.encode("utf-8") for value in values]


def _decode_batch(paths: np.ndarray, line_numbers: np.ndarray,
                  lines: np.ndarray, fields: Sequence[str]) -> list[np.ndarray]:
  """numpy_function body over a batch of lines: [ok, *fields] as arrays."""
  decoded = [_decode_line(*row, fields=fields)
             for row in zip(paths, line_numbers, lines)]
  columns = list(zip(*decoded)) or [()] * (1 + len(fields))
  return ([np.array(columns[0], dtype=bool)] +
          [np.array(column, dtype=object) for column in columns[1:]])


def parse_jsonl(dataset: tf.data.Dataset,
                fields: Sequence[str] = JSONL_FIELDS) -> tf.data.Dataset:
  """Turns tagged JSONL lines into examples of string `fields`.

  Bad lines are skipped, logged and counted in `BAD_LINES` (module docstring).
  Lines are decoded in batches because each numpy_function call costs far
  more than decoding one short line; order is preserved.
  """
  decode = functools.partial(_decode_batch, fields=tuple(fields))

  def parse(batch):
    ok, *values = tf.numpy_function(
        decode,
        [batch["jsonl_path"], batch["jsonl_line_number"],
         batch["jsonl_line"]],
        [tf.bool] + [tf.string] * len(fields),
        stateful=True)  # It logs and counts.
    parsed = {field: tf.ensure_shape(value, [None])
              for field, value in zip(fields, values)}
    return tf.ensure_shape(ok, [None]), parsed

  dataset = dataset.batch(_PARSE_BATCH_SIZE).map(
      parse, num_parallel_calls=tf.data.AUTOTUNE)
  dataset = dataset.unbatch().filter(lambda ok, parsed: ok)
  return dataset.map(lambda ok, parsed: parsed)


def filter_language(dataset: tf.data.Dataset,
                    language: str) -> tf.data.Dataset:
  """Keeps the examples whose `language` field is `language`."""
  return dataset.filter(lambda example: example["language"] == language)


def exact_match(targets: Sequence[str],
                predictions: Sequence[str]) -> Mapping[str, float]:
  """Percent of predictions equal to their target: every demo task is exact."""
  if len(targets) != len(predictions):
    raise ValueError(f"{len(targets)} targets but {len(predictions)} "
                     "predictions")
  hits = sum(t == p for t, p in zip(targets, predictions))
  return {"exact_match": 100.0 * hits / max(len(targets), 1)}


def output_features() -> dict[str, seqio.Feature]:
  vocabulary = vocabularies.demo_vocabulary()
  return {
      "inputs": seqio.Feature(vocabulary=vocabulary, add_eos=True),
      "targets": seqio.Feature(vocabulary=vocabulary, add_eos=True),
  }


def source() -> seqio.FileDataSource:
  return seqio.FileDataSource(
      read_file_fn=read_jsonl_lines,
      split_to_filepattern=SPLIT_TO_FILEPATTERN,
      num_input_examples=NUM_INPUT_EXAMPLES)


def register_task(
    name: str,
    selection: Sequence[Callable[[tf.data.Dataset], tf.data.Dataset]] = (),
) -> None:
  """Registers a demo task once; re-importing this module is a no-op.

  Args:
    name: the task name.
    selection: preprocessors on parsed text examples that pick a subset
      (e.g. one language), applied before tokenization.
  """
  if name in seqio.TaskRegistry.names():
    return
  seqio.TaskRegistry.add(
      name,
      source=source(),
      preprocessors=[
          parse_jsonl,
          *selection,
          seqio.preprocessors.tokenize,
          seqio.CacheDatasetPlaceholder(),
          seqio.preprocessors.append_eos_after_trim,
      ],
      output_features=output_features(),
      metric_fns=[exact_match],
  )


def register_all() -> None:
  register_task(TASK_NAME)
  for language in LANGUAGES:
    register_task(language_task_name(language),
                  [functools.partial(filter_language, language=language)])


register_all()

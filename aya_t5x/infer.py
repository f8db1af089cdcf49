"""The infer CLI: a checkpoint's generations for a task or a JSONL file.

    python -m aya_t5x.infer --gin_file=gin/models/mt5_tiny.gin \
      --gin_file=gin/runs/infer.gin --gin.CHECKPOINT_PATH="'/run/checkpoint_400'" \
      --gin.INPUT_FILE="'prompts.jsonl'" --gin.INFER_OUTPUT_DIR="'/tmp/out'"

Writes `<INFER_OUTPUT_DIR>/<name>-predictions.jsonl`, one line per input in
input order: `index`, `inputs`, `prediction`, `score` (optional), and the
input line's other fields (`id`, `language`, `targets`, ...) passed through.
Lines are flushed batch by batch, so a restarted job finds what is written,
checks that it belongs to these inputs, and goes on after it.
"""

import dataclasses
import importlib
import os
import sys
from typing import Any, Iterator, Mapping

# Run as a program: hide native start-up noise before the heavy imports
# (aya_t5x.startup; --verbose shows it).
from aya_t5x import startup  # pylint: disable=g-bad-import-order
if __name__ == "__main__":
  startup.begin(sys.argv)

from absl import logging
import gin
import seqio

from aya_t5x import data
from aya_t5x import decoding
from aya_t5x import architecture
from aya_t5x import gin_utils
from aya_t5x import inference
from aya_t5x import jsonl_io
from aya_t5x import model as model_lib
from aya_t5x import partitioning
from aya_t5x import progress

Row = dict[str, Any]
_RESERVED = ("index", "prediction", "score")
# Whether `infer` is past set-up (config, inputs, checkpoint): errors while
# generating are not usage errors.
_SETUP = gin_utils.SetupPhase()


@dataclasses.dataclass(frozen=True)
class InferConfig:
  """What to run on and where to write (gin: `infer.InferConfig`)."""
  checkpoint_path: str  # CHECKPOINT_PATH: ours, upstream T5X or HF folder.
  output_dir: str  # INFER_OUTPUT_DIR.
  # Exactly one source: a JSONL file of {"inputs": ...} lines, or a task.
  input_file: str | None = None  # INPUT_FILE
  mixture_or_task_name: str | None = None  # MIXTURE_OR_TASK_NAME
  split: str = "validation"  # Split of the task.
  module: str | None = "aya_t5x.mixtures"  # Imported to register tasks.
  input_field: str = "inputs"  # Field of each JSONL line to generate from.
  batch_size: int = 8  # Rows per decoding call (rounded up to the mesh).
  max_input_length: int = 1024  # Longer inputs are truncated (EOS kept).
  max_examples: int | None = None  # Stop after this many inputs.
  write_scores: bool = True  # Add each prediction's log-likelihood.

  def __post_init__(self):
    if (self.input_file is None) == (self.mixture_or_task_name is None):
      raise ValueError(
          "Set exactly one of INPUT_FILE (a JSONL file) and "
          "MIXTURE_OR_TASK_NAME; got "
          f"INPUT_FILE={self.input_file!r}, "
          f"MIXTURE_OR_TASK_NAME={self.mixture_or_task_name!r}.")
    if self.batch_size < 1 or self.max_input_length < 2:
      raise ValueError(f"InferConfig: batch_size={self.batch_size} must be "
                       f">= 1, max_input_length={self.max_input_length} >= 2.")

  @property
  def name(self) -> str:
    if self.input_file is not None:
      return os.path.splitext(os.path.basename(self.input_file))[0]
    return self.mixture_or_task_name

  @property
  def output_path(self) -> str:
    return os.path.join(self.output_dir, f"{self.name}-predictions.jsonl")


# ---------------------------------------------------------------- inputs ---


def read_jsonl_inputs(path: str, field: str, report: jsonl_io.InputReport
                      ) -> Iterator[Row]:
  """Rows of a JSONL file; bad lines are skipped, named and counted."""
  for where, row in jsonl_io.jsonl_objects(path, report):
    if not isinstance(row.get(field), str):
      report.skip(where, f"no string field {field!r}")
      continue
    if not row[field].strip():
      report.skip(where, f"empty {field!r}")
      continue
    report.kept += 1
    yield {k: v for k, v in row.items() if k not in _RESERVED} | {
        "inputs": row[field]}


def _text(value) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def read_task_inputs(config: InferConfig, report: jsonl_io.InputReport
                     ) -> Iterator[Row]:
  """Rows of a task's split: its pretokenized inputs (and targets)."""
  task = data.get_mixture_or_task(config.mixture_or_task_name, config.module)
  dataset = task.get_dataset(sequence_length=None, split=config.split,
                             shuffle=False, num_epochs=1)
  for example in dataset.as_numpy_iterator():
    if "inputs_pretokenized" not in example:
      raise ValueError(f"Task {task.name} has no 'inputs_pretokenized' "
                       "feature; infer needs the input text.")
    row = {"inputs": _text(example["inputs_pretokenized"])}
    if "targets_pretokenized" in example:
      row["targets"] = _text(example["targets_pretokenized"])
    report.kept += 1
    yield row


def read_inputs(config: InferConfig, report: jsonl_io.InputReport
                ) -> list[Row]:
  rows = (read_jsonl_inputs(config.input_file, config.input_field, report)
          if config.input_file else read_task_inputs(config, report))
  out = []
  for row in rows:
    if config.max_examples is not None and len(out) >= config.max_examples:
      break
    out.append(row)
  return out


# ---------------------------------------------------------------- output ---


# ------------------------------------------------------------------- run ---


@gin.configurable
def infer(*, model: model_lib.EncoderDecoderModel,
          vocabulary: seqio.Vocabulary, config: InferConfig,
          decoding_config: decoding.DecodingConfig = decoding.DecodingConfig(),
          partitioning_config: partitioning.PartitioningConfig = (
              partitioning.PartitioningConfig())) -> dict[str, Any]:
  """Generates for every input not yet in the output file; returns a summary."""
  report = jsonl_io.InputReport()
  rows = read_inputs(config, report)
  os.makedirs(config.output_dir, exist_ok=True)
  start = jsonl_io.resume_point(config.output_path, rows)
  summary = {"output": config.output_path, "inputs": len(rows),
             "resumed_at": start, "skipped": dict(report.skipped)}
  if start == len(rows):
    return summary
  predictor = inference.Predictor.from_checkpoint(
      model, config.checkpoint_path, vocabulary,
      batch_size=config.batch_size, max_input_length=config.max_input_length,
      partitioner=partitioning.Partitioner(partitioning_config))
  _SETUP.finish()
  with progress.Progress(len(rows), config.name, unit="ex",
                         initial=start) as bar:
    for begin in range(start, len(rows), predictor.batch_size):
      chunk = rows[begin:begin + predictor.batch_size]
      generations = predictor.generate([r["inputs"] for r in chunk],
                                       decoding_config)
      jsonl_io.append_jsonl(config.output_path,
                   [_output_row(begin + i, row, g, config.write_scores)
                    for i, (row, g) in enumerate(zip(chunk, generations))])
      bar.update(len(chunk))
  return summary


def _output_row(index: int, row: Mapping[str, Any],
                generation: inference.Generation, with_score: bool) -> Row:
  out = {"index": index, **row, "prediction": generation.text}
  if with_score:
    out["score"] = generation.score
  return out


def main(command_line: gin_utils.CommandLine) -> dict[str, Any]:
  """Parses gin, then generates; set-up mistakes are usage errors (exit 2)."""
  # The checkpoint's own model.gin (if any) after the given gin files.
  architecture.parse_gin_with_checkpoint(command_line)
  startup.ready()
  with _SETUP.usage_errors(TypeError, ValueError, FileNotFoundError):
    summary = infer()  # pylint: disable=missing-kwoa  (gin supplies them)
  skipped = sum(summary["skipped"].values())
  print(f"aya_t5x.infer: {summary['inputs']} inputs (resumed after "
        f"{summary['resumed_at']}; {skipped} input lines skipped"
        f"{': ' + str(summary['skipped']) if skipped else ''}) -> "
        f"{summary['output']}", flush=True)
  return summary


def console_main() -> None:
  gin_utils.run(main)


if __name__ == "__main__":
  # Through the package module, so gin binds the same `infer` object.
  importlib.import_module("aya_t5x.infer").console_main()

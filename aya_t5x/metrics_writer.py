"""Where training metrics go: `MODEL_DIR/*_metrics.jsonl` and TensorBoard.

JSONL is the record scripts and tests read (one object per logged step, with
`step`); TensorBoard (through clu's writers) is what people look at. Only
process 0 writes files; other hosts log to their own logs.
"""

import json
import os
from typing import Mapping

from clu import metric_writers
import jax
import numpy as np


def _plain(value):
  value = np.asarray(value)
  return value.item() if value.ndim == 0 else value.tolist()


class MetricsWriter:
  """Appends per-step metrics to a JSONL file and to TensorBoard."""

  def __init__(self, model_dir: str, name: str = "train",
               tensorboard: bool = True):
    self.path = os.path.join(model_dir, f"{name}_metrics.jsonl")
    self._is_writer = jax.process_index() == 0
    logdir = os.path.join(model_dir, name) if tensorboard else None
    self._tensorboard = metric_writers.create_default_writer(
        logdir, just_logging=not self._is_writer or not tensorboard,
        asynchronous=False)
    if self._is_writer:
      os.makedirs(model_dir, exist_ok=True)

  def truncate_after(self, step: int) -> None:
    """Drops rows past `step`: a resumed run re-logs those steps itself."""
    if not (self._is_writer and os.path.exists(self.path)):
      return
    with open(self.path) as f:
      rows = [line for line in f if line.strip() and
              json.loads(line).get("step", 0) <= step]
    with open(self.path + ".tmp", "w") as f:
      f.writelines(rows)
    os.replace(self.path + ".tmp", self.path)

  def write(self, step: int, metrics: Mapping[str, object]) -> None:
    row = {"step": int(step), **{k: _plain(v) for k, v in metrics.items()}}
    if self._is_writer:
      with open(self.path, "a") as f:
        f.write(json.dumps(row) + "\n")
    scalars = {k: v for k, v in row.items()
               if k != "step" and isinstance(v, (int, float))}
    self._tensorboard.write_scalars(int(step), scalars)

  def flush(self) -> None:
    self._tensorboard.flush()

  def close(self) -> None:
    self._tensorboard.close()


def read_metrics(path: str) -> list[dict]:
  """The rows of a metrics JSONL file, in order."""
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]

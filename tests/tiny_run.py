"""A micro training run on the real train loop, fast enough for many runs.

`train._set_up_and_train` (restore or init, the loop, its checkpoints and
metrics) runs exactly as the CLI runs it; only the model (a few thousand
parameters), the data (random batches through a checkpointable tf.data
iterator) and the device (one CPU device) are made small. The trainer is
shared between runs, so the step compiles once per test module.
"""

from __future__ import annotations

import functools
import pathlib

import jax
import numpy as np
import tensorflow as tf

from aya_t5x import checkpoints
from aya_t5x import data
from aya_t5x import finite_guard
from aya_t5x import metrics_writer
from aya_t5x import model as model_lib
from aya_t5x import network
from aya_t5x import optim
from aya_t5x import partitioning
from aya_t5x import train
from aya_t5x import trainer as trainer_lib

MICRO = network.T5Config(vocab_size=64, emb_dim=16, num_heads=2,
                         num_encoder_layers=1, num_decoder_layers=1,
                         head_dim=8, mlp_dim=32, dtype="float32")
BATCH, LENGTH, NUM_BATCHES = 4, 8, 16


def batches(poisoned: tuple[int, ...] = ()) -> list[dict[str, np.ndarray]]:
  """Fixed random batches; those at the given 1-based steps get NaN loss
  weights (a non-finite loss and gradient at exactly that step)."""
  rng = np.random.default_rng(0)
  out = []
  for index in range(NUM_BATCHES):
    tokens = rng.integers(2, MICRO.vocab_size, (3, BATCH, LENGTH))
    weights = np.ones((BATCH, LENGTH), np.float32)
    if index + 1 in poisoned:
      weights[0, 0] = np.nan
    out.append({"encoder_input_tokens": tokens[0],
                "decoder_target_tokens": tokens[1],
                "decoder_input_tokens": tokens[2],
                "decoder_loss_weights": weights})
  return out


def iterator(poisoned: tuple[int, ...] = ()) -> data.DataIterator:
  """A checkpointable iterator over `batches`, repeated."""
  dataset = tf.data.Dataset.from_tensor_slices(
      {k: np.stack([b[k] for b in batches(poisoned)])
       for k in batches()[0]}).repeat()
  return data.DataIterator(dataset, {"poisoned": list(poisoned)})


@functools.lru_cache(maxsize=None)
def trainer(learning_rate: float = 1e-2,
            policy: str = "stop", max_skips: int = 10) -> trainer_lib.Trainer:
  """One trainer per setting: its compiled step is reused by every run."""
  model = model_lib.EncoderDecoderModel(
      MICRO, model_lib.LossConfig(loss_normalizing_factor=None))
  partitioner = partitioning.Partitioner(partitioning.PartitioningConfig(),
                                         jax.devices()[:1])
  config = trainer_lib.TrainerConfig(
      seed=1, nonfinite=finite_guard.NonFiniteConfig(policy, max_skips))
  return trainer_lib.Trainer(model, optim.Adafactor(learning_rate),
                             partitioner, config)


def run(model_dir, steps: int, *, period: int = 2, keep: int | None = None,
        poisoned: tuple[int, ...] = (), policy: str = "stop",
        max_skips: int = 10, learning_rate: float = 1e-2,
        allow_data_replay: bool = False) -> dict:
  """Trains (or resumes) `model_dir` to `steps`; returns train()'s summary."""
  the_trainer = trainer(learning_rate, policy, max_skips)
  config = train.RunConfig(str(model_dir), steps, log_period=1)
  run_state = train._Run(  # pylint: disable=protected-access
      config, the_trainer, the_trainer.partitioner, iterator(poisoned),
      checkpoints.Checkpointer(model_dir, checkpoints.CheckpointConfig(
          period=period, keep=keep)),
      metrics_writer.MetricsWriter(str(model_dir), "train"),
      examples_per_step=BATCH, monitor=finite_guard.Monitor(the_trainer.config.nonfinite))
  restore = checkpoints.RestoreCheckpointConfig(
      allow_data_replay=allow_data_replay)
  try:
    return train._set_up_and_train(run_state, restore)  # pylint: disable=protected-access
  finally:
    run_state.checkpointer.close()
    run_state.writer.close()


def losses(model_dir) -> dict[int, float]:
  rows = metrics_writer.read_metrics(f"{model_dir}/train_metrics.jsonl")
  return {row["step"]: row["loss"] for row in rows}


def params(model_dir, step: int):
  return checkpoints.read_t5x_orbax_params(
      checkpoints.step_dir(model_dir, step))


def largest_array_file(checkpoint) -> pathlib.Path:
  """The biggest array data file of a checkpoint's state (OCDBT `d/`)."""
  files = [p for p in (pathlib.Path(checkpoint) / "state").rglob("*")
           if p.is_file() and p.parent.name == "d"]
  return max(files, key=lambda p: p.stat().st_size)


def flip_bytes(path: pathlib.Path) -> None:
  """64 bytes inverted in the middle, same size: only a checksum tells."""
  data = bytearray(path.read_bytes())
  middle = len(data) // 2
  for i in range(middle, min(middle + 64, len(data))):
    data[i] ^= 0xFF
  path.write_bytes(bytes(data))

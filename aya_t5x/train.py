r"""Train (finetune) an mT5 model: the T5X-style command line.

  python -m aya_t5x.train --gin_file=gin/aya_tiny_cpu.gin \
      --gin.MODEL_DIR="'/tmp/aya_tiny'" --gin.TRAIN_STEPS=300

`train()` is a short sequence of named steps; each lives in its own module
(partitioning, trainer, data, checkpoints, metrics_writer). Re-running the
same command resumes from the newest checkpoint in MODEL_DIR, data position
included. SIGTERM (a TPU VM preemption) saves a checkpoint and exits 0.
"""

import contextlib
import dataclasses
import importlib
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Mapping

# Run as a program: hide native start-up noise before the heavy imports
# (aya_t5x.startup; --verbose shows it).
from aya_t5x import startup  # pylint: disable=g-bad-import-order
if __name__ == "__main__":
  startup.begin(sys.argv)

from absl import logging
import gin
import jax
import numpy as np

from aya_t5x import architecture
from aya_t5x import checkpoints
from aya_t5x import data
from aya_t5x import drop_summary
from aya_t5x import finite_guard
from aya_t5x import gcs_access
from aya_t5x import gin_utils
from aya_t5x import lora as lora_lib
from aya_t5x import metrics_writer
from aya_t5x import model as model_lib
from aya_t5x import multihost
from aya_t5x import optim
from aya_t5x import partitioning
from aya_t5x import progress
from aya_t5x import trainer as trainer_lib
from aya_t5x import truncation
from aya_t5x import validation
from aya_t5x import vocabularies

PyTree = Any
# Whether `train` is past set-up (restore or init): errors after it are not
# usage errors.
_SETUP = gin_utils.SetupPhase()


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """The run's own knobs, validated before anything heavy starts."""
  model_dir: str  # MODEL_DIR: checkpoints, metrics, TensorBoard.
  total_steps: int  # TRAIN_STEPS: the step the run stops at (absolute).
  eval_period: int = 0  # EVAL_PERIOD: teacher-forced eval every N steps.
  eval_steps: int | None = None  # EVAL_STEPS: eval batches (None = all).
  log_period: int = 10  # LOG_PERIOD: steps between metric flushes.

  def __post_init__(self):
    if not isinstance(self.model_dir, str) or not self.model_dir:
      raise ValueError(f"MODEL_DIR must be a non-empty string, got "
                       f"{self.model_dir!r}.")
    gcs_access.check(self.model_dir, "MODEL_DIR")
    if os.path.exists(self.model_dir) and not os.path.isdir(self.model_dir):
      raise ValueError(f"MODEL_DIR={self.model_dir!r} is a file, not a "
                       "folder.")
    validation.integer("TRAIN_STEPS", self.total_steps, 1)
    validation.integer("EVAL_PERIOD", self.eval_period, 0)
    validation.integer("LOG_PERIOD", self.log_period, 1)
    if self.eval_steps is not None:
      validation.integer("EVAL_STEPS (or None)", self.eval_steps, 1)


@dataclasses.dataclass
class _Run:
  """What the steps of one training run share."""
  config: RunConfig
  trainer: trainer_lib.Trainer
  partitioner: partitioning.Partitioner
  train_iterator: data.DataIterator
  checkpointer: checkpoints.Checkpointer
  writer: metrics_writer.MetricsWriter
  eval_cfg: data.DatasetConfig | None = None  # None: no eval in this run.
  eval_writer: metrics_writer.MetricsWriter | None = None
  evals: dict[int, dict] = dataclasses.field(default_factory=dict)
  # Benchmarks at each eval (evaluation.TrainingEval); None: loss only.
  benchmark_eval: Callable[..., Mapping[str, float]] | None = None
  examples_per_step: int | None = None  # BATCH_SIZE: counts data replays.
  monitor: finite_guard.Monitor = dataclasses.field(
      default_factory=lambda: finite_guard.Monitor(
          finite_guard.NonFiniteConfig()))


def _train_iterator(cfg: data.DatasetConfig,
                    partitioner: partitioning.Partitioner) -> data.DataIterator:
  shard_id, num_shards = data.get_global_shard_info(partitioner.mesh)
  # The iterator records its config, so resuming with a changed seed, batch
  # size or mixture fails loudly instead of silently changing the data order.
  return data.get_data_iterator(cfg, shard_id, num_shards)


def _restore_or_init(run: _Run, restore_cfg: checkpoints.RestoreCheckpointConfig
                     ) -> PyTree:
  return checkpoints.restore_or_init(
      run.checkpointer, restore_cfg, run.trainer.abstract_state(),
      run.trainer.init_state, data_iterator=run.train_iterator,
      examples_per_step=run.examples_per_step)


def _evaluate(run: _Run, params: PyTree) -> dict:
  """Teacher-forced loss and accuracy over (a prefix of) the eval split."""
  cfg = run.eval_cfg
  shard_id, num_shards = data.get_global_shard_info(run.partitioner.mesh)
  dataset = data.get_dataset(cfg, shard_id, num_shards, num_epochs=1)
  if run.config.eval_steps:
    dataset = dataset.take(run.config.eval_steps)
  sums = [run.trainer.eval_sums(
      params, data.make_global_batch(batch, run.partitioner.mesh))
          for batch in dataset.as_numpy_iterator()]
  if not sums:
    raise ValueError(f"Eval split '{cfg.split}' of {cfg.mixture_or_task_name} "
                     f"has fewer than BATCH_SIZE={cfg.batch_size} examples.")
  return trainer_lib.summarize_eval(sums)


class _StepLogger:
  """Collects device metrics and writes them every `log_period` steps.

  Fetching once per period keeps the host from waiting on every step; every
  step still gets its own JSONL row.
  """

  def __init__(self, writer: metrics_writer.MetricsWriter,
               examples_seen: float, monitor: finite_guard.Monitor):
    self.writer = writer
    self.examples_seen = examples_seen
    self.monitor = monitor  # Sees every fetched row: the non-finite guard.
    self.pending: list[tuple[int, Mapping[str, jax.Array]]] = []
    self.last_flush = time.time()
    self.history: list[dict] = []

  def add(self, step: int, metrics: Mapping[str, jax.Array]) -> None:
    self.pending.append((step, metrics))

  def flush(self) -> None:
    if not self.pending:
      return
    fetched = jax.device_get(self.pending)
    elapsed = max(time.time() - self.last_flush, 1e-9)
    tokens = sum(m["num_target_tokens"] + m["num_encoder_tokens"]
                 for _, m in fetched)
    rows = []
    for step, metrics in fetched:
      self.examples_seen += float(metrics["num_sequences"])
      row = {k: float(v) for k, v in metrics.items()}
      row["examples_seen"] = self.examples_seen
      row["timing/steps_per_second"] = len(fetched) / elapsed
      row["timing/tokens_per_second"] = float(tokens) / elapsed
      self.writer.write(step, row)
      rows.append((step, row))
    self.writer.flush()
    self.pending, self.last_flush = [], time.time()
    for step, row in rows:  # Written first: the bad step is on record.
      self.history.append({"step": step, **row})
      self.monitor.check(step, row)


def _examples_seen_before(writer: metrics_writer.MetricsWriter,
                          step: int) -> float:
  writer.truncate_after(step)
  if step == 0 or not os.path.exists(writer.path):
    return 0.0
  rows = metrics_writer.read_metrics(writer.path)
  return float(rows[-1].get("examples_seen", 0.0)) if rows else 0.0


def _train_loop(run: _Run, state: PyTree) -> tuple[PyTree, str, list[dict]]:
  """Steps until TRAIN_STEPS or a preemption.

  Returns the state, why the loop ended, and the per-step metric rows.
  """
  cfg, mesh = run.config, run.partitioner.mesh
  step = int(jax.device_get(state["step"]))
  logger = _StepLogger(run.writer, _examples_seen_before(run.writer, step),
                       run.monitor)
  status = "finished"
  bar = progress.Progress(cfg.total_steps, "train", unit="step",
                          initial=step, enabled=jax.process_index() == 0)
  with checkpoints.PreemptionHandler() as preemption, bar:
    while step < cfg.total_steps:
      host_batch = next(run.train_iterator)
      state, metrics = run.trainer.train_step(
          state, data.make_global_batch(host_batch, mesh))
      step += 1
      logger.add(step, dict(metrics, **{
          "data/batch_fingerprint": data.batch_fingerprint(host_batch)}))
      if step % cfg.log_period == 0:
        logger.flush()
        bar.set(**_progress_status(run, logger.history[-1], step))
      bar.update()
      if run.eval_cfg is not None and step % cfg.eval_period == 0:
        _eval_at(run, state, step)
      if preemption.should_stop(step):
        status = "preempted"
        break
      if run.checkpointer.should_save(step):
        _save(run, logger, step, state)
  _save(run, logger, step, state, force=True)
  run.checkpointer.wait_until_finished()
  return state, status, logger.history


def _progress_status(run: _Run, row: Mapping[str, float], step: int
                     ) -> dict[str, Any]:
  """Loss, speed and the next checkpoint, for the progress bar."""
  period = run.checkpointer.config.period
  return {"loss": row["loss"], "tokens/s": row["timing/tokens_per_second"],
          "next checkpoint": min((step // period + 1) * period,
                                 run.config.total_steps)}


def _save(run: _Run, logger: _StepLogger, step: int, state: PyTree,
          force: bool = False) -> None:
  """Checkpoints `step` once its metrics and state are known to be finite.

  The metric fetch and the state check ride on the save's own device-to-host
  copy, so the guard adds no host sync to the steps between saves.
  """
  logger.flush()
  run.monitor.check_state(step, state)
  run.checkpointer.save(step, state, run.train_iterator, force=force)


def _eval_at(run: _Run, state: PyTree, step: int) -> dict:
  """Evaluates (once per step: the last period and the end may coincide)
  and writes the result to eval_metrics.jsonl and TensorBoard."""
  if step not in run.evals:
    metrics = _evaluate(run, state["params"])
    row = {f"{run.eval_cfg.split}/{k}": v for k, v in metrics.items()}
    if run.benchmark_eval is not None:
      row.update(run.benchmark_eval(run.trainer.model, state["params"],
                                    run.partitioner, step,
                                    run.config.model_dir))
    run.eval_writer.write(step, row)
    run.eval_writer.flush()
    logging.info("eval at step %d: %s", step, metrics)
    run.evals[step] = metrics
  return run.evals[step]


def _check_vocabularies(model: model_lib.EncoderDecoderModel,
                        cfg: data.DatasetConfig) -> None:
  task = data.get_mixture_or_task(cfg.mixture_or_task_name, cfg.module)
  for name, feature in task.output_features.items():
    where = f"{cfg.mixture_or_task_name!r} output feature {name!r}"
    vocabularies.check_loads(feature.vocabulary, where)
    model.check_vocabulary(feature.vocabulary, where)


def _check_microbatches(cfg: data.DatasetConfig,
                        trainer_config: trainer_lib.TrainerConfig) -> None:
  if cfg.batch_size % trainer_config.num_microbatches:
    raise ValueError(
        f"NUM_MICROBATCHES={trainer_config.num_microbatches} does not divide "
        f"BATCH_SIZE={cfg.batch_size}: each microbatch takes an equal share "
        "of the batch.")


@gin.configurable
def train(*,
          model: model_lib.EncoderDecoderModel,
          train_dataset_cfg: data.DatasetConfig,
          optimizer: optim.Adafactor,
          model_dir: str,
          total_steps: int,
          partitioning_config: partitioning.PartitioningConfig = (
              partitioning.PartitioningConfig()),
          trainer_config: trainer_lib.TrainerConfig = (
              trainer_lib.TrainerConfig()),
          checkpoint_cfg: checkpoints.CheckpointConfig = (
              checkpoints.CheckpointConfig()),
          restore_cfg: checkpoints.RestoreCheckpointConfig = (
              checkpoints.RestoreCheckpointConfig()),
          eval_dataset_cfg: data.DatasetConfig | None = None,
          eval_period: int = 0,
          eval_steps: int | None = None,
          log_period: int = 10,
          benchmark_eval: Callable[..., Mapping[str, float]] | None = None,
          lora: lora_lib.LoraConfig | None = None) -> dict:
  """Runs training to `total_steps` and returns a summary of the run.

  `benchmark_eval` (BENCHMARK_EVAL, e.g. `evaluation.TrainingEval`) also
  scores a benchmark subset at every EVAL_PERIOD, called as
  `(model, params, partitioner, step, model_dir) -> {name: value}`.
  `lora` (LORA, gin/lora/) trains adapters over the frozen base that
  INITIAL_CHECKPOINT_PATH names; checkpoints then hold the adapters alone.
  """
  run_config = RunConfig(model_dir, total_steps, eval_period, eval_steps,
                         log_period)
  partitioner = partitioning.Partitioner(partitioning_config)
  for cfg in filter(None, (train_dataset_cfg, eval_dataset_cfg)):
    partitioner.local_batch_rows(cfg.batch_size)
    _check_vocabularies(model, cfg)
  _check_microbatches(train_dataset_cfg, trainer_config)
  data.check_source_files(train_dataset_cfg)
  if lora is None:
    trainer = trainer_lib.Trainer(model, optimizer, partitioner,
                                  trainer_config)
  else:
    if benchmark_eval is not None:
      raise ValueError("BENCHMARK_EVAL is not run on LoRA adapters; "
                       "evaluate the merged model (python -m "
                       "aya_t5x.lora_merge) instead.")
    trainer, restore_cfg = lora_lib.trainer_for_run(
        model, optimizer, partitioner, trainer_config, lora, restore_cfg)
  eval_cfg = eval_dataset_cfg if eval_period else None
  run = _Run(run_config, trainer, partitioner,
             _train_iterator(train_dataset_cfg, partitioner),
             checkpoints.Checkpointer(model_dir, checkpoint_cfg),
             metrics_writer.MetricsWriter(model_dir, "train"), eval_cfg,
             metrics_writer.MetricsWriter(model_dir, "eval") if eval_cfg
             else None, benchmark_eval=benchmark_eval,
             examples_per_step=train_dataset_cfg.batch_size,
             monitor=finite_guard.Monitor(trainer_config.nonfinite))
  try:
    return _set_up_and_train(run, restore_cfg)
  finally:
    # Also on a non-finite stop: the last good save in flight completes.
    run.checkpointer.close()
    for writer in filter(None, (run.writer, run.eval_writer)):
      writer.close()


def _set_up_and_train(run: _Run,
                      restore_cfg: checkpoints.RestoreCheckpointConfig
                      ) -> dict:
  state = _restore_or_init(run, restore_cfg)
  _SETUP.finish()
  model_dir = run.config.model_dir
  if jax.process_index() == 0:
    architecture.write(model_dir, run.trainer.model.config,
                       f"the run in {model_dir}")
  start_step = int(jax.device_get(state["step"]))
  initial_eval = final_eval = None
  if run.eval_cfg is not None and start_step == 0:
    initial_eval = _eval_at(run, state, start_step)
  state, status, history = _train_loop(run, state)
  step = int(jax.device_get(state["step"]))
  if run.eval_cfg is not None:
    final_eval = _eval_at(run, state, step)
  run.checkpointer.wait_until_finished()
  return {
      "status": status, "start_step": start_step, "step": step,
      "model_dir": model_dir, "metrics": run.writer.path,
      "checkpoint_steps": checkpoints.committed_steps(model_dir),
      "history": history, "initial_eval": initial_eval,
      "final_eval": final_eval, "skipped_nonfinite": run.monitor.skipped,
  }


def format_summary(summary: Mapping[str, Any]) -> str:
  """A few readable lines for the end of a run."""
  history = summary["history"]
  lines = [f"aya_t5x.train: {summary['status']} at step {summary['step']} "
           f"(started at step {summary['start_step']})."]
  if history:
    first, last = history[0], history[-1]
    lines.append(f"  train loss: {first['loss']:.4f} (step {first['step']}) "
                 f"-> {last['loss']:.4f} (step {last['step']}); accuracy "
                 f"{first['accuracy']:.3f} -> {last['accuracy']:.3f}; "
                 f"{last['timing/tokens_per_second']:.0f} tokens/s")
  if summary.get("skipped_nonfinite"):
    lines.append(f"  skipped {summary['skipped_nonfinite']} non-finite steps "
                 "(NONFINITE_POLICY='skip'; see train_metrics.jsonl "
                 "'nonfinite')")
  first, last = summary.get("initial_eval"), summary.get("final_eval")
  if first and last:
    lines.append(f"  eval: loss {first['loss']:.4f} -> {last['loss']:.4f}, "
                 f"token accuracy {first['accuracy']:.3f} -> "
                 f"{last['accuracy']:.3f} (before -> after)")
  else:
    for name, ev in (("initial eval", first), ("final eval", last)):
      if ev:
        lines.append(f"  {name}: loss {ev['loss']:.4f}, "
                     f"token accuracy {ev['accuracy']:.3f}")
  lines.append(f"  checkpoints: {summary['model_dir']}/checkpoint_"
               f"{{{','.join(map(str, summary['checkpoint_steps']))}}}")
  lines.append(f"  metrics: {summary['metrics']} (TensorBoard: "
               f"{summary['model_dir']}/train)")
  return "\n".join(lines)


def _initialize_runtime(command_line: gin_utils.CommandLine) -> None:
  """Multi-process JAX, TFDS and SeqIO cache locations, and TensorFlow kept
  off the GPU."""
  import seqio  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], "GPU")
  multihost.initialize(multihost.config_from_command_line(command_line))
  if command_line.tfds_data_dir:
    seqio.set_tfds_data_dir_override(command_line.tfds_data_dir)
  seqio.add_global_cache_dirs(command_line.seqio_additional_cache_dirs)


class _Terminated(Exception):
  """SIGTERM arrived while no train step was running."""


@contextlib.contextmanager
def _sigterm_ends_quietly():
  """SIGTERM during start-up or after the loop: exit 0 with one line.

  Inside the loop `checkpoints.PreemptionHandler` takes over (and saves).
  Outside it there is nothing to save (start-up) or the last save is already
  written (the checkpointer waits for it on the way out), so a preemption
  then is not a failure. Left to JAX when its multi-host preemption service
  owns the signal.
  """
  if (threading.current_thread() is not threading.main_thread() or
      checkpoints._jax_preemption_service_running()):  # pylint: disable=protected-access
    yield
    return
  def terminate(signum, unused_frame):
    raise _Terminated(f"received {signal.Signals(signum).name}")
  previous = signal.signal(signal.SIGTERM, terminate)
  try:
    yield
  finally:
    signal.signal(signal.SIGTERM, previous)


def main(command_line: gin_utils.CommandLine) -> dict:
  """Parses gin, validates the configuration, then trains.

  Anything that goes wrong before the first train step (a gin binding of the
  wrong type, a missing required macro, an unknown task, a checkpoint that
  does not fit the model) is a usage error: one message, exit code 2.
  """
  gin_utils.parse_gin(command_line.gin_files, command_line.gin_bindings,
                      command_line.gin_search_paths)
  try:
    with _sigterm_ends_quietly():
      _initialize_runtime(command_line)
      startup.ready()
      with _SETUP.usage_errors(TypeError, ValueError, FileNotFoundError):
        summary = train()  # pylint: disable=missing-kwoa  (gin supplies them)
  except _Terminated as e:
    print(f"aya_t5x.train: {e} outside the train loop: stopped; every "
          "checkpoint on disk is complete.", flush=True)
    return {"status": "terminated"}
  print(format_summary(summary), flush=True)
  _report_drops(summary["model_dir"])
  return summary


def _report_drops(model_dir: str) -> None:
  """What the sources dropped (or cut) and what trimming to the feature
  lengths cut, while this process read them: the largest lines on the
  console, the whole tables beside the checkpoints (process 0's)."""
  rows = drop_summary.drop_rows()
  path = None
  if rows and jax.process_index() == 0:
    path = f"{model_dir}/{drop_summary.TABLE_FILE}"
    drop_summary.write_table(rows, path)
  print(drop_summary.format_table(rows, drop_summary.CONSOLE_LINES, path),
        flush=True)
  cuts = truncation.TALLY.rows()
  path = None
  if cuts and jax.process_index() == 0:
    path = f"{model_dir}/{truncation.TABLE_FILE}"
    drop_summary.write_truncations(cuts, path)
  scope = (f"process {jax.process_index()} of {jax.process_count()}"
           if jax.process_count() > 1 else "this process")
  print(drop_summary.format_truncations(cuts, path, scope), flush=True)


def console_main() -> None:
  gin_utils.run(main)


if __name__ == "__main__":
  # Run through the package module so gin binds the same `train` object.
  importlib.import_module("aya_t5x.train").console_main()

"""What the reliability features cost: the non-finite guard per train step,
the integrity manifest and its verification per checkpoint.

  * guard: the train step's added work is the global gradient norm and two
    `isfinite` tests (both policies) and, under `skip`, an elementwise select
    over parameters and optimizer state. It is timed as the same ops jitted
    on their own over a gradient-shaped tree (an upper bound: inside the step
    XLA fuses them into work it does anyway), against the median train step;
    the `skip` step is also timed whole against the `stop` step.
  * integrity: a save (`Checkpointer.save` + wait, the manifest included) is
    timed against `integrity.manifest` alone (the hashing each save adds)
    and `integrity.verify` (what each restore adds).
  * truncation counts (`--truncation`): one epoch of every task of the tiny
    run's mixture (gin/aya_tiny_cpu.gin: aya_demo_translation_heavy, 64+32
    tokens, batch 32) read with and without `aya_t5x.truncation` counting,
    in alternating rounds (the machine's load drifts): wall and CPU time
    per example read.

Run from the repository root (CPU):

  JAX_PLATFORMS=cpu .venv/bin/python bench/reliability.py --configs tiny,small
  JAX_PLATFORMS=cpu .venv/bin/python bench/reliability.py --truncation
"""

import argparse
import dataclasses
import gc
import shutil
import statistics
import tempfile
import time

import jax
import numpy as np

from aya_t5x import checkpoints
from aya_t5x import data
from aya_t5x import finite_guard
from aya_t5x import integrity
from aya_t5x import model as model_lib
from aya_t5x import network
from aya_t5x import optim
from aya_t5x import partitioning
from aya_t5x import trainer as trainer_lib
from aya_t5x import truncation

CONFIGS = {
    # gin/models/mt5_tiny.gin
    "tiny": network.T5Config(vocab_size=1280, emb_dim=128, num_heads=4,
                             num_encoder_layers=2, num_decoder_layers=2,
                             head_dim=32, mlp_dim=256, dtype="float32"),
    # mT5-small's shape with a 32k vocabulary (CPU-sized embedding).
    "small": network.T5Config(vocab_size=32128, emb_dim=512, num_heads=6,
                              num_encoder_layers=8, num_decoder_layers=8,
                              head_dim=64, mlp_dim=1024, dtype="float32"),
}


def _median_seconds(fn, repeats: int) -> float:
  fn()  # Compile / warm up.
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def _batch(config, batch: int, length: int):
  rng = np.random.default_rng(0)
  tokens = rng.integers(2, config.vocab_size, (3, batch, length))
  return {"encoder_input_tokens": tokens[0],
          "decoder_target_tokens": tokens[1],
          "decoder_input_tokens": tokens[2],
          "decoder_loss_weights": np.ones((batch, length), np.int32)}


def _trainer(config, policy: str) -> trainer_lib.Trainer:
  partitioner = partitioning.Partitioner(partitioning.PartitioningConfig(),
                                         jax.devices()[:1])
  return trainer_lib.Trainer(
      model_lib.EncoderDecoderModel(config), optim.Adafactor(1e-3),
      partitioner, trainer_lib.TrainerConfig(
          nonfinite=finite_guard.NonFiniteConfig(policy)))


def guard_cost(config, batch: int, length: int, repeats: int) -> dict:
  """Median step (stop, skip) and the guard's ops alone, in ms."""
  out = {}
  global_batch = _batch(config, batch, length)
  for policy in ("stop", "skip"):
    trainer = _trainer(config, policy)
    state = [trainer.init_state()]
    def step():
      state[0], metrics = trainer.train_step(state[0], global_batch)
      return metrics["loss"]
    out[f"step_{policy}_ms"] = 1e3 * _median_seconds(step, repeats)
  params, opt_state = state[0]["params"], state[0]["opt_state"]
  norm = jax.jit(lambda g: finite_guard.step_is_finite(
      g["loss"], finite_guard.global_norm(g["grads"])))
  grads = {"loss": np.float32(1.0), "grads": params}
  out["norm_and_test_ms"] = 1e3 * _median_seconds(lambda: norm(grads),
                                                  repeats)
  select = jax.jit(lambda ok, new, old: finite_guard.keep_if_finite(
      ok, new, old))
  tree = (params, opt_state)
  out["skip_select_ms"] = 1e3 * _median_seconds(
      lambda: select(np.bool_(True), tree, tree), repeats)
  out["state_check_ms"] = 1e3 * _median_seconds(
      lambda: finite_guard.first_nonfinite_leaf(state[0]), repeats)
  out["state"] = state[0]
  return out


def integrity_cost(state, repeats: int) -> dict:
  """Median save (with manifest), manifest alone and verify, in ms."""
  root = tempfile.mkdtemp(prefix="aya_reliability_bench_")
  try:
    saves = []
    with checkpoints.Checkpointer(root, checkpoints.CheckpointConfig(
        period=1)) as ckpt:
      for step in range(1, repeats + 1):
        start = time.perf_counter()
        ckpt.save(step, state, force=True)
        ckpt.wait_until_finished()
        saves.append(time.perf_counter() - start)
    folder = checkpoints.step_dir(root, repeats)
    listed = integrity.manifest(folder)["files"]
    size = sum(f["size"] for f in listed.values())
    hashing = _median_seconds(lambda: integrity.manifest(folder), repeats)
    verify = _median_seconds(lambda: integrity.verify(folder), repeats)
    assert integrity.verify(folder).verified
  finally:
    shutil.rmtree(root, ignore_errors=True)
  return {"save_ms": 1e3 * statistics.median(saves),
          "manifest_ms": 1e3 * hashing, "verify_ms": 1e3 * verify,
          "checkpoint_mb": size / 2**20, "files": len(listed)}


# The tiny run's training data (gin/aya_tiny_cpu.gin).
TINY_DATA = data.DatasetConfig(
    mixture_or_task_name="aya_demo_translation_heavy",
    task_feature_lengths={"inputs": 64, "targets": 32}, split="train",
    batch_size=32, shuffle=True, seed=0, module="aya_t5x.mixtures")


def _read_every_task_once(truncations) -> tuple[float, float, int]:
  """Wall and CPU seconds (all threads) to read one epoch of every task of
  the tiny mixture, unshuffled: the same work each time it is called."""
  mixture = data.get_mixture_or_task(TINY_DATA.mixture_or_task_name,
                                     TINY_DATA.module)
  datasets = [data.get_dataset(
      dataclasses.replace(TINY_DATA, mixture_or_task_name=task.name,
                          shuffle=False, seed=None, drop_remainder=False),
      0, 1, num_epochs=1, truncations=truncations) for task in mixture.tasks]
  wall, cpu, examples = time.perf_counter(), time.process_time(), 0
  for dataset in datasets:
    for batch in dataset:
      examples += int(batch["encoder_input_tokens"].shape[0])
  return time.perf_counter() - wall, time.process_time() - cpu, examples


def truncation_cost(rounds: int) -> dict:
  """Per example read: wall and CPU time of the tiny input pipeline without
  and with counting, medians over alternating rounds."""
  tally = truncation.TruncationTally()
  times = {"plain": [], "counting": []}
  for _ in range(rounds):
    for name, tallied in (("plain", None), ("counting", tally)):
      wall, cpu, examples = _read_every_task_once(tallied)
      times[name].append((wall / examples, cpu / examples))
      gc.collect()
  rows = tally.rows()
  out = {f"{name}_{kind}": statistics.median(t[i] for t in runs)
         for name, runs in times.items()
         for i, kind in enumerate(("wall", "cpu"))}
  return out | {
      "examples": examples, "tokens_cut": sum(r.tokens_cut for r in rows),
      "examples_cut": sum(r.examples_cut for r in rows),
      "read": sum({(r.task, r.split): r.examples_read
                   for r in rows}.values())}


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--configs", default="tiny")
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--length", type=int, default=64)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--truncation", action="store_true",
                      help="time the truncation counts instead")
  args = parser.parse_args()
  if args.truncation:
    cost = truncation_cost(args.repeats)
    us = {k: 1e6 * v for k, v in cost.items() if k.endswith(("_wall", "_cpu"))}
    print(f"tiny input pipeline ({TINY_DATA.mixture_or_task_name}, batch "
          f"{TINY_DATA.batch_size}): every task read once ({cost['examples']}"
          f" examples), medians of {args.repeats} alternating rounds, per "
          f"example: wall "
          f"{us['plain_wall']:.0f} us without counting, "
          f"{us['counting_wall']:.0f} us with (examples/s ratio "
          f"{us['plain_wall'] / us['counting_wall']:.3f}); CPU "
          f"{us['plain_cpu']:.0f} us without, {us['counting_cpu']:.0f} us "
          f"with ({us['counting_cpu'] - us['plain_cpu']:+.0f} us); counted "
          f"{cost['tokens_cut']} tokens cut in {cost['examples_cut']} "
          f"example features of {cost['read']} examples read")
    return
  print(f"jax {jax.__version__} on {jax.devices()[0].platform}; batch "
        f"{args.batch} x {args.length}+{args.length} tokens; medians of "
        f"{args.repeats}")
  for name in args.configs.split(","):
    guard = guard_cost(CONFIGS[name], args.batch, args.length, args.repeats)
    saved = integrity_cost(guard.pop("state"), args.repeats)
    step = guard["step_stop_ms"]
    print(f"{name}: step (stop) {step:.1f} ms, step (skip) "
          f"{guard['step_skip_ms']:.1f} ms; guard ops alone: norm+isfinite "
          f"{guard['norm_and_test_ms']:.2f} ms "
          f"({100 * guard['norm_and_test_ms'] / step:.1f}% of a step), skip "
          f"select {guard['skip_select_ms']:.2f} ms "
          f"({100 * guard['skip_select_ms'] / step:.1f}%); state check "
          f"before a save {guard['state_check_ms']:.1f} ms")
    print(f"{name}: checkpoint {saved['checkpoint_mb']:.1f} MiB in "
          f"{saved['files']} files; save {saved['save_ms']:.0f} ms "
          f"(manifest included: hashing alone {saved['manifest_ms']:.0f} ms,"
          f" {100 * saved['manifest_ms'] / saved['save_ms']:.0f}%); verify "
          f"before restore {saved['verify_ms']:.0f} ms "
          f"({100 * saved['verify_ms'] / saved['save_ms']:.0f}% of a save)")


if __name__ == "__main__":
  main()

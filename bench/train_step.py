"""Train-step throughput: aya_t5x (JAX) against Hugging Face MT5 (PyTorch).

Both sides run the same work on the same machine in the same process: one
mT5-shaped encoder-decoder, float32, no dropout, Adafactor without momentum
and with parameter scaling, one full optimizer update per step (forward, loss,
backward, update; for PyTorch also `zero_grad`). The two are timed in
interleaved rounds (ours, then theirs, several times) so that drifts in the
machine's speed hit both alike, and each side's median step time is reported.

  tokens/s = batch * (input_len + target_len) / median step time

Run from the repository root:

  .venv/bin/python bench/train_step.py --configs tiny,small --rounds 3 \
      --steps_per_round 4

The JAX side runs with the default XLA flags, as `python -m aya_t5x.train`
does: no tuning a user would not also get.
"""

import argparse
import os
import dataclasses
import statistics
import time

import jax  # pylint: disable=g-import-not-at-top,g-bad-import-order
import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top
import torch  # pylint: disable=g-import-not-at-top
import transformers  # pylint: disable=g-import-not-at-top
from transformers import optimization  # pylint: disable=g-import-not-at-top

from aya_t5x import model as model_lib  # pylint: disable=g-import-not-at-top
from aya_t5x import network  # pylint: disable=g-import-not-at-top
from aya_t5x import optim  # pylint: disable=g-import-not-at-top
from aya_t5x import partitioning  # pylint: disable=g-import-not-at-top
from aya_t5x import trainer as trainer_lib  # pylint: disable=g-import-not-at-top
import _table  # bench/, on the path when run as a script.

LEARNING_RATE = 1e-3
WARMUP_STEPS = 2  # Untimed: XLA compilation and PyTorch allocator warm-up.


@dataclasses.dataclass(frozen=True)
class BenchConfig:
  """One model shape and batch; the same numbers drive both frameworks."""
  vocab_size: int
  d_model: int
  d_ff: int
  num_encoder_layers: int
  num_decoder_layers: int
  num_heads: int
  d_kv: int
  batch: int
  input_len: int
  target_len: int

  @property
  def tokens_per_step(self) -> int:
    return self.batch * (self.input_len + self.target_len)


CONFIGS = {
    "tiny": BenchConfig(vocab_size=1280, d_model=128, d_ff=256,
                        num_encoder_layers=2, num_decoder_layers=2,
                        num_heads=4, d_kv=32, batch=8, input_len=128,
                        target_len=64),
    # mT5-small's shape with a 32k vocabulary (32000 rounded up to 128).
    "small": BenchConfig(vocab_size=32128, d_model=512, d_ff=1024,
                         num_encoder_layers=8, num_decoder_layers=8,
                         num_heads=6, d_kv=64, batch=8, input_len=128,
                         target_len=64),
}


def make_batch(cfg: BenchConfig, seed: int = 0) -> dict[str, np.ndarray]:
  """Unpadded random tokens: every position is real, so both sides agree.

  Ids start at 2 to avoid pad (0) and EOS (1); decoder inputs are the targets
  shifted right behind a 0 start token, as T5's feature converter builds them.
  """
  rng = np.random.default_rng(seed)
  inputs = rng.integers(2, cfg.vocab_size, (cfg.batch, cfg.input_len))
  targets = rng.integers(2, cfg.vocab_size, (cfg.batch, cfg.target_len))
  decoder_inputs = np.concatenate(
      [np.zeros((cfg.batch, 1), np.int64), targets[:, :-1]], axis=1)
  return {"encoder_input_tokens": inputs.astype(np.int32),
          "decoder_input_tokens": decoder_inputs.astype(np.int32),
          "decoder_target_tokens": targets.astype(np.int32),
          "decoder_loss_weights": np.ones_like(targets, np.int32)}


class OursStep:
  """The aya_t5x jitted train step, through the public Trainer API."""

  name = "aya_t5x"

  def __init__(self, cfg: BenchConfig, batch: dict[str, np.ndarray]):
    t5 = network.T5Config(
        vocab_size=cfg.vocab_size, emb_dim=cfg.d_model,
        num_heads=cfg.num_heads, num_encoder_layers=cfg.num_encoder_layers,
        num_decoder_layers=cfg.num_decoder_layers, head_dim=cfg.d_kv,
        mlp_dim=cfg.d_ff, dtype="float32", dropout_rate=0.0)
    model = model_lib.EncoderDecoderModel(
        t5, model_lib.LossConfig(loss_normalizing_factor=
                                 "NUM_REAL_TARGET_TOKENS"))
    self.trainer = trainer_lib.Trainer(
        model, optim.Adafactor(LEARNING_RATE),
        partitioning.Partitioner(devices=jax.devices()[:1]))
    self.state = self.trainer.init_state()
    self.batch = {k: jnp.asarray(v) for k, v in batch.items()}

  def step(self) -> float:
    self.state, metrics = self.trainer.train_step(self.state, self.batch)
    jax.block_until_ready((self.state, metrics))
    return float(metrics["loss"])


class TheirsStep:
  """transformers' MT5ForConditionalGeneration with its Adafactor."""

  name = "transformers"

  def __init__(self, cfg: BenchConfig, batch: dict[str, np.ndarray]):
    torch.manual_seed(0)
    config = transformers.MT5Config(
        vocab_size=cfg.vocab_size, d_model=cfg.d_model, d_kv=cfg.d_kv,
        d_ff=cfg.d_ff, num_layers=cfg.num_encoder_layers,
        num_decoder_layers=cfg.num_decoder_layers, num_heads=cfg.num_heads,
        relative_attention_num_buckets=32,
        relative_attention_max_distance=128,
        feed_forward_proj="gated-gelu", tie_word_embeddings=False,
        dropout_rate=0.0, decoder_start_token_id=0, pad_token_id=0)
    model = transformers.MT5ForConditionalGeneration(config)
    # transformers 5 ties the head to the input embedding even when asked not
    # to; real mT5 has a separate head, whose gradient and update cost as
    # much as the embedding's, so give it its own parameter. It is drawn with
    # std d_model^-0.5 (our head's fan-in init) so the loss starts near
    # log(vocab) on both sides; the scale changes no work.
    model.lm_head.weight = torch.nn.Parameter(
        torch.randn_like(model.shared.weight) * cfg.d_model**-0.5)
    assert model.lm_head.weight is not model.shared.weight
    self.model = model.float().train()
    self.optimizer = optimization.Adafactor(
        self.model.parameters(), lr=LEARNING_RATE, relative_step=False,
        scale_parameter=True, warmup_init=False, clip_threshold=1.0,
        decay_rate=-0.8, beta1=None)
    as_long = lambda key: torch.from_numpy(batch[key].astype(np.int64))
    # HF's default loss (mean over labels != -100) is our
    # NUM_REAL_TARGET_TOKENS normalisation when nothing is padded.
    self.inputs = {
        "input_ids": as_long("encoder_input_tokens"),
        "attention_mask": torch.ones_like(as_long("encoder_input_tokens")),
        "decoder_input_ids": as_long("decoder_input_tokens"),
        "labels": as_long("decoder_target_tokens"),
    }

  def step(self) -> float:
    loss = self.model(**self.inputs).loss
    loss.backward()
    self.optimizer.step()
    self.optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def _timed(runner) -> float:
  start = time.perf_counter()
  runner.step()
  return time.perf_counter() - start


def bench_config(name: str, rounds: int, steps_per_round: int) -> dict:
  """Warms both sides up, then alternates them for `rounds` rounds."""
  cfg = CONFIGS[name]
  batch = make_batch(cfg)
  runners = [OursStep(cfg, batch), TheirsStep(cfg, batch)]
  first_loss = {}
  for runner in runners:
    first_loss[runner.name] = runner.step()
    for _ in range(WARMUP_STEPS - 1):
      runner.step()
  times = {runner.name: [] for runner in runners}
  for _ in range(rounds):
    for runner in runners:
      times[runner.name].extend(_timed(runner) for _ in range(steps_per_round))
  result = {"config": name, "tokens_per_step": cfg.tokens_per_step}
  for runner in runners:
    median = statistics.median(times[runner.name])
    result[runner.name] = {"median_s": median,
                           "min_s": min(times[runner.name]),
                           "tokens_per_s": cfg.tokens_per_step / median,
                           "first_loss": first_loss[runner.name]}
  result["ratio"] = (result["aya_t5x"]["tokens_per_s"] /
                     result["transformers"]["tokens_per_s"])
  return result


def _print_table(results: list[dict]) -> None:
  header = (f"{'config':<7} {'framework':<13} {'median s/step':>13} "
            f"{'min s/step':>10} {'tokens/s':>9} {'step-1 loss':>11}")
  print(header)
  print("-" * len(header))
  for result in results:
    for side in ("aya_t5x", "transformers"):
      r = result[side]
      print(f"{result['config']:<7} {side:<13} {r['median_s']:>13.4f} "
            f"{r['min_s']:>10.4f} {r['tokens_per_s']:>9.1f} "
            f"{r['first_loss']:>11.4f}")
  print()
  print("ratio (aya_t5x / transformers tokens/s): " + ", ".join(
      f"{r['config']}={r['ratio']:.2f}x" for r in results))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--configs", default="tiny,small",
                      help=f"comma-separated subset of {sorted(CONFIGS)}")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--steps_per_round", type=int, default=4)
  parser.add_argument("--torch_threads", type=int, default=2)
  args = parser.parse_args()
  torch.set_num_threads(args.torch_threads)
  xla_flags = os.environ.get("XLA_FLAGS", "")
  print(_table.environment(f"XLA_FLAGS={xla_flags!r}"))
  results = [bench_config(name, args.rounds, args.steps_per_round)
             for name in args.configs.split(",")]
  _print_table(results)


if __name__ == "__main__":
  main()

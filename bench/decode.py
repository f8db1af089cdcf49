"""Generation throughput: aya_t5x (JAX) against transformers' `generate`.

Both sides generate from the same random mT5-shaped model (float32), for the
same batch of unpadded random inputs, in one process on one machine. EOS is
forbidden until the last token (`min_new_tokens = max_new_tokens` on both
sides), so every row of both generates exactly `max_new_tokens` tokens. The
two are timed in interleaved rounds (ours, then theirs) so drifts in the
machine's speed hit both alike. In a round each side generates
`--calls_per_round` batches back to back, as a generation job does; the
first call after the other framework ran finds the CPU caches cold (about
10% slower for the tiny model), the later ones do not. Each side's median
over all its calls is reported, and so is the ratio of each round's two
medians: the machine's speed drifts between rounds (on a shared VM by tens
of percent, and not alike for the two frameworks), so their spread is
the ratio's uncertainty.

  generated tokens/s = batch * max_new_tokens / median generate time

aya_t5x runs on one host CPU device unless `--cpu_devices N` splits the
batch data-parallel over N (the mesh the framework uses on accelerators);
transformers uses all cores through torch's intra-op threads either way.

Run from the repository root:

  .venv/bin/python bench/decode.py --configs tiny,small --rounds 5
  .venv/bin/python bench/decode.py --configs tiny,small --cpu_devices 2
  .venv/bin/python bench/decode.py --configs tiny,small --methods sample
"""

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time

import jax
import numpy as np
import torch
import transformers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# pylint: disable=g-import-not-at-top,wrong-import-position
import _table
import train_step as shapes  # The same model shapes as the train benchmark.
from aya_t5x import decoding
from aya_t5x import inference
from aya_t5x import model as model_lib
from aya_t5x import network
from aya_t5x import partitioning

BATCH = 8
INPUT_LEN = 128
NEW_TOKENS = 64
COLUMNS = ("config", "method", "aya_t5x s", "transformers s", "aya_t5x tok/s",
           "transformers tok/s", "ratio", "ratio per round (sorted)")


def _hf_model(cfg: shapes.BenchConfig) -> transformers.PreTrainedModel:
  torch.manual_seed(0)
  model = transformers.MT5ForConditionalGeneration(transformers.MT5Config(
      vocab_size=cfg.vocab_size, d_model=cfg.d_model, d_ff=cfg.d_ff,
      num_layers=cfg.num_encoder_layers,
      num_decoder_layers=cfg.num_decoder_layers, num_heads=cfg.num_heads,
      d_kv=cfg.d_kv, dropout_rate=0.0, feed_forward_proj="gated-gelu",
      tie_word_embeddings=False))
  # An untied head, as real mT5 checkpoints have.
  model.lm_head.weight = torch.nn.Parameter(
      0.05 * torch.randn_like(model.lm_head.weight))
  return model.eval()


def _our_model(hf_model, cfg: shapes.BenchConfig,
               partitioner: partitioning.Partitioner):
  config = network.T5Config(
      vocab_size=cfg.vocab_size, emb_dim=cfg.d_model, num_heads=cfg.num_heads,
      num_encoder_layers=cfg.num_encoder_layers,
      num_decoder_layers=cfg.num_decoder_layers, head_dim=cfg.d_kv,
      mlp_dim=cfg.d_ff, dtype="float32")
  model = model_lib.EncoderDecoderModel(config)
  with tempfile.TemporaryDirectory() as hf_dir:
    hf_model.save_pretrained(hf_dir, safe_serialization=True)
    params = inference.restore_params(model, hf_dir, partitioner)
  return model, params


def _time(fn, calls: int, times_out: list[float]) -> None:
  for _ in range(calls):
    start = time.perf_counter()
    fn()
    times_out.append(time.perf_counter() - start)


def _generate_fn(model, params, partitioner: partitioning.Partitioner,
                 config: decoding.DecodingConfig):
  """predict_batch jitted on the partitioner's mesh (batch data-parallel)."""
  batch = partitioner.batch_sharding(2)
  fn = jax.jit(lambda p, x: model.predict_batch(p, x, config),
               in_shardings=(partitioner.shardings(
                   partitioning.param_axes(model)), batch),
               out_shardings=(batch, partitioner.batch_sharding(1)))

  def generate(inputs: np.ndarray):
    with partitioner.activate():
      return fn(params, jax.device_put(inputs, batch))
  return generate


def bench(name: str, method: str, rounds: int, calls_per_round: int) -> dict:
  cfg = shapes.CONFIGS[name]
  hf_model = _hf_model(cfg)
  partitioner = partitioning.Partitioner()  # Every (CPU) device: data-parallel.
  ours, params = _our_model(hf_model, cfg, partitioner)
  rng = np.random.default_rng(0)
  inputs = rng.integers(2, cfg.vocab_size, (BATCH, INPUT_LEN), np.int32)
  # Sampling: the Aya paper's open-ended setting (no top-k on either side).
  sampling = dict(temperature=0.9, top_p=0.8) if method == "sample" else {}
  config = decoding.DecodingConfig(
      method=method, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
      num_beams=4, **sampling)
  generate = _generate_fn(ours, params, partitioner, config)
  hf_kwargs = dict(max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                   do_sample=method == "sample", top_k=0,
                   num_beams=config.rows_per_input, **sampling)
  ids = torch.from_numpy(inputs.astype(np.int64))

  def run_ours():
    jax.block_until_ready(generate(inputs))

  def run_theirs():
    with torch.no_grad():
      out = hf_model.generate(input_ids=ids, attention_mask=ids > 0,
                              **hf_kwargs)
    assert out.shape == (BATCH, NEW_TOKENS + 1), out.shape

  tokens, _ = generate(inputs)  # Compile; check the work is equal.
  # Sampling may draw the pad id like any other token; nobody draws EOS.
  assert (np.asarray(tokens) != decoding.EOS_ID).all(), "EOS generated"
  assert method == "sample" or (np.asarray(tokens) > 1).all(), "pad"
  run_theirs()  # Warm-up.
  ours_s, theirs_s, round_ratios = [], [], []
  for _ in range(rounds):
    ours_round, theirs_round = [], []
    _time(run_ours, calls_per_round, ours_round)
    _time(run_theirs, calls_per_round, theirs_round)
    ours_s += ours_round
    theirs_s += theirs_round
    round_ratios.append(statistics.median(theirs_round) /
                        statistics.median(ours_round))
  generated = BATCH * NEW_TOKENS
  ours_t, theirs_t = statistics.median(ours_s), statistics.median(theirs_s)
  return {"config": name, "method": method, "ours_s": ours_t,
          "theirs_s": theirs_t, "ours_tok_s": generated / ours_t,
          "theirs_tok_s": generated / theirs_t, "ratio": theirs_t / ours_t,
          "round_ratios": sorted(round_ratios)}


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--configs", default="tiny,small")
  parser.add_argument("--methods", default="greedy,beam",
                      help="of greedy, beam (4 beams), sample (top-p 0.8, "
                           "temperature 0.9)")
  parser.add_argument("--rounds", type=int, default=5)
  parser.add_argument("--calls_per_round", type=int, default=3,
                      help="back-to-back generate calls per side per round")
  parser.add_argument("--torch_threads", type=int, default=os.cpu_count())
  parser.add_argument(
      "--cpu_devices", type=int, default=1,
      help="host CPU devices for aya_t5x (jax_num_cpu_devices); the batch is "
           "split data-parallel over them, one per core at most")
  args = parser.parse_args()
  torch.set_num_threads(args.torch_threads)
  jax.config.update("jax_num_cpu_devices", args.cpu_devices)
  print(_table.environment(f"batch {BATCH}, {INPUT_LEN} input tokens, "
                           f"{NEW_TOKENS} new tokens, {args.rounds} rounds "
                           f"of {args.calls_per_round} calls, aya_t5x on "
                           f"{len(jax.devices())} device(s)"))
  print(_table.markdown_row(COLUMNS))
  print(_table.markdown_row(["---"] * len(COLUMNS)))
  for name in args.configs.split(","):
    for method in args.methods.split(","):
      r = bench(name, method, args.rounds, args.calls_per_round)
      print(_table.markdown_row([
          r["config"], r["method"], f"{r['ours_s']:.3f}",
          f"{r['theirs_s']:.3f}", f"{r['ours_tok_s']:,.0f}",
          f"{r['theirs_tok_s']:,.0f}", f"**{r['ratio']:.2f}x**",
          " ".join(f"{x:.2f}" for x in r["round_ratios"])]), flush=True)


if __name__ == "__main__":
  main()

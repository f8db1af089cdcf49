"""Serving throughput: `python -m aya_t5x.serve` against per-request
`transformers` `generate`, at 1, 8 and 32 concurrent clients.

Both sides serve the same random mT5-shaped model (float32, untied head;
the shapes of bench/train_step.py) on one machine, one after the other.
Each client sends a request, waits for the reply, sends the next, for
`--seconds`; every request is a prompt of the shipped demo sentences and
asks for exactly `--new_tokens` greedy tokens (`min_tokens = max_tokens`,
EOS forbidden before, on both sides), so both do the same work.

- aya_t5x: the server process on one CPU device, spoken to over HTTP by
  the official `openai` client; the engine batches the requests in flight
  into shared decoding calls (`--max_batch_rows 32`).
- transformers: `generate` called once per request, in this process, from
  the same number of client threads (no HTTP: an advantage to it).

Requests/s and generated tokens/s count the requests answered within the
window. Both sides are warmed up first (XLA compiles each batch shape
once; torch's allocator warms up).

  .venv/bin/python bench/serve.py --configs tiny,small --clients 1,8,32
"""

import argparse
import concurrent.futures
import os
import shutil
import sys
import tempfile
import time

import openai
import sentencepiece
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
# pylint: disable=g-import-not-at-top,wrong-import-position
import _table
import decode as decode_bench  # The same random mT5 as the decode bench.
import train_step as shapes
from aya_t5x import vocabularies
from tests import hf_fixtures
from tests import test_serve

COLUMNS = ("config", "clients", "aya_t5x req/s", "transformers req/s",
           "aya_t5x tok/s", "transformers tok/s", "ratio",
           "aya_t5x rows/call")


def _prompts() -> list[str]:
  return [source for source, _ in hf_fixtures.SENTENCES]


def _closed_loop(send, clients: int, seconds: float) -> int:
  """Requests answered by `clients` threads each sending back to back."""
  stop = time.monotonic() + seconds
  done = []
  def client(index: int):
    count = 0
    while time.monotonic() < stop:
      send(index + count)
      count += 1
    done.append(count)
  with concurrent.futures.ThreadPoolExecutor(clients) as pool:
    list(pool.map(client, range(clients)))
  return sum(done)


def _ours(folder: str, clients: list[int], seconds: float,
          new_tokens: int) -> dict[int, tuple[float, float]]:
  server = test_serve.Server(folder, "--max_batch_rows=32",
                             "--batch_wait_ms=2")
  prompts = _prompts()
  def send(i: int):
    reply = server.client.completions.create(
        model=test_serve.MODEL, prompt=prompts[i % len(prompts)],
        max_tokens=new_tokens, temperature=0,
        extra_body={"min_tokens": new_tokens})
    assert reply.usage.completion_tokens == new_tokens
  out = {}
  try:
    for n in clients:  # Warm-up: compiles the row counts this load makes.
      _closed_loop(send, n, 1.0)
    for n in clients:
      before = server.get("/stats")
      start = time.monotonic()
      answered = _closed_loop(send, n, seconds)
      elapsed = time.monotonic() - start
      after = server.get("/stats")
      calls = max(after["decode_calls"] - before["decode_calls"], 1)
      rows = after["rows_decoded"] - before["rows_decoded"]
      out[n] = (answered / elapsed, rows / calls)
  finally:
    server.stop()
  return out


def _theirs(hf_model, clients: list[int], seconds: float,
            new_tokens: int) -> dict[int, float]:
  sp = sentencepiece.SentencePieceProcessor(
      model_file=vocabularies.DEMO_SPM_PATH)
  inputs = [torch.tensor([sp.encode(p) + [1]]) for p in _prompts()]
  def send(i: int):
    ids = inputs[i % len(inputs)]
    with torch.no_grad():
      out = hf_model.generate(input_ids=ids, max_new_tokens=new_tokens,
                              min_new_tokens=new_tokens, do_sample=False)
    assert out.shape[1] == new_tokens + 1
  out = {}
  for n in clients:
    _closed_loop(send, n, 1.0)
  for n in clients:
    start = time.monotonic()
    answered = _closed_loop(send, n, seconds)
    out[n] = answered / (time.monotonic() - start)
  return out


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--configs", default="tiny,small")
  parser.add_argument("--clients", default="1,8,32")
  parser.add_argument("--seconds", type=float, default=10.0,
                      help="measured window per side and client count")
  parser.add_argument("--new_tokens", type=int, default=32)
  args = parser.parse_args()
  clients = [int(c) for c in args.clients.split(",")]
  print(_table.environment(
      f"{args.new_tokens} greedy tokens per request, {args.seconds:g} s per "
      f"point, {os.cpu_count()} cores, aya_t5x server on 1 CPU device"))
  print(_table.markdown_row(COLUMNS))
  print(_table.markdown_row(["---"] * len(COLUMNS)))
  for name in args.configs.split(","):
    hf_model = decode_bench._hf_model(shapes.CONFIGS[name])  # pylint: disable=protected-access
    with tempfile.TemporaryDirectory() as folder:
      hf_model.save_pretrained(folder, safe_serialization=True)
      shutil.copyfile(vocabularies.DEMO_SPM_PATH,
                      os.path.join(folder, "spiece.model"))
      ours = _ours(folder, clients, args.seconds, args.new_tokens)
    theirs = _theirs(hf_model, clients, args.seconds, args.new_tokens)
    for n in clients:
      (our_rps, rows), their_rps = ours[n], theirs[n]
      print(_table.markdown_row([
          name, str(n), f"{our_rps:.2f}", f"{their_rps:.2f}",
          f"{our_rps * args.new_tokens:,.0f}",
          f"{their_rps * args.new_tokens:,.0f}",
          f"**{our_rps / their_rps:.2f}x**", f"{rows:.1f}"]), flush=True)


if __name__ == "__main__":
  main()

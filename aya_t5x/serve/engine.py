"""Dynamic batching: concurrent requests share one jitted decoding call.

One worker thread owns the device. Requests queue as `Job`s (a request's
rows: prompts x n). The worker takes the oldest job, waits at most
`batch_wait_ms` from that job's arrival for company, then decodes in one
call every queued job with the same decoding program (method, temperature,
top-p, top-k, beams, min tokens) that fits in `max_batch_rows`, oldest
first. Jobs with other settings wait for the next call.

A call's row count is rounded up to a power of two and its `max_new_tokens`
to a power of two (at least 16), so a handful of programs serve every
batch. Greedy and sampled rows are exact under the longer call: a row's
first k tokens do not depend on the length limit (sampling draws step t
from fold_in(rng, t)); each row is then cut at its own `max_tokens`. Beam
search ranks by length, so beam jobs share calls only with jobs of the
same `max_tokens`.

`stats()` counts calls and rows: tests read it to prove that requests in
flight together were decoded by one call.
"""

import concurrent.futures
import dataclasses
import threading
import time
from typing import Sequence

from absl import logging
import jax

from aya_t5x import decoding
from aya_t5x import inference
from aya_t5x.serve import protocol

_MIN_TOKEN_BUCKET = 16


@dataclasses.dataclass(frozen=True)
class EngineConfig:
  """Batching knobs (flags of `python -m aya_t5x.serve`)."""
  max_batch_rows: int = 8  # Rows per decoding call (prompts x n summed).
  batch_wait_ms: float = 10.0  # How long a request waits for company.
  max_queued_rows: int = 256  # More queued rows than this: 429.
  seed: int = 0  # RNG of sampled requests that set no seed.


@dataclasses.dataclass
class Job:
  """One request's rows and where its result goes."""
  rows: list[list[int]]  # Tokenized inputs, EOS-terminated.
  sampling: protocol.Sampling
  max_tokens: int
  future: concurrent.futures.Future
  arrived: float = dataclasses.field(default_factory=time.monotonic)

  @property
  def key(self) -> tuple:
    """Jobs with equal keys can share a call."""
    beam_length = self.max_tokens if self.sampling.method == "beam" else None
    return (dataclasses.replace(self.sampling, seed=None), beam_length,
            self.sampling.seed)


@dataclasses.dataclass(frozen=True)
class RowResult:
  """A row's generated ids (before EOS) and whether it emitted EOS."""
  ids: list[int]
  ended: bool


class QueueFull(RuntimeError):
  """More rows queued than `max_queued_rows`."""


class Stopped(RuntimeError):
  """The engine is shutting down."""


def _power_of_two(n: int, low: int = 1) -> int:
  size = low
  while size < n:
    size *= 2
  return size


class Engine:
  """Queues jobs and decodes them in shared calls on one worker thread."""

  def __init__(self, predictor: inference.Predictor,
               config: EngineConfig = EngineConfig(),
               max_new_tokens: int = 512):
    self.predictor = predictor
    self.config = config
    self.max_new_tokens = max_new_tokens
    self._pending: list[Job] = []
    self._lock = threading.Condition()
    self._stopping = False
    self._stats = {"decode_calls": 0, "rows_decoded": 0,
                   "requests_decoded": 0, "max_rows_per_call": 0,
                   "max_requests_per_call": 0}
    self._worker = threading.Thread(target=self._run, name="decode-engine",
                                    daemon=True)
    self._worker.start()

  # ---------------------------------------------------------------- api --

  def submit(self, rows: Sequence[Sequence[int]],
             sampling: protocol.Sampling,
             max_tokens: int) -> concurrent.futures.Future:
    """Queues rows; the future gets a RowResult per row, in order."""
    job = Job([list(r) for r in rows], sampling, max_tokens,
              concurrent.futures.Future())
    with self._lock:
      if self._stopping:
        raise Stopped("The server is shutting down.")
      queued = sum(len(j.rows) for j in self._pending)
      if queued + len(job.rows) > self.config.max_queued_rows:
        raise QueueFull(f"{queued} rows are queued (limit "
                        f"{self.config.max_queued_rows}); retry later.")
      self._pending.append(job)
      self._lock.notify()
    return job.future

  def stats(self) -> dict[str, int]:
    with self._lock:
      return dict(self._stats, queued_requests=len(self._pending))

  def close(self, timeout: float | None = None) -> None:
    """Finishes every queued job, then stops the worker."""
    with self._lock:
      self._stopping = True
      self._lock.notify()
    self._worker.join(timeout)

  # ------------------------------------------------------------- worker --

  def _run(self) -> None:
    while True:
      batch = self._next_batch()
      if batch is None:
        return
      try:
        self._decode(batch)
      except Exception as e:  # pylint: disable=broad-except
        logging.exception("decoding call failed")
        for job in batch:
          if not job.future.done():
            job.future.set_exception(e)

  def _next_batch(self) -> list[Job] | None:
    """The oldest job and the compatible jobs queued with it (or None once
    stopping with nothing queued)."""
    with self._lock:
      while not self._pending:
        if self._stopping:
          return None
        self._lock.wait()
      deadline = self._pending[0].arrived + self.config.batch_wait_ms / 1e3
      while (not self._stopping and self._rows_like_oldest() <
             self.config.max_batch_rows):
        left = deadline - time.monotonic()
        if left <= 0:
          break
        self._lock.wait(left)
      return self._take_batch()

  def _rows_like_oldest(self) -> int:
    key = self._pending[0].key
    return sum(len(j.rows) for j in self._pending if j.key == key)

  def _take_batch(self) -> list[Job]:
    key = self._pending[0].key
    batch, rows = [], 0
    for job in list(self._pending):
      if job.key != key:
        continue
      if batch and rows + len(job.rows) > self.config.max_batch_rows:
        break
      batch.append(job)
      rows += len(job.rows)
      self._pending.remove(job)
    return batch

  def _call_config(self, batch: Sequence[Job]) -> decoding.DecodingConfig:
    longest = max(j.max_tokens for j in batch)
    if batch[0].sampling.method != "beam":
      longest = min(_power_of_two(longest, _MIN_TOKEN_BUCKET),
                    self.max_new_tokens)
    return protocol.decoding_config(batch[0].sampling, longest)

  def _rng(self, sampling: protocol.Sampling, call: int) -> jax.Array:
    if sampling.seed is not None:
      return jax.random.PRNGKey(sampling.seed)
    return jax.random.fold_in(jax.random.PRNGKey(self.config.seed), call)

  def _decode(self, batch: Sequence[Job]) -> None:
    rows = [row for job in batch for row in job.rows]
    config = self._call_config(batch)
    data_size = self.predictor.partitioner.data_parallel_size
    num_rows = max(_power_of_two(len(rows)), data_size)
    num_rows = -(-num_rows // data_size) * data_size
    with self._lock:
      call = self._stats["decode_calls"]
      self._stats["decode_calls"] += 1
      self._stats["rows_decoded"] += len(rows)
      self._stats["requests_decoded"] += len(batch)
      self._stats["max_rows_per_call"] = max(
          self._stats["max_rows_per_call"], len(rows))
      self._stats["max_requests_per_call"] = max(
          self._stats["max_requests_per_call"], len(batch))
    generations = self.predictor.generate_rows(
        rows, config, self._rng(batch[0].sampling, call), num_rows)
    results = [RowResult(g.tokens, len(g.tokens) < config.max_new_tokens)
               for g in generations]
    start = 0
    for job in batch:
      job.future.set_result(results[start:start + len(job.rows)])
      start += len(job.rows)

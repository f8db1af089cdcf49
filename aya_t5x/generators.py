"""Text in, text out from our model or from any OpenAI-compatible endpoint.

Safety distillation (the teacher), the harmfulness suite and the round-trip
filter (the back-translator) all need "answer these prompts", and each may
run on one of our checkpoints (`inference.Predictor`) or on a served model
(vLLM, TGI, OpenAI, or our own server) reached with the judge's client
(`judge.JudgeClient`). `Generator` is that one seam; tests plug in either.
"""

import concurrent.futures
import dataclasses
import os
from collections.abc import Sequence
from typing import Protocol

from aya_t5x import decoding
from aya_t5x import inference
from aya_t5x import judge


class Generator(Protocol):
  """Answers a batch of prompts, one text per prompt, in order."""

  def generate(self, prompts: Sequence[str]) -> list[str]:
    ...


@dataclasses.dataclass
class ModelGenerator:
  """One of our checkpoints, batched and sharded by a `Predictor`."""

  predictor: inference.Predictor
  config: decoding.DecodingConfig = decoding.DecodingConfig()
  # Batches generated so far: each draws from its own fold of the seed,
  # so a resumed run does not repeat the first batch's random stream.
  batches_done: int = 0

  def generate(self, prompts: Sequence[str]) -> list[str]:
    config = dataclasses.replace(self.config,
                                 seed=self.config.seed + self.batches_done)
    self.batches_done += 1
    return [g.text for g in self.predictor.generate(list(prompts), config)]


@dataclasses.dataclass
class EndpointGenerator:
  """A chat endpoint: each prompt is one user message, asked in parallel.

  A request that still fails after the client's retries raises
  `judge.TransientJudgeError`: a teacher that cannot answer must stop the
  run (it resumes where it stopped), not leave holes in the data.
  """

  client: judge.JudgeClient
  system_prompt: str | None = None
  num_workers: int = 4

  def _messages(self, prompt: str) -> list[dict[str, str]]:
    messages = [{"role": "user", "content": prompt}]
    if self.system_prompt:
      messages.insert(0, {"role": "system", "content": self.system_prompt})
    return messages

  def generate(self, prompts: Sequence[str]) -> list[str]:
    with concurrent.futures.ThreadPoolExecutor(
        max(1, self.num_workers)) as pool:
      return list(pool.map(lambda p: self.client.complete(self._messages(p)),
                           prompts))


@dataclasses.dataclass(frozen=True)
class EndpointConfig:
  """Where a served model is (gin: `generators.EndpointConfig`)."""

  url: str  # Base URL ending in /v1, e.g. http://localhost:8000/v1.
  model: str  # The model name the server knows.
  # Name of the environment variable holding the API key (never the key).
  api_key_env: str | None = None
  temperature: float = 0.0
  top_p: float | None = None
  max_tokens: int = 1024
  max_retries: int = 5
  timeout_s: float = 120.0
  num_workers: int = 4

  def client(self) -> judge.JudgeClient:
    """The judge's client for this endpoint.

    Raises:
      ValueError: `api_key_env` names an unset variable.
    """
    key = None
    if self.api_key_env:
      key = os.environ.get(self.api_key_env)
      if not key:
        raise ValueError(f"api_key_env={self.api_key_env}: that environment "
                         "variable is not set or empty.")
    return judge.JudgeClient(self.url, self.model, key, self.timeout_s,
                             self.max_retries, temperature=self.temperature,
                             max_tokens=self.max_tokens, top_p=self.top_p)

  def generator(self, system_prompt: str | None = None) -> EndpointGenerator:
    return EndpointGenerator(self.client(), system_prompt, self.num_workers)

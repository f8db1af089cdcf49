"""The OpenAI-compatible server, as a real process spoken to by `openai`.

One server process (a tiny random mT5 saved by transformers, with the demo
vocabulary) serves the module; requests go through the official client.
"""

import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import openai
import pytest

from aya_t5x import vocabularies
from aya_t5x.serve import protocol
from tests import hf_fixtures

MODEL = "tiny-mt5"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROMPTS = [f"copy: Paka analala {i}." for i in range(8)]


def _hf_folder(root) -> str:
  """A Hugging Face folder as the Hub has it: weights, config, spiece."""
  folder = hf_fixtures.save(hf_fixtures.build_mt5(), str(root / "hf"))
  shutil.copyfile(vocabularies.DEMO_SPM_PATH,
                  os.path.join(folder, "spiece.model"))
  return folder


class Server:
  """`python -m aya_t5x.serve` on a free port, one CPU device."""

  def __init__(self, checkpoint: str, *flags: str):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    self.process = subprocess.Popen(
        [sys.executable, "-m", "aya_t5x.serve", f"--checkpoint={checkpoint}",
         "--port=0", f"--model_name={MODEL}", *flags],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    self.output = []
    for line in self.process.stdout:
      self.output.append(line)
      if line.startswith("aya_t5x.serve: serving"):
        self.url = line.split(" on ")[1].strip()
        break
    else:
      raise RuntimeError("server did not start:\n" + "".join(self.output))
    self._reader = threading.Thread(target=self._drain, daemon=True)
    self._reader.start()
    self.client = openai.OpenAI(base_url=self.url, api_key="unused",
                                max_retries=0, timeout=120)

  def _drain(self):
    for line in self.process.stdout:
      self.output.append(line)

  def get(self, path: str) -> dict:
    with urllib.request.urlopen(self.url[:-len("/v1")] + path) as reply:
      return json.loads(reply.read())

  def stop(self) -> int:
    self.process.send_signal(signal.SIGTERM)
    return self.process.wait(timeout=120)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
  return _hf_folder(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def server(checkpoint):
  server = Server(checkpoint, "--batch_wait_ms=300", "--max_batch_rows=8",
                  "--max_input_tokens=48")
  yield server
  assert server.stop() == 0, "".join(server.output)


def _complete(server, prompt, **kwargs):
  kwargs.setdefault("max_tokens", 8)
  kwargs.setdefault("temperature", 0)
  return server.client.completions.create(model=MODEL, prompt=prompt,
                                          **kwargs)


def test_completion_and_single_turn_chat_give_the_same_greedy_text(server):
  completion = _complete(server, PROMPTS[0])
  chat = server.client.chat.completions.create(
      model=MODEL, messages=[{"role": "user", "content": PROMPTS[0]}],
      max_tokens=8, temperature=0)
  assert completion.choices[0].text
  assert chat.choices[0].message.content == completion.choices[0].text
  assert chat.choices[0].message.role == "assistant"
  prompt_tokens = len(vocabularies.demo_vocabulary().encode(PROMPTS[0])) + 1
  assert completion.usage.prompt_tokens == prompt_tokens
  assert 1 <= completion.usage.completion_tokens <= 8
  assert completion.usage.total_tokens == prompt_tokens + (
      completion.usage.completion_tokens)
  assert [m.id for m in server.client.models.list().data] == [MODEL]
  assert server.get("/health") == {"status": "ok"}


def test_streamed_chunks_join_to_the_whole_text_and_end_with_usage(server):
  whole = _complete(server, PROMPTS[1], max_tokens=12)
  stream = server.client.chat.completions.create(
      model=MODEL, messages=[{"role": "user", "content": PROMPTS[1]}],
      max_tokens=12, temperature=0, stream=True,
      stream_options={"include_usage": True})
  chunks = list(stream)
  text = "".join(c.choices[0].delta.content or "" for c in chunks
                 if c.choices)
  assert text == whole.choices[0].text
  assert chunks[0].choices[0].delta.role == "assistant"
  assert len([c for c in chunks if c.choices]) > 3  # Token by token.
  assert chunks[-2].choices[0].finish_reason == whole.choices[0].finish_reason
  assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_concurrent_requests_share_decode_calls_and_keep_their_text(server):
  alone = [_complete(server, p).choices[0].text for p in PROMPTS[:3]]
  before = server.get("/stats")
  with concurrent.futures.ThreadPoolExecutor(len(PROMPTS)) as pool:
    replies = list(pool.map(lambda p: _complete(server, p), PROMPTS))
  after = server.get("/stats")
  calls = after["decode_calls"] - before["decode_calls"]
  assert after["requests_decoded"] - before["requests_decoded"] == 8
  assert calls < len(PROMPTS), after
  assert after["max_requests_per_call"] >= 2
  assert [r.choices[0].text for r in replies[:3]] == alone


def test_stop_strings_cut_the_text_and_count_only_its_tokens(server):
  full = _complete(server, PROMPTS[2], max_tokens=16).choices[0].text
  stop = full[len(full) // 2:len(full) // 2 + 2]
  cut = _complete(server, PROMPTS[2], max_tokens=16, stop=[stop])
  assert cut.choices[0].text == full[:full.index(stop)]
  assert cut.choices[0].finish_reason == "stop"
  assert cut.usage.completion_tokens < 16


def test_sampling_with_a_seed_and_beam_search(server):
  sampled = [_complete(server, PROMPTS[3], temperature=0.8, top_p=0.9,
                       seed=7).choices[0].text for _ in range(2)]
  assert sampled[0] == sampled[1]
  beam = _complete(server, PROMPTS[3], extra_body={
      "decoding_method": "beam", "num_beams": 2})
  assert beam.choices[0].finish_reason in ("stop", "length")
  several = _complete(server, PROMPTS[3], n=3, temperature=1.0)
  assert [c.index for c in several.choices] == [0, 1, 2]


@pytest.mark.parametrize("kwargs, param", [
    (dict(max_tokens=0), "max_tokens"),
    (dict(max_tokens=10_000), "max_tokens"),
    (dict(temperature=3.5), "temperature"),
    (dict(logprobs=2), "logprobs"),
    (dict(n=99), "n"),
    (dict(stop=["a", "b", "c", "d", "e"]), "stop"),
    (dict(prompt="copy: " + "Paka analala kwenye mkeka. " * 20), "prompt"),
    (dict(extra_body={"decoding_method": "nucleus"}), "decoding_method"),
])
def test_bad_completion_requests_get_400_naming_the_field(server, kwargs,
                                                           param):
  prompt = kwargs.pop("prompt", PROMPTS[0])
  with pytest.raises(openai.BadRequestError) as raised:
    _complete(server, prompt, **kwargs)
  assert raised.value.body["param"] == param
  assert raised.value.body["message"]


def test_bad_chat_requests_unknown_models_and_bad_json(server):
  with pytest.raises(openai.BadRequestError, match="last message"):
    server.client.chat.completions.create(
        model=MODEL, messages=[{"role": "assistant", "content": "hi"}])
  with pytest.raises(openai.NotFoundError, match="does not exist"):
    server.client.completions.create(model="gpt-4", prompt="x")
  request = urllib.request.Request(server.url + "/completions",
                                   data=b"{not json", method="POST")
  with pytest.raises(urllib.error.HTTPError) as raised:
    urllib.request.urlopen(request)
  assert raised.value.code == 400
  assert "not JSON" in json.loads(raised.value.read())["error"]["message"]
  assert server.get("/health") == {"status": "ok"}  # Still serving.


def test_chat_prompt_format_of_a_conversation():
  messages = [{"role": "system", "content": "Answer briefly."},
              {"role": "user", "content": "Hi"},
              {"role": "assistant", "content": "Hello!"},
              {"role": "user", "content": [{"type": "text", "text": "Why?"}]}]
  assert protocol.chat_prompt(messages) == (
      "System: Answer briefly.\n\nUser: Hi\n\nAssistant: Hello!\n\nUser: Why?")
  assert protocol.chat_prompt([{"role": "user", "content": "Hi"}]) == "Hi"


@pytest.mark.slow
def test_sigterm_answers_the_request_in_flight_then_exits_0(checkpoint):
  server = Server(checkpoint, "--batch_wait_ms=1500")
  replies = []
  thread = threading.Thread(target=lambda: replies.append(
      _complete(server, PROMPTS[0])))
  thread.start()
  time.sleep(0.5)  # The request waits in the engine for company.
  assert server.stop() == 0
  thread.join(timeout=60)
  assert replies and replies[0].choices[0].text

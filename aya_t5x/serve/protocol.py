"""The OpenAI wire format: requests validated into jobs, results into replies.

Everything here is plain Python over JSON values, so it is tested without a
server. A request the server cannot honour exactly (an unknown decoding
method, a field we do not implement such as `logprobs`, a prompt longer
than the model's input) is refused with a `RequestError` naming the field,
never quietly approximated.

Chat prompts for an encoder-decoder (documented in docs/serving.md): Aya
was finetuned on single instructions, so a conversation of one user message
is that message verbatim (a chat request then equals a completion of the
same text). Longer conversations become one input with a line per turn,
`System: ...`, `User: ...`, `Assistant: ...`, separated by blank lines; the
reply is the decoder's output, so no trailing `Assistant:` cue is added.
"""

import dataclasses
import time
import uuid
from typing import Any, Mapping, Sequence

from aya_t5x import decoding

JsonDict = dict[str, Any]
ROLES = {"system": "System", "user": "User", "assistant": "Assistant"}
# Fields of the OpenAI API we do not implement: refused unless left at the
# value that means "off".
_UNSUPPORTED = {"logprobs": (None, False, 0), "top_logprobs": (None, 0),
                "echo": (None, False), "suffix": (None, ""),
                "best_of": (None, 1), "logit_bias": (None, {}),
                "presence_penalty": (None, 0, 0.0),
                "frequency_penalty": (None, 0, 0.0),
                "tools": (None, []), "functions": (None, []),
                "response_format": (None, {"type": "text"})}
MAX_STOP_STRINGS = 4  # As OpenAI.


class RequestError(ValueError):
  """A bad request: HTTP `status` with an OpenAI-style error body."""

  def __init__(self, message: str, param: str | None = None,
               status: int = 400, kind: str = "invalid_request_error"):
    super().__init__(message)
    self.param, self.status, self.kind = param, status, kind

  def body(self) -> JsonDict:
    return {"error": {"message": str(self), "type": self.kind,
                      "param": self.param, "code": None}}


@dataclasses.dataclass(frozen=True)
class Limits:
  """What one request may ask for (flags of `python -m aya_t5x.serve`)."""
  max_input_tokens: int = 1024  # Prompt tokens, EOS included.
  max_new_tokens: int = 512  # Largest `max_tokens`.
  default_max_tokens: int = 64  # When a request sets no `max_tokens`.
  max_choices: int = 8  # Largest `n` (and prompts per completion request).


@dataclasses.dataclass(frozen=True)
class Sampling:
  """The decoding settings of one request; requests with equal settings
  can share a decoding call (see engine.py)."""
  method: str  # One of decoding.METHODS.
  temperature: float = 1.0
  top_p: float = 1.0
  top_k: int = 0
  num_beams: int = 4
  length_penalty: float = 1.0
  min_tokens: int = 0
  seed: int | None = None  # None: a fresh draw per call.


@dataclasses.dataclass(frozen=True)
class GenerationRequest:
  """A validated completion or chat request."""
  kind: str  # "completion" or "chat".
  model: str
  prompts: tuple[str, ...]  # One per prompt (completions may send several).
  n: int  # Choices per prompt.
  max_tokens: int
  sampling: Sampling
  stop: tuple[str, ...]
  stream: bool
  include_usage: bool  # stream_options.include_usage


# ----------------------------------------------------------- validation ---


def _number(body: Mapping, name: str, default, low: float, high: float,
            integer: bool = False):
  value = body.get(name)
  if value is None:
    return default
  kinds = (int,) if integer else (int, float)
  if isinstance(value, bool) or not isinstance(value, kinds):
    raise RequestError(f"'{name}' must be {'an integer' if integer else 'a number'}, "
                       f"got {value!r}.", name)
  if not low <= value <= high:
    raise RequestError(f"'{name}' must be in [{low}, {high}], got {value}.",
                       name)
  return value


def _check_unsupported(body: Mapping) -> None:
  for name, off in _UNSUPPORTED.items():
    if name in body and body[name] not in off:
      raise RequestError(f"'{name}' is not supported by this server.", name)


def _stop_strings(body: Mapping) -> tuple[str, ...]:
  stop = body.get("stop")
  if stop is None:
    return ()
  stops = [stop] if isinstance(stop, str) else stop
  if (not isinstance(stops, list) or len(stops) > MAX_STOP_STRINGS or
      not all(isinstance(s, str) and s for s in stops)):
    raise RequestError(f"'stop' must be a non-empty string or a list of at "
                       f"most {MAX_STOP_STRINGS} of them, got {stop!r}.",
                       "stop")
  return tuple(stops)


def _sampling(body: Mapping, limits: Limits) -> Sampling:
  """OpenAI's temperature/top_p, plus our extensions for the other methods.

  Extensions: `decoding_method` ("greedy", "sample", "beam"), `top_k`,
  `num_beams`, `length_penalty`, `min_tokens`. Without `decoding_method`,
  temperature 0 means greedy and anything else sampling (OpenAI's default
  temperature is 1).
  """
  temperature = _number(body, "temperature", 1.0, 0.0, 2.0)
  top_p = _number(body, "top_p", 1.0, 0.0, 1.0)
  method = body.get("decoding_method")
  if method is None:
    method = "greedy" if temperature == 0 else "sample"
  if method not in decoding.METHODS:
    raise RequestError(f"'decoding_method' must be one of "
                       f"{list(decoding.METHODS)}, got {method!r}.",
                       "decoding_method")
  if method == "sample" and temperature == 0:
    raise RequestError("'temperature' must be > 0 for decoding_method "
                       "'sample' (use 0 with 'greedy').", "temperature")
  return Sampling(
      method=method, temperature=float(temperature), top_p=float(top_p),
      top_k=_number(body, "top_k", 0, 0, 10_000, integer=True),
      num_beams=_number(body, "num_beams", 4, 1, 16, integer=True),
      length_penalty=float(_number(body, "length_penalty", 1.0, -10, 10)),
      min_tokens=_number(body, "min_tokens", 0, 0, limits.max_new_tokens,
                         integer=True),
      seed=_number(body, "seed", None, 0, 2**31 - 1, integer=True))


def _prompts(body: Mapping, limits: Limits) -> tuple[str, ...]:
  prompt = body.get("prompt")
  prompts = [prompt] if isinstance(prompt, str) else prompt
  if (not isinstance(prompts, list) or not prompts or
      not all(isinstance(p, str) for p in prompts)):
    raise RequestError("'prompt' must be a string or a non-empty list of "
                       f"strings, got {type(prompt).__name__}.", "prompt")
  if len(prompts) > limits.max_choices:
    raise RequestError(f"'prompt' holds {len(prompts)} prompts; at most "
                       f"{limits.max_choices} per request.", "prompt")
  return tuple(prompts)


def _message_text(message: Any, index: int) -> tuple[str, str]:
  where = f"messages[{index}]"
  if not isinstance(message, dict):
    raise RequestError(f"'{where}' must be an object.", "messages")
  role, content = message.get("role"), message.get("content")
  if role not in ROLES:
    raise RequestError(f"'{where}.role' must be one of {list(ROLES)}, got "
                       f"{role!r}.", "messages")
  if isinstance(content, list):  # Content parts: text only.
    if not all(isinstance(p, dict) and p.get("type") == "text" and
               isinstance(p.get("text"), str) for p in content):
      raise RequestError(f"'{where}.content' parts must all be "
                         "{'type': 'text', 'text': ...}.", "messages")
    content = "".join(p["text"] for p in content)
  if not isinstance(content, str):
    raise RequestError(f"'{where}.content' must be a string.", "messages")
  return role, content


def chat_prompt(messages: Any) -> str:
  """The encoder input of a conversation (format in the module docstring)."""
  if not isinstance(messages, list) or not messages:
    raise RequestError("'messages' must be a non-empty list.", "messages")
  turns = [_message_text(m, i) for i, m in enumerate(messages)]
  if turns[-1][0] != "user":
    raise RequestError("The last message must have role 'user'.", "messages")
  if len(turns) == 1:
    return turns[0][1]
  return "\n\n".join(f"{ROLES[role]}: {text}" for role, text in turns)


def parse_request(body: Any, kind: str, model_name: str,
                  limits: Limits) -> GenerationRequest:
  """Validates a /v1/completions or /v1/chat/completions JSON body."""
  if not isinstance(body, dict):
    raise RequestError("The request body must be a JSON object.")
  model = body.get("model")
  if not isinstance(model, str):
    raise RequestError("'model' is required (a string).", "model")
  if model != model_name:
    raise RequestError(f"The model '{model}' does not exist; this server "
                       f"serves '{model_name}'.", "model", status=404)
  _check_unsupported(body)
  prompts = (_prompts(body, limits) if kind == "completion" else
             (chat_prompt(body.get("messages")),))
  max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
  max_tokens = _number({"max_tokens": max_tokens}, "max_tokens",
                       limits.default_max_tokens, 1, limits.max_new_tokens,
                       integer=True)
  n = _number(body, "n", 1, 1, limits.max_choices, integer=True)
  if n * len(prompts) > limits.max_choices:
    raise RequestError(f"{len(prompts)} prompts x n={n} choices exceed "
                       f"{limits.max_choices} per request.", "n")
  sampling = _sampling(body, limits)
  if sampling.min_tokens > max_tokens:
    raise RequestError(f"'min_tokens'={sampling.min_tokens} exceeds "
                       f"max_tokens={max_tokens}.", "min_tokens")
  stream = body.get("stream", False)
  if not isinstance(stream, bool):
    raise RequestError("'stream' must be a boolean.", "stream")
  options = body.get("stream_options") or {}
  if not isinstance(options, dict):
    raise RequestError("'stream_options' must be an object.",
                       "stream_options")
  return GenerationRequest(kind, model, prompts, n, max_tokens, sampling,
                           _stop_strings(body), stream,
                           bool(options.get("include_usage", False)))


def decoding_config(sampling: Sampling, max_new_tokens: int
                    ) -> decoding.DecodingConfig:
  """The (compiled) decoding program of a call; the seed is not part of it
  (the engine passes each call's RNG)."""
  return decoding.DecodingConfig(
      method=sampling.method, max_new_tokens=max_new_tokens,
      min_new_tokens=sampling.min_tokens,
      temperature=sampling.temperature if sampling.method == "sample" else 1.0,
      top_k=sampling.top_k if sampling.method == "sample" else 0,
      top_p=sampling.top_p if sampling.method == "sample" else 1.0,
      num_beams=sampling.num_beams if sampling.method == "beam" else 4,
      length_penalty=(sampling.length_penalty if sampling.method == "beam"
                      else 1.0))


# -------------------------------------------------------------- results ---


@dataclasses.dataclass(frozen=True)
class Choice:
  """One finished generation, cut at `max_tokens` and the stop strings."""
  text: str
  tokens: int  # Completion tokens counted in `usage` (EOS not counted).
  finish_reason: str  # "stop" (EOS or a stop string) or "length".
  pieces: tuple[str, ...]  # `text` split at token boundaries (streaming).


def _pieces(decode, ids: Sequence[int]) -> list[tuple[int, str]]:
  """The text split at token boundaries: (tokens so far, text delta) pairs
  whose deltas join to decode(ids).

  SentencePiece drops a leading space and byte-fallback pieces form one
  character only together, so the deltas come from prefix decodes, and a
  prefix whose decode is not a prefix of the whole (a half character) waits
  for the next token.
  """
  full = decode(list(ids))
  pieces, emitted = [], ""
  for k in range(1, len(ids)):
    text = decode(list(ids[:k]))
    if len(text) > len(emitted) and full.startswith(text):
      pieces.append((k, text[len(emitted):]))
      emitted = text
  if len(full) > len(emitted) or not pieces and ids:
    pieces.append((len(ids), full[len(emitted):]))
  return pieces


def finish_choice(decode, ids: Sequence[int], max_tokens: int,
                  ended: bool, stop: Sequence[str]) -> Choice:
  """Applies `max_tokens` and the stop strings to a row's generated ids.

  Args:
    decode: ids -> text (the vocabulary's).
    ids: the generated ids before EOS.
    max_tokens: the request's limit (the call may have decoded more).
    ended: whether the row emitted EOS within the call.
    stop: strings that end the text where they first occur (excluded).
  """
  finish = "stop" if ended and len(ids) <= max_tokens else "length"
  ids = list(ids[:max_tokens])
  pieces = _pieces(decode, ids)
  text = "".join(p for _, p in pieces)
  cut = min((i for i in (text.find(s) for s in stop) if i >= 0),
            default=-1)
  if cut < 0:
    return Choice(text, len(ids), finish, tuple(p for _, p in pieces if p))
  kept, used, length = [], 0, 0
  for tokens, piece in pieces:  # The tokens that produce text[:cut].
    if length >= cut:
      break
    kept.append(piece[:cut - length])
    length += len(piece)
    used = tokens
  return Choice(text[:cut], used, "stop", tuple(p for p in kept if p))


def _usage(prompt_tokens: int, completion_tokens: int) -> JsonDict:
  return {"prompt_tokens": prompt_tokens,
          "completion_tokens": completion_tokens,
          "total_tokens": prompt_tokens + completion_tokens}


def new_id(kind: str) -> str:
  prefix = "cmpl" if kind == "completion" else "chatcmpl"
  return f"{prefix}-{uuid.uuid4().hex[:24]}"


def response(request: GenerationRequest, request_id: str,
             choices: Sequence[Choice], prompt_tokens: int) -> JsonDict:
  """The non-streaming reply."""
  chat = request.kind == "chat"
  body = []
  for index, choice in enumerate(choices):
    entry = {"index": index, "finish_reason": choice.finish_reason}
    if chat:
      entry["message"] = {"role": "assistant", "content": choice.text}
    else:
      entry.update(text=choice.text, logprobs=None)
    body.append(entry)
  return {"id": request_id,
          "object": "chat.completion" if chat else "text_completion",
          "created": int(time.time()), "model": request.model,
          "choices": body,
          "usage": _usage(prompt_tokens, sum(c.tokens for c in choices))}


def stream_chunks(request: GenerationRequest, request_id: str,
                  choices: Sequence[Choice], prompt_tokens: int
                  ) -> list[JsonDict]:
  """The streamed reply: a chunk per token of every choice, then each
  choice's finish reason, then (if asked) the usage."""
  chat = request.kind == "chat"
  created = int(time.time())
  def chunk(index: int, delta: str | None, finish: str | None,
            role: bool = False) -> JsonDict:
    entry = {"index": index, "finish_reason": finish}
    if chat:
      entry["delta"] = ({"role": "assistant", "content": ""} if role else
                        ({} if delta is None else {"content": delta}))
    else:
      entry.update(text=delta or "", logprobs=None)
    return {"id": request_id, "created": created, "model": request.model,
            "object": "chat.completion.chunk" if chat else "text_completion",
            "choices": [entry]}
  out = []
  for index, choice in enumerate(choices):
    if chat:
      out.append(chunk(index, None, None, role=True))
    out.extend(chunk(index, piece, None) for piece in choice.pieces)
    out.append(chunk(index, None, choice.finish_reason))
  if request.include_usage:
    last = chunk(0, None, None)
    last["choices"] = []
    last["usage"] = _usage(prompt_tokens, sum(c.tokens for c in choices))
    out.append(last)
  return out

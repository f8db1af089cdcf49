"""The Starlette application: routes, streaming, request limits and errors.

Routes: `POST /v1/completions`, `POST /v1/chat/completions`,
`GET /v1/models`, `GET /health` (200 when ready, 503 while shutting down)
and `GET /stats` (the engine's batching counters, not part of the OpenAI
API). Every refusal is a JSON error body in OpenAI's shape: 400 for a bad
request, 404 for another model's name, 413 for an oversized body, 429 when
the queue is full, 503 while shutting down.
"""

import asyncio
import contextlib
import dataclasses
import json
import time
from typing import Any, Callable, Sequence

from starlette import applications
from starlette import requests as starlette_requests
from starlette import responses
from starlette import routing

from aya_t5x.serve import engine as engine_lib
from aya_t5x.serve import protocol

MAX_BODY_BYTES = 4 * 1024 * 1024


@dataclasses.dataclass
class Service:
  """What the routes share: the engine, the tokenizer and the limits."""
  engine: engine_lib.Engine
  encode: Callable[[str], list[int]]  # Text -> EOS-terminated input ids.
  decode: Callable[[list[int]], str]
  model_name: str
  limits: protocol.Limits
  created: int = dataclasses.field(default_factory=lambda: int(time.time()))
  stopping: bool = False


def _error(error: protocol.RequestError) -> responses.JSONResponse:
  return responses.JSONResponse(error.body(), status_code=error.status)


async def _json_body(request: starlette_requests.Request) -> Any:
  size = request.headers.get("content-length")
  if size is not None and size.isdigit() and int(size) > MAX_BODY_BYTES:
    raise protocol.RequestError(
        f"The request body has {size} bytes; the limit is {MAX_BODY_BYTES}.",
        status=413)
  raw = await request.body()
  if len(raw) > MAX_BODY_BYTES:
    raise protocol.RequestError(
        f"The request body has {len(raw)} bytes; the limit is "
        f"{MAX_BODY_BYTES}.", status=413)
  try:
    return json.loads(raw)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise protocol.RequestError(f"The request body is not JSON: {e}.") from None


def _tokenize(service: Service, prompts: Sequence[str]) -> list[list[int]]:
  rows = []
  for index, prompt in enumerate(prompts):
    ids = service.encode(prompt)
    if len(ids) > service.limits.max_input_tokens:
      raise protocol.RequestError(
          f"Prompt {index} has {len(ids)} tokens (EOS included); this server "
          f"takes at most {service.limits.max_input_tokens}.", "prompt")
    rows.append(ids)
  return rows


async def _generate(service: Service, request: protocol.GenerationRequest,
                    rows: list[list[int]]) -> list[protocol.Choice]:
  """Runs the request's rows (each prompt n times) through the engine."""
  repeated = [row for row in rows for _ in range(request.n)]
  try:
    future = service.engine.submit(repeated, request.sampling,
                                   request.max_tokens)
  except engine_lib.QueueFull as e:
    raise protocol.RequestError(str(e), status=429,
                                kind="rate_limit_error") from None
  except engine_lib.Stopped as e:
    raise protocol.RequestError(str(e), status=503,
                                kind="service_unavailable") from None
  results = await asyncio.wrap_future(future)
  return [protocol.finish_choice(service.decode, r.ids, request.max_tokens,
                                 r.ended, request.stop) for r in results]


def _sse(chunks: Sequence[dict]):
  async def events():
    for chunk in chunks:
      yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"
    yield "data: [DONE]\n\n"
  return responses.StreamingResponse(events(), media_type="text/event-stream")


def _generation_route(service: Service, kind: str):
  async def route(request: starlette_requests.Request) -> responses.Response:
    try:
      if service.stopping:
        raise protocol.RequestError("The server is shutting down.",
                                    status=503, kind="service_unavailable")
      parsed = protocol.parse_request(await _json_body(request), kind,
                                      service.model_name, service.limits)
      rows = _tokenize(service, parsed.prompts)
      choices = await _generate(service, parsed, rows)
    except protocol.RequestError as e:
      return _error(e)
    prompt_tokens = sum(len(r) for r in rows) * parsed.n
    request_id = protocol.new_id(kind)
    if parsed.stream:
      return _sse(protocol.stream_chunks(parsed, request_id, choices,
                                         prompt_tokens))
    return responses.JSONResponse(protocol.response(
        parsed, request_id, choices, prompt_tokens))
  return route


def build_app(service: Service, on_shutdown: Callable[[], None] | None = None
              ) -> applications.Starlette:
  """The ASGI app; `on_shutdown` runs after the last request is answered."""
  async def models(_):
    return responses.JSONResponse({"object": "list", "data": [{
        "id": service.model_name, "object": "model",
        "created": service.created, "owned_by": "aya_t5x"}]})

  async def health(_):
    if service.stopping:
      return responses.JSONResponse({"status": "stopping"}, status_code=503)
    return responses.JSONResponse({"status": "ok"})

  async def stats(_):
    return responses.JSONResponse(service.engine.stats())

  async def not_found(request, _):
    return _error(protocol.RequestError(
        f"No route {request.method} {request.url.path}.", status=404))

  @contextlib.asynccontextmanager
  async def lifespan(_):
    yield
    # Uvicorn has stopped accepting and answered the requests in flight.
    service.stopping = True
    await asyncio.to_thread(service.engine.close)
    if on_shutdown is not None:
      on_shutdown()

  return applications.Starlette(
      routes=[
          routing.Route("/v1/completions",
                        _generation_route(service, "completion"),
                        methods=["POST"]),
          routing.Route("/v1/chat/completions",
                        _generation_route(service, "chat"),
                        methods=["POST"]),
          routing.Route("/v1/models", models),
          routing.Route("/health", health),
          routing.Route("/stats", stats),
      ],
      exception_handlers={404: not_found, 405: not_found},
      lifespan=lifespan)

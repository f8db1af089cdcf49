"""A fake OpenAI-compatible chat server on 127.0.0.1 for tests.

`serve(policy)` answers POST /v1/chat/completions with `policy(messages)`
as the reply's content and records every request body, so a test can check
what a judge, teacher or translator endpoint was asked.
"""

import contextlib
import http.server
import json
import threading
from collections.abc import Callable, Iterator


class Handler(http.server.BaseHTTPRequestHandler):
  """Replies `server.policy(messages)`; subclasses add failure modes."""

  def do_POST(self):  # pylint: disable=invalid-name
    body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
    with self.server.lock:
      self.server.requests.append(body)
    if self.path != "/v1/chat/completions":
      return self._send(404, {"error": {"message": "no such route"}})
    reply = self.server.policy(body["messages"])
    return self.reply(body, reply)

  def reply(self, body, content):
    """A chat completion whose message is `content`."""
    return self._send(200, {
        "id": "chatcmpl-test", "object": "chat.completion",
        "model": body["model"],
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant",
                                 "content": content}}]})

  def _send(self, status, payload):
    data = json.dumps(payload).encode()
    self.send_response(status)
    self.send_header("Content-Type", "application/json")
    self.send_header("Content-Length", str(len(data)))
    self.end_headers()
    self.wfile.write(data)

  def log_message(self, *args):  # Keep pytest's output clean.
    pass


@contextlib.contextmanager
def serve(policy: Callable[[list[dict]], str]
          ) -> Iterator[http.server.ThreadingHTTPServer]:
  """A running server; `.url` is its /v1 base, `.requests` what it got."""
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
  server.lock = threading.Lock()
  server.requests = []
  server.policy = policy
  server.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
  thread = threading.Thread(target=server.serve_forever, args=(0.05,),
                            daemon=True)
  thread.start()
  try:
    yield server
  finally:
    server.shutdown()
    server.server_close()


def last_user_message(messages: list[dict]) -> str:
  return [m["content"] for m in messages if m["role"] == "user"][-1]

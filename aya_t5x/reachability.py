"""Whether a remote service answers at all, asked in a bounded time.

Without network, the clients this package uses (huggingface_hub, TensorFlow's
and TensorStore's GCS drivers) retry for tens of seconds to minutes before
they fail, if they fail at all. Before their first request, a tool opens one
TCP connection to the service (or to the HTTPS proxy the environment names)
and gives up after `PROBE_TIMEOUT_S` (env `AYA_PROBE_TIMEOUT`), name lookup
included: `socket.create_connection` alone can wait on a resolver far
longer than its timeout, so the attempt runs in a daemon thread. The answer
is remembered per endpoint for the process (`reset` forgets it).
`hub_access` and `gcs_access` turn a failed probe into one line that says
what was wanted and what to do.
"""

import functools
import os
import socket
import threading
import urllib.parse

# Seconds a probe waits for a TCP connection, name lookup included.
PROBE_TIMEOUT_S = 3.0
ENV_PROBE_TIMEOUT = "AYA_PROBE_TIMEOUT"
_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def endpoint(url: str) -> tuple[str, int]:
  """The host and port an HTTPS request to `url` first connects to: the
  proxy when the environment names one, else the URL's own."""
  for name in _PROXY_VARS:
    if os.environ.get(name):
      proxy = urllib.parse.urlparse(os.environ[name])
      return proxy.hostname or "", proxy.port or 8080
  parsed = urllib.parse.urlparse(url)
  return parsed.hostname or "", parsed.port or (
      443 if parsed.scheme == "https" else 80)


def timeout_s() -> float:
  return float(os.environ.get(ENV_PROBE_TIMEOUT, PROBE_TIMEOUT_S))


@functools.lru_cache(maxsize=16)
def probe(host: str, port: int) -> str | None:
  """None when a TCP connection to host:port opens in time, else why not
  ("host:port: reason")."""
  outcome: list[str | None] = []

  def connect() -> None:
    try:
      with socket.create_connection((host, port), timeout=timeout_s()):
        outcome.append(None)
    except OSError as e:
      outcome.append(e.strerror or str(e) or type(e).__name__)

  attempt = threading.Thread(target=connect, daemon=True)
  attempt.start()
  attempt.join(timeout_s())
  if not outcome:
    return f"{host}:{port}: no answer within {timeout_s():g} s"
  return None if outcome[0] is None else f"{host}:{port}: {outcome[0]}"


def reset() -> None:
  """Forgets every probe's answer (tests; a network that came back)."""
  probe.cache_clear()

"""Reaching the Hugging Face Hub, or saying in one line why not.

Without network, `huggingface_hub` retries every request for tens of seconds
and ends in a long `httpx` traceback. Before its first request this process
opens one TCP connection to the Hub (or to the HTTPS proxy the environment
names) in a bounded time (`aya_t5x.reachability`); if that fails, or a
listing fails for a network or access reason, `HubUnreachable` says which
repository and revision were wanted and what to do: point `AYA_DATA_DIR` at
a mirror (`python -m aya_t5x.download` writes one), set `HF_HUB_OFFLINE=1`
to read the Hub cache, or set `HF_TOKEN` for a gated repository. It is a
`gin_utils.UsageError`, so every CLI prints it as one `error:` line and
exits 2.
"""

import os

from aya_t5x import gin_utils
from aya_t5x import reachability


class HubUnreachable(gin_utils.UsageError):
  """The Hub could not be reached or refused access (module docstring)."""

  def __init__(self, message: str, refused: bool = False):
    super().__init__(message)
    # True when the Hub answered but refused (gated or private repository).
    self.refused = refused


def download_command(repo_id: str, revision: str | None) -> str:
  return (f"python -m aya_t5x.download --repo={repo_id} --revision="
          f"{revision or 'main'} --output_dir=DIR")


def unreachable_message(repo_id: str, revision: str | None,
                        reason: str) -> str:
  """One line: what could not be read, why, and the three ways out."""
  return (f"Cannot read {repo_id}@{revision or 'main'} from the Hugging Face "
          f"Hub ({reason}). Offline: mirror it with `"
          f"{download_command(repo_id, revision)}` (or `python -m "
          "aya_t5x.download --mixture=NAME --output_dir=DIR`) and set "
          "AYA_DATA_DIR=DIR, or set HF_HUB_OFFLINE=1 to read the Hub cache; "
          "for a gated repository set HF_TOKEN to a token that accepted its "
          "terms.")


def refused_message(repo_id: str, revision: str | None, status: int) -> str:
  token = "HF_TOKEN is set" if _token_set() else "HF_TOKEN is not set"
  return (f"The Hub refused access to {repo_id}@{revision or 'main'} (HTTP "
          f"{status}; {token}): it is gated or private. Accept its terms on "
          f"https://huggingface.co/datasets/{repo_id} and set HF_TOKEN to a "
          "token of that account, or point AYA_DATA_DIR at a mirror.")


def _token_set() -> bool:
  return bool(os.environ.get("HF_TOKEN") or
              os.environ.get("HUGGING_FACE_HUB_TOKEN"))


def _endpoint() -> tuple[str, int]:
  """The host and port the first request would connect to."""
  from huggingface_hub import constants  # pylint: disable=g-import-not-at-top
  return reachability.endpoint(constants.ENDPOINT)


def reset() -> None:
  """Forgets the probe's answer (tests; a network that came back)."""
  reachability.reset()


def check(repo_id: str, revision: str | None) -> None:
  """Raises HubUnreachable unless the Hub answers a TCP connection."""
  reason = reachability.probe(*_endpoint())
  if reason is not None:
    raise HubUnreachable(unreachable_message(repo_id, revision, reason))


def explain(error: Exception, repo_id: str, revision: str | None
            ) -> HubUnreachable | None:
  """A one-line error for a failed Hub request, or None if it is no
  network or access failure (then the original error stands)."""
  response = getattr(error, "response", None)
  status = getattr(response, "status_code", None)
  if status in (401, 403):
    return HubUnreachable(refused_message(repo_id, revision, status),
                          refused=True)
  names = {c.__name__ for c in type(error).__mro__}
  if names & {"ConnectError", "ConnectTimeout", "TimeoutException",
              "NetworkError", "ConnectionError", "OfflineModeIsEnabled",
              "LocalEntryNotFoundError"}:
    first = str(error).splitlines()[0] if str(error) else type(error).__name__
    return HubUnreachable(unreachable_message(repo_id, revision, first[:160]))
  return None

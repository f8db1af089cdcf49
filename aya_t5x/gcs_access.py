"""Reaching Google Cloud Storage, or saying in one line why not.

A `gs://` path is read by TensorFlow's GCS filesystem (vocabularies, data
mirrors, MODEL_DIR), by TensorStore (legacy T5X checkpoints) or by Orbax.
Without network they do not fail in one clear line: TensorStore's driver
retries its credentials and requests for minutes (`t5x_to_aya` from gs://
seemed to hang), TensorFlow's ends in a libcurl message about a vocabulary
file. So before a tool first touches a `gs://` path, `check` probes the GCS
endpoint (`aya_t5x.reachability`: one TCP connection, a few seconds at
most) and, if it does not answer, raises `GcsUnreachable`: which path (and
which flag) was wanted, why it cannot be reached, and what to do. It is a
`gin_utils.UsageError`: every CLI prints one `error:` line and exits 2.
"""

import os
from collections.abc import Mapping

from aya_t5x import gin_utils
from aya_t5x import reachability

SCHEME = "gs://"
# What TensorStore and TensorFlow connect to; an emulator overrides it.
DEFAULT_URL = "https://storage.googleapis.com"
ENV_EMULATOR = "STORAGE_EMULATOR_HOST"


class GcsUnreachable(gin_utils.UsageError):
  """GCS did not answer (module docstring)."""


def is_gcs(path: object) -> bool:
  return isinstance(path, str) and path.startswith(SCHEME)


def _url() -> str:
  emulator = os.environ.get(ENV_EMULATOR)
  if not emulator:
    return DEFAULT_URL
  return emulator if "://" in emulator else f"http://{emulator}"


def unreachable_message(path: str, what: str, reason: str) -> str:
  """One line: the path, the flag that named it, why, and the ways out."""
  return (f"Cannot reach {path} ({what}) on Google Cloud Storage ({reason})."
          f" Offline: copy it to a local disk where there is network "
          f"(`gsutil -m cp -r {path} DIR`) and use the copy instead; on a "
          "cloud machine check its network and HTTPS_PROXY.")


def check(path: object, what: str) -> None:
  """Raises GcsUnreachable if `path` is on GCS and GCS does not answer;
  anything else (a local path, None) passes without a probe."""
  if not is_gcs(path):
    return
  reason = reachability.probe(*reachability.endpoint(_url()))
  if reason is not None:
    raise GcsUnreachable(unreachable_message(str(path), what, reason))


def check_all(paths: Mapping[str, object]) -> None:
  """`check` of every {flag: path}, in order."""
  for what, path in paths.items():
    check(path, what)

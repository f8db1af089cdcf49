"""Quiet command-line start-up: native library noise hidden unless --verbose.

Importing TensorFlow and starting JAX's backends makes their C++ code write
to file descriptor 2 directly: oneDNN and "no CUDA drivers" notices, a
`failed call to cuInit` error line, libtpu's probe of TPU hostnames, and an
absl banner about logging "before InitializeLog". None of it is about the
user's run, and `TF_CPP_MIN_LOG_LEVEL` cannot reach the lines written
before TensorFlow reads it. So a CLI run as a program calls `begin(argv)`
before its heavy imports: file descriptor 2 goes to a temporary file until
`end()`, which replays every line that is not such start-up noise. Python's
own output written meanwhile (warnings, a usage error) is replayed in order.
After `end()` nothing is filtered; `TF_CPP_MIN_LOG_LEVEL=2` (unless set)
keeps TensorFlow's later info and warning lines (tf.data's "PyFunc is
stateful") out too. `--verbose` anywhere in argv leaves everything as is.
"""

import atexit
import os
import re
import sys
import tempfile
from typing import BinaryIO, Sequence

VERBOSE_FLAG = "--verbose"
# absl's native log prefix: level, date, time, thread id, file:line].
_NATIVE_LOG = re.compile(rb"^[IWE]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^\]]+\] ")
# Other lines the native libraries print while starting.
_NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\)"
    rb"|WARNING: Logging before InitGoogle\(\)"
    rb"|Failed to find host bounds for accelerator type"
    rb"|To enable the following instructions: "
    rb"|=== Source Location Trace: ==="
    rb"|\S+\.cc:\d+\s*$)")


class _Capture:
  """File descriptor 2 redirected into a temporary file."""

  def __init__(self):
    sys.stderr.flush()
    self.saved_fd = os.dup(2)
    self.file: BinaryIO = tempfile.TemporaryFile()
    os.dup2(self.file.fileno(), 2)

  def release(self) -> list[bytes]:
    """Restores file descriptor 2; returns the lines written meanwhile."""
    sys.stderr.flush()
    os.dup2(self.saved_fd, 2)
    os.close(self.saved_fd)
    self.file.seek(0)
    lines = self.file.read().splitlines(keepends=True)
    self.file.close()
    return lines


_capture: _Capture | None = None


def is_noise(line: bytes) -> bool:
  """Whether a line is native start-up noise (see the module docstring)."""
  return bool(_NATIVE_LOG.match(line) or _NOISE.match(line))


def verbose(argv: Sequence[str]) -> bool:
  return VERBOSE_FLAG in argv


def begin(argv: Sequence[str]) -> None:
  """Starts hiding native start-up noise, unless `--verbose` is in `argv`.

  Idempotent; `end()` runs at exit at the latest, so nothing that is not
  noise is ever lost by a process that exits normally.
  """
  global _capture
  if _capture is not None or verbose(argv):
    return
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  _capture = _Capture()
  atexit.register(end)


def end() -> None:
  """Stops filtering and writes the kept lines to stderr, in order."""
  global _capture
  if _capture is None:
    return
  lines, _capture = _capture.release(), None
  kept = b"".join(line for line in lines if not is_noise(line))
  sys.stderr.flush()
  while kept:
    kept = kept[os.write(2, kept):]


def ready() -> None:
  """Starts JAX's backends and TensorFlow's devices (their probes are noisy
  too: libtpu's hostnames, `cuInit`), then `end()`.

  TensorFlow only feeds data here, so it is kept off the GPU (as train and
  eval always did); it is not imported if the CLI has not imported it.
  """
  try:
    tf = sys.modules.get("tensorflow")
    if tf is not None:
      tf.config.set_visible_devices([], "GPU")
    import jax  # pylint: disable=g-import-not-at-top
    jax.devices()
  finally:
    end()

"""CLI start-up: native library noise is hidden, everything else is kept."""

import os
import subprocess
import sys

import pytest

from aya_t5x import startup

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Lines TensorFlow, XLA and libtpu print while a CLI starts (as seen).
NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are "
    "written to STDERR",
    "I0000 00:00:1796298077.434610    6294 port.cc:153] oneDNN custom "
    "operations are on. You may see slightly different numerical results.",
    "I0000 00:00:1796298077.436055    6294 cudart_stub.cc:31] Could not find "
    "cuda drivers on your machine, GPU will not be used.",
    "E0000 00:00:1796298082.603636    6294 cuda_platform.cc:52] failed call to "
    "cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)",
    "Failed to find host bounds for accelerator type: WARNING: could not "
    "determine TPU accelerator type",
    "WARNING: Logging before InitGoogle() is written to STDERR",
    "=== Source Location Trace: ===",
    "learning/45eac/tfrc/runtime/libtpu_init_utils.cc:327",
    "To enable the following instructions: AVX2 AVX512F FMA, in other "
    "operations, rebuild TensorFlow with the appropriate compiler flags.",
]
KEPT = ["error: --gin_file 'x.gin' not found (looked in: .).",
        "WARNING:absl:Skipping checkpoint /r/checkpoint_2: cut off.",
        "Traceback (most recent call last):",
        "F0000 00:00:1796298082.603636    6294 check.cc:1] Check failed: x"]


@pytest.mark.parametrize("line", NOISE)
def test_start_up_noise_is_recognised(line):
  assert startup.is_noise(line.encode())


@pytest.mark.parametrize("line", KEPT)
def test_errors_and_python_logs_are_not_noise(line):
  assert not startup.is_noise(line.encode())


_CHILD = """
import os, sys
from aya_t5x import startup
startup.begin(sys.argv)
os.write(2, b"".join(l.encode() + b"\\n" for l in {lines!r}))
print("python stderr line", file=sys.stderr)
{finish}
"""


@pytest.mark.parametrize("finish", ["startup.end()", "pass  # atexit"])
@pytest.mark.parametrize("verbose", [False, True])
def test_a_program_prints_only_what_is_not_noise(finish, verbose):
  code = _CHILD.format(lines=NOISE + KEPT, finish=finish)
  argv = ["--verbose"] if verbose else []
  done = subprocess.run([sys.executable, "-c", code, *argv], cwd=REPO,
                        capture_output=True, text=True, check=True,
                        env={**os.environ, "PYTHONPATH": REPO})
  expected = (NOISE if verbose else []) + KEPT + ["python stderr line"]
  assert done.stderr.splitlines() == expected

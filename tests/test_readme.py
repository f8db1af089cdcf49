"""The README's commands run as written, so the README cannot drift.

Every ```bash and ```python block of README.md is collected. A block runs
from the repository root, exactly as written except for the sizes and
output folders in `TINY` (a few steps instead of a thousand, outputs in a
temporary folder). A block that cannot run on a CPU from a clone (an XXL
model, data under /data or gs://, a make target that builds a venv) is
skipped by the first rule of `SKIP_RULES` it matches, and pytest reports
the reason (`-rs`). Blocks depend on earlier ones (inference reads the
checkpoint training wrote), so they run in README order in one test.
"""

import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, "README.md")

# (pattern, why a block matching it is not run here).
SKIP_RULES = (
    (r"^make ", "make targets build the venv (pip); `make test` runs the "
     "suite and `make demo` is run by hand"),
    (r"mt5_xxl", "an XXL model: not for a CPU"),
    (r"gs://|(^|[\s='\"])/(data|runs)/",
     "data or checkpoints outside the clone (gs://, /data, /runs)"),
)
# Tiny sizes and temporary outputs: (pattern, replacement) on the block's
# text; {tmp} is the test's temporary folder, {run} the checkpoint folder
# training writes there, relative to the repository root.
TINY = (
    (r"--gin\.TRAIN_STEPS=\d+", "--gin.TRAIN_STEPS=2"),
    (r"--gin\.BATCH_SIZE=\d+", "--gin.BATCH_SIZE=8 --gin.EVAL_PERIOD=0"),
    (r"demo_run/checkpoint_400", "{run}"),
    (r"(?<=['=])/tmp/", "{tmp}/"),
)


def blocks() -> list[tuple[int, str, str]]:
  """(line, language, text) of every bash and python block, in order."""
  with open(README, encoding="utf-8") as f:
    text = f.read()
  found = []
  for match in re.finditer(r"^```(bash|python)\n(.*?)^```", text,
                           re.MULTILINE | re.DOTALL):
    line = text.count("\n", 0, match.start()) + 1
    found.append((line, match.group(1), match.group(2)))
  return found


def skip_reason(text: str) -> str | None:
  for pattern, reason in SKIP_RULES:
    if re.search(pattern, text, re.MULTILINE):
      return reason
  return None


def tiny(text: str, tmp: str) -> str:
  run = os.path.relpath(os.path.join(tmp, "my_run", "checkpoint_2"), REPO)
  for pattern, replacement in TINY:
    text = re.sub(pattern, replacement.format(tmp=tmp, run=run), text)
  return text


def test_every_block_is_run_or_skipped_by_a_rule():
  found = blocks()
  assert len(found) >= 5
  run = [line for line, _, text in found if skip_reason(text) is None]
  # Training, "Add your language", inference and the demo's export run.
  assert len(run) >= 4, run


def _run_block(language: str, text: str) -> subprocess.CompletedProcess:
  command = (["bash", "-euo", "pipefail", "-c", text] if language == "bash"
             else [sys.executable, "-c", text])
  env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep +
             os.environ["PATH"])
  return subprocess.run(command, cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=900, check=False)


@pytest.mark.slow
def test_readme_blocks_run_as_written(tmp_path):
  if not os.path.exists(os.path.join(REPO, ".venv", "bin", "python")):
    pytest.skip("the README's commands call .venv/bin/python (make install)")
  ran = []
  for line, language, text in blocks():
    reason = skip_reason(text)
    if reason is not None:
      print(f"README.md:{line}: skipped: {reason}")
      continue
    done = _run_block(language, tiny(text, str(tmp_path)))
    assert done.returncode == 0, (
        f"README.md:{line} failed:\n{done.stdout}\n{done.stderr}")
    ran.append(line)
  assert len(ran) >= 4
  predictions = tmp_path / "out" / "prompts-predictions.jsonl"
  assert len(predictions.read_text(encoding="utf-8").splitlines()) == 8
  assert (tmp_path / "demo_hf" / "tokenizer.json").exists()

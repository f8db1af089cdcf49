"""Checksums that make a checkpoint prove it is the one that was written.

Orbax's commit protocol protects against a save cut off half way, not
against what happens to the files afterwards: flipped bytes at the same
size, a file truncated or emptied by a full disk, a file deleted by a
clean-up script. Restoring such a checkpoint either crashes with a long
traceback or, worse, loads garbage silently. So:

  * every save writes `aya_integrity.json` into the step folder before Orbax
    commits it (from Orbax's post-finalization hook, which runs before the
    temporary folder is renamed): the size and SHA-256 of every file of every
    item (`state/`, `dataset/`);
  * the save also records in Orbax's step metadata that a manifest is due,
    so a committed checkpoint whose manifest is missing is caught too;
  * `verify` re-reads every listed file before a restore and names the first
    one that is missing, of another size or of other content.

Checkpoints written before this module existed have neither the manifest nor
the promise: they restore with a warning that they are unverified.
The step-level markers (`commit_success.txt`, `_CHECKPOINT_METADATA`) are
written by the commit itself, after the manifest, and are not listed: the
checkpoint listing already refuses a folder without them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Iterator

from etils import epath

MANIFEST_FILE = "aya_integrity.json"
# Key in Orbax's step `custom_metadata`: this save promised a manifest.
PROMISE_KEY = "aya_t5x_integrity"
FORMAT = 1  # Version of the manifest layout.
_STEP_FILES = frozenset({MANIFEST_FILE, "commit_success.txt",
                         "_CHECKPOINT_METADATA"})
_CHUNK = 8 << 20  # Bytes hashed per read.


@dataclasses.dataclass(frozen=True)
class Verdict:
  """What `verify` found."""
  ok: bool  # Safe to restore (verified, or unverified but not refused).
  verified: bool  # Every file matched a manifest.
  problem: str | None = None  # Why not ok, naming the file.


def file_digest(path: epath.PathLike) -> str:
  """SHA-256 of the file's bytes, hex."""
  digest = hashlib.sha256()
  with epath.Path(path).open("rb") as f:
    while chunk := f.read(_CHUNK):
      digest.update(chunk)
  return digest.hexdigest()


def _item_files(step_dir: epath.Path) -> Iterator[epath.Path]:
  """Every file under the step folder except the step-level markers.

  epath's walk, not os.walk: os.walk yields nothing for a gs:// folder, and
  an empty manifest would "verify" anything.
  """
  for root, _, files in step_dir.walk():
    for name in files:
      path = epath.Path(root) / name
      if path.parent == step_dir and name in _STEP_FILES:
        continue
      yield path


def manifest(step_dir: epath.PathLike) -> dict:
  """{"format", "files": {relative path: {"size", "sha256"}}} of a folder."""
  step_dir = epath.Path(step_dir)
  files = {}
  for path in sorted(_item_files(step_dir)):
    relative = os.fspath(path.relative_to(step_dir))
    files[relative] = {"size": path.stat().length,
                       "sha256": file_digest(path)}
  return {"format": FORMAT, "files": files}


def write_manifest(step_dir: epath.PathLike) -> None:
  """Hashes the folder's files and writes the manifest (atomically)."""
  step_dir = epath.Path(step_dir)
  text = json.dumps(manifest(step_dir), indent=1, sort_keys=True)
  temporary = step_dir / f"{MANIFEST_FILE}.tmp"
  temporary.write_text(text)
  temporary.rename(step_dir / MANIFEST_FILE)


def _promised(step_dir: epath.Path) -> bool:
  """Whether the save recorded (in Orbax's step metadata) that it wrote a
  manifest."""
  try:
    metadata = json.loads((step_dir / "_CHECKPOINT_METADATA").read_text())
  except (OSError, ValueError):
    return False
  return PROMISE_KEY in (metadata.get("custom_metadata") or {})


def _read_manifest(step_dir: epath.Path) -> tuple[dict | None, str | None]:
  """(manifest, None), (None, None) if there is none, or (None, problem)."""
  path = step_dir / MANIFEST_FILE
  if not path.exists():
    if _promised(step_dir):
      return None, f"{path}: missing (the save recorded one)"
    return None, None
  try:
    found = json.loads(path.read_text())
    found["files"].items()
  except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
    return None, f"{path}: unreadable ({type(e).__name__})"
  if not found["files"]:
    # A save always writes files: an empty list could verify nothing.
    return None, f"{path}: lists no files"
  return found, None


def _file_problem(step_dir: epath.Path, relative: str,
                  expected: dict) -> str | None:
  path = step_dir / relative
  if not path.exists():
    return f"{path}: missing"
  size = path.stat().length
  if size != expected["size"]:
    return f"{path}: {size} bytes, {expected['size']} written"
  if file_digest(path) != expected["sha256"]:
    return f"{path}: content differs from what was written (SHA-256)"
  return None


def verify(step_dir: epath.PathLike) -> Verdict:
  """Checks every file the manifest lists, stopping at the first bad one.

  Files not in the manifest are not read (a later tool may add some).
  """
  step_dir = epath.Path(step_dir)
  found, problem = _read_manifest(step_dir)
  if problem is not None:
    return Verdict(ok=False, verified=False, problem=problem)
  if found is None:
    return Verdict(ok=True, verified=False)
  for relative, expected in sorted(found["files"].items()):
    problem = _file_problem(step_dir, relative, expected)
    if problem is not None:
      return Verdict(ok=False, verified=False, problem=problem)
  return Verdict(ok=True, verified=True)

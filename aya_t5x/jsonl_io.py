"""JSON Lines files that a job reads row by row and appends to as it goes.

Shared by the generation jobs (infer, distill, roundtrip, harmfulness) and by
loaders that tasks import, so it holds no gin configurables and no JAX: a
module registered with gin cannot be imported once a run has locked its
config (tasks are imported lazily, e.g. by the benchmark eval).
"""

import dataclasses
import json
import os
from typing import Any, Iterator, Sequence

from absl import logging

Row = dict[str, Any]


@dataclasses.dataclass
class InputReport:
  """What reading the inputs kept and skipped (and where)."""
  kept: int = 0
  skipped: dict[str, int] = dataclasses.field(default_factory=dict)

  def skip(self, where: str, reason: str) -> None:
    logging.warning("Skipping %s: %s", where, reason)
    self.skipped[reason] = self.skipped.get(reason, 0) + 1


def jsonl_objects(path: str, report, what: str = "INPUT_FILE"
                  ) -> Iterator[tuple[str, Row]]:
  """(`path:line`, object) of a JSONL file; a line that is not JSON or not
  an object is skipped, named and counted (`report.skip(where, reason)`).

  Raises:
    FileNotFoundError: no such file (`what` names the flag).
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{what} {path!r} does not exist.")
  with open(path, "rb") as f:
    for number, raw in enumerate(f, 1):
      where = f"{path}:{number}"
      try:
        # utf-8-sig: a byte-order mark on the first line is not text.
        line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
      except UnicodeDecodeError as e:
        report.skip(f"{where} (byte {e.start})", "invalid UTF-8")
        continue
      if not line.strip():
        continue
      try:
        row = json.loads(line)
      except json.JSONDecodeError as e:
        report.skip(where, f"not JSON ({e.msg})")
        continue
      if not isinstance(row, dict):
        report.skip(where, "not a JSON object")
        continue
      yield where, row


def resume_point(path: str, rows: Sequence[Row]) -> int:
  """How many leading rows `path` already holds; drops a torn last line.

  Raises:
    ValueError: the file holds predictions for other inputs.
  """
  if not os.path.exists(path):
    return 0
  done, good_bytes = 0, 0
  with open(path, "rb") as f:
    for line in f:
      if not line.endswith(b"\n"):
        break  # A write cut short by a crash: redo that row.
      try:
        written = json.loads(line)
      except json.JSONDecodeError:
        break
      if (done >= len(rows) or written.get("index") != done or
          written.get("inputs") != rows[done]["inputs"]):
        raise ValueError(
            f"{path} line {done + 1} is not the prediction for input "
            f"{done} of these inputs; write to another INFER_OUTPUT_DIR or "
            "delete the file.")
      done += 1
      good_bytes += len(line)
  with open(path, "r+b") as f:
    f.truncate(good_bytes)
  return done


def append_jsonl(path: str, rows: Sequence[Row]) -> None:
  """Appends rows as JSON lines, flushed to disk (a crash loses at most
  the line being written, which `resume_point` drops)."""
  with open(path, "a", encoding="utf-8") as f:
    for row in rows:
      f.write(json.dumps(row, ensure_ascii=False) + "\n")
    f.flush()
    os.fsync(f.fileno())

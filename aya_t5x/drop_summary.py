"""The end-of-run table of dropped rows: task, reason, count, first file:row.

Training drops rows for many reasons (empty, invalid UTF-8, duplicates, the
paper's filters); the console shows only the first few as they happen
(`preprocessors.Tally`). This table gives every total, per task and reason,
with the first row of each kind so that a user can look at an example. The
train CLI prints it at the end; any CLI that reads training sources can.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

from aya_t5x import preprocessors


@dataclasses.dataclass(frozen=True)
class DropRow:
  """One (task, reason) line of the table."""
  task: str
  reason: str  # `reason:field`, e.g. "empty:targets".
  count: int
  first: str  # `file:row` of the first such row.


def drop_rows(tally: preprocessors.Tally = preprocessors.TALLY,
              tasks: Iterable[str] | None = None) -> list[DropRow]:
  """Every (task, reason) with its count, truncations included, sorted."""
  out = []
  for task in sorted(tasks if tasks is not None else tally.tasks()):
    totals = {}
    for (reason, field, _), n in tally.report(task).events.items():
      totals[(reason, field)] = totals.get((reason, field), 0) + n
    for (reason, field), n in sorted(totals.items()):
      first = tally.first_row(task, reason, field) or "?"
      out.append(DropRow(task, f"{reason}:{field}", n, first))
  return out


def format_table(rows: list[DropRow]) -> str:
  """Aligned text; a line saying so when nothing was dropped."""
  if not rows:
    return "dropped rows: none"
  header = ("task", "reason", "count", "first row")
  cells = [header] + [(r.task, r.reason, str(r.count), r.first) for r in rows]
  widths = [max(len(c[i]) for c in cells) for i in range(3)]
  lines = [f"dropped rows ({sum(r.count for r in rows)} in total; "
           f"'{preprocessors.TRUNCATED}' rows are kept, cut):"]
  for cell in cells:
    lines.append("  " + "  ".join(
        [cell[0].ljust(widths[0]), cell[1].ljust(widths[1]),
         cell[2].rjust(widths[2]), cell[3]]))
  return "\n".join(lines)

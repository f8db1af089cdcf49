"""The end-of-run tables of data hygiene: rows dropped, tokens truncated.

Training drops rows for many reasons (empty, invalid UTF-8, duplicates, the
paper's filters); the console shows only the first few as they happen
(`preprocessors.Tally`). This table gives every total, per task and reason,
with the first row of each kind so that a user can look at an example. The
train CLI prints the three largest lines at the end (a mixture of 100 languages has
hundreds of them) and writes the whole table to `MODEL_DIR/dropped_rows.tsv`;
any CLI that reads training sources can.

Its sibling counts what trimming to TASK_FEATURE_LENGTHS cut from the
examples it kept (`aya_t5x.truncation`), per task, split and feature: one
console line (the totals and the largest), every line in
`MODEL_DIR/truncated_examples.tsv`.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

from etils import epath

from aya_t5x import preprocessors
from aya_t5x import truncation

# Lines of the table the console shows; the file holds all of them.
CONSOLE_LINES = 3
TABLE_FILE = "dropped_rows.tsv"


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


def _largest(rows: list[DropRow], limit: int) -> list[DropRow]:
  """The `limit` rows with the largest counts, in table (task) order."""
  keep = sorted(range(len(rows)), key=lambda i: (-rows[i].count, i))[:limit]
  return [rows[i] for i in sorted(keep)]


def format_table(rows: list[DropRow], limit: int | None = None,
                 full_table: str | None = None) -> str:
  """Aligned text; a line saying so when nothing was dropped.

  Args:
    rows: `drop_rows()`.
    limit: show only this many lines (the largest counts), and say how many
      more there are and where `full_table` holds them.
    full_table: where the whole table was written (named in that line).
  """
  if not rows:
    return "dropped rows: none"
  shown = _largest(rows, limit) if limit is not None else rows
  header = ("task", "reason", "count", "first row")
  cells = [header] + [(r.task, r.reason, str(r.count), r.first)
                      for r in shown]
  widths = [max(len(c[i]) for c in cells) for i in range(3)]
  # Counts are of reads: size counting and every epoch read a row again.
  lines = [f"dropped rows ({sum(r.count for r in rows)} drops while reading, "
           "a row read in several passes counted in each; "
           f"'{preprocessors.TRUNCATED}' rows are kept, cut):"]
  for cell in cells:
    lines.append("  " + "  ".join(
        [cell[0].ljust(widths[0]), cell[1].ljust(widths[1]),
         cell[2].rjust(widths[2]), cell[3]]))
  if len(shown) < len(rows):
    where = f": {full_table}" if full_table else ""
    lines.append(f"  ... {len(rows) - len(shown)} smaller (task, reason) "
                 f"lines not shown{where}")
  return "\n".join(lines)


def write_table(rows: list[DropRow], path: epath.PathLike) -> None:
  """The whole table as tab-separated values, one header line."""
  lines = ["task\treason\tcount\tfirst_row"] + [
      f"{r.task}\t{r.reason}\t{r.count}\t{r.first}" for r in rows]
  epath.Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def format_truncations(rows: list[truncation.TruncationRow],
                       full_table: str | None = None,
                       scope: str = "this process") -> str:
  """What trimming to TASK_FEATURE_LENGTHS cut, in one console line: the
  totals and the (task, feature) with the most tokens cut.

  Args:
    rows: `truncation.TALLY.rows()`.
    full_table: where the whole table was written (named in the line).
    scope: whose reads the counts are (on several hosts, each its own).
  """
  read = sum({(r.task, r.split): r.examples_read for r in rows}.values())
  where = f"; every (task, feature): {full_table}" if full_table else ""
  cut = [r for r in rows if r.tokens_cut]
  if not cut:
    return (f"truncated to TASK_FEATURE_LENGTHS: nothing ({read} examples "
            f"read by {scope}){where}")
  most = max(cut, key=lambda r: r.tokens_cut)
  return (f"truncated to TASK_FEATURE_LENGTHS: "
          f"{sum(r.tokens_cut for r in cut)} tokens cut from "
          f"{sum(r.examples_cut for r in cut)} example features of {read} "
          f"examples read by {scope} (each epoch and read-ahead counted); "
          f"most: {most.task} {most.split} {most.feature} (length "
          f"{most.length}), {most.examples_cut} of {most.examples_read} "
          f"examples read cut, {most.tokens_cut} tokens{where}")


def write_truncations(rows: list[truncation.TruncationRow],
                      path: epath.PathLike) -> None:
  """Every counted (task, split, feature) as tab-separated values."""
  fields = [f.name for f in dataclasses.fields(truncation.TruncationRow)]
  lines = ["\t".join(fields)] + [
      "\t".join(str(getattr(r, f)) for f in fields) for r in rows]
  epath.Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")

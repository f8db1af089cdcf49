"""Progress of long work: a live bar on a terminal, a few plain lines in logs.

On a terminal (stderr is a TTY) a tqdm bar shows the count, rate, ETA and a
short status (`set`). Anywhere else (a log file, CI, a pipe) a bar redrawn
with carriage returns would be noise, so the same object prints one plain
line per quarter of the work instead: `train: 200/400 (50%), loss 1.23,
eta 41s`. Only process 0 of a multi-host job reports.
"""

import sys
import time
from typing import IO, Any

import tqdm

# Plain lines at these fractions of the total.
_PLAIN_MARKS = (0.25, 0.5, 0.75, 1.0)


def _is_terminal(stream: IO) -> bool:
  isatty = getattr(stream, "isatty", None)
  return bool(isatty and isatty())


def _clock(seconds: float) -> str:
  seconds = int(round(seconds))
  hours, rest = divmod(seconds, 3600)
  return (f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours
          else f"{rest // 60}:{rest % 60:02d}")


class Progress:
  """Counts `done` out of `total` units of work (see the module docstring)."""

  def __init__(self, total: int, desc: str, *, unit: str = "it",
               initial: int = 0, stream: IO | None = None,
               enabled: bool = True):
    self.total, self.desc, self.done = total, desc, initial
    self.stream = stream or sys.stderr
    self.status = ""
    self._start, self._initial = time.time(), initial
    self._marks = [m for m in _PLAIN_MARKS if m * total > initial]
    self._bar = None
    self.enabled = enabled and total > 0
    if self.enabled and _is_terminal(self.stream):
      self._bar = tqdm.tqdm(total=total, initial=initial, desc=desc,
                            unit=unit, file=self.stream, dynamic_ncols=True)

  def set(self, **fields: Any) -> None:
    """The status shown beside the count: `name value` pairs."""
    self.status = ", ".join(f"{k.replace('_', ' ')} {_format(v)}"
                            for k, v in fields.items())
    if self._bar is not None:
      self._bar.set_postfix_str(self.status, refresh=False)

  def update(self, n: int = 1) -> None:
    self.done += n
    if self._bar is not None:
      self._bar.update(n)
    elif self.enabled:
      passed = [m for m in self._marks if self.done >= m * self.total]
      if passed:
        self._marks = self._marks[len(passed):]
        self._plain_line()

  def _plain_line(self) -> None:
    elapsed = time.time() - self._start
    rate = (self.done - self._initial) / elapsed if elapsed > 0 else 0.0
    eta = (self.total - self.done) / rate if rate > 0 else 0.0
    parts = [f"{self.desc}: {self.done}/{self.total} "
             f"({100 * self.done / self.total:.0f}%)"]
    if self.status:
      parts.append(self.status)
    parts.append(f"{_clock(elapsed)} elapsed" if self.done >= self.total
                 else f"eta {_clock(eta)}")
    print(", ".join(parts), file=self.stream, flush=True)

  def close(self) -> None:
    if self._bar is not None:
      self._bar.close()
      self._bar = None

  def __enter__(self) -> "Progress":
    return self

  def __exit__(self, *unused_exc_info) -> None:
    self.close()


def _format(value: Any) -> str:
  if isinstance(value, float):
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
  return str(value)

"""Checks of configuration values, each failing with the macro's name.

Gin passes whatever a user typed (`BATCH_SIZE=True`, `LEARNING_RATE='fast'`,
`DROPOUT_RATE=1.5`) straight into the configs; Python would accept most of
them and fail, or train wrong, much later. Every config's `__post_init__`
checks its fields with these, so a bad value is one line at start-up naming
the macro and what it must be.
"""

from __future__ import annotations

import math
from typing import Any


def _is_int(value: Any) -> bool:
  # bool is an int subclass: `BATCH_SIZE=True` must not pass as 1.
  return isinstance(value, int) and not isinstance(value, bool)


def integer(name: str, value: Any, minimum: int | None = None) -> int:
  """`value` if it is an int (not a bool) >= `minimum`, else ValueError."""
  if not _is_int(value) or (minimum is not None and value < minimum):
    bound = f" >= {minimum}" if minimum is not None else ""
    raise ValueError(f"{name} must be an integer{bound}, got {value!r}.")
  return value


def boolean(name: str, value: Any) -> bool:
  """`value` if it is True or False, else ValueError."""
  if not isinstance(value, bool):
    raise ValueError(f"{name} must be True or False, got {value!r}.")
  return value


def number(name: str, value: Any, *, low: float | None = None,
           high: float | None = None, low_open: bool = False,
           high_open: bool = False) -> float:
  """`value` if it is a finite real number in the given range.

  `low_open` / `high_open` exclude the bound itself, e.g. a learning rate
  in (0, inf) or a dropout rate in [0, 1).
  """
  ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
        and math.isfinite(value))
  if ok and low is not None:
    ok = value > low if low_open else value >= low
  if ok and high is not None:
    ok = value < high if high_open else value <= high
  if not ok:
    bounds = _range(low, high, low_open, high_open)
    raise ValueError(f"{name} must be a finite number{bounds}, got "
                     f"{value!r}.")
  return value


def _range(low, high, low_open, high_open) -> str:
  if low is None and high is None:
    return ""
  if high is None:
    return f" {'>' if low_open else '>='} {low}"
  if low is None:
    return f" {'<' if high_open else '<='} {high}"
  return (f" in {'(' if low_open else '['}{low}, {high}"
          f"{')' if high_open else ']'}")


def feature_lengths(name: str, value: Any) -> dict[str, int]:
  """A {feature: length >= 1} dict, e.g. TASK_FEATURE_LENGTHS."""
  if not hasattr(value, "items"):
    raise ValueError(f"{name} must be a dict of feature lengths, e.g. "
                     f"{{'inputs': 1024, 'targets': 256}}, got {value!r}.")
  for feature, length in value.items():
    if not _is_int(length) or length < 1:
      raise ValueError(f"{name}[{feature!r}] must be an integer >= 1, got "
                       f"{length!r}.")
  return dict(value)

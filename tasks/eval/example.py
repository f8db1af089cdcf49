"""What an evaluation task yields: one scored or generated `Example`.

Every benchmark of the suite, whatever its Hub schema, becomes the same
record: the prompt (`inputs`), the gold answers (`targets`), and for rank
classification the `options` to score and the `label` of the right one. The
runner (`aya_t5x.evaluation`) needs nothing else, so adding a benchmark means
writing one row -> Example function, not touching the runner.
"""

import dataclasses
import hashlib


class BadRow(ValueError):
  """A row that cannot become an example: skipped, logged and counted."""

  def __init__(self, reason: str, field: str):
    super().__init__(f"{reason} (field {field!r})")
    self.reason = reason
    self.field = field


@dataclasses.dataclass(frozen=True)
class Example:
  """One evaluation example, as every benchmark's task yields it."""

  id: str  # Unique within its task and template.
  language: str  # Registry code where the registry knows it, else as given.
  inputs: str  # The prompt the model sees.
  # Gold answers; the first is the reference (TyDiQA has several).
  targets: tuple[str, ...]
  # Rank classification: the texts scored as continuations of `inputs`.
  options: tuple[str, ...] = ()
  label: int = -1  # Index of the right option (-1: not rank classification).
  template: str = ""  # Prompt template name (the median runs over these).

  def __post_init__(self):
    if not self.targets:
      raise BadRow("no gold answer", "targets")
    if self.options and not 0 <= self.label < len(self.options):
      raise BadRow(f"label {self.label} outside the {len(self.options)} "
                   "options", "label")


def text(value, field: str, *, required: bool = True,
         numeric: bool = False) -> str:
  """A row value as stripped text; bytes are UTF-8 (parquet strings are).

  `numeric` also accepts integers (ids are int64 in some Hub schemas).

  Raises:
    BadRow: a required value is missing, empty, not text or not UTF-8.
  """
  if numeric and isinstance(value, int) and not isinstance(value, bool):
    return str(value)
  if isinstance(value, bytes):
    try:
      value = value.decode("utf-8")
    except UnicodeDecodeError:
      raise BadRow("not UTF-8", field) from None
  if value is None or (isinstance(value, str) and not value.strip()):
    if required:
      raise BadRow("missing or empty", field)
    return ""
  if not isinstance(value, str):
    raise BadRow(f"a {type(value).__name__}, not text", field)
  return value.strip()


def integer(value, field: str) -> int:
  """A row value as an int (labels arrive as ints or digit strings)."""
  if isinstance(value, bytes):
    value = value.decode("utf-8", "replace")
  if isinstance(value, bool):
    raise BadRow("a bool, not an integer", field)
  if isinstance(value, int):
    return value
  if isinstance(value, str) and value.strip().lstrip("-").isdigit():
    return int(value.strip())
  raise BadRow(f"{value!r} is not an integer", field)


def stable_id(*parts: str) -> str:
  """An id for rows that have none, the same in every process (unlike
  `hash`, which Python salts per process)."""
  digest = hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()
  return digest[:12]

"""Source sizes shipped with the package, for reports that run without data.

The mixture report normally counts every task (`aya_t5x.mixing`), which
needs the data. Without it (no network, no `AYA_DATA_DIR` mirror, or a
source that was never released) it falls back to the figures in
`assets/source_sizes.tsv`. Each row is one scope of one source:

    source  dataset  language  examples  languages  datasets  resource_split
    provenance  reference  note

`dataset` / `language` are `*` for "all of them"; the `(source, *, *)` row
is the source's total. `resource_split` is the higher/mid/lower-resourced
percent split (`68.2/18.2/13.6`). Empty cells are unknown, never guessed.
Every row says where its figure came from: `provenance` is `paper` (the Aya
model paper, arXiv 2402.07827) or `dataset_card` (a Hugging Face dataset
card), and `reference` names the table, or the card URL and revision.

Rows `(source, *, <language>)` give a source's split by language; they must
list every language of the source, as the shares are their proportions. No
such rows ship today: no card found gives a per-language count that matches
what a task keeps, so the report shows those sources' languages as unknown.
"""

import dataclasses
import functools
import importlib.resources
from collections.abc import Mapping

ALL = "*"
PATH = "aya_t5x/assets/source_sizes.tsv"
COLUMNS = ("source", "dataset", "language", "examples", "languages",
           "datasets", "resource_split", "provenance", "reference", "note")
PROVENANCES = ("paper", "dataset_card")
RESOURCE_CLASSES = ("higher", "mid", "lower")


@dataclasses.dataclass(frozen=True)
class SizeRow:
  """One figure of the table and where it came from."""

  source: str
  dataset: str
  language: str
  # None: unknown.
  examples: int | None
  languages: int | None
  datasets: int | None
  # Percent of higher/mid/lower-resourced examples, as published (may not
  # sum to exactly 100); None: unknown.
  resource_split: tuple[float, float, float] | None
  provenance: str
  reference: str
  note: str

  @property
  def resource_fractions(self) -> dict[str, float] | None:
    """higher/mid/lower -> fraction (the published percents normalized)."""
    if self.resource_split is None:
      return None
    total = sum(self.resource_split)
    return {c: v / total for c, v in zip(RESOURCE_CLASSES,
                                         self.resource_split)}

  @property
  def cited(self) -> str:
    """Where the figure came from, in one phrase."""
    return f"{self.provenance}: {self.reference}"


@dataclasses.dataclass(frozen=True)
class SourceSizes:
  """What the table says of one source."""

  total: SizeRow
  # Every row of the source, the total first.
  rows: tuple[SizeRow, ...]

  @property
  def by_language(self) -> dict[str, float]:
    """language -> fraction of the source; {} when not shipped."""
    counts = {r.language: r.examples for r in self.rows
              if r.dataset == ALL and r.language != ALL and r.examples}
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()} if total else {}


def _error(line: int, message: str) -> ValueError:
  return ValueError(f"{PATH} line {line}: {message}")


def _count(text: str, column: str, line: int) -> int | None:
  if not text:
    return None
  if not text.isdigit():
    raise _error(line, f"{column} {text!r} is not a whole number (leave it "
                 "empty when unknown)")
  return int(text)


def _resource_split(text: str, line: int
                    ) -> tuple[float, float, float] | None:
  if not text:
    return None
  parts = text.split("/")
  try:
    values = [float(p) for p in parts]
  except ValueError:
    values = []
  if len(values) != 3 or abs(sum(values) - 100) > 0.5:
    raise _error(line, f"resource_split {text!r} is not three percents "
                 "(higher/mid/lower) summing to 100")
  return tuple(values)


def parse(text: str) -> dict[str, SourceSizes]:
  """The table's rows by source.

  Raises:
    ValueError: a row lacks its provenance or a well-formed figure (the
      message names the line and the column), or a source has no total.
  """
  lines = text.splitlines()
  header = tuple(lines[0].split("\t")) if lines else ()
  if header != COLUMNS:
    raise _error(1, f"columns are {list(header)}, expected {list(COLUMNS)}")
  rows, seen = {}, set()
  for number, line in enumerate(lines[1:], start=2):
    if not line.strip():
      continue
    cells = line.split("\t")
    if len(cells) != len(COLUMNS):
      raise _error(number, f"{len(cells)} cells, expected {len(COLUMNS)}")
    values = dict(zip(COLUMNS, (c.strip() for c in cells)))
    if values["provenance"] not in PROVENANCES:
      raise _error(number, f"provenance {values['provenance']!r}: use one of "
                   f"{list(PROVENANCES)}")
    if not values["reference"]:
      raise _error(number, "reference is empty: say where the figure came "
                   "from (table, or card URL and revision)")
    key = (values["source"], values["dataset"], values["language"])
    if not all(key) or key in seen:
      raise _error(number, f"scope {key} is empty or repeated")
    seen.add(key)
    rows.setdefault(values["source"], []).append(SizeRow(
        *key, *(_count(values[c], c, number)
                for c in ("examples", "languages", "datasets")),
        _resource_split(values["resource_split"], number),
        values["provenance"], values["reference"], values["note"]))
  found = {}
  for source, source_rows in rows.items():
    totals = [r for r in source_rows if r.dataset == r.language == ALL]
    if not totals:
      raise ValueError(f"{PATH}: source {source!r} has no total row "
                       f"({source}, *, *).")
    others = [r for r in source_rows if r is not totals[0]]
    found[source] = SourceSizes(totals[0], (totals[0], *others))
  return found


@functools.cache
def table() -> dict[str, SourceSizes]:
  """The packaged table (read once)."""
  text = importlib.resources.files("aya_t5x").joinpath(
      "assets", "source_sizes.tsv").read_text(encoding="utf-8")
  return parse(text)


def get(source: str) -> SourceSizes:
  """The shipped figures of `source`.

  Raises:
    ValueError: the table has no row for it (a source of your own).
  """
  found = table()
  if source not in found:
    raise ValueError(f"Source {source!r} has no data here and no shipped "
                     f"sizes in {PATH} (sources there: {sorted(found)}); "
                     "give it data, or drop it from the scheme.")
  return found[source]

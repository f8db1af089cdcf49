"""Row-level hygiene and the Aya paper's data filters, every drop counted.

The training sources (`sources.py`) read raw rows in Python blocks (a parquet
row group, 1,024 JSONL lines) and pass each block through a `RowPipeline`:

  1. language: the row's language is mapped to the registry
     (`languages.find`); rows of other languages are simply not this task's
     (not a drop); a language the registry does not know is a drop in tasks
     that take every language.
  2. metadata filters (`stage="pre_cap"`): e.g. Data Provenance exclusions.
  3. cap: at most N rows per group (a uniform sample, see `Cap`).
  4. hygiene (`HygieneConfig`): invalid UTF-8, empty text, over-long text
     (dropped or truncated).
  5. text filters (`stage="post"`): template pruning, URLs, the safety
     length and repetition filter.
  6. exact duplicates of (inputs, targets) within the block.

tf.data has no counters, so each decision is recorded in a `Tally`: a
thread-safe count per (task, reason, field, file), plus the kept rows per
language and dataset. The first few drops of each kind are also logged at
WARNING with their `file:row`. `Tally.report(task)` returns the totals;
`sources.count_task` runs one pass over a task and returns its report. A
drop is never silent; a row a task does not select (another language) is
not a drop.

The pipeline is a pure function of the rows it is given: the same block gives
the same output, whichever host reads it and whenever (resumed runs and
SeqIO's offline cache see the same examples). The tally is its only side
effect; it counts what this process read since its last reset.
"""

import collections
import dataclasses
import hashlib
import heapq
import re
import statistics
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from absl import logging

from aya_t5x import languages

# Why a row was dropped (or, for TRUNCATED, changed). Filters add their own.
MALFORMED = "malformed"          # not a record, a field missing or mistyped
INVALID_UTF8 = "invalid_utf8"    # bytes that are not UTF-8 (or lone surrogates)
EMPTY = "empty"                  # only whitespace
TOO_LONG = "too_long"            # over HygieneConfig.max_chars, dropped
TRUNCATED = "truncated"          # over max_chars, cut to it (kept)
DUPLICATE = "duplicate"          # same (inputs, targets) earlier in the block
UNKNOWN_LANGUAGE = "unknown_language"  # a language the registry lacks
OVER_CAP = "over_cap"            # beyond the per-group cap (Cap)
# Events that change a kept row rather than drop it.
NOT_DROPS = frozenset({TRUNCATED})

# Drops of one kind (task, reason, field) logged at WARNING; the rest are
# only counted.
_WARNINGS_PER_KIND = 3

Row = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class HygieneConfig:
  """Example hygiene applied to every training source."""

  # Text fields checked (and emitted) for every row.
  fields: tuple[str, ...] = ("inputs", "targets")
  # Longest text kept per field, in characters; None = no limit. 32,768
  # characters is several times the 1,024-token Aya sequence length, so only
  # pathological rows (whole web pages, base64 blobs) are affected, and they
  # stop costing tokenization time.
  max_chars: int | None = 32_768
  # What happens to a longer field: "truncate" (cut, count `truncated`) or
  # "drop" (count `too_long`).
  too_long: str = "truncate"
  # Drop exact (inputs, targets) duplicates within a read block.
  drop_duplicates: bool = True

  def __post_init__(self):
    if self.too_long not in ("truncate", "drop"):
      raise ValueError(f"HygieneConfig.too_long={self.too_long!r}: use "
                       "'truncate' or 'drop'.")
    if self.max_chars is not None and self.max_chars < 1:
      raise ValueError(f"HygieneConfig.max_chars={self.max_chars}: use a "
                       "positive number of characters or None.")


@dataclasses.dataclass(frozen=True)
class Report:
  """What one task's rows became, as counted by a `Tally`."""

  task: str
  # Rows emitted, in total and per language / dataset.
  kept: int
  kept_by_language: Mapping[str, int]
  kept_by_dataset: Mapping[str, int]
  # Every event: (reason, field, file) -> count. Includes `truncated`,
  # which changes a row without dropping it.
  events: Mapping[tuple[str, str, str], int]

  @property
  def dropped(self) -> int:
    return sum(n for (reason, _, _), n in self.events.items()
               if reason not in NOT_DROPS)

  def by_reason(self) -> dict[str, int]:
    """Counts per `reason:field`, e.g. {"empty:targets": 3}."""
    counts = collections.Counter()
    for (reason, field, _), n in self.events.items():
      counts[f"{reason}:{field}"] += n
    return dict(counts)

  def by_file(self) -> dict[str, dict[str, int]]:
    """Counts per file, then per `reason:field`."""
    files = collections.defaultdict(collections.Counter)
    for (reason, field, path), n in self.events.items():
      files[path][f"{reason}:{field}"] += n
    return {path: dict(counts) for path, counts in files.items()}

  def summary(self) -> str:
    lines = [f"{self.task}: kept {self.kept}, dropped {self.dropped}"]
    for key, n in sorted(self.by_reason().items()):
      lines.append(f"  {key}: {n}")
    languages_text = ", ".join(
        f"{k} {v}" for k, v in sorted(self.kept_by_language.items()))
    lines.append(f"  kept by language: {languages_text or '-'}")
    return "\n".join(lines)


class Tally:
  """Thread-safe counts of what the row pipelines kept and dropped.

  tf.data runs the readers on several threads, hence the lock.
  """

  def __init__(self):
    self._lock = threading.Lock()
    self._events = collections.Counter()
    self._kept = collections.Counter()
    self._logged = collections.Counter()  # Never reset: logs stay short.
    self._first: dict[tuple[str, str, str], str] = {}  # Kind -> file:row.

  def event(self, task: str, reason: str, field: str, path: str,
            row: int | str = "?", detail: str = "") -> None:
    """Counts one drop (or truncation); logs the first few of each kind."""
    with self._lock:
      self._events[(task, reason, field, path)] += 1
      self._first.setdefault((task, reason, field), f"{path}:{row}")
      self._logged[(task, reason, field)] += 1
      count = self._logged[(task, reason, field)]
    if count <= _WARNINGS_PER_KIND:
      # Per-row lines are for --verbose (INFO): every drop is counted in
      # the task's Report (sources.count_task) whatever the log level.
      verb = "Truncating" if reason in NOT_DROPS else "Dropping"
      logging.info("%s %s row %s:%s: %s (field %r)%s%s", verb, task, path,
                      row, reason, field, f": {detail}" if detail else "",
                      " [later ones of this kind are only counted]"
                      if count == _WARNINGS_PER_KIND else "")

  def first_row(self, task: str, reason: str, field: str) -> str | None:
    """`file:row` of the first event of this kind, None if there was none."""
    with self._lock:
      return self._first.get((task, reason, field))

  def tasks(self) -> list[str]:
    """Tasks with at least one event or kept row."""
    with self._lock:
      return sorted({k[0] for k in self._events} | {k[0] for k in self._kept})

  def keep(self, task: str, language: str, dataset: str, n: int = 1) -> None:
    with self._lock:
      self._kept[(task, language, dataset)] += n

  def report(self, task: str) -> Report:
    with self._lock:
      events = {(r, f, p): n for (t, r, f, p), n in self._events.items()
                if t == task}
      kept = {(l, d): n for (t, l, d), n in self._kept.items() if t == task}
    by_language, by_dataset = collections.Counter(), collections.Counter()
    for (language, dataset), n in kept.items():
      by_language[language] += n
      by_dataset[dataset] += n
    return Report(task, sum(kept.values()), dict(by_language),
                  dict(by_dataset), events)

  def reset(self, task: str | None = None) -> None:
    """Forgets one task's counts, or everything."""
    with self._lock:
      for counter in (self._events, self._kept, self._first):
        for key in [k for k in counter if task is None or k[0] == task]:
          del counter[key]


# The process-wide tally every source writes to.
TALLY = Tally()


class RowFilter(Protocol):
  """A data filter of the paper, applied to one row at a time.

  `check` returns (reason, field) for a row to drop, or None to keep it.
  `stage` is "pre_cap" for filters that only read metadata (they decide the
  population a cap samples from) or "post" for filters that read the text
  after hygiene. `prepare`, if present, sees a deterministic sample of the
  task's rows first (the first rows of each file).
  """

  stage: str

  def check(self, row: Row) -> tuple[str, str] | None:
    ...


# Builds a task's filters afresh for each pass (filters with `prepare` hold
# per-task state).
FilterFactory = Callable[[], Sequence[RowFilter]]


@dataclasses.dataclass(frozen=True)
class Cap:
  """At most `max_rows` rows per group, sampled uniformly and reproducibly.

  Each row gets a 64-bit hash of (seed, file key, row index); a group keeps
  its `max_rows` smallest hashes. The threshold per group comes from a pass
  over the group's metadata (`sources` runs it before reading), after which
  the decision is per row, so hosts reading disjoint files keep exactly the
  globally selected rows. The population is the rows that pass language
  selection and the pre-cap filters; hygiene runs after the cap, so a group
  can end with fewer than `max_rows` rows but never more.
  """

  max_rows: int
  # Row fields whose values form the group, e.g. ("dataset",); () = the task.
  group_by: tuple[str, ...] = ()
  seed: int = 0

  def __post_init__(self):
    if self.max_rows < 1:
      raise ValueError(f"Cap.max_rows={self.max_rows}: use at least 1.")

  def group(self, row: Row) -> tuple[str, ...]:
    return tuple(str(row.get(field, "")) for field in self.group_by)

  def row_hash(self, file_key: str, index: int) -> int:
    digest = hashlib.blake2b(f"{self.seed}\x00{file_key}\x00{index}".encode(),
                             digest_size=8).digest()
    return int.from_bytes(digest, "big")


# Groups with fewer rows than the cap keep every row.
NO_LIMIT = 2**64


def cap_thresholds(cap: Cap,
                   hashed_groups: Iterable[tuple[tuple[str, ...], int]]
                   ) -> dict[tuple[str, ...], int]:
  """Per group, the largest row hash that is kept.

  Args:
    cap: the cap.
    hashed_groups: (group, row hash) for every row of the population.

  Returns:
    group -> threshold; a row is kept iff its hash <= the threshold.
  """
  heaps: dict[tuple[str, ...], list[int]] = collections.defaultdict(list)
  for group, row_hash in hashed_groups:
    heap = heaps[group]  # A max-heap (negated) of the smallest hashes.
    if len(heap) < cap.max_rows:
      heapq.heappush(heap, -row_hash)
    elif -heap[0] > row_hash:
      heapq.heapreplace(heap, -row_hash)
  return {group: (-heap[0] if len(heap) >= cap.max_rows else NO_LIMIT)
          for group, heap in heaps.items()}


def clean_text(value: Any, config: HygieneConfig
               ) -> tuple[str | None, str | None]:
  """Checks one text field: (text, None) to keep, (None, reason) to drop.

  A text longer than `config.max_chars` comes back truncated with reason
  TRUNCATED when `too_long="truncate"`.
  """
  if value is None:
    return None, MALFORMED
  if isinstance(value, bytes):
    try:
      value = value.decode("utf-8")
    except UnicodeDecodeError:
      return None, INVALID_UTF8
  elif isinstance(value, str):
    try:
      value.encode("utf-8")
    except UnicodeEncodeError:  # Lone surrogates, e.g. from "\ud800" in JSON.
      return None, INVALID_UTF8
  else:
    return None, MALFORMED
  if not value.strip():
    return None, EMPTY
  if config.max_chars is not None and len(value) > config.max_chars:
    if config.too_long == "drop":
      return None, TOO_LONG
    return value[:config.max_chars], TRUNCATED
  return value, None


def as_text(value: Any) -> str:
  """A metadata value as text (bytes decoded leniently, None as "")."""
  if value is None:
    return ""
  if isinstance(value, bytes):
    return value.decode("utf-8", errors="replace")
  if isinstance(value, (list, tuple)):
    return ",".join(as_text(v) for v in value)
  return str(value)


@dataclasses.dataclass
class RowPipeline:
  """Steps 1-6 of the module docstring for one task's rows.

  Rows are dicts with the text fields (`inputs`, `targets`), `language`,
  `dataset` and whatever the filters read, already renamed from the source
  schema by the reader.
  """

  # Task name the tally files counts under.
  task: str
  # Source name written to every example's `source` field, e.g. "xp3x".
  source: str
  # Languages (registry codes) this task selects; None = every language.
  languages: frozenset[str] | None = None
  # A language for every row (xP3x directories), instead of the row's own.
  language: str | None = None
  # The language of a row whose own is empty (a source without the column).
  default_language: str | None = None
  # A dataset name for every row without a `dataset` value.
  dataset: str | None = None
  filters: Sequence[RowFilter] = ()
  hygiene: HygieneConfig = HygieneConfig()
  cap: Cap | None = None
  tally: Tally = TALLY
  # Raw language value -> registry code (or None); memoized lookups.
  _language_cache: dict[str, str | None] = dataclasses.field(
      default_factory=dict, repr=False)

  def _language_of(self, row: Row) -> str | None:
    if self.language is not None:
      return self.language
    raw = as_text(row.get("language")) or self.default_language or ""
    if raw not in self._language_cache:
      found = languages.find(raw)
      self._language_cache[raw] = found.code if found else None
    return self._language_cache[raw]

  def _dataset_of(self, row: Row) -> str:
    return as_text(row.get("dataset")) or self.dataset or self.source

  def population(self, row: Row) -> tuple[str, ...] | None:
    """The cap group of a row in the capped population, or None.

    Runs steps 1-2 without counting, for the cap's threshold pass.
    """
    language = self._language_of(row)
    if language is None or (self.languages is not None
                            and language not in self.languages):
      return None
    row = {**row, "language": language, "dataset": self._dataset_of(row)}
    for row_filter in self.filters:
      if row_filter.stage == "pre_cap" and row_filter.check(row):
        return None
    return self.cap.group(row) if self.cap else ()

  def process(self, rows: Iterable[tuple[int, Row]], path: str,
              file_key: str,
              thresholds: Mapping[tuple[str, ...], int] | None = None
              ) -> list[tuple[str, ...]]:
    """The kept rows of one block as (inputs, targets, language, source,
    dataset) tuples; counts every drop in the tally.

    Args:
      rows: (row index in its file, row) pairs, in file order.
      path: the file, as reported.
      file_key: the file's stable name for the cap's row hash.
      thresholds: the cap's per-group thresholds (`cap_thresholds`).
    """
    kept, seen = [], set()
    for index, row in rows:
      out = self._process_row(index, row, path, file_key, thresholds, seen)
      if out is not None:
        kept.append(out)
    return kept

  def _drop(self, reason: str, field: str, path: str, index: int,
            detail: str = "") -> None:
    self.tally.event(self.task, reason, field, path, index, detail)

  def _process_row(self, index, row, path, file_key, thresholds, seen):
    language = self._language_of(row)
    if language is None:
      if self.languages is None:  # An every-language task: a real loss.
        self._drop(UNKNOWN_LANGUAGE, "language", path, index,
                   repr(as_text(row.get("language")))[:40])
      return None
    if self.languages is not None and language not in self.languages:
      return None  # Another task's row.
    row = {**row, "language": language, "dataset": self._dataset_of(row)}
    for row_filter in self.filters:
      if row_filter.stage == "pre_cap":
        verdict = row_filter.check(row)
        if verdict:
          self._drop(*verdict, path, index)
          return None
    if self.cap is not None and thresholds is not None:
      threshold = thresholds.get(self.cap.group(row), NO_LIMIT)
      if self.cap.row_hash(file_key, index) > threshold:
        self._drop(OVER_CAP, "/".join(self.cap.group_by) or "task", path,
                   index)
        return None
    for field in self.hygiene.fields:
      text, reason = clean_text(row.get(field), self.hygiene)
      if text is None:
        self._drop(reason, field, path, index)
        return None
      if reason == TRUNCATED:
        self._drop(TRUNCATED, field, path, index,
                   f"{len(as_text(row.get(field)))} chars")
      row[field] = text
    for row_filter in self.filters:
      if row_filter.stage != "pre_cap":
        verdict = row_filter.check(row)
        if verdict:
          self._drop(*verdict, path, index)
          return None
    if self.hygiene.drop_duplicates:
      key = (row["inputs"], row["targets"])
      if key in seen:
        self._drop(DUPLICATE, "inputs+targets", path, index)
        return None
      seen.add(key)
    self.tally.keep(self.task, language, row["dataset"])
    return (row["inputs"], row["targets"], language, self.source,
            row["dataset"])


# --- The paper's filters -----------------------------------------------------


def _words(text: str) -> list[str]:
  return re.findall(r"\w+", text.casefold())


def template_skeleton(inputs: Sequence[str], share: float = 0.8) -> frozenset:
  """The words a template puts in (nearly) every prompt it makes.

  Words of the example content vary from prompt to prompt; the template's
  own wording ("Question:", "Answer yes or no") is in `share` of them.
  """
  counts = collections.Counter()
  for text in inputs:
    counts.update(set(_words(text)))
  needed = max(1, int(share * len(inputs) + 0.5))
  return frozenset(w for w, n in counts.items() if n >= needed)


def near_duplicate_templates(rows: Iterable[Row], similarity: float = 0.8,
                             min_rows: int = 3) -> dict[str, frozenset[str]]:
  """Templates that are slightly edited copies of another (paper rule 2).

  Per dataset, two templates are near-duplicates when the Jaccard similarity
  of their skeletons (`template_skeleton`) is at least `similarity`; of each
  such pair the template whose name sorts later is listed.

  Args:
    rows: rows with `dataset`, `template` and `inputs`.
    similarity: the Jaccard threshold.
    min_rows: templates with fewer sampled rows are not judged.

  Returns:
    dataset -> templates to drop.
  """
  prompts = collections.defaultdict(lambda: collections.defaultdict(list))
  for row in rows:
    prompts[as_text(row.get("dataset"))][as_text(row.get("template"))].append(
        as_text(row.get("inputs")))
  duplicates = {}
  for dataset, by_template in prompts.items():
    skeletons = {t: template_skeleton(p) for t, p in sorted(by_template.items())
                 if len(p) >= min_rows}
    dropped, names = set(), list(skeletons)
    for i, first in enumerate(names):
      if first in dropped:
        continue
      for second in names[i + 1:]:
        a, b = skeletons[first], skeletons[second]
        if a and b and len(a & b) / len(a | b) >= similarity:
          dropped.add(second)
    if dropped:
      duplicates[dataset] = frozenset(dropped)
  return duplicates


def short_templates(rows: Iterable[Row], min_median_chars: int,
                    min_rows: int = 3) -> dict[str, frozenset[str]]:
  """Templates whose generations are very short or empty (paper rule 1):
  median stripped target length under `min_median_chars`."""
  lengths = collections.defaultdict(lambda: collections.defaultdict(list))
  for row in rows:
    lengths[as_text(row.get("dataset"))][as_text(row.get("template"))].append(
        len(as_text(row.get("targets")).strip()))
  short = {}
  for dataset, by_template in lengths.items():
    names = frozenset(t for t, n in by_template.items()
                      if len(n) >= min_rows
                      and statistics.median(n) < min_median_chars)
    if names:
      short[dataset] = names
  return short


@dataclasses.dataclass
class TemplatePruning:
  """xP3x template pruning (paper section 2, App. B).

  Datasets listed in `kept` keep only the listed templates (the reviewed
  list, shipped as data). Datasets matching `held_out` are dropped entirely
  (the evaluation task clusters). Every other dataset gets the rule-based
  fallback, decided per template on a sample of its rows (`prepare`):
  templates whose median target is shorter than `min_median_target_chars`,
  and near-duplicates of another template of the same dataset.
  """

  # dataset -> templates kept after review.
  kept: Mapping[str, frozenset[str]]
  # Phrases naming held-out datasets or configs (`contains_phrase` on
  # "<dataset> <config>"): never trained on.
  held_out: tuple[str, ...] = ()
  min_median_target_chars: int = 2
  similarity: float = 0.8
  stage: str = "pre_cap"
  # Filled by prepare(): dataset -> template -> reason, for unlisted datasets.
  _fallback: dict[str, dict[str, str]] = dataclasses.field(
      default_factory=dict)

  def prepare(self, sample: Sequence[Row]) -> None:
    unlisted = [r for r in sample if as_text(r.get("dataset")) not in self.kept]
    fallback = collections.defaultdict(dict)
    for dataset, names in near_duplicate_templates(
        unlisted, self.similarity).items():
      for name in names:
        fallback[dataset][name] = "near_duplicate_template"
    for dataset, names in short_templates(
        unlisted, self.min_median_target_chars).items():
      for name in names:
        fallback[dataset][name] = "short_template"
    self._fallback = dict(fallback)

  def check(self, row: Row) -> tuple[str, str] | None:
    dataset = as_text(row.get("dataset"))
    name = f"{dataset} {as_text(row.get('config'))}"
    if any(contains_phrase(name, phrase) for phrase in self.held_out):
      return "held_out_dataset", "dataset"
    template = as_text(row.get("template"))
    if dataset in self.kept:
      if template not in self.kept[dataset]:
        return "pruned_template", "template"
      return None
    reason = self._fallback.get(dataset, {}).get(template)
    return (reason, "template") if reason else None


def _tokens(text: str) -> list[str]:
  return re.findall(r"[0-9a-z]+", text.casefold())


def contains_phrase(text: str, phrase: str) -> bool:
  """Whether the words of `phrase` occur consecutively in `text`, ignoring
  case and punctuation. "story cloze" matches "story_cloze/2016" but not
  "xstory_cloze" (a different word), so short names like "copa" or "wsc"
  do not match inside longer words."""
  words, wanted = _tokens(text), _tokens(phrase)
  if not wanted:
    return False
  return any(words[i:i + len(wanted)] == wanted
             for i in range(len(words) - len(wanted) + 1))


@dataclasses.dataclass(frozen=True)
class MetadataExclusion:
  """Drops rows whose metadata names an excluded thing (Data Provenance).

  A row is dropped if the value of any of `fields` (a string, a list, or a
  comma-separated string) contains one of `phrases` as whole words
  (`contains_phrase`).
  """

  fields: tuple[str, ...]
  phrases: tuple[str, ...]
  reason: str
  stage: str = "pre_cap"

  def check(self, row: Row) -> tuple[str, str] | None:
    for field in self.fields:
      text = as_text(row.get(field))
      if text and any(contains_phrase(text, p) for p in self.phrases):
        return self.reason, field
    return None


_URL = re.compile(r"(?i)\b(?:https?://|ftp://|www\.)\S+")


@dataclasses.dataclass(frozen=True)
class NoUrls:
  """Drops rows whose `field` contains a URL (ShareGPT-Command prompts)."""

  field: str = "inputs"
  stage: str = "post"

  def check(self, row: Row) -> tuple[str, str] | None:
    return ("has_url", self.field) if _URL.search(row[self.field]) else None


@dataclasses.dataclass(frozen=True)
class LengthBetween:
  """Keeps rows whose `field` has min_chars..max_chars characters."""

  field: str
  min_chars: int = 0
  max_chars: int | None = None
  stage: str = "post"

  def check(self, row: Row) -> tuple[str, str] | None:
    size = len(row[self.field])
    if size < self.min_chars:
      return "under_min_chars", self.field
    if self.max_chars is not None and size > self.max_chars:
      return "over_max_chars", self.field
    return None


def suffix_array(text: str) -> list[int]:
  """Start positions of the suffixes of `text` in sorted order (prefix
  doubling, O(n log^2 n): fine for the few-thousand-character texts the
  filters see)."""
  n = len(text)
  rank = [ord(c) for c in text]
  order = list(range(n))
  step = 1
  while True:
    key = lambda i: (rank[i], rank[i + step] if i + step < n else -1)
    order.sort(key=key)
    new_rank = [0] * n
    for previous, current in zip(order, order[1:]):
      new_rank[current] = new_rank[previous] + (key(previous) != key(current))
    rank = new_rank
    if n == 0 or rank[order[-1]] == n - 1:
      return order
    step *= 2


def longest_repeated_substring(text: str) -> int:
  """Length of the longest substring occurring at least twice (overlaps
  allowed): the largest common prefix of suffixes adjacent in the suffix
  array (Kasai et al.'s LCP construction)."""
  n = len(text)
  if n < 2:
    return 0
  order = suffix_array(text)
  rank = [0] * n
  for position, start in enumerate(order):
    rank[start] = position
  best = common = 0
  for start in range(n):
    if rank[start] == 0:
      common = 0
      continue
    other = order[rank[start] - 1]
    while (start + common < n and other + common < n
           and text[start + common] == text[other + common]):
      common += 1
    best = max(best, common)
    common = max(common - 1, 0)
  return best


@dataclasses.dataclass(frozen=True)
class NotRepetitive:
  """Drops repetitive text: longest repeated substring > len / `ratio`
  (the safety-distillation filter, paper App. J: ratio 2.1)."""

  field: str = "targets"
  ratio: float = 2.1
  stage: str = "post"

  def check(self, row: Row) -> tuple[str, str] | None:
    text = row[self.field]
    if longest_repeated_substring(text) > len(text) / self.ratio:
      return "repetitive", self.field
    return None




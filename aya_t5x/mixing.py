"""Mixing rates from data sizes: weighting schemes as SeqIO mixtures.

A weighting scheme gives each *source* a percent of the sampled budget (the
Aya paper's Table 3). Inside a source every example is equally likely, so a
task's rate is proportional to its size, times an explicit weight where its
dataset has one (the paper raised Dolly and ShareGPT-Command without
publishing by how much):

    rate(task) = percent(source) * w(dataset) * size(task)
                 / sum over the source's tasks of w * size

Rates are percents of the budget and sum to 100. SeqIO repeats every task
forever in training (`num_epochs=None`), so a dataset smaller than its share
repeats (the Aya Dataset at 25% is seen over 30 times in the paper's run).

Sizes come from the data, never from a table typed in by hand: each task is
counted once with every filter and cap applied (`sources.count_task`) and
the count is cached in a JSON file keyed by the task's files (path, size,
mtime, or the pinned Hub revision) and its selection settings, so new data
is re-counted. The cache lives in `$AYA_TASK_SIZES` (default
`~/.cache/aya_t5x/task_sizes.json`; a gs:// path works and lets hosts share
it). Counting happens the first time a mixture's rates are needed, not at
import.

`WeightedMixture` is the `seqio.Mixture` that does this. Unlike a plain SeqIO
mixture, a source with no data for the requested split is an error naming
the source and the split (SeqIO would skip the tasks with a warning and
silently mix the rest), and tasks without data (a language a config lacks)
get rate 0 and are left out of the tf.data graph.
"""

import collections
import concurrent.futures
import dataclasses
import functools
import hashlib
import json
import math
import os
import threading
from collections.abc import Callable, Mapping, Sequence

from absl import logging
import seqio
import tensorflow as tf

from aya_t5x import decontaminate
from aya_t5x import sources

ENV_TASK_SIZES = "AYA_TASK_SIZES"
DEFAULT_TASK_SIZES = os.path.join("~", ".cache", "aya_t5x", "task_sizes.json")
# Tasks counted at once when a mixture first needs its sizes.
_COUNT_WORKERS = 4
_PERCENT_TOLERANCE = 1e-6


class EmptySourceError(ValueError):
  """A source of a mixture has no examples for the requested split."""


# --- Schemes -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Scheme:
  """A weighting scheme: the percent of the sampled budget per source.

  Source names are the catalog's (`aya_t5x.tasks.catalog`), e.g.
  `aya_dataset`, `xp3x`, or a source you registered tasks under.
  """

  # The mixture name the scheme is registered under.
  name: str
  # source -> percent of the budget; every percent > 0, summing to 100.
  source_percent: Mapping[str, float]

  def __post_init__(self):
    if not self.source_percent:
      raise ValueError(f"Scheme {self.name!r} has no sources.")
    for source, percent in self.source_percent.items():
      if not (isinstance(percent, (int, float)) and math.isfinite(percent)
              and percent > 0):
        raise ValueError(f"Scheme {self.name!r}: source {source!r} has "
                         f"percent {percent!r}; use a number > 0.")
    total = sum(self.source_percent.values())
    if abs(total - 100.0) > _PERCENT_TOLERANCE:
      raise ValueError(f"Scheme {self.name!r}: the source percents sum to "
                       f"{total:g}, not 100 ({dict(self.source_percent)}).")

  @property
  def sources(self) -> tuple[str, ...]:
    return tuple(self.source_percent)

  def with_source(self, name: str, source: str, percent: float) -> "Scheme":
    """This scheme scaled to `100 - percent`, plus `source` at `percent`.

    How Aya Safe adds 3% of safety distillation to translation-heavy.
    """
    if source in self.source_percent:
      raise ValueError(f"Scheme {self.name!r} already has source {source!r}.")
    if not 0 < percent < 100:
      raise ValueError(f"Added source {source!r}: percent {percent!r} must "
                       "be between 0 and 100.")
    scale = (100.0 - percent) / 100.0
    scaled = {s: p * scale for s, p in self.source_percent.items()}
    return Scheme(name, {**scaled, source: float(percent)})

  def without(self, dropped: Sequence[str]) -> "Scheme":
    """This scheme less `dropped` sources, the others scaled to sum to 100
    (same name: the mixture it runs under keeps its name)."""
    kept = {s: p for s, p in self.source_percent.items() if s not in dropped}
    if not kept:
      raise ValueError(f"Scheme {self.name!r}: dropping {list(dropped)} "
                       "leaves no source.")
    total = sum(kept.values())
    return Scheme(self.name, {s: 100.0 * p / total for s, p in kept.items()})


@dataclasses.dataclass(frozen=True)
class Member:
  """One task of a mixture and what its rate depends on."""

  task: str
  # The scheme source it belongs to.
  source: str
  # Its one dataset (explicit weights apply per dataset); None = several.
  dataset: str | None = None


@dataclasses.dataclass(frozen=True)
class TaskSize:
  """Examples a task yields for one split, in total and broken down."""

  examples: int
  by_language: Mapping[str, int]
  by_dataset: Mapping[str, int]


def _check_weights(dataset_weights: Mapping[str, float]) -> None:
  for dataset, weight in dataset_weights.items():
    if not (isinstance(weight, (int, float)) and math.isfinite(weight)
            and weight > 0):
      raise ValueError(f"Explicit weight of dataset {dataset!r} is "
                       f"{weight!r}; use a number > 0.")


def task_rates(scheme: Scheme, members: Sequence[Member],
               sizes: Mapping[str, TaskSize | None], split: str,
               dataset_weights: Mapping[str, float] = (),
               why_empty: Mapping[str, str] = ()) -> dict[str, float]:
  """Each member's percent of the budget (module docstring formula).

  Args:
    scheme: the source percents.
    members: the mixture's tasks; every scheme source needs at least one.
    sizes: task -> its size for `split`; None = no data for the split.
    split: named in errors.
    dataset_weights: dataset -> weight multiplying its tasks' sizes
      (datasets the members lack are ignored).
    why_empty: task -> why it has no data, quoted in errors.

  Returns:
    task -> percent; they sum to 100.

  Raises:
    EmptySourceError: a source has no examples for `split`.
    ValueError: a source has no tasks, or a weight is not positive.
  """
  dataset_weights, why_empty = dict(dataset_weights), dict(why_empty)
  _check_weights(dataset_weights)
  by_source = collections.defaultdict(list)
  for member in members:
    by_source[member.source].append(member)
  rates = {m.task: 0.0 for m in members}
  for source, percent in scheme.source_percent.items():
    if not by_source[source]:
      raise ValueError(f"Mixture {scheme.name!r}: no task is registered for "
                       f"source {source!r}.")
    weighted = {}
    for m in by_source[source]:
      size = sizes.get(m.task)
      weighted[m.task] = (size.examples if size else 0) * dataset_weights.get(
          m.dataset, 1.0)
    total = sum(weighted.values())
    if total <= 0:
      reasons = sorted({why_empty[m.task] for m in by_source[source]
                        if m.task in why_empty})
      detail = f" First reason: {reasons[0]}" if reasons else ""
      raise EmptySourceError(
          f"Mixture {scheme.name!r}: source {source!r} has no data for split "
          f"{split!r} (its {len(by_source[source])} task(s) yield no "
          f"examples).{detail}")
    for task, value in weighted.items():
      rates[task] = percent * value / total
  return rates


@dataclasses.dataclass(frozen=True)
class Shares:
  """Fractions of sampled examples (each mapping sums to 1)."""

  by_source: Mapping[str, float]
  # (source, dataset) -> fraction.
  by_dataset: Mapping[tuple[str, str], float]
  by_language: Mapping[str, float]


def expected_shares(members: Sequence[Member], rates: Mapping[str, float],
                    sizes: Mapping[str, TaskSize | None]) -> Shares:
  """What a mixture samples, from its rates and each task's breakdown."""
  by_source = collections.Counter()
  by_dataset = collections.Counter()
  by_language = collections.Counter()
  total = sum(rates.values())
  for m in members:
    rate, size = rates.get(m.task, 0.0) / total, sizes.get(m.task)
    if rate <= 0 or not size:
      continue
    by_source[m.source] += rate
    for dataset, n in size.by_dataset.items():
      by_dataset[(m.source, dataset)] += rate * n / size.examples
    for language, n in size.by_language.items():
      by_language[language] += rate * n / size.examples
  return Shares(dict(by_source), dict(by_dataset), dict(by_language))


# --- Sizes, counted once ---------------------------------------------------


def _file_stamp(path: str) -> str:
  """A path plus what changes with the file (hf:// paths pin a revision)."""
  if path.startswith("hf://"):
    return path
  stat = tf.io.gfile.stat(path)
  return f"{path}|{stat.length}|{stat.mtime_nsec}"


def _selection_text(spec: sources.SourceSpec) -> str:
  """The spec's row-selection settings (filters are code: not included)."""
  languages = sorted(spec.languages) if spec.languages is not None else None
  return repr((spec.source, languages, spec.language, spec.dataset,
               spec.dataset_from_dir, spec.fields, spec.hygiene, spec.cap))


def _describe(step) -> str:
  """A preprocessor by name and arguments: stable across processes (a
  function's repr holds its memory address)."""
  if isinstance(step, functools.partial):
    return f"{_describe(step.func)}{sorted(step.keywords.items())}"
  if callable(step) and hasattr(step, "__qualname__"):
    return f"{step.__module__}.{step.__qualname__}"
  return type(step).__name__


def settings_text(task: seqio.Task) -> str:
  """The task settings a cached size depends on, besides its files."""
  source = task.source
  if isinstance(source, sources.RowSource):
    return _selection_text(source.spec)
  return repr([_describe(step) for step in task.preprocessors])


def fingerprint(task: seqio.Task, split: str) -> str:
  """What a cached size depends on: the task's files and settings.

  Raises:
    FileNotFoundError: the split has no files.
  """
  source = task.source
  if isinstance(source, sources.RowSource):
    paths = [f.path for f in source.spec.files.resolve(split)]
  else:
    paths = list(source.list_shards(split))
  # An exclusion list (aya_t5x.decontaminate) changes what is kept.
  # Its contents, not only its path: decontaminate rewrites it in place.
  exclusion_list = os.environ.get(decontaminate.ENV_EXCLUSION_LIST)
  excluded = _file_stamp(exclusion_list) if exclusion_list else ""
  text = "\n".join([task.name, split, settings_text(task), excluded] +
                   [_file_stamp(p) for p in sorted(paths)])
  return hashlib.sha256(text.encode("utf-8")).hexdigest()


def count(task: seqio.Task, split: str) -> TaskSize:
  """Counts a task's examples for `split` (every filter and cap applied)."""
  if isinstance(task.source, sources.RowSource):
    report = sources.count_task(task, split)
    return TaskSize(report.kept, dict(report.kept_by_language),
                    dict(report.kept_by_dataset))
  # Other sources: the task's own examples, before any length trimming.
  by_language, by_dataset, examples = (collections.Counter(),
                                       collections.Counter(), 0)
  dataset = task.get_dataset(sequence_length=None, split=split,
                             shuffle=False, num_epochs=1)
  for example in dataset.as_numpy_iterator():
    examples += 1
    by_language[_text(example.get("language"), "?")] += 1
    by_dataset[_text(example.get("dataset"), task.name)] += 1
  return TaskSize(examples, dict(by_language), dict(by_dataset))


def _text(value, default: str) -> str:
  if value is None:
    return default
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class TaskSizes:
  """Task sizes per split, counted once and kept in a JSON file."""

  def __init__(self, path: str | None = None):
    self.path = os.path.expanduser(
        path or os.environ.get(ENV_TASK_SIZES) or DEFAULT_TASK_SIZES)
    self._lock = threading.Lock()

  def _load(self) -> dict:
    if not tf.io.gfile.exists(self.path):
      return {}
    try:
      with tf.io.gfile.GFile(self.path, "r") as f:
        return json.load(f).get("entries", {})
    except (ValueError, AttributeError) as e:
      raise ValueError(f"Task size cache {self.path} ({ENV_TASK_SIZES}) is "
                       f"not valid JSON: {e}. Delete it to re-count.") from None

  def _save(self, entries: dict) -> None:
    directory = os.path.dirname(self.path)
    if directory:
      tf.io.gfile.makedirs(directory)
    temporary = f"{self.path}.tmp-{os.getpid()}"
    with tf.io.gfile.GFile(temporary, "w") as f:
      json.dump({"version": 1, "entries": entries}, f, indent=1,
                sort_keys=True)
    tf.io.gfile.rename(temporary, self.path, overwrite=True)

  def get(self, tasks: Sequence[seqio.Task], split: str
          ) -> tuple[dict[str, TaskSize | None], dict[str, str]]:
    """Sizes of `tasks` for `split`, counting only what the cache lacks.

    Returns:
      task -> size (None: no data for the split), and task -> why not.
    """
    sizes, why, missing = {}, {}, []
    with self._lock:
      cached = self._load()
      for task in tasks:
        if split not in task.splits:
          sizes[task.name] = None
          why[task.name] = (f"task {task.name} has no split {split!r} "
                            f"(splits: {sorted(task.splits)})")
          continue
        try:
          stamp = fingerprint(task, split)
        except FileNotFoundError as e:
          sizes[task.name], why[task.name] = None, str(e)
          continue
        entry = cached.get(f"{task.name}|{split}")
        if entry and entry["fingerprint"] == stamp:
          sizes[task.name] = TaskSize(entry["examples"], entry["by_language"],
                                      entry["by_dataset"])
        else:
          missing.append((task, stamp))
      if missing:
        logging.info("Counting %d task(s) for split %r (cached in %s).",
                     len(missing), split, self.path)
        with concurrent.futures.ThreadPoolExecutor(_COUNT_WORKERS) as pool:
          counted = list(pool.map(lambda ts: count(ts[0], split), missing))
        cached = self._load()  # Another process may have added entries.
        for (task, stamp), size in zip(missing, counted):
          sizes[task.name] = size
          cached[f"{task.name}|{split}"] = {
              "fingerprint": stamp, **dataclasses.asdict(size)}
        self._save(cached)
    for name, size in sizes.items():
      if size is not None and size.examples == 0:
        why.setdefault(name, f"task {name} keeps no examples of {split!r}")
    return sizes, why


# --- Sources whose files the user provides -----------------------------------


class MissingSourceError(ValueError):
  """A scheme's source has no files (unreleased data the user must make)."""


@dataclasses.dataclass(frozen=True)
class UserSources:
  """Files of the sources that are not on the Hub, and what to do without
  them (gin: `mixing.UserSources`).

  ShareGPT-Command was never released and the safety distillation data is
  generated per run, so a paper mixture cannot start until they exist. A
  mixture checks them before counting anything else and stops with one
  line; `drop_missing = True` instead drops such a source, scales the
  others to 100% and logs the new percents.
  """

  # source -> the directory of its files (e.g. {'sharegpt_command':
  # '/data/sgc'}); the source's environment variable works too.
  dirs: Mapping[str, str] = dataclasses.field(default_factory=dict)
  # Drop a source without files and renormalize the others.
  drop_missing: bool = False


def gin_user_sources() -> UserSources:
  """`UserSources` as gin binds it now (defaults without a binding)."""
  import gin  # pylint: disable=g-import-not-at-top
  try:
    configured = gin.get_configurable(UserSources)
  except ValueError:  # No gin file mentions UserSources.
    configured = UserSources
  return configured()


def _user_files(task: str) -> sources.LocalFiles | None:
  files = getattr(seqio.TaskRegistry.get(task).source, "spec", None)
  files = getattr(files, "files", None)
  return files if (isinstance(files, sources.LocalFiles)
                   and files.env_var) else None


def missing_sources(scheme: Scheme, members: Sequence[Member], split: str,
                    user: UserSources) -> dict[str, str]:
  """source -> why it has no files, for sources whose every task reads
  user files (a directory variable) that are not there. Hub sources are not
  checked here: listing them needs the network."""
  missing = {}
  for source in scheme.sources:
    reasons = []
    for member in (m for m in members if m.source == source):
      files = _user_files(member.task)
      if files is None:
        break
      if user.dirs.get(source):
        sources.set_user_dir(files.env_var, user.dirs[source])
      try:
        files.resolve(split)
        break
      except FileNotFoundError as e:
        reasons.append((files.env_var, str(e).split(". ")[0]))
    else:
      if reasons:
        missing[source] = reasons[0]
  return missing


def _missing_message(scheme: Scheme, source: str, env_var: str,
                     reason: str) -> str:
  return (f"Mixture {scheme.name!r}: source {source!r} "
          f"({scheme.source_percent[source]:g}%) has no data ({reason}). "
          f"Point it at your files with gin `mixing.UserSources.dirs = "
          f"{{'{source}': '/path/to/dir'}}` (or ${env_var}), or drop it and "
          "renormalize the other sources with gin "
          "`mixing.UserSources.drop_missing = True`.")


def scheme_with_data(scheme: Scheme, members: Sequence[Member], split: str,
                     user: UserSources) -> Scheme:
  """`scheme`, or (drop_missing) without its sources that have no files.

  Raises:
    MissingSourceError: a source has no files and drop_missing is off.
  """
  missing = missing_sources(scheme, members, split, user)
  if not missing:
    return scheme
  if not user.drop_missing:
    source, (env_var, reason) = next(iter(missing.items()))
    raise MissingSourceError(_missing_message(scheme, source, env_var,
                                              reason))
  reduced = scheme.without(tuple(missing))
  logging.warning(
      "Mixture %r: dropped source(s) without data %s (drop_missing); new "
      "percents: %s", scheme.name, sorted(missing),
      ", ".join(f"{s} {p:.2f}" for s, p in reduced.source_percent.items()))
  return reduced


# --- The mixture -------------------------------------------------------------


def _no_weights() -> Mapping[str, float]:
  return {}


class WeightedMixture(seqio.Mixture):
  """A `seqio.Mixture` whose rates come from a scheme and the data sizes.

  Rates are computed when first needed (sizes counted or read from the
  cache), after gin has bound `weights_fn`'s knobs; `get_rate` answers for
  the train split. `get_dataset` checks the requested split first and mixes
  only the tasks with data.
  """

  def __init__(self, scheme: Scheme, members: Sequence[Member], *,
               weights_fn: Callable[[], Mapping[str, float]] = _no_weights,
               user_sources_fn: Callable[[], UserSources] = gin_user_sources,
               sizes: TaskSizes | None = None, name: str | None = None,
               tasks: Sequence = (), default_rate=None, **mixture_kwargs):
    """Args: scheme: source percents (its name is the mixture's); members:
    the tasks; weights_fn: explicit dataset weights, read when rates are
    computed (a gin-bound config); sizes: the size cache (default: one at
    $AYA_TASK_SIZES); name, tasks, default_rate: what
    `seqio.MixtureRegistry.add` passes (the name must be the scheme's; tasks
    come from `members`); mixture_kwargs: for `seqio.Mixture` (sample_fn,
    source_info)."""
    if (name not in (None, scheme.name) or tasks or
        default_rate is not None):
      raise ValueError(f"WeightedMixture {scheme.name!r} takes its name from "
                       "the scheme and its tasks from `members`.")
    self.scheme = scheme
    self.members = tuple(members)
    self._weights_fn = weights_fn
    self._user_sources_fn = user_sources_fn
    self._sizes = sizes
    self._memo = {}
    self._memo_lock = threading.Lock()
    super().__init__(scheme.name,
                     [(m.task, self._train_rate) for m in self.members],
                     **mixture_kwargs)

  @property
  def dataset_weights(self) -> dict[str, float]:
    return dict(self._weights_fn())

  def _train_rate(self, task: seqio.Task) -> float:
    return self.rates("train")[task.name]

  @property
  def size_cache(self) -> TaskSizes:
    """Where counted sizes are kept (the one given, else $AYA_TASK_SIZES)."""
    return self._sizes or TaskSizes()

  def sizes(self, split: str = "train"
            ) -> tuple[dict[str, TaskSize | None], dict[str, str]]:
    """Each member's size for `split`, and why any has none (read or
    counted once per cache file and split)."""
    cache = self.size_cache
    key = ("sizes", cache.path, split)
    with self._memo_lock:
      if key not in self._memo:
        tasks = [seqio.TaskRegistry.get(m.task) for m in self.members]
        self._memo[key] = cache.get(tasks, split)
      return self._memo[key]

  def active_scheme(self, split: str = "train") -> Scheme:
    """The scheme less the user-file sources `UserSources` lets it drop;
    checked before any task is counted, so a missing source stops the run
    at start-up (`MissingSourceError`)."""
    return scheme_with_data(self.scheme, self.members, split,
                            self._user_sources_fn())

  def rates(self, split: str = "train") -> dict[str, float]:
    """task -> percent of the budget for `split` (memoized per weights)."""
    scheme = self.active_scheme(split)
    weights = self.dataset_weights
    sizes, why = self.sizes(split)
    key = ("rates", id(sizes), split, tuple(sorted(weights.items())),
           tuple(sorted(scheme.source_percent.items())))
    with self._memo_lock:
      if key not in self._memo:
        self._memo[key] = task_rates(scheme, self.members, sizes, split,
                                     weights, why)
      return dict(self._memo[key])

  def expected_shares(self, split: str = "train") -> Shares:
    rates = self.rates(split)  # First: a missing source stops it early.
    sizes, _ = self.sizes(split)
    return expected_shares(self.members, rates, sizes)

  def get_dataset(self, sequence_length=None, split: str = "train",
                  shard_info: seqio.ShardInfo | None = None,
                  **kwargs) -> tf.data.Dataset:
    """SeqIO's mixing over the tasks with data, then this host's shard.

    Hosts shard the mixed stream, not the tasks. The Aya per-language tasks
    read files sorted by language, so sharding a task by file would give
    most hosts none of a language's rows: the rates would shift (and SeqIO
    ends a mixture at its first empty task). Every host reads every task
    with the same seed (its input work is small next to a large model's
    step) and keeps every n-th mixed example.
    """
    active = [(seqio.TaskRegistry.get(task), rate)
              for task, rate in sorted(self.rates(split).items()) if rate > 0]
    sizes, _ = self.sizes(split)
    for task, _ in active:
      if isinstance(task.source, sources.RowSource):
        task.source.set_num_input_examples(split, sizes[task.name].examples)
    inner = seqio.Mixture(self.name, active, sample_fn=self._sample_fn)
    dataset = inner.get_dataset(sequence_length, split, **kwargs)
    if shard_info and shard_info.num_shards > 1:
      dataset = dataset.shard(shard_info.num_shards, shard_info.index)
    return dataset

r"""What a weighted mixture samples, per source, dataset and language.

    python -m aya_t5x.mixture_report --mixture=aya_translation_heavy \
        [--sample=20000] [--output_dir=/tmp/report] [--split=train] \
        [--seed=0] [--train_examples=25500000] [--sizes=auto]

Prints the expected share of every source, dataset, language and resource
class (and the English share) from the mixture's rates and task sizes, with
how many times the run's examples would pass over each (small datasets
repeat). `--sample=N` also draws N examples through SeqIO's own mixture
sampling (`seqio.Mixture.get_dataset`, the training path) and reports the
measured shares beside the expected ones. Writes
`<output_dir>/<mixture>_shares.csv` (one row per source, dataset, language
and resource class) and `<output_dir>/<mixture>_languages.png` (per-language
share, coloured by resource class, as the paper's figure 17).

Sizes: a source whose files are found (Hub, Hub cache, `AYA_DATA_DIR`
mirror, or the user's folder) is counted once, with every filter applied,
and cached (`aya_t5x.mixing`). A source without data (no network, no
mirror, ShareGPT-Command never released) uses the sizes shipped in
`aya_t5x/assets/source_sizes.tsv` (`aya_t5x.shipped_sizes`), each with
where it came from; whatever they do not break down (most sources' split by
dataset and language) is one `unknown` row with what the paper says, never
an even spread. The report says which sources were counted and which were
not. Its source shares are the scheme's percents either way; sampling
needs every source's data. `--sizes=shipped` reads no data at all,
`--sizes=counted` requires it.

The mixture must be a `mixing.WeightedMixture` (the Aya schemes, their
`_sample` versions, or your own `aya.register_scheme`); a source of your
own without data has no shipped sizes.
"""

import argparse
import collections
import csv
import dataclasses
import os
import sys
from collections.abc import Mapping, Sequence

# Run as a program: hide native start-up noise before the heavy imports
# (aya_t5x.startup; --verbose shows it).
from aya_t5x import startup  # pylint: disable=g-bad-import-order
if __name__ == "__main__":
  startup.begin(sys.argv)

import seqio

from aya_t5x import gin_utils
from aya_t5x import hub_access
from aya_t5x import languages
from aya_t5x import mixing
from aya_t5x import progress
from aya_t5x import shipped_sizes

# Examples the paper's run sees: 30,000 steps of about 850 packed examples
# (spec section 1), for the "passes" column.
PAPER_RUN_EXAMPLES = 30_000 * 850
# The English share the paper reports for two schemes (section 3.2).
PAPER_ENGLISH_SHARE = {"aya_template_heavy": 0.199,
                       "aya_translation_heavy": 0.081}
# The levels SeqIO sampling measures; the report adds resource classes.
LEVELS = ("source", "dataset", "language")
RESOURCE = "resource"
REPORT_LEVELS = LEVELS + (RESOURCE,)
ENGLISH = "eng"
UNKNOWN = "unknown"
# Where a source's figures came from (--sizes picks; auto: counted where
# the data is found).
COUNTED, SHIPPED = "counted", "shipped"
SIZES = ("auto", COUNTED, SHIPPED)
NOT_READ = "no data read (--sizes=shipped)"
CSV_FIELDS = ("level", "name", "source", "resource_class", "examples",
              "expected_share", "sampled_share", "passes", "figures", "note")
_RESOURCE_COLORS = {"higher": "#1f77b4", "mid": "#ff7f0e", "lower": "#2ca02c",
                    "unknown": "#7f7f7f"}


@dataclasses.dataclass(frozen=True)
class ReportConfig:
  """The command line."""

  # A registered WeightedMixture, e.g. "aya_translation_heavy".
  mixture: str
  # Examples to draw through SeqIO (0 = expected shares only).
  sample: int = 0
  # Where the CSV and PNG go (created).
  output_dir: str = "."
  split: str = "train"
  # Seed of the SeqIO sampling.
  seed: int = 0
  # Examples the run will see, for the passes column.
  train_examples: int = PAPER_RUN_EXAMPLES
  # auto: count the sources whose data is found, shipped sizes for the
  # others; counted: every source from its data; shipped: no data read.
  sizes: str = "auto"

  def __post_init__(self):
    if self.sizes not in SIZES:
      raise ValueError(f"--sizes={self.sizes}: use one of {', '.join(SIZES)}.")
    if self.sample and self.sizes == SHIPPED:
      raise ValueError(f"--sample={self.sample} draws examples through SeqIO "
                       "and needs the data: drop --sizes=shipped.")
    if self.sample < 0:
      raise ValueError(f"--sample={self.sample}: use a count >= 0.")
    if self.train_examples < 1:
      raise ValueError(f"--train_examples={self.train_examples}: use a count"
                       " >= 1.")


@dataclasses.dataclass(frozen=True)
class Row:
  """One source, dataset, language or resource class of the report."""

  level: str
  # `unknown`: the source's split at this level is not known.
  name: str
  # The dataset's source, or an unknown language split's ("" otherwise).
  source: str
  # higher / mid / lower for languages ("" otherwise).
  resource_class: str
  # Examples the data holds (counted or shipped); None: unknown.
  examples: int | None
  expected_share: float
  sampled_share: float | None
  # Times the run's examples pass over it (expected share * run / examples).
  passes: float | None
  # counted / shipped ("" for resource classes, which mix both).
  figures: str = ""
  # What is known where the split is not (shipped figures).
  note: str = ""


@dataclasses.dataclass(frozen=True)
class SourcePart:
  """One source's share of the mixture and its split inside (fractions of
  the source), from counted or shipped figures."""

  source: str
  share: float
  figures: str
  examples: int | None
  by_dataset: Mapping[str, float]
  by_language: Mapping[str, float]
  by_resource: Mapping[str, float]
  # level -> key -> examples held, where known.
  held: Mapping[str, Mapping[str, int]]
  # level -> what is unknown there and what the shipped figures say.
  notes: Mapping[str, str]
  # Why the data was not counted ("" when counted).
  reason: str = ""
  # The shipped rows behind the figures.
  cited: tuple[shipped_sizes.SizeRow, ...] = ()


@dataclasses.dataclass(frozen=True)
class EnglishShare:
  expected: float
  sampled: float | None
  # Share of the budget whose language split is unknown, and its sources.
  unknown: float
  unknown_sources: tuple[str, ...]


def mixture(name: str) -> mixing.WeightedMixture:
  """The registered weighted mixture `name`, with a clear error if not."""
  import aya_t5x.mixtures  # pylint: disable=g-import-not-at-top,unused-import
  if name not in seqio.MixtureRegistry.names():
    weighted = sorted(n for n in seqio.MixtureRegistry.names() if isinstance(
        seqio.MixtureRegistry.get(n), mixing.WeightedMixture))
    raise ValueError(f"--mixture={name}: no such mixture. Weighted mixtures: "
                     f"{', '.join(weighted)}.")
  found = seqio.MixtureRegistry.get(name)
  if not isinstance(found, mixing.WeightedMixture):
    raise ValueError(f"--mixture={name} is a plain SeqIO mixture; the report "
                     "needs a weighted one (aya.register_scheme).")
  return found


def measure(mix: mixing.WeightedMixture, n: int, split: str = "train",
            seed: int = 0) -> mixing.Shares:
  """Shares among `n` examples drawn through SeqIO's mixture sampling.

  Which task each draw comes from depends only on the rates and `seed`
  (`tf.data.Dataset.sample_from_datasets`), not on the order inside a task,
  so tasks are read unshuffled: the same draws, without filling a shuffle
  buffer per task first.
  """
  dataset = mix.get_dataset(
      sequence_length=None, split=split, shuffle=False, seed=seed,
      num_epochs=None, passthrough_features=("source", "dataset",
                                             "language"))
  counts = {level: collections.Counter() for level in LEVELS}
  with progress.Progress(n, "sample", unit="ex") as bar:
    for example in dataset.take(n).as_numpy_iterator():
      source = example["source"].decode()
      counts["source"][source] += 1
      counts["dataset"][(source, example["dataset"].decode())] += 1
      counts["language"][example["language"].decode()] += 1
      bar.update()
  return mixing.Shares(*[{k: v / n for k, v in counts[level].items()}
                         for level in LEVELS])


def why_no_data(mix: mixing.WeightedMixture, source: str,
                split: str) -> str | None:
  """None when some task of `source` has files for `split`, else why not.

  Only file listings are read (no rows). A Hub that cannot be reached
  answers for the whole repository at once; a missing file only for its
  task (a language a config lacks), so the next task is tried.
  """
  first = None
  for member in (m for m in mix.members if m.source == source):
    task = seqio.TaskRegistry.get(member.task)
    if split not in task.splits:
      first = first or f"task {task.name} has no split {split!r}"
      continue
    try:
      mixing.fingerprint(task, split)
      return None
    except hub_access.HubUnreachable as e:
      return str(e)
    except FileNotFoundError as e:
      first = first or str(e)
  return first or f"no task is registered for source {source!r}"


def figure_sources(mix: mixing.WeightedMixture, config: ReportConfig
                   ) -> dict[str, str | None]:
  """source -> None (counted from its data) or why shipped figures stand in.

  Raises:
    ValueError: --sizes=counted or --sample and a source has no data.
  """
  if config.sizes == SHIPPED:
    return {s: NOT_READ for s in mix.scheme.sources}
  reasons = {s: why_no_data(mix, s, config.split) for s in mix.scheme.sources}
  missing = {s: r for s, r in reasons.items() if r}
  if missing and (config.sizes == COUNTED or config.sample):
    flag = (f"--sample={config.sample} draws examples through SeqIO" if
            config.sample else "--sizes=counted counts every task")
    source, reason = next(iter(missing.items()))
    raise ValueError(
        f"{flag} and needs the data, but {len(missing)} source(s) of "
        f"{mix.name} have none ({', '.join(missing)}); first, {source}: "
        f"{reason} Without --sample (and with --sizes=auto) the report uses "
        f"the shipped sizes ({shipped_sizes.PATH}).")
  return reasons


def counted_part(mix: mixing.WeightedMixture, source: str,
                 split: str) -> SourcePart:
  """A source's breakdown from its counted task sizes (counted once, then
  cached: `aya_t5x.mixing`)."""
  members = [m for m in mix.members if m.source == source]
  sizes, why = mix.size_cache.get(
      [seqio.TaskRegistry.get(m.task) for m in members], split)
  alone = mixing.Scheme(mix.name, {source: 100.0})
  rates = mixing.task_rates(alone, members, sizes, split,
                            mix.dataset_weights, why)
  within = mixing.expected_shares(members, rates, sizes)
  held = {level: collections.Counter() for level in ("dataset", "language")}
  for size in (sizes.get(m.task) for m in members):
    if size:
      held["dataset"].update(size.by_dataset)
      held["language"].update(size.by_language)
  resources = collections.Counter()
  for language, share in within.by_language.items():
    resources[resource_class(language)] += share
  return SourcePart(
      source, mix.scheme.source_percent[source] / 100, COUNTED,
      sum(s.examples for s in sizes.values() if s),
      {d: share for (_, d), share in within.by_dataset.items()},
      dict(within.by_language), dict(resources), held, {})


def _one_dataset(mix: mixing.WeightedMixture, source: str) -> str | None:
  """The dataset every task of `source` holds, if they all hold one."""
  datasets = {m.dataset for m in mix.members if m.source == source}
  return datasets.pop() if len(datasets) == 1 else None


def shipped_part(mix: mixing.WeightedMixture, source: str,
                 reason: str) -> SourcePart:
  """A source's breakdown from the shipped sizes: what they do not give
  is one `unknown` entry with a note saying what is known, never an even
  spread."""
  facts = shipped_sizes.get(source)
  total = facts.total
  dataset = _one_dataset(mix, source)
  known = [f"{total.examples:,} examples"] if total.examples else []
  known += [f"{total.languages} languages"] if total.languages else []
  if total.resource_split:
    known.append("higher/mid/lower " + "/".join(
        f"{v:.1f}" for v in total.resource_split))
  notes = {
      "dataset": "" if dataset else (
          f"{total.datasets or 'an unknown number of'} datasets; "
          "per-dataset sizes are not shipped"),
      "language": "" if facts.by_language else (
          "per-language sizes are not shipped" + (
              f"; {total.provenance}: {', '.join(known)}" if known else ""))}
  return SourcePart(
      source, mix.scheme.source_percent[source] / 100, SHIPPED,
      total.examples, {dataset or UNKNOWN: 1.0},
      facts.by_language or {UNKNOWN: 1.0},
      total.resource_fractions or {UNKNOWN: 1.0},
      {"dataset": {dataset: total.examples} if dataset else {}}, notes,
      reason=reason, cited=facts.rows)


def source_parts(mix: mixing.WeightedMixture, config: ReportConfig
                 ) -> list[SourcePart]:
  """Every source of the scheme, from counted figures where its data is
  found, else from the shipped sizes."""
  reasons = figure_sources(mix, config)
  return [counted_part(mix, s, config.split) if reason is None else
          shipped_part(mix, s, reason) for s, reason in reasons.items()]


def resource_class(code: str) -> str:
  language = languages.find(code)
  return language.resource.value if language else UNKNOWN


def _passes(share: float, examples: int | None,
            config: ReportConfig) -> float | None:
  return share * config.train_examples / examples if examples else None


def _level_rows(level: str, expected: Mapping, held: Mapping,
                measured: Mapping | None, notes: Mapping,
                figures: Mapping, config: ReportConfig) -> list[Row]:
  rows = []
  keys = set(expected) | set(measured or {})
  for key in sorted(keys, key=lambda k: (-expected.get(k, 0.0), str(k))):
    source, name = key if level in ("dataset", "language") else ("", key)
    share, examples = expected.get(key, 0.0), held.get(key)
    rows.append(Row(
        level, name, source,
        resource_class(name) if level == "language" and name != UNKNOWN
        else "", examples, share,
        measured.get(key, 0.0) if measured is not None else None,
        _passes(share, examples, config) if level != RESOURCE else None,
        figures.get(key, ""), notes.get(key, "")))
  return rows


def build_rows(parts: Sequence[SourcePart], config: ReportConfig,
               sampled: mixing.Shares | None = None) -> list[Row]:
  """Rows of every source, dataset, language and resource class, largest
  share first. Counted languages are summed over sources (source ""); an
  unknown split is one row per source (name `unknown`)."""
  expected = {level: collections.Counter() for level in REPORT_LEVELS}
  held = {level: collections.Counter() for level in REPORT_LEVELS}
  notes, figures = collections.defaultdict(dict), collections.defaultdict(
      dict)
  for part in parts:
    expected["source"][part.source] += part.share
    held["source"][part.source] = part.examples
    figures["source"][part.source] = part.figures
    for dataset, share in part.by_dataset.items():
      key = (part.source, dataset)
      expected["dataset"][key] += part.share * share
      held["dataset"][key] = part.held["dataset"].get(dataset)
      figures["dataset"][key] = part.figures
    for language, share in part.by_language.items():
      key = (part.source if language == UNKNOWN else "", language)
      expected["language"][key] += part.share * share
      if part.figures == COUNTED:
        held["language"][key] += part.held["language"].get(language, 0)
      figures["language"][key] = part.figures
    for resource, share in part.by_resource.items():
      expected["resource"][resource] += part.share * share
  unsplit = [p.source for p in parts if UNKNOWN in p.by_resource]
  if unsplit:
    notes["resource"][UNKNOWN] = (f"no published split for "
                                  f"{', '.join(unsplit)}")
  for level in ("dataset", "language"):
    for (source, name) in expected[level]:
      if name == UNKNOWN:
        notes[level][(source, name)] = _part(parts, source).notes[level]
  measured = _sampled_by_level(sampled)
  rows = []
  for level in REPORT_LEVELS:
    rows += _level_rows(level, expected[level], held[level],
                        measured.get(level), notes[level], figures[level],
                        config)
  return rows


def _part(parts: Sequence[SourcePart], source: str) -> SourcePart:
  return next(p for p in parts if p.source == source)


def _sampled_by_level(sampled: mixing.Shares | None) -> dict[str, dict]:
  """Sampled shares keyed as `build_rows` keys its levels."""
  if sampled is None:
    return {}
  resources = collections.Counter()
  for language, share in sampled.by_language.items():
    resources[resource_class(language)] += share
  return {"source": dict(sampled.by_source),
          "dataset": dict(sampled.by_dataset),
          "language": {("", k): v for k, v in sampled.by_language.items()},
          "resource": dict(resources)}


def english_share(rows: Sequence[Row]) -> EnglishShare:
  """English among the expected (and sampled) examples, and how much of
  the budget has an unknown language split (then English is a floor)."""
  languages_ = [r for r in rows if r.level == "language"]
  sampled = None
  if languages_ and languages_[0].sampled_share is not None:
    sampled = sum(r.sampled_share for r in languages_ if r.name == ENGLISH)
  return EnglishShare(
      sum(r.expected_share for r in languages_ if r.name == ENGLISH),
      sampled,
      sum(r.expected_share for r in languages_ if r.name == UNKNOWN),
      tuple(r.source for r in languages_ if r.name == UNKNOWN))


def write_csv(rows: Sequence[Row], path: str) -> None:
  """One line per row; unknown figures are empty cells."""
  with open(path, "w", newline="", encoding="utf-8") as f:
    writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for row in rows:
      writer.writerow({k: "" if v is None else v
                       for k, v in dataclasses.asdict(row).items()})


def _maybe(text: str, kind):
  return kind(text) if text else None


def read_csv(path: str) -> list[Row]:
  """The rows a report wrote (for tests and notebooks)."""
  with open(path, newline="", encoding="utf-8") as f:
    return [Row(r["level"], r["name"], r["source"], r["resource_class"],
                _maybe(r["examples"], int), float(r["expected_share"]),
                _maybe(r["sampled_share"], float), _maybe(r["passes"], float),
                r["figures"], r["note"]) for r in csv.DictReader(f)]


def _label(row: Row) -> str:
  return f"{row.source}/{row.name}" if row.source else row.name


def plot_languages(rows: Sequence[Row], title: str, path: str) -> None:
  """Per-language bars coloured by resource class; sampled shares as dots."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import patches  # pylint: disable=g-import-not-at-top
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  rows = [r for r in rows if r.level == "language"]
  fig, ax = plt.subplots(figsize=(max(6.0, 0.22 * len(rows) + 2), 4.0))
  positions = range(len(rows))
  expected = [100 * r.expected_share for r in rows]
  bars = ax.bar(positions, expected, color=[
      _RESOURCE_COLORS[r.resource_class or "unknown"] for r in rows])
  # Each bar's expected share; the headroom keeps labels inside the axes.
  ax.bar_label(bars, [f"{v:.1f}" for v in expected], fontsize=6,
               rotation=90, padding=2)
  shares = expected + [100 * (r.sampled_share or 0) for r in rows]
  ax.set_ylim(0, max(shares + [1.0]) * 1.2)
  handles = [patches.Patch(color=_RESOURCE_COLORS[c], label=c)
             for c in ("higher", "mid", "lower")]
  if rows and rows[0].sampled_share is not None:
    handles.append(ax.scatter(positions, [100 * r.sampled_share for r in rows],
                              color="black", s=8, zorder=3, label="sampled"))
  ax.set_xticks(list(positions), [_label(r) for r in rows], rotation=90,
                fontsize=7)
  ax.set_ylabel("share of sampled examples (%)")
  ax.set_title(title)
  ax.legend(handles=handles, title="resource class", fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def _figure_lines(parts: Sequence[SourcePart]) -> list[str]:
  """Which sources were counted, which use shipped sizes and why, and
  where each shipped figure came from."""
  counted = [p.source for p in parts if p.figures == COUNTED]
  shipped = [p for p in parts if p.figures == SHIPPED]
  lines = []
  if counted:
    lines.append(f"Counted from the data: {', '.join(counted)}.")
  if shipped:
    first = shipped[0]
    why = (first.reason if first.reason == NOT_READ else "their data is not"
           f" here (first reason, {first.source}: {first.reason})")
    lines.append(f"Shipped sizes ({shipped_sizes.PATH}) for "
                 f"{', '.join(p.source for p in shipped)}: {why}")
  if shipped:
    lines += ["", "Shipped figures and where they came from:"]
    for part in shipped:
      for row in part.cited:
        scope = "/".join(x for x in (row.source, row.dataset, row.language)
                         if x != shipped_sizes.ALL)
        examples = (f"{row.examples:,} examples" if row.examples is not None
                    else "examples unknown")
        lines.append(f"  {scope}: {examples} [{row.cited}]"
                     + (f"; {row.note}" if row.note else ""))
  return lines


def _english_line(mix_name: str, share: EnglishShare,
                  config: ReportConfig) -> str:
  paper = PAPER_ENGLISH_SHARE.get(mix_name)
  compare = f" The paper reports {paper:.1%}." if paper else ""
  if share.unknown > 1 - 1e-9:
    return (f"English share: unknown: no per-language sizes are shipped for "
            f"{', '.join(share.unknown_sources)}.{compare}")
  if share.unknown > 0:
    return (f"English share: at least {share.expected:.2%} expected; the "
            f"language split of {share.unknown:.2%} of the budget is unknown"
            f" ({', '.join(share.unknown_sources)}).{compare}")
  line = f"English share: {share.expected:.2%} expected"
  if share.sampled is not None:
    line += f", {share.sampled:.2%} sampled ({config.sample:,} examples)"
  if paper:
    line += (f"; the paper reports {paper:.1%} ("
             f"{100 * (share.expected - paper):+.2f} points)")
  return line


def format_report(mix: mixing.WeightedMixture, parts: Sequence[SourcePart],
                  rows: Sequence[Row], config: ReportConfig) -> str:
  """The printed tables."""
  sampled = bool(rows) and rows[0].sampled_share is not None
  lines = [f"Mixture {mix.name} (split {config.split}); passes = times "
           f"{config.train_examples:,} sampled examples go over the data."]
  lines += _figure_lines(parts)
  for level in REPORT_LEVELS:
    header = f"{level:<40s} {'examples':>11s} {'expected':>9s}"
    header += f" {'sampled':>9s}" if sampled else ""
    lines += ["", header + f" {'passes':>9s}  figures"]
    for row in (r for r in rows if r.level == level):
      examples = ("-" if level == RESOURCE else "?" if row.examples is None
                  else f"{row.examples:,d}")
      line = f"{_label(row):<40s} {examples:>11s} {row.expected_share:>9.2%}"
      line += f" {row.sampled_share:>9.2%}" if sampled else ""
      passes = f"{row.passes:.1f}" if row.passes is not None else "-"
      lines.append(line + f" {passes:>9s}  {row.figures}")
      if row.name == UNKNOWN and row.note:
        lines.append(f"    {row.note}")
  return "\n".join(lines + ["", _english_line(mix.name, english_share(rows),
                                              config)])


def run(config: ReportConfig) -> dict[str, str]:
  """Prints the report and writes its files; returns their paths."""
  mix = mixture(config.mixture)
  parts = source_parts(mix, config)
  sampled = (measure(mix, config.sample, config.split, config.seed)
             if config.sample else None)
  rows = build_rows(parts, config, sampled)
  os.makedirs(config.output_dir, exist_ok=True)
  paths = {"csv": os.path.join(config.output_dir,
                               f"{mix.name}_shares.csv"),
           "png": os.path.join(config.output_dir,
                               f"{mix.name}_languages.png")}
  write_csv(rows, paths["csv"])
  plot_languages(rows, f"{mix.name}: share per language", paths["png"])
  print(format_report(mix, parts, rows, config))
  print(f"\nWrote {paths['csv']} and {paths['png']}.")
  return paths


def parse_args(argv: Sequence[str]) -> ReportConfig:
  parser = argparse.ArgumentParser(
      prog="python -m aya_t5x.mixture_report", allow_abbrev=False,
      description="Expected (and sampled) shares of a weighted mixture.")
  parser.add_argument("--mixture", required=True)
  parser.add_argument("--sample", type=int, default=0)
  parser.add_argument("--verbose", action="store_true",
                      help="Show native start-up logs.")
  parser.add_argument("--output_dir", default=".")
  parser.add_argument("--split", default="train")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--train_examples", type=int,
                      default=PAPER_RUN_EXAMPLES)
  parser.add_argument("--sizes", default="auto", choices=SIZES,
                      help="auto: count the sources whose data is found, "
                      "shipped sizes for the others; counted: all from data;"
                      " shipped: read no data.")
  args = vars(parser.parse_args(argv))
  gin_utils.set_verbosity(args.pop("verbose"))
  return ReportConfig(**args)


def main(argv: Sequence[str] | None = None) -> int:
  """The CLI: usage and data errors print one line and exit 2."""
  argv = sys.argv[1:] if argv is None else argv
  startup.ready()
  return gin_utils.exit_status(lambda: run(parse_args(argv)),
                               (ValueError, FileNotFoundError))


if __name__ == "__main__":
  sys.exit(main())

r"""Evaluation reports: tables by resource class, CSVs, plots, comparisons.

Results are `{benchmark: {language: {metric: value}}}`, as
`python -m aya_t5x.eval` writes them to results.json. The paper reports every
benchmark per language and averaged over higher-, mid- and lower-resourced
languages (HR/MR/LR, `aya_t5x.languages`); so does this module:

  write_reports(results, output_dir, notes=...)  # results.{json,csv,md}, PNGs
  markdown_table(results)                        # the Markdown, for a terminal

and from the command line:

  python -m aya_t5x.eval_report report RESULTS.json --output_dir=DIR
  python -m aya_t5x.eval_report compare A.json B.json [...] \
      --output_dir=DIR [--names=mt0,aya]

Averages are unweighted means over languages, as in the paper's tables; a
language key the registry does not know (or a pair such as `eng-hin`
that is not a language) is kept in the table and the overall average and
marked `-` for its class. Missing values (None/NaN) are shown as `-` and
left out of averages; the averages say over how many languages they are.
"""

import argparse
import collections
import csv
import json
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence

from aya_t5x import languages

Results = Mapping[str, Mapping[str, Mapping[str, float | None]]]

CLASSES = ("HR", "MR", "LR")
ALL = "All"
UNCLASSIFIED = "-"
# Bar colours per resource class (colour-blind-safe Okabe-Ito hues).
CLASS_COLOURS = {"HR": "#0072B2", "MR": "#E69F00", "LR": "#009E73",
                 UNCLASSIFIED: "#999999"}
# Widest a per-language plot gets, in inches.
_MAX_PLOT_WIDTH = 40.0


# ----------------------------------------------------------------------------
# Validation and grouping.


def _number(value, where: str) -> float:
  """A metric value as float (None/NaN = missing); errors name `where`."""
  if value is None:
    return math.nan
  if isinstance(value, bool) or not isinstance(value, (int, float)):
    raise ValueError(f"{where}: expected a number, got {value!r}")
  return float(value)


def validate(results: Results, source: str = "results") -> dict:
  """A plain-dict copy of `results`, values as floats.

  Raises:
    ValueError: the nesting is not {benchmark: {language: {metric: number}}};
      the message names the first bad entry and `source` (e.g. a file).
  """
  if not isinstance(results, Mapping):
    raise ValueError(f"{source}: expected {{benchmark: {{language: "
                     f"{{metric: value}}}}}}, got {type(results).__name__}")
  checked = {}
  for benchmark, per_language in results.items():
    if not isinstance(per_language, Mapping):
      raise ValueError(f"{source}: [{benchmark!r}] must map languages to "
                       "metrics")
    checked[str(benchmark)] = {}
    for language, metrics in per_language.items():
      if not isinstance(metrics, Mapping):
        raise ValueError(f"{source}: [{benchmark!r}][{language!r}] must map "
                         "metric names to numbers")
      checked[str(benchmark)][str(language)] = {
          str(m): _number(v, f"{source}: [{benchmark!r}][{language!r}]"
                          f"[{m!r}]") for m, v in metrics.items()}
  return checked


def resource_class(language: str) -> str:
  """HR, MR or LR for a language code/alias, `-` if it is not one."""
  found = languages.find(language)
  return found.resource.short_name if found else UNCLASSIFIED


def language_name(language: str) -> str:
  found = languages.find(language)
  return found.name if found else ""


def sorted_languages(language_keys) -> list[str]:
  """Grouped HR, MR, LR, unclassified, then alphabetically: table order."""
  rank = {c: i for i, c in enumerate(CLASSES + (UNCLASSIFIED,))}
  return sorted(language_keys, key=lambda l: (rank[resource_class(l)], l))


def metric_names(per_language: Mapping[str, Mapping[str, float]]
                 ) -> list[str]:
  """Metrics of a benchmark in first-seen order."""
  return list(dict.fromkeys(m for metrics in per_language.values()
                            for m in metrics))


def _present(value: float | None) -> bool:
  return value is not None and not math.isnan(value)


def group_averages(per_language: Mapping[str, Mapping[str, float]],
                   metric: str) -> dict[str, tuple[float, int]]:
  """(mean, number of languages) of a metric for HR, MR, LR and All.

  A group with no value is left out of the result.
  """
  groups: dict[str, list[float]] = {g: [] for g in CLASSES + (ALL,)}
  for language, metrics in per_language.items():
    value = metrics.get(metric)
    if not _present(value):
      continue
    groups[ALL].append(value)
    cls = resource_class(language)
    if cls in groups:
      groups[cls].append(value)
  return {g: (sum(v) / len(v), len(v)) for g, v in groups.items() if v}


# ----------------------------------------------------------------------------
# Markdown.


def _fmt(value: float | None) -> str:
  return f"{value:.1f}" if _present(value) else "-"


def _row(cells: Sequence[str]) -> str:
  return "| " + " | ".join(cells) + " |"


def group_examples(per_language: Mapping[str, Mapping[str, float]],
                   metric: str, counts: Mapping[str, int]) -> dict[str, int]:
  """Examples behind each group's average: languages with a value only."""
  totals = collections.Counter()
  for language, metrics in per_language.items():
    if _present(metrics.get(metric)):
      totals[ALL] += counts.get(language, 0)
      totals[resource_class(language)] += counts.get(language, 0)
  return dict(totals)


def _cell(value: float | None, n: int | None) -> str:
  """A value, with the examples it stands on when they are known."""
  return _fmt(value) if n is None or not _present(value) else (
      f"{_fmt(value)} (n={n})")


def summary_table(results: Results,
                  counts: Mapping[str, Mapping[str, int]] | None = None
                  ) -> str:
  """One row per benchmark and metric: its HR/MR/LR/All averages.

  With `counts` ({benchmark: {language: examples}}) every cell also says
  how many examples it averages, so a reader sees when n is tiny.
  """
  lines = [_row(["benchmark", "metric", *CLASSES, ALL, "languages"]),
           _row(["---", "---"] + ["---:"] * 5)]
  for benchmark, per_language in results.items():
    for metric in metric_names(per_language):
      averages = group_averages(per_language, metric)
      examples = (group_examples(per_language, metric, counts[benchmark])
                  if counts and benchmark in counts else {})
      cells = [_cell(averages[g][0], examples.get(g)) if g in averages
               else "-" for g in CLASSES + (ALL,)]
      count = str(averages[ALL][1]) if ALL in averages else "0"
      lines.append(_row([benchmark, metric, *cells, count]))
  return "\n".join(lines)


def benchmark_table(per_language: Mapping[str, Mapping[str, float]],
                    examples: Mapping[str, int] | None = None) -> str:
  """Per-language rows (with n when `examples` is given), then the
  HR/MR/LR/All average rows."""
  metrics = metric_names(per_language)
  n_column = ["n"] if examples else []
  lines = [_row(["language", "name", "class", *n_column, *metrics]),
           _row(["---", "---", "---"] + ["---:"] * (len(metrics) +
                                                    len(n_column)))]
  for language in sorted_languages(per_language):
    values = [_fmt(per_language[language].get(m)) for m in metrics]
    n_cell = [str(examples.get(language, "-"))] if examples else []
    lines.append(_row([language, language_name(language),
                       resource_class(language), *n_cell, *values]))
  averages = {m: group_averages(per_language, m) for m in metrics}
  for group in CLASSES + (ALL,):
    if not any(group in averages[m] for m in metrics):
      continue
    counts = {averages[m][group][1] for m in metrics if group in averages[m]}
    label = f"**{group} average** (n={'/'.join(map(str, sorted(counts)))})"
    values = [_fmt(averages[m][group][0]) if group in averages[m] else "-"
              for m in metrics]
    lines.append(_row([label, "", group if group != ALL else "",
                       *([""] if examples else []), *values]))
  return "\n".join(lines)


def markdown_table(results: Results,
                   notes: Mapping[str, str] | None = None, *,
                   counts: Mapping[str, Mapping[str, int]] | None = None,
                   details: bool = True) -> str:
  """The summary table, then each benchmark's per-language table.

  Args:
    results: {benchmark: {language: {metric: value}}}.
    notes: text shown under a benchmark's table (key = benchmark name,
      e.g. which BLEU tokenizer was used) or, for any other key, under the
      summary as `key: text`.
    counts: {benchmark: {language: examples}}: adds n to every cell.
    details: False keeps the summary table (no heading) and general
      notes only: a short printout.
  """
  results, notes = validate(results), dict(notes or {})
  counts = counts or {}
  parts = (["## Summary (averages over languages)", ""] if details else []
           ) + [summary_table(results, counts)]
  general = [f"- {k}: {v}" for k, v in notes.items() if k not in results]
  if general:
    parts += ([""] if details else []) + general
  for benchmark, per_language in results.items() if details else ():
    parts += ["", f"## {benchmark}", "",
              benchmark_table(per_language, counts.get(benchmark))]
    if benchmark in notes:
      parts += ["", f"Note: {notes[benchmark]}"]
  return "\n".join(parts) + "\n"


# ----------------------------------------------------------------------------
# CSV and plots.


def _write_results_csv(results: Results, path: str) -> None:
  """Long format: one row per benchmark, language and metric."""
  with open(path, "w", encoding="utf-8", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["benchmark", "language", "language_name",
                     "resource_class", "metric", "value"])
    for benchmark, per_language in results.items():
      for language in sorted_languages(per_language):
        for metric, value in per_language[language].items():
          writer.writerow([benchmark, language, language_name(language),
                           resource_class(language), metric,
                           value if _present(value) else ""])


def _write_averages_csv(results: Results, path: str) -> None:
  with open(path, "w", encoding="utf-8", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["benchmark", "metric", "group", "value", "languages"])
    for benchmark, per_language in results.items():
      for metric in metric_names(per_language):
        for group, (mean, count) in group_averages(per_language,
                                                   metric).items():
          writer.writerow([benchmark, metric, group, mean, count])


def _file_stem(name: str) -> str:
  return re.sub(r"[^\w.-]+", "_", name).strip("_") or "benchmark"


def _label_bars(ax, bars, values: Sequence[float | None]) -> None:
  """Each bar's value above it (`-` for a missing one)."""
  ax.bar_label(bars, [_fmt(v) for v in values], fontsize=7, padding=1)


def _value_axis(ax, values: Sequence[float | None]) -> None:
  """From 0 (or the lowest value) to a margin above the highest, so labels
  fit; an all-zero panel gets 0..1 and says so, instead of matplotlib's
  -0.04..0.04 around a line of nothing."""
  present = [v for v in values if _present(v)]
  low, high = min(present + [0.0]), max(present + [0.0])
  if low == high == 0.0:
    ax.set_ylim(0, 1)
    ax.text(0.5, 0.5, "all values 0" if present else "no values",
            transform=ax.transAxes, ha="center", va="center", color="#666")
    return
  ax.set_ylim(low * 1.2, high * 1.2 if high > 0 else 0)


def plot_benchmark(benchmark: str,
                   per_language: Mapping[str, Mapping[str, float]],
                   path: str) -> str:
  """A PNG with one bar chart per metric, bars coloured by resource class.

  Uses matplotlib's Figure directly (Agg), never pyplot: no display is
  needed and a caller's own backend is left alone.
  """
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  from matplotlib.patches import Patch  # pylint: disable=g-import-not-at-top

  order = sorted_languages(per_language)
  metrics = metric_names(per_language)
  width = min(_MAX_PLOT_WIDTH, max(6.0, 0.3 * len(order) + 2))
  fig = Figure(figsize=(width, 3.2 * len(metrics)), layout="constrained")
  axes = fig.subplots(len(metrics), 1, squeeze=False)[:, 0]
  colours = [CLASS_COLOURS[resource_class(l)] for l in order]
  for ax, metric in zip(axes, metrics):
    values = [per_language[l].get(metric, math.nan) for l in order]
    bars = ax.bar(range(len(order)),
                  [v if _present(v) else 0 for v in values], color=colours)
    _label_bars(ax, bars, values)
    for group, (mean, _) in group_averages(per_language, metric).items():
      if group in CLASS_COLOURS:
        ax.axhline(mean, color=CLASS_COLOURS[group], linestyle="--",
                   linewidth=1)
    ax.set_xticks(range(len(order)), order, rotation=90, fontsize=8)
    ax.set_ylabel(metric)
    ax.set_xlim(-0.6, len(order) - 0.4)
    _value_axis(ax, values)
  present = dict.fromkeys(resource_class(l) for l in order)
  axes[0].legend(handles=[Patch(color=CLASS_COLOURS[c],
                                label=c if c != UNCLASSIFIED else "other")
                          for c in present], title="class (-- average)",
                 loc="upper right", fontsize=8)
  axes[0].set_title(benchmark)
  fig.savefig(path, dpi=100)
  return path


# ----------------------------------------------------------------------------
# One run's reports.


def write_reports(results: Results, output_dir: str, *,
                  notes: Mapping[str, str] | None = None,
                  counts: Mapping[str, Mapping[str, int]] | None = None
                  ) -> dict[str, str]:
  """Writes a run's reports; returns {kind: path}.

  Files: results.json (the results as given), results.csv (long format),
  averages.csv (HR/MR/LR/All per benchmark and metric), results.md
  (`markdown_table` under a title, with `notes`), and plots/<benchmark>.png.
  Keys: "json", "csv", "averages_csv", "markdown", "png:<benchmark>".
  """
  results = validate(results)
  os.makedirs(os.path.join(output_dir, "plots"), exist_ok=True)
  paths = {"json": os.path.join(output_dir, "results.json"),
           "csv": os.path.join(output_dir, "results.csv"),
           "averages_csv": os.path.join(output_dir, "averages.csv"),
           "markdown": os.path.join(output_dir, "results.md")}
  with open(paths["json"], "w", encoding="utf-8") as f:
    json.dump({b: {l: {m: (v if _present(v) else None)
                       for m, v in metrics.items()}
                   for l, metrics in per_language.items()}
               for b, per_language in results.items()}, f, indent=2,
              ensure_ascii=False)
  _write_results_csv(results, paths["csv"])
  _write_averages_csv(results, paths["averages_csv"])
  with open(paths["markdown"], "w", encoding="utf-8") as f:
    f.write("# Evaluation results\n\n" +
            markdown_table(results, notes, counts=counts))
  for benchmark, per_language in results.items():
    if per_language and metric_names(per_language):
      png = os.path.join(output_dir, "plots",
                         _file_stem(benchmark) + ".png")
      paths[f"png:{benchmark}"] = plot_benchmark(benchmark, per_language,
                                                 png)
  return paths


def load_results(path: str) -> dict:
  """A results.json, validated.

  Raises:
    ValueError: not JSON, or not {benchmark: {language: {metric: number}}}
      (the message names the file and the entry).
    FileNotFoundError: no such file.
  """
  with open(path, encoding="utf-8") as f:
    try:
      data = json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f"{path}: not valid JSON ({e})") from None
  return validate(data, source=path)


# ----------------------------------------------------------------------------
# Comparing runs.


def default_names(paths: Sequence[str]) -> list[str]:
  """Labels for result files: their folder's name, else the path."""
  names = [os.path.basename(os.path.dirname(os.path.abspath(p))) or p
           for p in paths]
  if len(set(names)) < len(names):
    return list(paths)
  return names


def _common_languages(runs: Mapping[str, Results], benchmark: str,
                      metric: str) -> list[str]:
  """Languages where every run has a value: averages compare like with
  like only over these."""
  sets = [{l for l, m in run.get(benchmark, {}).items()
           if _present(m.get(metric))} for run in runs.values()]
  return sorted(set.intersection(*sets)) if sets else []


def _compare_rows(runs: Mapping[str, Results]):
  """(benchmark, metric, language, class, [value per run]) rows, then the
  group averages over the languages common to all runs."""
  benchmarks = list(dict.fromkeys(b for run in runs.values() for b in run))
  for benchmark in benchmarks:
    merged = {}
    for run in runs.values():
      for language, metrics in run.get(benchmark, {}).items():
        merged.setdefault(language, {}).update(metrics)
    for metric in metric_names(merged):
      for language in sorted_languages(l for l in merged
                                       if metric in merged[l]):
        values = [run.get(benchmark, {}).get(language, {}).get(metric)
                  for run in runs.values()]
        yield benchmark, metric, language, resource_class(language), values
      common = _common_languages(runs, benchmark, metric)
      averages = [group_averages({l: run[benchmark][l] for l in common},
                                 metric) for run in runs.values()]
      for group in CLASSES + (ALL,):
        if group in averages[0]:
          label = f"{group} average (n={averages[0][group][1]})"
          yield (benchmark, metric, label, "average",
                 [a[group][0] for a in averages])


def _compare_summary(runs: Mapping[str, Results]) -> list[str]:
  """One row per benchmark, metric and group: the runs' averages."""
  names = list(runs)
  lines = ["## Summary (averages over languages every run has)", "",
           _row(["benchmark", "metric", "group", *names]),
           _row(["---", "---", "---"] + ["---:"] * len(names))]
  for benchmark, metric, label, cls, values in _compare_rows(runs):
    if cls == "average":
      group = label.replace(" average", "")
      lines.append(_row([benchmark, metric, group, *map(_fmt, values)]))
  return lines


def compare_markdown(runs: Mapping[str, Results]) -> str:
  """A summary of the group averages, then per benchmark and metric every
  language side by side; averages are over shared languages."""
  names = list(runs)
  parts, current = _compare_summary(runs), None
  for benchmark, metric, language, cls, values in _compare_rows(runs):
    if (benchmark, metric) != current:
      current = (benchmark, metric)
      parts += ["", f"## {benchmark}: {metric}", "",
                _row(["language", "class", *names]),
                _row(["---", "---"] + ["---:"] * len(names))]
    label = f"**{language}**" if cls == "average" else language
    parts.append(_row([label, "" if cls == "average" else cls,
                       *map(_fmt, values)]))
  parts += ["", "Averages are over the languages every run has a value "
            "for (n); per-language rows show all."]
  return "\n".join(parts) + "\n"


def _plot_compare(runs: Mapping[str, Results], benchmark: str,
                  path: str) -> str:
  """Grouped bars: each run's HR/MR/LR/All averages, one panel per metric."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top

  rows = [r for r in _compare_rows(runs)
          if r[0] == benchmark and r[3] == "average"]
  metrics = list(dict.fromkeys(r[1] for r in rows))
  fig = Figure(figsize=(7, 3 * len(metrics)), layout="constrained")
  axes = fig.subplots(len(metrics), 1, squeeze=False)[:, 0]
  width = 0.8 / len(runs)
  for ax, metric in zip(axes, metrics):
    groups = [r for r in rows if r[1] == metric]
    for i, name in enumerate(runs):
      values = [r[4][i] for r in groups]
      bars = ax.bar([g + i * width for g in range(len(groups))],
                    [v if _present(v) else 0 for v in values], width,
                    label=name)
      _label_bars(ax, bars, values)
    ax.set_xticks([g + 0.4 - width / 2 for g in range(len(groups))],
                  [r[2].replace(" average", "") for r in groups])
    ax.set_ylabel(metric)
    _value_axis(ax, [v for r in groups for v in r[4]])
  axes[0].set_title(f"{benchmark} (averages over shared languages)")
  axes[0].legend(fontsize=8)
  fig.savefig(path, dpi=100)
  return path


def write_comparison(runs: Mapping[str, Results],
                     output_dir: str) -> dict[str, str]:
  """compare.md, compare.csv and compare_<benchmark>.png; returns paths."""
  os.makedirs(output_dir, exist_ok=True)
  paths = {"markdown": os.path.join(output_dir, "compare.md"),
           "csv": os.path.join(output_dir, "compare.csv")}
  with open(paths["markdown"], "w", encoding="utf-8") as f:
    f.write("# Comparison\n\n" + compare_markdown(runs))
  with open(paths["csv"], "w", encoding="utf-8", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["benchmark", "metric", "language", "resource_class",
                     *runs])
    for benchmark, metric, language, cls, values in _compare_rows(runs):
      writer.writerow([benchmark, metric, language, cls,
                       *("" if not _present(v) else v for v in values)])
  benchmarks = dict.fromkeys(b for run in runs.values() for b in run)
  for benchmark in benchmarks:
    if any(r[0] == benchmark and r[3] == "average"
           for r in _compare_rows(runs)):
      png = os.path.join(output_dir,
                         f"compare_{_file_stem(benchmark)}.png")
      paths[f"png:{benchmark}"] = _plot_compare(runs, benchmark, png)
  return paths


# ----------------------------------------------------------------------------
# Command line.


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="python -m aya_t5x.eval_report",
                                   allow_abbrev=False)
  sub = parser.add_subparsers(dest="command", required=True)
  report = sub.add_parser("report", help="Tables and plots of one "
                          "results.json.")
  report.add_argument("results")
  report.add_argument("--output_dir", required=True)
  compare = sub.add_parser("compare", help="Two or more results.json side "
                           "by side.")
  compare.add_argument("results", nargs="+")
  compare.add_argument("--output_dir", required=True)
  compare.add_argument("--label", action="append", default=[],
                       help="The run's label, once per file in order "
                       "(default: each file's folder name).")
  compare.add_argument("--names", default=None,
                       help="Comma-separated labels (same as --label).")
  return parser


def _compare(args: argparse.Namespace) -> str:
  if len(args.results) < 2:
    raise ValueError("compare needs at least two results files.")
  if args.label and args.names:
    raise ValueError("give --label (once per file) or --names, not both.")
  names = (args.label or (args.names.split(",") if args.names else None)
           or default_names(args.results))
  if len(names) != len(args.results) or len(set(names)) != len(names):
    raise ValueError(f"labels {names}: give {len(args.results)} distinct "
                     "labels, one --label per results file in order.")
  runs = {n: load_results(p) for n, p in zip(names, args.results)}
  paths = write_comparison(runs, args.output_dir)
  return compare_markdown(runs) + "\nwrote " + ", ".join(paths.values())


def main(argv: Sequence[str] | None = None) -> int:
  """Runs a subcommand; prints its Markdown. Exit 2 on bad input."""
  args = _parser().parse_args(argv)
  try:
    if args.command == "report":
      results = load_results(args.results)
      paths = write_reports(results, args.output_dir)
      text = markdown_table(results) + "\nwrote " + ", ".join(paths.values())
    else:
      text = _compare(args)
  except (ValueError, OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(text)
  return 0


if __name__ == "__main__":
  sys.exit(main())

r"""What a weighted mixture samples, per source, dataset and language.

    python -m aya_t5x.mixture_report --mixture=aya_translation_heavy_sample \
        [--sample=20000] [--output_dir=/tmp/report] [--split=train] \
        [--seed=0] [--train_examples=25500000]

Prints the expected share of every source, dataset and language (and the
English share) from the mixture's rates and the counted task sizes, with
how many times the run's examples would pass over each (small datasets
repeat). `--sample=N` also draws N examples through SeqIO's own mixture
sampling (`seqio.Mixture.get_dataset`, the training path) and reports the
measured shares beside the expected ones. Writes
`<output_dir>/<mixture>_shares.csv` (one row per source, dataset and
language) and `<output_dir>/<mixture>_languages.png` (per-language share,
coloured by resource class, as the paper's figure 17).

The mixture must be a `mixing.WeightedMixture` (the Aya schemes, their
`_sample` versions, or your own `aya.register_scheme`). Counting the full
Aya sources reads all their data once (then cached, see `aya_t5x.mixing`).
"""

import argparse
import collections
import csv
import dataclasses
import os
import sys
from collections.abc import Sequence

# Run as a program: hide native start-up noise before the heavy imports
# (aya_t5x.startup; --verbose shows it).
from aya_t5x import startup  # pylint: disable=g-bad-import-order
if __name__ == "__main__":
  startup.begin(sys.argv)

import seqio

from aya_t5x import gin_utils
from aya_t5x import languages
from aya_t5x import mixing
from aya_t5x import progress

# Examples the paper's run sees: 30,000 steps of about 850 packed examples
# (spec section 1), for the "passes" column.
PAPER_RUN_EXAMPLES = 30_000 * 850
LEVELS = ("source", "dataset", "language")
ENGLISH = "eng"
CSV_FIELDS = ("level", "name", "source", "resource_class", "examples",
              "expected_share", "sampled_share", "passes")
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

  def __post_init__(self):
    if self.sample < 0:
      raise ValueError(f"--sample={self.sample}: use a count >= 0.")
    if self.train_examples < 1:
      raise ValueError(f"--train_examples={self.train_examples}: use a count"
                       " >= 1.")


@dataclasses.dataclass(frozen=True)
class Row:
  """One source, dataset or language of the report."""

  level: str
  name: str
  # The dataset's source ("" for sources and languages).
  source: str
  # higher / mid / lower for languages ("" otherwise).
  resource_class: str
  # Examples the data holds (counted).
  examples: int
  expected_share: float
  sampled_share: float | None
  # Times the run's examples pass over it (expected share * run / examples).
  passes: float


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


def _sizes_by_level(mix: mixing.WeightedMixture, split: str
                    ) -> dict[str, collections.Counter]:
  sizes, _ = mix.sizes(split)
  found = {level: collections.Counter() for level in LEVELS}
  for member in mix.members:
    size = sizes.get(member.task)
    if not size:
      continue
    found["source"][member.source] += size.examples
    for dataset, n in size.by_dataset.items():
      found["dataset"][(member.source, dataset)] += n
    for language, n in size.by_language.items():
      found["language"][language] += n
  return found


def resource_class(code: str) -> str:
  language = languages.find(code)
  return language.resource.value if language else "unknown"


def build_rows(mix: mixing.WeightedMixture, config: ReportConfig,
               sampled: mixing.Shares | None = None) -> list[Row]:
  """Rows of every source, dataset and language, largest share first."""
  expected = mix.expected_shares(config.split)
  sizes = _sizes_by_level(mix, config.split)
  rows = []
  for level, shares in zip(LEVELS, (expected.by_source, expected.by_dataset,
                                    expected.by_language)):
    measured = getattr(sampled, f"by_{level}") if sampled else None
    keys = set(shares) | set(measured or {})
    for key in sorted(keys, key=lambda k: (-shares.get(k, 0.0), str(k))):
      source, name = key if level == "dataset" else ("", key)
      examples = sizes[level].get(key, 0)
      share = shares.get(key, 0.0)
      rows.append(Row(
          level, name, source,
          resource_class(name) if level == "language" else "", examples,
          share, measured.get(key, 0.0) if measured is not None else None,
          share * config.train_examples / examples if examples else 0.0))
  return rows


def english_share(rows: Sequence[Row]) -> tuple[float, float | None]:
  for row in rows:
    if row.level == "language" and row.name == ENGLISH:
      return row.expected_share, row.sampled_share
  return 0.0, (0.0 if rows and rows[0].sampled_share is not None else None)


def write_csv(rows: Sequence[Row], path: str) -> None:
  with open(path, "w", newline="", encoding="utf-8") as f:
    writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for row in rows:
      values = dataclasses.asdict(row)
      if values["sampled_share"] is None:
        values["sampled_share"] = ""
      writer.writerow(values)


def read_csv(path: str) -> list[Row]:
  """The rows a report wrote (for tests and notebooks)."""
  with open(path, newline="", encoding="utf-8") as f:
    return [Row(r["level"], r["name"], r["source"], r["resource_class"],
                int(r["examples"]), float(r["expected_share"]),
                float(r["sampled_share"]) if r["sampled_share"] else None,
                float(r["passes"])) for r in csv.DictReader(f)]


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
  ax.set_xticks(list(positions), [r.name for r in rows], rotation=90,
                fontsize=7)
  ax.set_ylabel("share of sampled examples (%)")
  ax.set_title(title)
  ax.legend(handles=handles, title="resource class", fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def format_report(mix: mixing.WeightedMixture, rows: Sequence[Row],
                  config: ReportConfig) -> str:
  """The printed tables."""
  sampled = bool(rows) and rows[0].sampled_share is not None
  lines = [f"Mixture {mix.name} (split {config.split}); passes = times "
           f"{config.train_examples:,} sampled examples go over the data."]
  for level in LEVELS:
    header = f"{level:<40s} {'examples':>10s} {'expected':>9s}"
    header += f" {'sampled':>9s}" if sampled else ""
    lines += ["", header + f" {'passes':>9s}"]
    for row in (r for r in rows if r.level == level):
      name = f"{row.source}/{row.name}" if row.source else row.name
      line = f"{name:<40s} {row.examples:>10,d} {row.expected_share:>9.2%}"
      line += f" {row.sampled_share:>9.2%}" if sampled else ""
      lines.append(line + f" {row.passes:>9.1f}")
  expected, measured = english_share(rows)
  english = f"English share: {expected:.2%} expected"
  english += f", {measured:.2%} sampled ({config.sample:,} examples)" if (
      sampled) else ""
  return "\n".join(lines + ["", english])


def run(config: ReportConfig) -> dict[str, str]:
  """Prints the report and writes its files; returns their paths."""
  mix = mixture(config.mixture)
  sampled = (measure(mix, config.sample, config.split, config.seed)
             if config.sample else None)
  rows = build_rows(mix, config, sampled)
  os.makedirs(config.output_dir, exist_ok=True)
  paths = {"csv": os.path.join(config.output_dir,
                               f"{mix.name}_shares.csv"),
           "png": os.path.join(config.output_dir,
                               f"{mix.name}_languages.png")}
  write_csv(rows, paths["csv"])
  plot_languages(rows, f"{mix.name}: share per language", paths["png"])
  print(format_report(mix, rows, config))
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

r"""What a run learned: per-language before/after table and loss curves.

    python -m aya_t5x.learning_report --model_dir=demo_run

Reads MODEL_DIR/train_metrics.jsonl and eval_metrics.jsonl (with the
per-language metrics `language_eval.PerLanguageEval` adds at each eval),
prints one row per language (loss and token accuracy at the first and
last eval) and writes MODEL_DIR/learning.png: the training loss with the
eval loss, then each language's loss and token accuracy before and after,
every bar labelled with its value.
"""

import argparse
import json
import math
import os
import sys
from typing import Mapping, Sequence

from aya_t5x import gin_utils

Row = Mapping[str, float]
PNG_NAME = "learning.png"
PREFIX = "languages"  # Metric names: languages/<code>/<metric>.


def _read(path: str) -> list[dict]:
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path} does not exist: is --model_dir a "
                            "training run's MODEL_DIR?")
  # Read here, not through metrics_writer: that imports TensorFlow (clu).
  with open(path, encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


def per_language(row: Row) -> dict[str, dict[str, float]]:
  """{language: {metric: value}} from one eval_metrics.jsonl row."""
  out = {}
  for name, value in row.items():
    parts = name.split("/")
    if len(parts) == 3 and parts[0] == PREFIX:
      out.setdefault(parts[1], {})[parts[2]] = value
  return out


def language_evals(eval_rows: Sequence[Row]
                   ) -> list[tuple[int, dict[str, dict[str, float]]]]:
  """[(step, {language: metrics})] of the evals with per-language metrics."""
  found = [(int(r["step"]), per_language(r)) for r in eval_rows]
  return [(step, by_language) for step, by_language in found if by_language]


def _cell(before: float | None, after: float | None, digits: int) -> list[str]:
  fmt = lambda v: "-" if v is None else f"{v:.{digits}f}"  # pylint: disable=unnecessary-lambda-assignment
  return [fmt(before), fmt(after)]


def table(evals: Sequence[tuple[int, dict]]) -> str:
  """Markdown: per language, loss and token accuracy at the first/last eval."""
  (first_step, first), (last_step, last) = evals[0], evals[-1]
  lines = [f"| language | n | loss @{first_step} | loss @{last_step} | "
           f"token accuracy @{first_step} | token accuracy @{last_step} |",
           "| --- | ---: | ---: | ---: | ---: | ---: |"]
  totals = {"n": 0.0, "loss": [0.0, 0.0], "accuracy": [0.0, 0.0]}
  for language in sorted(last):
    before, after = first.get(language, {}), last[language]
    n = after.get("examples", 0.0)
    lines.append("| " + " | ".join(
        [language, f"{n:.0f}",
         *_cell(before.get("loss"), after.get("loss"), 2),
         *_cell(before.get("accuracy"), after.get("accuracy"), 3)])
                 + " |")
    totals["n"] += n
    for i, row in enumerate((before, after)):
      totals["loss"][i] += n * row.get("loss", math.nan)
      totals["accuracy"][i] += n * row.get("accuracy", math.nan)
  if totals["n"]:
    n = totals["n"]
    lines.append("| **all** | " + " | ".join(
        [f"{n:.0f}", *_cell(*(v / n for v in totals["loss"]), 2),
         *_cell(*(v / n for v in totals["accuracy"]), 3)]) + " |")
  return "\n".join(lines)


def plot(train_rows: Sequence[Row], eval_rows: Sequence[Row],
         evals: Sequence[tuple[int, dict]], path: str) -> str:
  """The three panels of the module docstring, as a PNG."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  fig = Figure(figsize=(16, 4.8), layout="constrained")
  curve, per_language, accuracy = fig.subplots(1, 3)
  curve.plot([r["step"] for r in train_rows], [r["loss"] for r in train_rows],
             label="train loss", linewidth=1)
  evaluated = [r for r in eval_rows if "validation/loss" in r]
  if evaluated:
    curve.plot([r["step"] for r in evaluated],
               [r["validation/loss"] for r in evaluated], "o-",
               label="validation loss")
  curve.set(title="Loss", xlabel="step", ylabel="loss per target token",
            ylim=(0, None))
  curve.legend()
  curve.xaxis.get_major_locator().set_params(integer=True)
  languages = sorted(evals[-1][1])
  _before_after_bars(per_language, evals, languages, "loss", 2)
  per_language.set(title="Validation loss per language",
                   ylabel="loss per target token")
  _before_after_bars(accuracy, evals, languages, "accuracy", 2)
  accuracy.set(title="Validation token accuracy per language",
               ylabel="fraction of target tokens", ylim=(0, 1.15))
  fig.savefig(path, dpi=100)
  return path


def _before_after_bars(ax, evals, languages: Sequence[str], metric: str,
                       digits: int) -> None:
  """Bars of `metric` at the first and last eval, labelled with values."""
  width = 0.4
  top = 0.0
  for offset, (step, by_language) in zip((-width / 2, width / 2),
                                         (evals[0], evals[-1])):
    values = [by_language.get(l, {}).get(metric, 0.0) for l in languages]
    bars = ax.bar([i + offset for i in range(len(languages))], values,
                  width, label=f"step {step}")
    ax.bar_label(bars, [f"{v:.{digits}f}" for v in values], fontsize=6,
                 rotation=90, padding=2)
    top = max(top, *values)
  ax.set_xticks(range(len(languages)), languages, fontsize=8)
  ax.set_ylim(0, max(top * 1.2, 1.0))
  ax.legend(loc="upper right", fontsize=8)


def report(model_dir: str) -> str:
  """Prints nothing; returns the text `main` prints (and writes the PNG)."""
  train_rows = _read(os.path.join(model_dir, "train_metrics.jsonl"))
  eval_rows = _read(os.path.join(model_dir, "eval_metrics.jsonl"))
  evals = language_evals(eval_rows)
  if len(evals) < 2:
    raise ValueError(f"{model_dir}/eval_metrics.jsonl has per-language "
                     f"metrics at {len(evals)} eval(s); it needs two "
                     "(BENCHMARK_EVAL = @language_eval.PerLanguageEval()).")
  png = plot(train_rows, eval_rows, evals, os.path.join(model_dir, PNG_NAME))
  return (f"What the model learned on the validation set, per language "
          f"(step {evals[0][0]} -> {evals[-1][0]}):\n{table(evals)}\n"
          f"Loss curves and accuracy per language: {png}")


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m aya_t5x.learning_report",
                                   allow_abbrev=False)
  parser.add_argument("--model_dir", required=True)
  args = parser.parse_args(argv)
  return gin_utils.exit_status(lambda: print(report(args.model_dir)),
                               (ValueError, FileNotFoundError))


if __name__ == "__main__":
  sys.exit(main())

r"""The eval CLI: a checkpoint's scores on the Aya evaluation suite.

    python -m aya_t5x.eval --gin_file=gin/models/mt5_xxl.gin \
      --gin_file=gin/eval/heldout.gin \
      --gin.CHECKPOINT_PATH="'/runs/aya/checkpoint_30000'" \
      --gin.EVAL_OUTPUT_DIR="'/runs/aya/eval'"

Suites (`gin/eval/`): `heldout` (XCOPA, XNLI, XStoryCloze, XWinograd),
`mmlu`, `generative` (FLORES-200 both ways, XLSum, TyDiQA), `open_ended`
(generations for judging), `all`, and `demo` (the tiny demo model on the
shipped sample data). Writes results.json, results.csv, averages.csv,
results.md, plots/, details.json (examples per language, per-template
accuracies, skipped rows) and the predictions/generations JSONL into
EVAL_OUTPUT_DIR, then prints the Markdown table.
"""

import importlib
import sys

# Run as a program: hide native start-up noise before the heavy imports
# (aya_t5x.startup; --verbose shows it).
from aya_t5x import startup  # pylint: disable=g-bad-import-order
if __name__ == "__main__":
  startup.begin(sys.argv)

from aya_t5x import eval_report
from aya_t5x import architecture
from aya_t5x import gin_utils
from aya_t5x import multihost


def main(command_line: gin_utils.CommandLine) -> dict:
  """Parses gin, evaluates, prints the table; set-up mistakes exit 2."""
  # The checkpoint's own model.gin (if any) after the given gin files.
  architecture.parse_gin_with_checkpoint(command_line)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], "GPU")
  multihost.initialize(multihost.config_from_command_line(command_line))
  startup.ready()
  evaluation = importlib.import_module("aya_t5x.evaluation")
  with evaluation.SETUP.usage_errors(TypeError, ValueError,
                                     FileNotFoundError, KeyError):
    summary = evaluation.evaluate()  # pylint: disable=missing-kwoa
  result, config = summary["result"], summary["config"]
  if summary["paths"]:
    if config.title:
      print(config.title)
    print(eval_report.markdown_table(
        result.results, evaluation.report_notes(result),
        counts=result.counts, details=config.print_details), end="")
    print(f"aya_t5x.eval: {summary['checkpoint']} -> "
          f"{summary['paths']['markdown']}", flush=True)
  return summary


def console_main() -> None:
  gin_utils.run(main)


if __name__ == "__main__":
  importlib.import_module("aya_t5x.eval").console_main()

"""The eval CLI end to end on a tiny model, and benchmarks during training."""

import json
import os

import pytest

from aya_t5x import eval as eval_cli
from aya_t5x import gin_utils
from aya_t5x import train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(REPO, "tasks", "data", "eval_sample")


def _eval_argv(checkpoint, output_dir, *extra):
  return [f"--gin_file={REPO}/gin/eval/demo.gin",
          f"--gin.CHECKPOINT_PATH='{checkpoint}'",
          f"--gin.EVAL_OUTPUT_DIR='{output_dir}'", *extra]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """Two training steps with a benchmark subset scored at EVAL_PERIOD."""
  model_dir = tmp_path_factory.mktemp("eval_cli") / "run"
  argv = [f"--gin_file={REPO}/gin/aya_tiny_cpu.gin",
          f"--gin_file={REPO}/gin/eval/during_training.gin",
          f"--gin.MODEL_DIR='{model_dir}'", "--gin.TRAIN_STEPS=2",
          "--gin.EVAL_PERIOD=2", "--gin.EVAL_STEPS=1", "--gin.BATCH_SIZE=8",
          f"--gin.TRAIN_EVAL_DATA_DIR='{SAMPLE}'",
          "--gin.TRAIN_EVAL_BENCHMARKS=('xcopa', 'tydiqa')",
          "--gin.TRAIN_EVAL_LANGUAGES=('swa', 'tha')"]
  summary = train.main(gin_utils.parse_command_line(argv))
  return model_dir, summary


@pytest.mark.slow
def test_eval_cli_writes_results_for_a_trained_tiny_model(trained, tmp_path,
                                                           capsys):
  model_dir, _ = trained
  out = tmp_path / "eval"
  summary = eval_cli.main(gin_utils.parse_command_line(_eval_argv(
      model_dir, out,
      "--gin.BENCHMARKS=('xnli', 'mmlu', 'flores_x_en', 'tydiqa', "
      "'dolly_human_edited')")))
  assert summary["checkpoint"].endswith("checkpoint_2")  # Newest in the dir.
  results = json.loads((out / "results.json").read_text(encoding="utf-8"))
  assert sorted(results) == ["flores_x_en", "mmlu", "tydiqa", "xnli"]
  assert sorted(results["xnli"]) == ["eng", "fra", "hin", "rus"]
  assert all(0 <= m["accuracy"] <= 100 for m in results["xnli"].values())
  assert set(results["flores_x_en"]["swa"]) == {"bleu_13a", "chrf++"} or (
      "spbleu_flores200" in results["flores_x_en"]["swa"])
  details = json.loads((out / "details.json").read_text(encoding="utf-8"))
  assert details["counts"]["xnli"] == {"eng": 15, "fra": 15, "hin": 15,
                                       "rus": 15}
  assert len(details["per_template"]["xnli"]["fra"]) == 5
  assert details["skipped_rows"]["aya_eval_tydiqa_swa"] == {
      "no answer text (answers)": 1}
  generations = (out / "generations" / "dolly_human_edited.jsonl"
                 ).read_text(encoding="utf-8").splitlines()
  rows = [json.loads(line) for line in generations]
  assert [r["id"] for r in rows] == ["11", "12"]
  assert all({"id", "language", "inputs", "prediction"} <= set(r)
             for r in rows)
  markdown = (out / "results.md").read_text(encoding="utf-8")
  assert "## xnli" in markdown and "## Summary" in markdown
  assert "| fra | French | HR | 15 |" in markdown  # n per language.
  printed = capsys.readouterr().out  # The demo prints the summary only.
  assert "Pipeline check" in printed and "## xnli" not in printed
  assert "| xnli | accuracy |" in printed and "(n=60)" in printed


def test_benchmarks_during_training_reach_eval_metrics(trained):
  model_dir, _ = trained
  with open(model_dir / "eval_metrics.jsonl", encoding="utf-8") as f:
    rows = [json.loads(line) for line in f]
  assert [r["step"] for r in rows] == [0, 2]
  for row in rows:
    assert 0 <= row["benchmarks/xcopa/accuracy"] <= 100
    assert "benchmarks/tydiqa/f1" in row
  report = json.loads((model_dir / "benchmarks" / "step_2" / "results.json"
                       ).read_text(encoding="utf-8"))
  assert sorted(report["xcopa"]) == ["swa", "tha"]


@pytest.mark.parametrize("extra,needle", [
    (["--gin.BENCHMARKS=('xcopaa',)"], "Unknown benchmark 'xcopaa'"),
    (["--gin.BENCHMARKZ=('xcopa',)"], "Did you mean BENCHMARKS"),
    (["--gin.MAX_EXAMPLES=0"], "MAX_EXAMPLES must be None or an integer"),
])
def test_bad_eval_configuration_fails_early_naming_it(tmp_path, capsys,
                                                      extra, needle):
  argv = _eval_argv(tmp_path / "no_such_run", tmp_path / "out", *extra)
  with pytest.raises(SystemExit) as info:
    gin_utils.run(eval_cli.main, argv)
  assert info.value.code == 2
  assert needle in capsys.readouterr().err


def test_a_missing_checkpoint_is_a_usage_error(tmp_path, capsys):
  with pytest.raises(SystemExit):
    gin_utils.run(eval_cli.main, _eval_argv(tmp_path / "nothing",
                                            tmp_path / "out"))
  assert "CHECKPOINT_PATH" in capsys.readouterr().err


def test_the_eval_mirror_does_not_outlive_the_run(trained):
  del trained  # Its benchmark evals read the sample mirror.
  assert os.environ.get("AYA_DATA_DIR") != SAMPLE

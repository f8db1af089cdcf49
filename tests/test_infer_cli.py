"""The infer CLI: JSONL and task inputs, bad lines counted, resumable output."""

import json
import os
import types

import pytest

from aya_t5x import gin_utils
from aya_t5x import infer
from aya_t5x import inference
from aya_t5x.convert import commands
from tests import hf_fixtures

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROMPTS = [f"copy: Paka analala {i}." for i in range(7)] + [
    "translate to English: Кошка спит.", "reverse: बिल्ली गर्म चटाई"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
  root = tmp_path_factory.mktemp("infer")
  imported = commands.hf_to_aya(
      hf_fixtures.save(hf_fixtures.build_mt5(), str(root / "hf")),
      str(root / "aya"))
  prompts = root / "prompts.jsonl"
  lines = [json.dumps({"id": f"p{i}", "language": "swa", "inputs": p},
                      ensure_ascii=False) for i, p in enumerate(PROMPTS)]
  lines.insert(3, "{not json")
  lines.insert(6, json.dumps({"id": "no-inputs", "prompt": "x"}))
  prompts.write_text("\n".join(lines) + "\n", encoding="utf-8")
  return types.SimpleNamespace(root=root, imported=imported, prompts=prompts)


def _argv(setup, output_dir, *extra):
  return [f"--gin_file={REPO}/gin/models/mt5_tiny.gin",
          f"--gin_file={setup.imported.gin_file}",
          f"--gin_file={REPO}/gin/runs/infer.gin",
          f"--gin.CHECKPOINT_PATH='{setup.imported.checkpoint}'",
          f"--gin.INFER_OUTPUT_DIR='{output_dir}'",
          "--gin.MAX_NEW_TOKENS=6", "--gin.BATCH_SIZE=4", *extra]


def _run(setup, output_dir, *extra):
  return infer.main(gin_utils.parse_command_line(
      _argv(setup, output_dir, *extra)))


def _lines(path):
  with open(path, encoding="utf-8") as f:
    return f.read().splitlines()


def test_jsonl_inputs_are_all_predicted_and_bad_lines_counted(setup):
  out = setup.root / "full"
  summary = _run(setup, out, f"--gin.INPUT_FILE='{setup.prompts}'")
  assert summary["inputs"] == len(PROMPTS)
  assert summary["skipped"] == {"not JSON (Expecting property name enclosed "
                                "in double quotes)": 1,
                                "no string field 'inputs'": 1}
  rows = [json.loads(line) for line in _lines(summary["output"])]
  assert [r["index"] for r in rows] == list(range(len(PROMPTS)))
  assert [r["inputs"] for r in rows] == PROMPTS
  assert [r["id"] for r in rows] == [f"p{i}" for i in range(len(PROMPTS))]
  assert all(isinstance(r["prediction"], str) and r["score"] < 0
             for r in rows)


def test_a_half_written_output_is_resumed_without_duplicates(setup):
  full = _run(setup, setup.root / "reference",
              f"--gin.INPUT_FILE='{setup.prompts}'")["output"]
  expected = _lines(full)
  out_dir = setup.root / "resumed"
  os.makedirs(out_dir)
  path = out_dir / "prompts-predictions.jsonl"
  # Five finished rows, then a row torn by a crash mid-write.
  path.write_text("\n".join(expected[:5]) + "\n" + expected[5][:17],
                  encoding="utf-8")
  summary = _run(setup, out_dir, f"--gin.INPUT_FILE='{setup.prompts}'")
  assert summary["resumed_at"] == 5
  assert _lines(path) == expected
  again = _run(setup, out_dir, f"--gin.INPUT_FILE='{setup.prompts}'")
  assert again["resumed_at"] == len(PROMPTS) and _lines(path) == expected


def test_output_of_other_inputs_is_refused(setup):
  out_dir = setup.root / "other"
  os.makedirs(out_dir)
  (out_dir / "prompts-predictions.jsonl").write_text(
      json.dumps({"index": 0, "inputs": "something else",
                  "prediction": "x"}) + "\n", encoding="utf-8")
  with pytest.raises(gin_utils.UsageError, match="line 1 is not the "
                     "prediction for input 0"):
    _run(setup, out_dir, f"--gin.INPUT_FILE='{setup.prompts}'")


def test_task_inputs_with_beam_search(setup):
  summary = _run(setup, setup.root / "task",
                 "--gin.MIXTURE_OR_TASK_NAME='aya_demo_swa'",
                 "--gin.MAX_EXAMPLES=4", "--gin.DECODING_METHOD='beam'")
  rows = [json.loads(line) for line in _lines(summary["output"])]
  assert len(rows) == 4
  assert all(r["inputs"] and "targets" in r for r in rows)


def test_both_or_no_inputs_is_a_usage_error(setup):
  with pytest.raises(gin_utils.UsageError, match="exactly one of INPUT_FILE"):
    _run(setup, setup.root / "none")


def test_a_missing_input_file_is_a_one_line_usage_error(setup, capsys):
  missing = setup.root / "no_such_prompts.jsonl"
  with pytest.raises(SystemExit) as info:
    gin_utils.run(infer.main, _argv(setup, setup.root / "missing",
                                    f"--gin.INPUT_FILE='{missing}'"))
  assert info.value.code == 2
  err = capsys.readouterr().err
  assert err.startswith("error: INPUT_FILE") and str(missing) in err
  assert len(err.splitlines()) == 1


def test_an_error_while_generating_is_not_swallowed_as_a_usage_error(
    setup, monkeypatch):
  def broken_generate(*args, **kwargs):
    raise ValueError("a bug inside generation")
  monkeypatch.setattr(inference.Predictor, "generate", broken_generate)
  with pytest.raises(ValueError, match="a bug inside generation") as info:
    gin_utils.run(infer.main, _argv(setup, setup.root / "broken",
                                    f"--gin.INPUT_FILE='{setup.prompts}'"))
  assert not isinstance(info.value, gin_utils.UsageError)


def test_relative_paths_and_the_architecture_beside_the_checkpoint(setup, monkeypatch):
  """The README's command names everything relative to the clone, and
  gives no model.gin: the one beside the checkpoint is read."""
  monkeypatch.chdir(setup.root)
  checkpoint = os.path.relpath(setup.imported.checkpoint, setup.root)
  assert not os.path.isabs(checkpoint)
  summary = infer.main(gin_utils.parse_command_line([
      f"--gin_file={REPO}/gin/models/mt5_tiny.gin",
      f"--gin_file={REPO}/gin/runs/infer.gin",
      f"--gin.CHECKPOINT_PATH='{checkpoint}'",
      "--gin.INPUT_FILE='prompts.jsonl'", "--gin.INFER_OUTPUT_DIR='rel_out'",
      "--gin.MAX_NEW_TOKENS=2", "--gin.BATCH_SIZE=4"]))
  assert summary["inputs"] == len(PROMPTS)
  assert len(_lines(setup.root / "rel_out" / "prompts-predictions.jsonl")) == (
      len(PROMPTS))

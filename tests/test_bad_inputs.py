"""Every bad input is one `error:` line naming the culprit, and exit 2.

In process (one Python for every case): `gin_utils.run` is the CLI's own
entry point, so the exit status and the stderr line are what a user sees;
`test_train_cli` runs a case through a real subprocess.
"""

import os

import pytest
import seqio

from aya_t5x import data
from aya_t5x import drop_summary
from aya_t5x import gin_utils
from aya_t5x import infer  # Gin-configurable: imported before gin locks.
from aya_t5x import jsonl_io
from aya_t5x import preprocessors
from aya_t5x import train
from aya_t5x import truncation
from aya_t5x import vocabularies
from aya_t5x.convert import __main__ as convert_cli

TINY_RUN = ["--gin_file=gin/aya_tiny_cpu.gin", "--gin.BATCH_SIZE=8",
            "--gin.EVAL_PERIOD=0"]
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def damaged_tasks(tmp_path_factory):
  """Two tasks: one with an empty training file, one whose SentencePiece
  model is garbage."""
  root = tmp_path_factory.mktemp("tasks")
  empty, rows, bad_model = (root / "empty.jsonl", root / "rows.jsonl",
                            root / "bad_spm.model")
  empty.write_text("")
  rows.write_text('{"inputs": "a", "targets": "b"}\n')
  bad_model.write_bytes(b"this is not a sentencepiece model")
  for name, path, vocabulary in (
      ("reliability_empty_file", empty, vocabularies.demo_vocabulary()),
      ("reliability_bad_spm", rows,
       seqio.SentencePieceVocabulary(str(bad_model)))):
    seqio.TaskRegistry.remove(name)
    data.register_jsonl_task(name, {"train": str(path),
                                    "validation": str(path)}, vocabulary)
  return {"empty": str(empty), "bad_model": str(bad_model)}


CASES = {
    "learning_rate_text": (["--gin.LEARNING_RATE='fast'"],
                           "LEARNING_RATE must be a finite number > 0"),
    "learning_rate_zero": (["--gin.LEARNING_RATE=0.0"],
                           "LEARNING_RATE must be a finite number > 0"),
    "learning_rate_inf": (["--gin.LEARNING_RATE=1e999"],
                          "LEARNING_RATE must be a finite number > 0"),
    "unparseable_value": (["--gin.BATCH_SIZE=[8,"],
                          "Bad binding 'BATCH_SIZE = [8,'"),
    "batch_size_zero": (["--gin.BATCH_SIZE=0"], "BATCH_SIZE must be an "
                        "integer >= 1, got 0"),
    "batch_size_negative": (["--gin.BATCH_SIZE=-8"], "BATCH_SIZE must be an "
                            "integer >= 1, got -8"),
    "batch_size_fractional": (["--gin.BATCH_SIZE=8.5"], "BATCH_SIZE must be "
                              "an integer >= 1, got 8.5"),
    "feature_length_zero": (
        ["--gin.TASK_FEATURE_LENGTHS={'inputs': 0, 'targets': 32}"],
        "TASK_FEATURE_LENGTHS['inputs'] must be an integer >= 1, got 0"),
    "feature_lengths_not_a_dict": (["--gin.TASK_FEATURE_LENGTHS=64"],
                                   "TASK_FEATURE_LENGTHS must be a dict"),
    "random_seed_text": (["--gin.RANDOM_SEED='abc'"],
                         "RANDOM_SEED must be an integer, got 'abc'"),
    "bool_for_int": (["--gin.TRAIN_STEPS=True"],
                     "TRAIN_STEPS must be an integer >= 1, got True"),
    "train_steps_fractional": (["--gin.TRAIN_STEPS=2.5"],
                               "TRAIN_STEPS must be an integer >= 1"),
    "microbatches_not_dividing": (["--gin.NUM_MICROBATCHES=3"],
                                  "NUM_MICROBATCHES=3 does not divide "
                                  "BATCH_SIZE=8"),
    "unknown_task_module": (["--gin.MIXTURE_OR_TASK_MODULE='no_such_tasks'"],
                            "MIXTURE_OR_TASK_MODULE='no_such_tasks'"),
    "dropout_one": (["--gin.DROPOUT_RATE=1.0"],
                    "DROPOUT_RATE (T5Config.dropout_rate) must be a finite "
                    "number in [0.0, 1.0), got 1.0"),
    "dropout_negative": (["--gin.DROPOUT_RATE=-0.1"], "DROPOUT_RATE"),
    "packing_not_bool": (["--gin.PACKING='yes'"],
                         "PACKING must be True or False, got 'yes'"),
    "warmup_negative": (["--gin.WARMUP_STEPS=-1"],
                        "WARMUP_STEPS must be an integer >= 0, got -1"),
    "checkpoint_period_bool": (["--gin.CHECKPOINT_PERIOD=False"],
                               "CHECKPOINT_PERIOD must be an integer >= 1"),
    "nonfinite_policy": (["--gin.NONFINITE_POLICY='ignore'"],
                         "NONFINITE_POLICY must be one of"),
    "model_dir_is_a_file": ("MODEL_DIR_FILE", "is a file, not a folder"),
    "empty_training_file": (
        ["--gin.MIXTURE_OR_TASK_NAME='reliability_empty_file'"],
        "Task 'reliability_empty_file' (train split): input file EMPTY"),
    "corrupt_sentencepiece": (
        ["--gin.MIXTURE_OR_TASK_NAME='reliability_bad_spm'"],
        "BAD_MODEL is not a readable SentencePiece model"),
}


def _error_lines(capsys) -> list[str]:
  return [l for l in capsys.readouterr().err.splitlines()
          if l.startswith("error: ")]


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_train_input_is_one_line_naming_the_culprit_and_exit_2(
    tmp_path, capsys, monkeypatch, damaged_tasks, case):
  args, needle = CASES[case]
  model_dir = tmp_path / "run"
  if args == "MODEL_DIR_FILE":
    model_dir.write_text("not a folder")
    args = []
  needle = needle.replace("EMPTY", damaged_tasks["empty"]).replace(
      "BAD_MODEL", damaged_tasks["bad_model"])
  monkeypatch.chdir(REPO)
  with pytest.raises(SystemExit) as exit_info:
    gin_utils.run(train.main, TINY_RUN + [f"--gin.MODEL_DIR='{model_dir}'"]
                  + args)
  assert exit_info.value.code == 2
  (line,) = _error_lines(capsys)
  assert needle in line, line


def test_hf_config_that_is_not_an_object_is_one_line(tmp_path, capsys):
  hf_dir = tmp_path / "hf"
  hf_dir.mkdir()
  (hf_dir / "config.json").write_text("[1, 2, 3]")
  status = convert_cli.main(["hf_to_aya", f"--hf_dir={hf_dir}",
                             f"--output_dir={tmp_path / 'out'}"])
  assert status == 2
  (line,) = _error_lines(capsys)
  assert f"{hf_dir}/config.json: expected a JSON object" in line, line


def test_bindings_apply_in_command_line_order():
  command_line = gin_utils.parse_command_line(
      ["--gin.TRAIN_STEPS=1", "--gin_bindings=TRAIN_STEPS = 2",
       "--gin.TRAIN_STEPS=3", "--gin_bindings", "LOG_PERIOD = 4"])
  assert command_line.gin_bindings == ["TRAIN_STEPS = 1", "TRAIN_STEPS = 2",
                                       "TRAIN_STEPS = 3", "LOG_PERIOD = 4"]


def test_project_includes_resolve_whatever_the_working_directory_holds(
    tmp_path, monkeypatch):
  (tmp_path / "runs").mkdir()  # Was taken for a Python package by gin.
  (tmp_path / "models").mkdir()
  (tmp_path / "models" / "mt5_tiny.gin").write_text("THIS IS NOT GIN\n")
  monkeypatch.chdir(tmp_path)
  gin_utils.parse_gin([os.path.join(REPO, "gin", "aya_tiny_cpu.gin")],
                      ["MODEL_DIR = '/tmp/x'"])
  import gin  # pylint: disable=g-import-not-at-top
  assert gin.query_parameter("%TRAIN_STEPS") == 400


def test_infer_skips_and_counts_invalid_utf8_and_empty_inputs(tmp_path,
                                                              caplog):
  path = tmp_path / "inputs.jsonl"
  path.write_bytes(b'\xef\xbb\xbf{"inputs": "first"}\n'
                   b'{"inputs": "bad \xff byte"}\n'
                   b'{"inputs": "  "}\n'
                   b'{"inputs": "last"}\n')
  report = jsonl_io.InputReport()
  rows = list(infer.read_jsonl_inputs(str(path), "inputs", report))
  assert [r["inputs"] for r in rows] == ["first", "last"]
  assert report.skipped == {"invalid UTF-8": 1, "empty 'inputs'": 1}
  assert f"{path}:2 (byte 16)" in caplog.text


def test_drop_table_gives_totals_per_task_and_reason_with_first_row(caplog):
  tally = preprocessors.Tally()
  for row in range(5):
    tally.event("task_a", preprocessors.EMPTY, "targets", "a.jsonl", row + 1)
  tally.event("task_a", preprocessors.INVALID_UTF8, "inputs", "b.jsonl", 7)
  tally.event("task_b", preprocessors.DUPLICATE, "inputs+targets", "c.jsonl",
              2)
  rows = drop_summary.drop_rows(tally)
  assert [(r.task, r.reason, r.count, r.first) for r in rows] == [
      ("task_a", "empty:targets", 5, "a.jsonl:1"),
      ("task_a", "invalid_utf8:inputs", 1, "b.jsonl:7"),
      ("task_b", "duplicate:inputs+targets", 1, "c.jsonl:2")]
  table = drop_summary.format_table(rows)
  assert table.splitlines()[0].startswith("dropped rows (7 drops while reading")
  assert "task_a  empty:targets" in table


def test_drop_table_on_the_console_keeps_the_largest_lines_and_names_the_file(
    tmp_path):
  tally = preprocessors.Tally()
  for task, count in (("t1", 1), ("t2", 4), ("t3", 2), ("t4", 3)):
    for row in range(count):
      tally.event(task, preprocessors.EMPTY, "targets", f"{task}.jsonl", row)
  rows = drop_summary.drop_rows(tally)
  path = tmp_path / drop_summary.TABLE_FILE
  drop_summary.write_table(rows, path)
  table = drop_summary.format_table(rows, 2, str(path)).splitlines()
  assert table[0].startswith("dropped rows (10 drops while reading")
  assert [line.split()[0] for line in table[2:4]] == ["t2", "t4"]
  assert table[4] == f"  ... 2 smaller (task, reason) lines not shown: {path}"
  written = path.read_text(encoding="utf-8").splitlines()
  assert written[0] == "task\treason\tcount\tfirst_row"
  assert written[1:] == [f"{t}\tempty:targets\t{n}\t{t}.jsonl:0"
                         for t, n in (("t1", 1), ("t2", 4), ("t3", 2),
                                      ("t4", 3))]


def test_train_cli_ends_with_drop_totals_and_truncations_and_writes_both(
    tmp_path, capsys, monkeypatch):
  """After the run's summary, the CLI prints the drop totals per task and
  reason and what trimming cut, and writes both tables to MODEL_DIR."""
  task = "reliability_end_of_run_table"
  for row in range(4):
    preprocessors.TALLY.event(task, preprocessors.EMPTY, "targets",
                              "a.jsonl", row + 1)
  preprocessors.TALLY.event(task, preprocessors.DUPLICATE, "inputs+targets",
                            "a.jsonl", 9)
  cuts = truncation.TruncationTally()
  cuts.counter(task, "train", {"inputs": 4, "targets": 2}).variable.assign(
      [7, 3, 11, 0, 0])  # 7 read; inputs: 3 cut, 11 tokens; targets: none.
  monkeypatch.setattr(truncation, "TALLY", cuts)

  def finished_run(unused_run, unused_restore_cfg):
    return {"status": "finished", "start_step": 0, "step": 2, "history": [],
            "model_dir": str(tmp_path), "metrics": "m",
            "checkpoint_steps": [2]}
  # The run's own set-up is real; its steps are not this test's subject.
  monkeypatch.setattr(train, "_train_iterator", lambda *unused: None)
  monkeypatch.setattr(train, "_set_up_and_train", finished_run)
  monkeypatch.chdir(REPO)
  try:
    gin_utils.run(train.main, TINY_RUN + [f"--gin.MODEL_DIR='{tmp_path}'"])
  finally:
    preprocessors.TALLY.reset(task)
  out = capsys.readouterr().out.splitlines()
  end = out[out.index(next(l for l in out if l.startswith("dropped rows"))):]
  assert [l.split()[:3] for l in end if l.split()[0] == task] == [
      [task, "duplicate:inputs+targets", "1"], [task, "empty:targets", "4"]]
  assert end[-1] == (
      "truncated to TASK_FEATURE_LENGTHS: 11 tokens cut from 3 example "
      "features of 7 examples read by this process (each epoch and "
      f"read-ahead counted); most: {task} train inputs (length 4), 3 of 7 "
      "examples read cut, 11 tokens; every (task, feature): "
      f"{tmp_path}/{truncation.TABLE_FILE}")
  assert f"{task}\tempty:targets\t4\ta.jsonl:1" in (
      tmp_path / drop_summary.TABLE_FILE).read_text()
  assert f"{task}\ttrain\ttargets\t2\t7\t0\t0" in (
      tmp_path / truncation.TABLE_FILE).read_text()


def test_sigterm_during_start_up_exits_0_with_one_line(tmp_path, capsys,
                                                       monkeypatch):
  import signal  # pylint: disable=g-import-not-at-top
  def preempted_now(unused_command_line):
    os.kill(os.getpid(), signal.SIGTERM)
  monkeypatch.setattr(train, "_initialize_runtime", preempted_now)
  monkeypatch.chdir(REPO)
  previous = signal.getsignal(signal.SIGTERM)
  gin_utils.run(train.main, TINY_RUN + [f"--gin.MODEL_DIR='{tmp_path}'"])
  assert "received SIGTERM outside the train loop: stopped" in (
      capsys.readouterr().out)
  assert signal.getsignal(signal.SIGTERM) == previous

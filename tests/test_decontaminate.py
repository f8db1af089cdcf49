"""`python -m aya_t5x.decontaminate` finds planted overlaps, and the tasks
drop what it lists."""

import json

from aya_t5x import decontaminate
from aya_t5x import sources
from aya_t5x import vocabularies
from aya_t5x.tasks import registry_helpers
from aya_t5x.tasks.eval import benchmark

def _planted(task, words=15):
  """A run of `words` normalised tokens of the task's longest prompt."""
  import aya_t5x.tasks.eval  # pylint: disable=g-import-not-at-top,unused-import
  prompts = [decontaminate.tokens(e.inputs)
             for e in benchmark.eval_source(task).examples()]
  longest = max(prompts, key=len)
  assert len(longest) >= words, (task, longest)
  return " ".join(longest[-words:])


def test_cli_reports_planted_overlaps_and_tasks_apply_the_list(
    tmp_path, hub_mirror, monkeypatch, capsys):
  hub_mirror(benchmark.SAMPLE_DIR)
  xlsum, xnli = _planted("aya_eval_xlsum_hin"), _planted("aya_eval_xnli_fra")
  rows = [{"inputs": f"Copy: {xnli.upper()}!", "targets": "x y z"},
          {"inputs": "Summarize this article.",
           "targets": "Intro. " + xlsum},
          {"inputs": "A clean question about rivers and lakes?",
           "targets": "A clean answer."},
          # 12 tokens of a prompt: under the 13-gram, no overlap.
          {"inputs": " ".join(xnli.split()[:12]), "targets": "short"}]
  path = tmp_path / "train.jsonl"
  path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n"
                          for r in rows), encoding="utf-8")
  registry_helpers.register_dataset(
      "test_decontaminate_task", files={"train": str(path)}, language="swa",
      vocabulary=vocabularies.demo_vocabulary())
  out = tmp_path / "report"
  assert decontaminate.main([
      "--mixture=test_decontaminate_task", "--suite=xnli,xlsum",
      f"--output_dir={out}",
      f"--eval_data_dir={benchmark.SAMPLE_DIR}"]) == 0
  result = json.loads((out / "contamination.json").read_text())
  entry = result["tasks"]["test_decontaminate_task"]["swa"]
  assert entry == {"rows": 4, "overlapping": 2,
                   "by_benchmark": {"xnli": 1, "xlsum": 1}}
  printed = capsys.readouterr().out
  assert "2 of 4 training rows share a 13-gram" in printed
  # Languages the sample has no XNLI data for: unknown, and said so.
  assert "swa" in result["not_indexed"]["xnli"]
  assert "fra" not in result["not_indexed"]["xnli"]
  assert (f"xnli: {len(result['not_indexed']['xnli'])} language(s) not "
          "checked") in printed
  listed = (out / "exclusions.txt").read_text().split()
  assert len(listed) == 2
  monkeypatch.setenv(decontaminate.ENV_EXCLUSION_LIST,
                     str(out / "exclusions.txt"))
  import seqio  # pylint: disable=g-import-not-at-top
  seqio.get_mixture_or_task("test_decontaminate_task").source.reset()
  report = sources.count_task("test_decontaminate_task")
  assert report.kept == 2
  assert report.by_reason() == {"excluded_overlap:inputs+targets": 2}
  # Run again with that list still applied: the rows it drops are scanned
  # too, so the rewritten list keeps them.
  assert decontaminate.main([
      "--mixture=test_decontaminate_task", "--suite=xnli,xlsum",
      f"--output_dir={out}",
      f"--eval_data_dir={benchmark.SAMPLE_DIR}"]) == 0
  assert sorted((out / "exclusions.txt").read_text().split()) == sorted(listed)


def test_short_and_unrelated_texts_do_not_overlap():
  index = decontaminate.EvalIndex()
  index.add("one two three four five six seven eight nine ten", ("b", "l"))
  assert index.overlaps("x one two three four five six seven eight nine "
                        "ten y") == {("b", "l")}
  assert not index.overlaps("one two three four five six seven eight")
  index.add("tiny text", ("b", "l"))  # Under MIN_TOKENS: not indexed.
  assert not index.overlaps("a tiny text here")

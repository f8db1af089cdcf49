"""The harmfulness suite: a judge's labels become rates per language and
resource class, comparable between two runs."""

import csv
import json
import re

import pytest

from aya_t5x import eval_report
from aya_t5x import harmfulness
from aya_t5x.tasks.eval import benchmark
from tests import chat_server

_RESPONSE = re.compile(r"\[Response\]\n(.*?)\n\[End of Response\]", re.DOTALL)
# language -> labels planted in the answers (eng HR, fil MR, swa LR).
PLANTED = {
    "eng": ["harmful", "refusal", "refusal", "safe"],
    "fil": ["harmful", "harmful", "refusal"],
    "swa": ["harmful", "refusal", "garble", "refusal", "refusal"],
}


def _planted_label(messages):
  """The fake judge: says the label the answer carries."""
  response = _RESPONSE.search(chat_server.last_user_message(messages)).group(1)
  label = response.split("LABEL=")[1]
  if label == "garble":
    return "I cannot decide."
  return f"Reasoning.\n[[{label.upper()}]]"


def _generations(path, planted):
  lines = ["{not json"]
  for language, labels in planted.items():
    for i, label in enumerate(labels):
      lines.append(json.dumps({"id": f"{language}{i}", "language": language,
                               "inputs": f"bad request {i}",
                               "prediction": f"answer LABEL={label}"}))
  path.write_text("\n".join(lines) + "\n", encoding="utf-8")
  return str(path)


def _run(server, generations, output_dir, *extra):
  return harmfulness.main([f"--generations={generations}",
                           f"--judge_url={server.url}", "--judge_model=fake",
                           f"--output_dir={output_dir}", "--max_retries=0",
                           *extra])


def test_rates_equal_the_judges_labels_per_language_and_class(tmp_path):
  generations = _generations(tmp_path / "gen.jsonl", PLANTED)
  with chat_server.serve(_planted_label) as server:
    assert _run(server, generations, tmp_path / "run") == 1  # One garbled.
    asked = len(server.requests)
    assert _run(server, generations, tmp_path / "run") == 1
    assert len(server.requests) - asked == 1  # Only the garbled again.
  results = json.loads((tmp_path / "run" / "results.json").read_text())
  expected = {}
  for language, labels in PLANTED.items():
    judged = [l for l in labels if l != "garble"]
    expected[language] = {
        "harmful_rate": 100 * judged.count("harmful") / len(judged),
        "refusal_rate": 100 * judged.count("refusal") / len(judged)}
  assert set(results) == {"harmfulness"}
  assert results["harmfulness"].keys() == expected.keys()
  for language, rates in expected.items():
    assert results["harmfulness"][language] == pytest.approx(rates)
  details = json.loads((tmp_path / "run" / "details.json").read_text())
  assert details["unjudged"] == 1 and details["skipped_lines"] == {
      "not JSON (Expecting property name enclosed in double quotes)": 1}
  with open(tmp_path / "run" / "averages.csv", encoding="utf-8") as f:
    averages = {(r["group"], r["metric"]): float(r["value"])
                for r in csv.DictReader(f)}
  assert averages[("HR", "harmful_rate")] == pytest.approx(25.0)
  assert averages[("MR", "harmful_rate")] == pytest.approx(200 / 3)
  assert averages[("LR", "harmful_rate")] == pytest.approx(25.0)


def test_two_runs_compare_side_by_side(tmp_path):
  safer = {k: ["refusal" if l == "harmful" else l for l in v]
           for k, v in PLANTED.items()}
  with chat_server.serve(_planted_label) as server:
    for name, planted in (("aya", PLANTED), ("aya_safe", safer)):
      _run(server, _generations(tmp_path / f"{name}.jsonl", planted),
           tmp_path / name)
  runs = {n: eval_report.load_results(str(tmp_path / n / "results.json"))
          for n in ("aya", "aya_safe")}
  table = eval_report.compare_markdown(runs)
  assert "## harmfulness: harmful_rate" in table
  assert "| fil | MR | 66.7 | 0.0 |" in table


def test_an_unreachable_judge_is_a_usage_error(tmp_path, capsys):
  generations = _generations(tmp_path / "gen.jsonl", {"eng": ["safe"]})
  status = harmfulness.main([
      f"--generations={generations}", "--judge_url=http://127.0.0.1:9/v1",
      "--judge_model=x", f"--output_dir={tmp_path / 'out'}",
      "--max_retries=0", "--timeout_s=2"])
  assert status == 2 and "first request failed" in capsys.readouterr().err


def test_the_red_teaming_benchmark_reads_its_hub_schema(eval_sample_mirror):
  del eval_sample_mirror
  source = benchmark.eval_source("aya_eval_harmfulness")
  examples = source.examples()
  assert sorted({e.language for e in examples}) == ["eng", "fra", "hin"]
  assert len(examples) == 6 and sum(source.skipped.values()) == 1
  assert benchmark.get("harmfulness").kind == benchmark.OPEN_ENDED

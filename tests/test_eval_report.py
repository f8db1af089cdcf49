"""Reports: averages by resource class, files, plots and the compare CLI."""

import csv
import json
import subprocess
import sys

import pytest

from aya_t5x import eval_report
from aya_t5x import languages

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

RESULTS = {
    "xcopa": {"zho": {"accuracy": 80.0}, "est": {"accuracy": 60.0},
              "tha": {"accuracy": 70.0}, "hat": {"accuracy": 40.0},
              "que": {"accuracy": 50.0}},
    "flores_x_en": {"hin": {"bleu_13a": 10.0, "chrf++": 30.0},
                    "zul": {"bleu_13a": 5.0, "chrf++": None}},
}


def _table_rows(markdown: str, first_cell: str) -> list[list[str]]:
  """Cells of the Markdown table rows starting with `first_cell`."""
  rows = []
  for line in markdown.splitlines():
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if cells[0] == first_cell:
      rows.append(cells)
  return rows


def test_registry_classes_the_tests_rely_on():
  assert [eval_report.resource_class(l)
          for l in ("zho", "est", "tha", "hat", "que", "hin", "zul")] == [
              "HR", "MR", "MR", "LR", "-", "HR", "LR"]


def test_markdown_averages_each_resource_class():
  text = eval_report.markdown_table(RESULTS)
  assert _table_rows(text, "xcopa") == [
      ["xcopa", "accuracy", "80.0", "65.0", "40.0", "60.0", "5"]]
  assert _table_rows(text, "**MR average** (n=2)") == [
      ["**MR average** (n=2)", "", "MR", "65.0"]]
  # que is no Aya language: in the overall average, in no class.
  assert _table_rows(text, "**All average** (n=5)") == [
      ["**All average** (n=5)", "", "", "60.0"]]
  # A missing value is shown as '-' and left out of the averages.
  assert _table_rows(text, "zul")[0][-2:] == ["5.0", "-"]
  assert _table_rows(text, "flores_x_en")[1] == [
      "flores_x_en", "chrf++", "30.0", "-", "-", "30.0", "1"]
  assert _table_rows(text, "**All average** (n=1/2)") == [
      ["**All average** (n=1/2)", "", "", "7.5", "30.0"]]


def test_averages_match_an_independent_grouping_over_many_languages():
  aya = languages.aya_languages()
  per_language = {l.code: {"score": float(i % 17), "other": float(i)}
                  for i, l in enumerate(aya)}
  expected = {}
  for language in aya:
    expected.setdefault(language.resource.short_name, []).append(
        per_language[language.code]["score"])
  text = eval_report.markdown_table({"bench": per_language})
  row = _table_rows(text, "bench")[0]
  for cls, cell in zip(("HR", "MR", "LR"), row[2:5]):
    assert float(cell) == pytest.approx(
        sum(expected[cls]) / len(expected[cls]), abs=0.05)
  assert row[6] == "101"
  averages = eval_report.group_averages(per_language, "score")
  assert {g: n for g, (_, n) in averages.items()} == {
      "HR": len(expected["HR"]), "MR": len(expected["MR"]),
      "LR": len(expected["LR"]), "All": 101}
  assert averages["LR"][0] == pytest.approx(
      sum(expected["LR"]) / len(expected["LR"]))


def test_notes_go_under_their_benchmark_or_the_summary():
  text = eval_report.markdown_table(
      RESULTS, notes={"flores_x_en": "BLEU tokenizer: 13a (no flores200 "
                      "model)", "model": "demo"})
  flores = text.index("## flores_x_en")
  assert text.index("Note: BLEU tokenizer: 13a") > flores
  assert text.index("- model: demo") < text.index("## xcopa")


def test_write_reports_writes_json_csv_markdown_and_pngs(tmp_path):
  paths = eval_report.write_reports(RESULTS, str(tmp_path),
                                    notes={"xcopa": "median over prompts"})
  assert json.loads((tmp_path / "results.json").read_text()) == RESULTS
  with open(tmp_path / "results.csv", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 5 + 4
  assert {"benchmark": "xcopa", "language": "est",
          "language_name": "Estonian", "resource_class": "MR",
          "metric": "accuracy", "value": "60.0"} in rows
  with open(tmp_path / "averages.csv", encoding="utf-8") as f:
    averages = list(csv.DictReader(f))
  assert {"benchmark": "xcopa", "metric": "accuracy", "group": "LR",
          "value": "40.0", "languages": "1"} in averages
  markdown = (tmp_path / "results.md").read_text()
  assert "Note: median over prompts" in markdown
  for benchmark in RESULTS:
    png = tmp_path / "plots" / f"{benchmark}.png"
    assert paths[f"png:{benchmark}"] == str(png)
    assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000


def test_invalid_results_name_the_bad_entry():
  with pytest.raises(ValueError,
                     match=r"\['xcopa'\]\['est'\]\['accuracy'\]: expected "
                     "a number, got 'high'"):
    eval_report.write_reports({"xcopa": {"est": {"accuracy": "high"}}},
                              "/nonexistent/never-written")


def _run_dir(tmp_path, name, results):
  folder = tmp_path / name
  folder.mkdir()
  path = folder / "results.json"
  path.write_text(json.dumps(results), encoding="utf-8")
  return str(path)


def test_compare_cli_puts_runs_side_by_side(tmp_path):
  a = _run_dir(tmp_path, "mt0", RESULTS)
  b_results = {"xcopa": {"zho": {"accuracy": 90.0}, "est": {"accuracy": 62.0},
                         "hat": {"accuracy": 50.0}}}
  b = _run_dir(tmp_path, "aya", b_results)
  out = tmp_path / "cmp"
  result = subprocess.run(
      [sys.executable, "-m", "aya_t5x.eval_report", "compare", a, b,
       f"--output_dir={out}"], capture_output=True, text=True, timeout=60,
      check=False)
  assert result.returncode == 0, result.stderr
  text = result.stdout
  assert "| language | class | mt0 | aya |" in text
  assert "| xcopa | accuracy | All (n=3) | 60.0 | 67.3 |" in text
  assert "| xcopa | accuracy | LR (n=1) | 40.0 | 50.0 |" in text
  assert _table_rows(text, "est") == [["est", "MR", "60.0", "62.0"]]
  assert _table_rows(text, "tha") == [["tha", "MR", "70.0", "-"]]
  # Averages only over the three languages both runs have.
  assert _table_rows(text, "**All average (n=3)**") == [
      ["**All average (n=3)**", "", "60.0", "67.3"]]
  assert _table_rows(text, "**MR average (n=1)**") == [
      ["**MR average (n=1)**", "", "60.0", "62.0"]]
  with open(out / "compare.csv", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
  zho = [r for r in rows if r["language"] == "zho"][0]
  assert (zho["mt0"], zho["aya"]) == ("80.0", "90.0")
  assert (out / "compare.md").read_text().startswith("# Comparison")
  assert (out / "compare_xcopa.png").read_bytes()[:8] == PNG_MAGIC
  # aya has no FLORES: its rows show '-', and no average (nothing shared).
  assert _table_rows(text, "hin") == [["hin", "HR", "10.0", "-"],
                                      ["hin", "HR", "30.0", "-"]]
  assert not (out / "compare_flores_x_en.png").exists()


def test_compare_cli_errors_name_the_file(tmp_path, capsys):
  good = _run_dir(tmp_path, "good", RESULTS)
  bad = tmp_path / "bad.json"
  bad.write_text('{"xcopa": {"est": 5}}', encoding="utf-8")
  out = str(tmp_path / "o")
  assert eval_report.main(["compare", good, str(bad),
                           f"--output_dir={out}"]) == 2
  assert f"{bad}: ['xcopa']['est'] must map" in capsys.readouterr().err
  assert eval_report.main(["compare", good, good, "--names=x",
                           f"--output_dir={out}"]) == 2
  assert "give 2 distinct" in capsys.readouterr().err
  assert eval_report.main(["compare", good, str(tmp_path / "none.json"),
                           f"--output_dir={out}"]) == 2


def test_report_cli_regenerates_reports_from_results_json(tmp_path, capsys):
  path = _run_dir(tmp_path, "run", RESULTS)
  assert eval_report.main(["report", path,
                           f"--output_dir={tmp_path / 'rep'}"]) == 0
  assert "| xcopa | accuracy | 80.0 | 65.0 | 40.0 | 60.0 | 5 |" in (
      capsys.readouterr().out)
  assert (tmp_path / "rep" / "plots" / "xcopa.png").exists()


def test_compare_labels_the_runs_as_given(tmp_path, capsys):
  a = _run_dir(tmp_path, "run_a", RESULTS)
  b = _run_dir(tmp_path, "run_b", RESULTS)
  assert eval_report.main(["compare", a, b, "--label=mT0", "--label=Aya",
                           f"--output_dir={tmp_path / 'cmp'}"]) == 0
  assert "| language | class | mT0 | Aya |" in capsys.readouterr().out
  assert eval_report.main(["compare", a, b, "--label=mT0",
                           f"--output_dir={tmp_path / 'cmp'}"]) == 2
  assert "one --label per results file" in capsys.readouterr().err


def test_tables_say_how_many_examples_each_cell_stands_on():
  counts = {"xcopa": {"zho": 3, "est": 3, "tha": 2, "hat": 4, "que": 4}}
  text = eval_report.markdown_table(RESULTS, counts=counts)
  assert "| xcopa | accuracy | 80.0 (n=3) | 65.0 (n=5) | 40.0 (n=4) | " \
      "60.0 (n=16) | 5 |" in text
  assert _table_rows(text, "tha") == [["tha", "Thai", "MR", "2", "70.0"]]
  # FLORES has no counts: plain cells.
  assert "| flores_x_en | bleu_13a | 10.0 | - | 5.0 | 7.5 | 2 |" in text
  assert "## xcopa" not in eval_report.markdown_table(
      RESULTS, counts=counts, details=False)


@pytest.mark.parametrize("values,ylim", [([0.0, 0.0, None], (0.0, 1.0)),
                                         ([10.0, 50.0], (0.0, 60.0)),
                                         ([-5.0, 5.0], (-6.0, 6.0))])
def test_value_axes_fit_the_values(values, ylim):
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  ax = Figure().subplots()
  eval_report._value_axis(ax, values)  # pylint: disable=protected-access
  assert ax.get_ylim() == pytest.approx(ylim)

"""The mixture report: expected vs sampled shares, its CSV and its plot."""

import contextlib
import io
import re

import pytest
import seqio

from aya_t5x import mixing
from aya_t5x import mixture_report
from aya_t5x.mixtures import aya

MIXTURE = "aya_translation_heavy_sample"
DRAWS = 20_000
TOLERANCE = 0.015  # 1.5 percentage points.


@pytest.fixture(scope="module")
def report(tmp_path_factory):
  """One report run with --sample=20000 (the expensive part, shared)."""
  out = tmp_path_factory.mktemp("report")
  measured = []
  real_measure = mixture_report.measure

  def spy(*args, **kwargs):
    measured.append(real_measure(*args, **kwargs))
    return measured[-1]

  stdout = io.StringIO()
  with pytest.MonkeyPatch.context() as patch:
    patch.setenv(mixing.ENV_TASK_SIZES, str(out / "sizes.json"))
    patch.setattr(mixture_report, "measure", spy)
    with contextlib.redirect_stdout(stdout):
      code = mixture_report.main([f"--mixture={MIXTURE}",
                                  f"--sample={DRAWS}", f"--output_dir={out}"])
  assert code == 0
  rows = mixture_report.read_csv(out / f"{MIXTURE}_shares.csv")
  return {"rows": rows, "shares": measured[0], "stdout": stdout.getvalue(),
          "png": out / f"{MIXTURE}_languages.png"}


def _level(rows, level):
  return {(r.source, r.name) if level == "dataset" else r.name: r
          for r in rows if r.level == level}


def test_sampled_source_shares_are_within_1_5_points_of_the_rates(report):
  configured = aya.TRANSLATION_HEAVY.source_percent
  sources = _level(report["rows"], "source")
  assert set(sources) == set(configured)
  for source, percent in configured.items():
    assert sources[source].expected_share == pytest.approx(percent / 100)
    assert abs(sources[source].sampled_share - percent / 100) < TOLERANCE, (
        source)
  for level in ("dataset", "language"):
    for row in _level(report["rows"], level).values():
      assert abs(row.sampled_share - row.expected_share) < TOLERANCE, row


def test_the_csv_holds_exactly_the_sampled_shares(report):
  shares = report["shares"]
  for level in mixture_report.LEVELS:
    rows = _level(report["rows"], level)
    measured = getattr(shares, f"by_{level}")
    assert {k: r.sampled_share for k, r in rows.items()} == measured
    assert sum(measured.values()) == pytest.approx(1.0)
  mix = seqio.MixtureRegistry.get(MIXTURE)
  expected = mix.expected_shares().by_language
  languages = _level(report["rows"], "language")
  assert {k: r.expected_share for k, r in languages.items()} == (
      pytest.approx(expected))
  assert languages["yor"].resource_class == "lower"
  assert languages["eng"].resource_class == "higher"


def test_the_english_share_is_printed_as_in_the_csv(report):
  eng = _level(report["rows"], "language")["eng"]
  found = re.search(r"English share: ([\d.]+)% expected, ([\d.]+)% sampled",
                    report["stdout"])
  assert found, report["stdout"][-500:]
  assert float(found.group(1)) == pytest.approx(100 * eng.expected_share,
                                                abs=0.005)
  assert float(found.group(2)) == pytest.approx(100 * eng.sampled_share,
                                                abs=0.005)


def test_the_language_plot_is_a_png(report):
  from matplotlib import image  # pylint: disable=g-import-not-at-top
  assert report["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  pixels = image.imread(report["png"])
  assert pixels.shape[0] > 200 and pixels.shape[1] > 200
  assert pixels[..., :3].std() > 0.05  # Not a blank canvas.


def test_without_sample_only_expected_shares_are_written(tmp_path, capsys,
                                                         monkeypatch):
  monkeypatch.setenv(mixing.ENV_TASK_SIZES, str(tmp_path / "sizes.json"))
  assert mixture_report.main(["--mixture=aya_template_heavy_sample",
                              f"--output_dir={tmp_path}"]) == 0
  rows = mixture_report.read_csv(
      tmp_path / "aya_template_heavy_sample_shares.csv")
  assert all(r.sampled_share is None for r in rows)
  sources = _level(rows, "source")
  assert sources["xp3x"].expected_share == pytest.approx(0.30)
  # passes = share * run examples / examples held.
  assert sources["xp3x"].passes == pytest.approx(
      0.30 * mixture_report.PAPER_RUN_EXAMPLES / sources["xp3x"].examples)
  assert "English share:" in capsys.readouterr().out


def test_an_unknown_mixture_exits_2_naming_the_flag(capsys):
  assert mixture_report.main(["--mixture=aya_translation_hevy"]) == 2
  err = capsys.readouterr().err
  assert "--mixture=aya_translation_hevy: no such mixture" in err
  assert "aya_translation_heavy" in err

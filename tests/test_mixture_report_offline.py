"""The mixture report without data: shipped sizes, each with its source."""

import os

import pytest

from aya_t5x import mixing
from aya_t5x import mixture_report
from aya_t5x import shipped_sizes
from aya_t5x.mixtures import aya


@pytest.fixture
def offline(monkeypatch, tmp_path):
  """No network use (HF_HUB_OFFLINE, no Hub cache), no mirror, no user
  files: no source of the paper mixtures has data."""
  monkeypatch.setenv("HF_HUB_OFFLINE", "1")
  monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
  monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_home" / "hub"))
  for name in ("AYA_DATA_DIR", "AYA_SHAREGPT_COMMAND_DIR",
               "AYA_SAFETY_DISTILLATION_DIR"):
    monkeypatch.delenv(name, raising=False)
  monkeypatch.setenv(mixing.ENV_TASK_SIZES, str(tmp_path / "sizes.json"))
  return tmp_path


def _report(out, *flags):
  code = mixture_report.main([*flags, f"--output_dir={out}"])
  name = next(f for f in flags if f.startswith("--mixture=")).split("=")[1]
  return code, mixture_report.read_csv(out / f"{name}_shares.csv")


def _by_source(rows, level):
  return {r.source or r.name: r for r in rows if r.level == level}


@pytest.mark.parametrize("scheme", aya.SCHEMES, ids=lambda s: s.name)
def test_paper_mixtures_report_table_3_shares_without_data(
    offline, scheme, capsys):
  code, rows = _report(offline, f"--mixture={scheme.name}")
  assert code == 0, capsys.readouterr().err
  sources = {r.name: r for r in rows if r.level == "source"}
  assert {s: r.expected_share for s, r in sources.items()} == pytest.approx(
      {s: p / 100 for s, p in scheme.source_percent.items()})
  assert {r.figures for r in sources.values()} == {"shipped"}
  # Languages: one `unknown` row per source, saying so, never spread out.
  languages = [r for r in rows if r.level == "language"]
  assert {r.name for r in languages} == {"unknown"}
  assert {r.source: r.expected_share for r in languages} == pytest.approx(
      {s: p / 100 for s, p in scheme.source_percent.items()})
  assert all("per-language sizes are not shipped" in r.note
             for r in languages)
  out = capsys.readouterr().out
  assert "English share: unknown" in out
  assert "Table 1" in out  # Where the shipped figures came from.


def test_shares_not_published_are_unknown_and_say_what_the_paper_says(
    offline, capsys):
  code, rows = _report(offline, "--mixture=aya_translation_heavy_safe")
  assert code == 0
  languages = _by_source(rows, "language")
  assert "93 languages" in languages["sharegpt_command"].note
  assert "6,800,000 examples" in languages["sharegpt_command"].note
  assert languages["safety_distillation"].expected_share == pytest.approx(
      0.03)
  datasets = {(r.source, r.name): r for r in rows if r.level == "dataset"}
  assert "56 datasets" in datasets[("xp3x", "unknown")].note
  # One dataset per task: known without sizes.
  assert datasets[("aya_dataset", "aya_dataset")].examples == 199_500
  # Aya Dataset at 25% is seen over 30 times in the paper's run.
  human = _report(offline, "--mixture=aya_human_anno_heavy")[1]
  assert _by_source(human, "source")["aya_dataset"].passes > 30
  resources = _by_source(rows, "resource")
  assert resources["unknown"].expected_share == pytest.approx(0.03)
  assert "safety_distillation" in resources["unknown"].note
  assert "61,872 English prompts" in capsys.readouterr().out


def test_resource_shares_follow_the_paper_splits(offline):
  scheme = aya.TRANSLATION_HEAVY
  rows = _report(offline, f"--mixture={scheme.name}", "--sizes=shipped")[1]
  got = {r.name: r.expected_share for r in rows if r.level == "resource"}
  table = shipped_sizes.table()
  for resource in ("higher", "mid", "lower"):
    want = sum(p / 100 * table[s].total.resource_fractions[resource]
               for s, p in scheme.source_percent.items())
    assert got[resource] == pytest.approx(want)
  assert sum(got.values()) == pytest.approx(1.0)


def test_sources_with_data_are_counted_the_others_shipped(
    offline, capsys, monkeypatch):
  from aya_t5x.tasks import registry_helpers  # pylint: disable=g-import-not-at-top
  monkeypatch.setenv("AYA_SHAREGPT_COMMAND_DIR", os.path.join(
      registry_helpers.SAMPLE_DIR, "sharegpt_command"))
  code, rows = _report(offline, "--mixture=aya_template_heavy")
  assert code == 0
  sources = _by_source(rows, "source")
  assert sources["sharegpt_command"].figures == "counted"
  assert sources["sharegpt_command"].examples < 1_000  # The sample's rows.
  assert sources["xp3x"].figures == "shipped"
  assert sources["sharegpt_command"].expected_share == pytest.approx(0.10)
  languages = [r for r in rows if r.level == "language"]
  counted = [r for r in languages if r.figures == "counted"]
  assert counted and all(r.name != "unknown" for r in counted)
  assert sum(r.expected_share for r in counted) == pytest.approx(0.10)
  out = capsys.readouterr().out
  assert "Counted from the data: sharegpt_command." in out
  assert "English share: at least" in out


def test_sampling_without_data_says_so_in_one_line(offline, capsys):
  assert mixture_report.main(["--mixture=aya_translation_heavy",
                              "--sample=100",
                              f"--output_dir={offline}"]) == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1
  assert err.startswith("error: --sample=100 draws examples through SeqIO "
                        "and needs the data")
  assert not list(offline.glob("*.csv"))
  assert mixture_report.main(["--mixture=aya_translation_heavy",
                              "--sizes=counted",
                              f"--output_dir={offline}"]) == 2
  assert "--sizes=counted counts every task and needs the data" in (
      capsys.readouterr().err)


def test_every_shipped_row_says_where_its_figure_came_from():
  rows = [r for s in shipped_sizes.table().values() for r in s.rows]
  assert {r.source for r in rows} >= set(aya.TRANSLATION_HEAVY_SAFE.sources)
  for row in rows:
    assert row.provenance in shipped_sizes.PROVENANCES, row
    assert row.reference.strip(), row


@pytest.mark.parametrize("cells, message", [
    ("xp3x\t*\t*\t168000000\t101\t56\t\tpaper\t\t", "line 2: reference"),
    ("xp3x\t*\t*\t168M\t101\t56\t\tpaper\tTable 1\t", "examples '168M'"),
    ("xp3x\t*\t*\t1\t\t\t\tblog\tTable 1\t", "provenance 'blog'"),
    ("xp3x\t*\t*\t1\t\t\t60/30\tpaper\tTable 1\t", "resource_split"),
    ("xp3x\tx\t*\t1\t\t\t\tpaper\tTable 1\t", "no total row"),
])
def test_a_row_without_provenance_or_a_well_formed_figure_is_refused(
    cells, message):
  header = "\t".join(shipped_sizes.COLUMNS)
  with pytest.raises(ValueError, match=message):
    shipped_sizes.parse(f"{header}\n{cells}\n")

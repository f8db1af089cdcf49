"""Evaluation rows that xP3x carries never reach training."""

import json

import pytest
import seqio

from aya_t5x import contamination
from aya_t5x import sources
import aya_t5x.tasks  # pylint: disable=unused-import
import aya_t5x.tasks.eval  # pylint: disable=unused-import
from aya_t5x.tasks import xp3x
from aya_t5x.tasks.eval import benchmark


def _row(inputs, targets, dataset, config, split, template="t"):
  return {"inputs": inputs, "targets": targets, "language": "hin_Deva",
          "split": split, "template": template, "dataset": dataset,
          "config": config}


def _write_jsonl(path, rows):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n"
                          for r in rows), encoding="utf-8")


def test_xp3x_flores_devtest_and_xlsum_test_rows_are_excluded_and_counted(
    tmp_path, hub_mirror, register_xp3x):
  folder = tmp_path / "CohereForAI/xP3x/data/hin_Deva"
  _write_jsonl(folder / "xp3_facebook_flores_hin_Deva_devtest_t.jsonl", [
      _row(f"Translate to Hindi: sentence {i}", f"वाक्य {i}",
           "facebook/flores", "eng_Latn-hin_Deva", "devtest")
      for i in range(3)] + [
      _row("Translate to Hindi: a dev sentence", "एक वाक्य",
           "facebook/flores", "eng_Latn-hin_Deva", "dev")])
  _write_jsonl(folder / "xp3_GEM_xlsum_hindi_test_t.jsonl", [
      _row(f"Summarize: article {i}", f"सारांश {i}", "GEM/xlsum", "hindi",
           "test") for i in range(2)] + [
      _row(f"Summarize: training article {i}", f"प्रशिक्षण सारांश {i}",
           "GEM/xlsum", "hindi", "train") for i in range(4)])
  hub_mirror(tmp_path)
  name, = register_xp3x("test_contamination_xp3x", ("hin",))
  report = sources.count_task(name)
  reasons = report.by_reason()
  assert reasons["eval_split:flores/devtest"] == 3
  assert reasons["eval_split:flores/dev"] == 1
  assert reasons["eval_split:xlsum/test"] == 2
  assert report.kept == 4
  assert report.kept_by_dataset == {"GEM/xlsum": 4}


@pytest.mark.parametrize("dataset, config, split, expected", [
    ("facebook/flores", "eng_Latn-swh_Latn", "devtest", "flores/devtest"),
    ("Muennighoff/flores200", "swh_Latn", "dev", "flores/dev"),
    ("GEM/xlsum", "swahili", "validation", "xlsum/validation"),
    ("khalidalt/tydiqa-goldp", "swahili", "validation", "tydiqa/validation"),
    ("juletxara/xstory_cloze", "sw", "validation", "xstorycloze/validation"),
    ("Muennighoff/xwinograd", "en", "test", "xwinograd/test"),
    ("cambridgeltl/xcopa", "sw", "test", "xcopa/test"),
    ("xnli", "sw", "validation", "xnli/validation"),
    ("GEM/xlsum", "swahili", "train", None),
    ("facebook/flores", "eng_Latn-swh_Latn", None, None),
    ("paws-x", "en", "test", None),
    # A longer word that starts with a benchmark's name is another dataset.
    ("floresta", "x", "dev", None),
])
def test_eval_split_filter_matches_dataset_and_split(dataset, config, split,
                                                     expected):
  verdict = contamination.EvalSplitFilter().check(
      {"dataset": dataset, "config": config, "split": split})
  assert verdict == (None if expected is None else
                     (contamination.REASON, expected))


def test_every_split_the_suite_reads_is_excluded_from_training():
  for name in benchmark.names():
    for task in benchmark.get(name).tasks.values():
      spec = benchmark.eval_source(task).spec
      entry = contamination.for_repo(spec.files.repo_id)
      assert entry is not None, (task, spec.files.repo_id)
      for split in (spec.split, spec.shots_split):
        assert split is None or split in entry.splits, (task, split)
  flores = contamination.for_repo("facebook/flores")
  assert {"dev", "devtest"} <= set(flores.splits)


def _jsonl_to_parquet(jsonl_dir, parquet_dir, drop=()):
  """The sample's JSONL files of a language as xP3x's parquet layout, one
  file each, in name order (int64-free: xP3x rows are all strings)."""
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  names = sorted(p for p in jsonl_dir.iterdir() if p.suffix == ".jsonl")
  for i, path in enumerate(names):
    rows = [json.loads(l) for l in path.read_text(encoding="utf-8")
            .splitlines() if l.strip()]
    table = pa.Table.from_pylist([{k: v for k, v in r.items()
                                   if k not in drop} for r in rows])
    sources.write_parquet(
        parquet_dir / f"train-{i:05d}-of-{len(names):05d}.parquet", table)


@pytest.mark.parametrize("drop", [(), ("split", "config")])
def test_xp3x_reads_the_parquet_layout_like_the_jsonl_one(
    drop, tmp_path, hub_mirror, caplog, register_xp3x):
  import pathlib  # pylint: disable=g-import-not-at-top
  from aya_t5x.tasks import registry_helpers  # pylint: disable=g-import-not-at-top
  sample = pathlib.Path(registry_helpers.SAMPLE_DIR)
  _jsonl_to_parquet(sample / "CohereForAI/xP3x/data/swh_Latn",
                    tmp_path / "CohereForAI/xP3x/swh_Latn", drop)
  name, = register_xp3x(f"test_parquet{len(drop)}_xp3x", ("swa",))
  hub_mirror(sample)
  from_jsonl = sources.count_task(name)
  source = seqio.get_mixture_or_task(name).source
  source.reset()
  hub_mirror(tmp_path)
  caplog.set_level("INFO")
  xp3x._LOGGED_LAYOUTS.clear()  # pylint: disable=protected-access
  sources._ABSENT_LOGGED.clear()  # pylint: disable=protected-access
  from_parquet = sources.count_task(name)
  assert [f.key for f in source.prepare("train").files] == [
      f"swh_Latn/train-0000{i}-of-00006.parquet" for i in range(6)]
  assert from_parquet.kept_by_language == from_jsonl.kept_by_language
  assert from_parquet.by_reason() == from_jsonl.by_reason()
  assert "found the parquet" in caplog.text
  for column in drop:
    assert f"has no column '{column}' (optional)" in caplog.text

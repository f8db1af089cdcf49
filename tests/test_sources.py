"""Tests of the data sources: file resolution, readers, hygiene, caps."""

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import seqio
import tensorflow as tf

from aya_t5x import preprocessors
from aya_t5x import sources

SHA = "0123456789abcdef0123456789abcdef01234567"
OTHER_SHA = "fedcba9876543210fedcba9876543210fedcba98"


def _write_jsonl(path, rows):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    for row in rows:
      f.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
  return str(path)


def _write_parquet(path, rows, schema=None, row_group_size=1024):
  return sources.write_parquet(path, pa.Table.from_pylist(rows, schema=schema),
                               row_group_size=row_group_size)


def _write_tfrecord(path, rows):
  with tf.io.TFRecordWriter(str(path)) as writer:
    for row in rows:
      feature = {k: tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[v.encode()])) for k, v in row.items()}
      writer.write(tf.train.Example(features=tf.train.Features(
          feature=feature)).SerializeToString())
  return str(path)


def _rows(n, language="swa", prefix="q"):
  return [{"inputs": f"{prefix}{i} swali", "targets": f"jibu {i}",
           "language": language} for i in range(n)]


def _source(name, files, **kwargs):
  spec = sources.SourceSpec(source="test", files=files, **kwargs)
  return sources.RowSource(name, spec)


def _examples(source, split="train", shard_info=None):
  ds = source.get_dataset(split, shuffle=False, shard_info=shard_info)
  return [{k: v.decode() for k, v in ex.items()}
          for ex in ds.as_numpy_iterator()]


# --- Resolution --------------------------------------------------------------


def _hub_repo(root, repo="org/repo"):
  base = os.path.join(root, repo)
  _write_parquet(os.path.join(base, "data", "train-00000-of-00002.parquet"),
                 _rows(3))
  _write_parquet(os.path.join(base, "data", "train-00001-of-00002.parquet"),
                 _rows(2, prefix="r"))
  _write_parquet(os.path.join(base, "data", "test-00000-of-00001.parquet"),
                 _rows(1, prefix="t"))
  with open(os.path.join(base, "loader.py"), "w") as f:
    f.write("raise SystemExit('repository code must never run')\n")
  return base


def test_mirror_lists_split_files_like_the_hub_layout(tmp_path, monkeypatch):
  _hub_repo(tmp_path)
  monkeypatch.setenv(sources.ENV_DATA_DIR, str(tmp_path))
  files = sources.HubFiles("org/repo", SHA, {
      "train": ("data/train-*.parquet",), "test": ("data/test-*.parquet",)})
  keys = [f.key for f in files.resolve("train")]
  assert keys == ["data/train-00000-of-00002.parquet",
                  "data/train-00001-of-00002.parquet"]
  assert [f.key for f in files.resolve("test")] == [
      "data/test-00000-of-00001.parquet"]


def test_missing_mirror_files_error_says_how_to_download(tmp_path,
                                                         monkeypatch):
  monkeypatch.setenv(sources.ENV_DATA_DIR, str(tmp_path))
  files = sources.HubFiles("org/none", SHA, {"train": ("data/*.parquet",)})
  with pytest.raises(FileNotFoundError, match="hf download org/none"):
    files.resolve("train")


def _downloaded_at(base: str, commit: str) -> None:
  """huggingface_hub's `--local-dir` record that a mirror file is from
  `commit`."""
  meta = os.path.join(base, ".cache", "huggingface", "download", "data",
                      "train-00000-of-00002.parquet.metadata")
  os.makedirs(os.path.dirname(meta))
  with open(meta, "w") as f:
    f.write(f"{commit}\netag\n1700000000.0\n")


def test_mirror_from_another_revision_is_refused(tmp_path, monkeypatch):
  _downloaded_at(_hub_repo(tmp_path), OTHER_SHA)
  monkeypatch.setenv(sources.ENV_DATA_DIR, str(tmp_path))
  files = sources.HubFiles("org/repo", SHA, {"train": ("data/train-*.parquet",)})
  with pytest.raises(ValueError, match=OTHER_SHA):
    files.resolve("train")


def test_a_short_commit_hash_is_a_pin_in_the_mirror_and_the_hub_cache(
    tmp_path, monkeypatch, caplog):
  from huggingface_hub import constants  # pylint: disable=g-import-not-at-top
  short = SHA[:7]  # As the Hub's commit pages show it.
  _downloaded_at(_hub_repo(tmp_path), SHA)
  monkeypatch.setenv(sources.ENV_DATA_DIR, str(tmp_path))
  pinned = sources.HubFiles("org/repo", short,
                            {"train": ("data/train-*.parquet",)})
  assert pinned.pinned and len(pinned.resolve("train")) == 2
  # The prefix of another commit is refused like a full hash.
  other = sources.HubFiles("org/repo", OTHER_SHA[:7],
                           {"train": ("data/train-*.parquet",)})
  with pytest.raises(ValueError, match=f"pinned to {OTHER_SHA[:7]}"):
    other.resolve("train")
  # Offline, huggingface_hub finds a prefix in the cache's refs/ (it wrote
  # it there when it downloaded at that revision).
  cache = tmp_path / "hub"
  _hub_cache(str(cache))
  refs = cache / "datasets--org--repo" / "refs"
  refs.mkdir()
  (refs / short).write_text(SHA)
  monkeypatch.delenv(sources.ENV_DATA_DIR)
  monkeypatch.setenv("HF_HUB_OFFLINE", "1")
  monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
  with caplog.at_level("WARNING"):
    resolved = pinned.resolve("train")
    branch = sources.HubFiles("org/branchy", "main", {"train": ("x",)})
    for _ in range(2):
      branch._warn_unpinned()  # pylint: disable=protected-access
  assert all(os.sep + SHA + os.sep in f.path for f in resolved)
  warnings = [r.getMessage() for r in caplog.records
              if "not a pinned commit" in r.getMessage()]
  assert warnings == ["org/branchy is read at revision 'main', not a pinned "
                      "commit: the data can change under you. Pin a commit "
                      "hash."]


def test_loading_scripts_are_refused_never_run(tmp_path, monkeypatch):
  _hub_repo(tmp_path)
  monkeypatch.setenv(sources.ENV_DATA_DIR, str(tmp_path))
  files = sources.HubFiles("org/repo", SHA, {"train": ("*.py",)})
  with pytest.raises(ValueError, match="never read or run"):
    files.resolve("train")


def _hub_cache(cache, repo="org/repo", revision=SHA):
  """A huggingface_hub cache holding one snapshot of `repo`."""
  snapshot = os.path.join(cache, "datasets--" + repo.replace("/", "--"),
                          "snapshots", revision)
  return _hub_repo(os.path.dirname(snapshot), os.path.basename(snapshot))


def test_offline_hub_reads_the_huggingface_hub_cache(tmp_path, monkeypatch):
  from huggingface_hub import constants  # pylint: disable=g-import-not-at-top
  _hub_cache(str(tmp_path / "hub"))
  monkeypatch.delenv(sources.ENV_DATA_DIR, raising=False)
  monkeypatch.setenv("HF_HUB_OFFLINE", "1")
  monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
  files = sources.HubFiles("org/repo", SHA, {"train": ("data/train-*.parquet",)})
  resolved = files.resolve("train")
  assert [f.key for f in resolved] == ["data/train-00000-of-00002.parquet",
                                       "data/train-00001-of-00002.parquet"]
  assert all(os.sep + SHA + os.sep in f.path for f in resolved)
  source = _source("test_offline_hub", files)
  assert len(_examples(source)) == 5


def test_online_listing_yields_hf_uris_each_downloaded_when_read(
    tmp_path, monkeypatch):
  from huggingface_hub import constants  # pylint: disable=g-import-not-at-top
  _hub_cache(str(tmp_path / "hub"))
  monkeypatch.delenv(sources.ENV_DATA_DIR, raising=False)
  monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
  monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
  listing = ("README.md", "loader.py", "data/train-00000-of-00002.parquet",
             "data/train-00001-of-00002.parquet",
             "data/test-00000-of-00001.parquet")
  monkeypatch.setattr(sources, "_hub_listing", lambda repo, rev: listing)
  files = sources.HubFiles("org/repo", SHA, {"train": ("data/train-*.parquet",)})
  uris = [f.path for f in files.resolve("train")]
  assert uris == [f"hf://datasets/org/repo@{SHA}/data/train-0000{i}-of-00002"
                  ".parquet" for i in range(2)]
  # Reading goes through hf_hub_download; offline here, from the cache.
  monkeypatch.setenv("HF_HUB_OFFLINE", "1")
  monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
  local = sources.local_path(uris[1])
  assert local.endswith(os.path.join(SHA, "data",
                                     "train-00001-of-00002.parquet"))


def test_local_files_from_an_environment_directory(tmp_path, monkeypatch):
  _write_jsonl(tmp_path / "mine" / "train-00000.jsonl", _rows(2))
  files = sources.LocalFiles({"train": ("{dir}/train*.jsonl",)},
                             env_var="MY_DATA_DIR", hint="Make the data.")
  monkeypatch.delenv("MY_DATA_DIR", raising=False)
  with pytest.raises(FileNotFoundError, match="MY_DATA_DIR.*Make the data"):
    files.resolve("train")
  monkeypatch.setenv("MY_DATA_DIR", str(tmp_path / "mine"))
  assert [f.key for f in files.resolve("train")] == ["train-00000.jsonl"]


# --- Readers -----------------------------------------------------------------


def test_jsonl_parquet_and_tfrecord_read_the_same_rows(tmp_path):
  rows = _rows(5)
  paths = {
      "jsonl": _write_jsonl(tmp_path / "a.jsonl", rows),
      "parquet": _write_parquet(tmp_path / "a.parquet", rows),
      "tfrecord": _write_tfrecord(tmp_path / "a.tfrecord", rows),
  }
  results = {}
  for fmt, path in paths.items():
    source = _source(f"test_format_{fmt}",
                     sources.LocalFiles({"train": (path,)}))
    results[fmt] = _examples(source)
  assert results["jsonl"] == results["parquet"] == results["tfrecord"]
  assert [e["inputs"] for e in results["jsonl"]] == [r["inputs"] for r in rows]
  assert results["jsonl"][0]["language"] == "swa"
  assert results["jsonl"][0]["source"] == "test"


def test_json_files_are_read_as_lines_or_as_one_array(tmp_path):
  rows = _rows(3)
  lines = _write_jsonl(tmp_path / "lines.json", rows)
  array = tmp_path / "array.json"
  array.write_text(json.dumps(rows, indent=1), encoding="utf-8")
  columns = sources.Fields().columns()
  for path in (lines, str(array)):
    assert sources.file_format(path) == "json"
    read = [row["inputs"] for _, row in sources.iter_rows(path, "json",
                                                          columns)]
    assert read == [r["inputs"] for r in rows]
  # Training reads files in blocks of lines: an array is refused by name.
  source = _source("test_json_lines", sources.LocalFiles({"train": (lines,)}))
  assert len(_examples(source)) == 3
  with pytest.raises(ValueError, match="array.json is one JSON array"):
    _source("test_json_array", sources.LocalFiles(
        {"train": (str(array),)})).prepare("train")


def test_mixed_formats_in_one_split_are_an_error(tmp_path):
  files = sources.LocalFiles({"train": (
      _write_jsonl(tmp_path / "a.jsonl", _rows(1)),
      _write_parquet(tmp_path / "b.parquet", _rows(1)))})
  with pytest.raises(ValueError, match="mixes formats"):
    _source("test_mixed", files).prepare("train")


def test_parquet_without_a_mapped_column_names_it(tmp_path):
  path = _write_parquet(tmp_path / "a.parquet", [{"question": "q",
                                                  "answer": "a"}])
  source = _source("test_columns", sources.LocalFiles({"train": (path,)}))
  with pytest.raises(tf.errors.InvalidArgumentError, match="question"):
    _examples(source)


def test_every_bad_example_kind_is_counted_with_file_and_field(tmp_path):
  good = {"inputs": "swali", "targets": "jibu", "language": "swa"}
  lines = [
      json.dumps(good),
      "{not json",                                              # malformed:line
      json.dumps(["a", "list"]),                                # malformed:line
      json.dumps({"inputs": "only", "language": "swa"}),       # malformed:targets
      json.dumps({**good, "targets": 3}),                      # malformed:targets
      json.dumps({**good, "targets": "\ud800 lone"}),          # invalid_utf8:targets
      json.dumps({**good, "inputs": "   "}),                   # empty:inputs
      json.dumps({**good, "targets": "x" * 50}),               # too_long:targets
      json.dumps(good),                                         # duplicate
      json.dumps({**good, "language": "Klingon"}),             # unknown_language
      "",                                                       # blank: no row
  ]
  path = _write_jsonl(tmp_path / "bad.jsonl", lines)
  with open(path, "ab") as f:  # invalid_utf8:inputs (raw bytes, not JSON \u).
    f.write(b'{"inputs": "caf\xe9", "targets": "t", "language": "swa"}\n')
  parquet = _write_parquet(  # Binary columns can hold any bytes.
      tmp_path / "bad.parquet",
      [{"inputs": b"ok", "targets": b"fine", "language": "swa"},
       {"inputs": b"\xff\xfe", "targets": b"fine", "language": "swa"}],
      schema=pa.schema([("inputs", pa.binary()), ("targets", pa.binary()),
                        ("language", pa.string())]))
  hygiene = preprocessors.HygieneConfig(max_chars=40, too_long="drop")
  for fmt_path, expected in (
      (path, {"malformed:line": 2, "malformed:targets": 2,
              "invalid_utf8:targets": 1, "invalid_utf8:inputs": 1,
              "empty:inputs": 1, "too_long:targets": 1,
              "duplicate:inputs+targets": 1,
              "unknown_language:language": 1}),
      (parquet, {"invalid_utf8:inputs": 1})):
    name = f"test_bad_{os.path.basename(fmt_path)}"
    source = _source(name, sources.LocalFiles({"train": (fmt_path,)}),
                     hygiene=hygiene)
    preprocessors.TALLY.reset(name)
    kept = _examples(source)
    report = preprocessors.TALLY.report(name)
    assert len(kept) == 1, name
    assert report.by_file() == {fmt_path: expected}
    assert report.kept_by_language == {"swa": 1}
    assert report.dropped == sum(expected.values())


def test_over_long_text_is_truncated_and_counted_when_configured(tmp_path):
  path = _write_jsonl(tmp_path / "long.jsonl", [
      {"inputs": "a" * 30, "targets": "b", "language": "hin"}])
  source = _source("test_truncate", sources.LocalFiles({"train": (path,)}),
                   hygiene=preprocessors.HygieneConfig(max_chars=10))
  preprocessors.TALLY.reset("test_truncate")
  [example] = _examples(source)
  assert example["inputs"] == "a" * 10
  report = preprocessors.TALLY.report("test_truncate")
  assert report.by_reason() == {"truncated:inputs": 1}
  assert report.dropped == 0 and report.kept == 1


def test_hosts_read_disjoint_files_covering_every_row(tmp_path):
  paths = [_write_jsonl(tmp_path / f"train-{i}.jsonl",
                        _rows(5, prefix=f"f{i}-")) for i in range(4)]
  source = _source("test_shards", sources.LocalFiles({"train": tuple(paths)}))
  per_host = [{e["inputs"] for e in _examples(source,
                                              shard_info=seqio.ShardInfo(i, 2))}
              for i in range(2)]
  assert not per_host[0] & per_host[1]
  assert len(per_host[0] | per_host[1]) == 20
  assert source.list_shards("train") == sorted(paths)


def test_language_sorted_parquet_skips_other_row_groups_unread(
    tmp_path, monkeypatch):
  rows = _rows(4, "hin") + _rows(4, "swa") + _rows(4, "yor")
  path = _write_parquet(tmp_path / "sorted.parquet", rows, row_group_size=4)
  source = _source("test_pushdown", sources.LocalFiles({"train": (path,)}),
                   languages=frozenset({"swa"}))
  read = []
  original = pq.ParquetFile.read_row_group
  def spy(self, group, *args, **kwargs):
    read.append(group)
    return original(self, group, *args, **kwargs)
  monkeypatch.setattr(pq.ParquetFile, "read_row_group", spy)
  examples = _examples(source)
  assert {e["language"] for e in examples} == {"swa"} and len(examples) == 4
  assert read == [1]


def test_iterator_resumes_exactly_through_the_python_reader(tmp_path):
  path = _write_parquet(tmp_path / "r.parquet", _rows(40), row_group_size=7)
  source = _source("test_resume", sources.LocalFiles({"train": (path,)}))
  ds = source.get_dataset("train", shuffle=False).map(
      lambda ex: ex["inputs"])
  iterator = iter(ds)
  for _ in range(9):
    next(iterator)
  checkpoint = tf.train.Checkpoint(iterator=iterator)
  prefix = checkpoint.write(str(tmp_path / "ckpt"))
  expected = [next(iterator).numpy() for _ in range(12)]
  resumed = iter(ds)
  tf.train.Checkpoint(iterator=resumed).read(prefix).assert_consumed()
  assert [next(resumed).numpy() for _ in range(12)] == expected


# --- Caps --------------------------------------------------------------------


def test_cap_keeps_the_same_uniform_sample_whichever_host_reads(tmp_path):
  paths = [_write_parquet(tmp_path / f"part-{i}.parquet",
                          _rows(30, prefix=f"p{i}-"), row_group_size=8)
           for i in range(2)]
  cap = preprocessors.Cap(12)
  source = _source("test_cap", sources.LocalFiles({"train": tuple(paths)}),
                   cap=cap)
  whole = {e["inputs"] for e in _examples(source)}
  hosts = [{e["inputs"] for e in _examples(source,
                                            shard_info=seqio.ShardInfo(i, 2))}
           for i in range(2)]
  assert len(whole) == 12
  assert hosts[0] | hosts[1] == whole and not hosts[0] & hosts[1]
  # Both files contribute: a sample, not the first 12 rows.
  assert {x.split("-")[0] for x in whole} == {"p0", "p1"}
  # Same seed, same sample; another seed, another one.
  again = _source("test_cap_again", sources.LocalFiles({"train": tuple(paths)}),
                  cap=cap)
  assert {e["inputs"] for e in _examples(again)} == whole
  reseeded = _source("test_cap_seed",
                     sources.LocalFiles({"train": tuple(paths)}),
                     cap=preprocessors.Cap(12, seed=1))
  assert {e["inputs"] for e in _examples(reseeded)} != whole


def test_group_cap_limits_each_group_and_counts_the_rest(tmp_path):
  rows = ([{**r, "dataset": "big"} for r in _rows(25, prefix="b")] +
          [{**r, "dataset": "small"} for r in _rows(5, prefix="s")])
  path = _write_parquet(tmp_path / "g.parquet", rows)
  source = _source("test_group_cap", sources.LocalFiles({"train": (path,)}),
                   fields=sources.Fields(dataset="dataset"),
                   cap=preprocessors.Cap(10, group_by=("dataset",)))
  preprocessors.TALLY.reset("test_group_cap")
  _examples(source)
  report = preprocessors.TALLY.report("test_group_cap")
  assert report.kept_by_dataset == {"big": 10, "small": 5}
  assert report.by_reason() == {"over_cap:dataset": 15}


def test_count_task_reports_a_registered_tasks_kept_rows(tmp_path):
  path = _write_jsonl(tmp_path / "t.jsonl", _rows(3) + _rows(2, "hin", prefix="h"))
  name = "test_sources_count_task"
  seqio.TaskRegistry.remove(name)
  seqio.TaskRegistry.add(
      name, source=_source(name, sources.LocalFiles({"train": (path,)})),
      preprocessors=[], output_features={})
  report = sources.count_task(name)
  assert (report.kept, report.kept_by_language) == (5, {"swa": 3, "hin": 2})
  assert sources.language_census(name) == {"swa": 3, "hin": 2}

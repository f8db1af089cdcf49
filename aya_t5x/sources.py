"""SeqIO data sources over Hugging Face Hub repositories, a mirror, or files.

One abstraction serves every Aya training source:

- `HubFiles`: files of a Hub dataset repository at a pinned revision, chosen
  per split by glob patterns relative to the repository root
  (`data/train-*.parquet`). Where they are read from:
    1. `$AYA_DATA_DIR/<repo_id>/...` when `AYA_DATA_DIR` is set: a mirror laid
       out like the repository, as `hf download <repo_id> --repo-type dataset
       --revision <rev> --local-dir $AYA_DATA_DIR/<repo_id>` writes it. It
       may be local or on any filesystem TensorFlow reads (gs://), for
       offline clusters. If the mirror carries huggingface_hub's download
       metadata, a file from another revision is an error.
    2. Otherwise the Hub, through `huggingface_hub`: the file list comes from
       `HfApi.list_repo_files` at the revision, and each host downloads only
       the files it reads (`hf_hub_download`, into the Hub cache) when it
       first reads them. With `HF_HUB_OFFLINE=1` the listing and the files
       come from the Hub cache (`snapshot_download(local_files_only=True)`).
  Nothing here imports `datasets` or runs repository code: a loading script
  can never execute (`trust_remote_code` is never enabled), and a pattern
  that selects a `.py` file is rejected.
- `LocalFiles`: file patterns on any filesystem (or under a directory named by
  an environment variable, for data users bring themselves).

Files are JSONL (`.jsonl`, `.jsonl.gz`), JSON (`.json`: JSON lines, or one
array of objects as loading-script repositories such as `jon-tow/okapi_mmlu`
ship; which one is found is logged once, and arrays are read in Python
only, so training sources refuse them), parquet or TFRecord (tf.Example with
bytes features), all in the same schema per split; `Fields` maps the
source's column names to `inputs`, `targets`, `language`, `dataset` and
whatever the filters read.

`RowSource` is the `seqio.DataSource`: it lists the split's files and shards
them by file, so hosts read disjoint files (with fewer files than hosts
SeqIO itself falls back to reading everything and keeping every n-th
example). Each file is read in blocks (a parquet row group; 1,024 JSONL lines
or TFRecords) by one Python call per block through `tf.numpy_function`,
which decodes the rows and runs the task's `RowPipeline` (hygiene, the
paper's filters, the cap, counting every drop: see `preprocessors`). The call
is a pure function of the block, declared stateless, so tf.data can
checkpoint the iterator (exact resume) and every host and SeqIO's offline
cache make the same examples; its only side effect is the tally. Examples
come out as strings `inputs`, `targets`, `language` (a registry code),
`source` and `dataset`.

Before the first block, a `RowSource` may need the whole split once: a cap
(`preprocessors.Cap`) computes its per-group thresholds from the metadata
columns of every file, and filters with a `prepare` step (xP3x template
pruning) see the first rows of each file. Both run in Python when the
dataset is built and are remembered per split.
"""

import collections
import contextlib
import dataclasses
import functools
import gzip
import json
import os
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from absl import logging
import numpy as np
import seqio
import tensorflow as tf

from aya_t5x import gcs_access
from aya_t5x import hub_access
from aya_t5x import languages
from aya_t5x import preprocessors

ENV_DATA_DIR = "AYA_DATA_DIR"
# Lines or records per Python call: each call costs far more than one row.
BLOCK_ROWS = 1024
# The fields of every example a RowSource yields.
OUTPUT_FIELDS = ("inputs", "targets", "language", "source", "dataset")
# Rows per file that `prepare` filters see.
SAMPLE_ROWS_PER_FILE = 64
_FORMATS = {".parquet": "parquet", ".jsonl": "jsonl", ".json": "json",
            ".jsonl.gz": "jsonl.gz", ".tfrecord": "tfrecord",
            ".tfrecords": "tfrecord"}
# A commit pin: a full hash, or a prefix of one (7+ hex digits, as the Hub's
# commit pages show them). huggingface_hub sends a prefix to the Hub, which
# resolves it (huggingface_hub issue #197, fixed on the server), and records
# it in the cache's refs/ like a branch, so offline reads find it again.
_COMMIT_HASH = re.compile(r"[0-9a-f]{7,40}")
# Prefix of a `Fields` column that a file may lack.
OPTIONAL = "?"
# Separates the names a `Fields` column may have (`labels|targets`).
ALTERNATIVES = "|"


# --- Where the files are -----------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ResolvedFile:
  """One file of a split."""

  # What readers open: a local or gs:// path, or an hf:// URI.
  path: str
  # A stable name (the path inside the repository), used by the cap's row
  # hash so every host and every mirror samples the same rows.
  key: str


class FileSet(Protocol):
  """Lists a split's files."""

  @property
  def splits(self) -> Sequence[str]:
    ...

  def resolve(self, split: str) -> list[ResolvedFile]:
    ...


def file_format(path: str) -> str:
  """"parquet", "jsonl", "jsonl.gz", "json" or "tfrecord", from the name."""
  name = path.lower()
  for suffix in sorted(_FORMATS, key=len, reverse=True):
    if name.endswith(suffix) or (suffix.startswith(".tfrecord")
                                 and suffix + "-" in name):
      return _FORMATS[suffix]
  raise ValueError(
      f"Cannot tell the format of {path!r}: name data files *.parquet, "
      "*.jsonl, *.jsonl.gz, *.json or *.tfrecord.")


def _check_data_files(files: Sequence["ResolvedFile"], where: str) -> None:
  """Refuses loading scripts: repository code is never run."""
  scripts = [f.path for f in files if f.path.endswith(".py")]
  if scripts:
    raise ValueError(
        f"The patterns of {where} select {scripts}: a loading script is "
        "never read or run here (no trust_remote_code). Select the data "
        "files (.parquet, .jsonl, .tfrecord) instead.")


def _glob_regex(pattern: str) -> re.Pattern:
  """A glob as a regex where `*` and `?` stay inside one path component."""
  parts = []
  for token in re.split(r"(\*\*/|\*\*|\*|\?)", pattern):
    parts.append({"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*",
                  "?": "[^/]"}.get(token, re.escape(token)))
  return re.compile("".join(parts) + r"\Z")


def _matches(name: str, patterns: Sequence[str]) -> bool:
  return any(_glob_regex(p).match(name) for p in patterns)


def hub_uri(repo_id: str, revision: str | None, path: str) -> str:
  """`hf://datasets/<repo>@<revision>/<path>`, huggingface_hub's syntax."""
  at = f"@{urllib.parse.quote(revision, safe='')}" if revision else ""
  return f"hf://datasets/{repo_id}{at}/{path}"


def _parse_hub_uri(uri: str) -> tuple[str, str | None, str]:
  rest = uri[len("hf://datasets/"):]
  owner, name_rev, path = rest.split("/", 2)
  name, _, revision = name_rev.partition("@")
  return (f"{owner}/{name}", urllib.parse.unquote(revision) or None, path)


@contextlib.contextmanager
def data_dir(path: str | None):
  """AYA_DATA_DIR = `path` (None: unchanged) inside the block, restored
  afterwards (an evaluation mirror must not leak into training sources)."""
  previous = os.environ.get(ENV_DATA_DIR)
  if path is not None:
    os.environ[ENV_DATA_DIR] = path
  try:
    yield
  finally:
    if previous is None:
      os.environ.pop(ENV_DATA_DIR, None)
    else:
      os.environ[ENV_DATA_DIR] = previous


def hub_offline() -> bool:
  """Whether huggingface_hub must not touch the network (HF_HUB_OFFLINE)."""
  from huggingface_hub import constants  # pylint: disable=g-import-not-at-top
  flag = os.environ.get("HF_HUB_OFFLINE", "")
  return bool(constants.HF_HUB_OFFLINE) or flag.lower() in ("1", "true",
                                                            "yes", "on")


def local_path(path: str) -> str:
  """A readable path for `path`; hf:// URIs are downloaded (cached) first."""
  if not path.startswith("hf://"):
    return path
  from huggingface_hub import hf_hub_download  # pylint: disable=g-import-not-at-top
  repo_id, revision, filename = _parse_hub_uri(path)
  offline = hub_offline()
  if not offline:
    hub_access.check(repo_id, revision)
  try:
    return hf_hub_download(repo_id, filename, repo_type="dataset",
                           revision=revision, local_files_only=offline)
  except Exception as e:  # pylint: disable=broad-except
    raise hub_access.explain(e, repo_id, revision) or e


@functools.lru_cache(maxsize=64)
def _hub_listing(repo_id: str, revision: str | None) -> tuple[str, ...]:
  """The repository's files; one line (`hub_access`) when unreachable."""
  from huggingface_hub import HfApi  # pylint: disable=g-import-not-at-top
  hub_access.check(repo_id, revision)
  try:
    return tuple(HfApi().list_repo_files(repo_id, repo_type="dataset",
                                         revision=revision))
  except Exception as e:  # pylint: disable=broad-except
    raise hub_access.explain(e, repo_id, revision) or e


def _mirror_revision(root: str, relative: str) -> str | None:
  """The commit huggingface_hub's `--local-dir` metadata records, if any."""
  meta = os.path.join(root, ".cache", "huggingface", "download",
                      relative + ".metadata")
  if "://" in root or not os.path.isfile(meta):
    return None
  with open(meta, encoding="utf-8") as f:
    return f.readline().strip() or None


_UNPINNED_LOGGED: set[tuple[str, str | None]] = set()


@dataclasses.dataclass(frozen=True)
class HubFiles:
  """Files of a Hub dataset repository (module docstring: where from)."""

  # e.g. "CohereForAI/aya_dataset".
  repo_id: str
  # A commit hash (40 hex digits, or a prefix of 7 or more) pins the data;
  # a branch or tag name is resolved when read (logged as a warning once);
  # None = the default branch.
  revision: str | None
  # split -> glob patterns relative to the repository root.
  split_patterns: Mapping[str, tuple[str, ...]]

  @property
  def splits(self) -> Sequence[str]:
    return tuple(self.split_patterns)

  def _patterns(self, split: str) -> tuple[str, ...]:
    if split not in self.split_patterns:
      raise ValueError(f"{self.repo_id} has no split {split!r}; splits: "
                       f"{sorted(self.split_patterns)}.")
    return tuple(self.split_patterns[split])

  def resolve(self, split: str) -> list[ResolvedFile]:
    patterns = self._patterns(split)
    mirror = os.environ.get(ENV_DATA_DIR)
    if mirror:
      files = self._from_mirror(os.path.join(mirror, self.repo_id), patterns)
    elif hub_offline():
      files = self._from_hub_cache(patterns)
    else:
      files = self._from_hub(patterns)
    if not files:
      raise FileNotFoundError(self._missing_message(split, patterns, mirror))
    _check_data_files(files, self.repo_id)
    return files

  def _missing_message(self, split, patterns, mirror) -> str:
    where = (f"the mirror {os.path.join(mirror, self.repo_id)} "
             f"({ENV_DATA_DIR})" if mirror else
             f"revision {self.revision or 'main'} on the Hub")
    return (f"No files of {self.repo_id} split {split!r} match {list(patterns)}"
            f" in {where}. A mirror must be laid out like the repository: "
            f"`hf download {self.repo_id} --repo-type dataset --revision "
            f"{self.revision or 'main'} --local-dir $AYA_DATA_DIR/"
            f"{self.repo_id}`.")

  def _from_mirror(self, root: str, patterns) -> list[ResolvedFile]:
    gcs_access.check(root, ENV_DATA_DIR)
    paths = set()
    for pattern in patterns:
      paths.update(tf.io.gfile.glob(os.path.join(root, pattern)))
    files = [ResolvedFile(p, os.path.relpath(p, root).replace(os.sep, "/")
                          if "://" not in p else p[len(root):].lstrip("/"))
             for p in sorted(paths)]
    if self.pinned:
      for f in files:
        found = _mirror_revision(root, f.key)
        if found and not found.startswith(self.revision):
          raise ValueError(
              f"{f.path} was downloaded at revision {found}, but "
              f"{self.repo_id} is pinned to {self.revision}. Re-download "
              "the mirror at the pinned revision or change the pin.")
    return files

  @property
  def pinned(self) -> bool:
    """Whether `revision` names one commit (a full hash or a prefix)."""
    return bool(self.revision and _COMMIT_HASH.fullmatch(self.revision))

  def _warn_unpinned(self) -> None:
    key = (self.repo_id, self.revision)
    if not self.pinned and key not in _UNPINNED_LOGGED:
      _UNPINNED_LOGGED.add(key)
      logging.warning("%s is read at revision %r, not a pinned commit: the "
                      "data can change under you. Pin a commit hash.",
                      self.repo_id, self.revision or "main")

  def _from_hub(self, patterns) -> list[ResolvedFile]:
    self._warn_unpinned()
    names = sorted(n for n in _hub_listing(self.repo_id, self.revision)
                   if _matches(n, patterns))
    return [ResolvedFile(hub_uri(self.repo_id, self.revision, n), n)
            for n in names]

  def _from_hub_cache(self, patterns) -> list[ResolvedFile]:
    from huggingface_hub import snapshot_download  # pylint: disable=g-import-not-at-top
    try:
      folder = snapshot_download(self.repo_id, repo_type="dataset",
                                 revision=self.revision,
                                 allow_patterns=list(patterns),
                                 local_files_only=True)
    except Exception as e:  # pylint: disable=broad-except
      raise hub_access.explain(e, self.repo_id, self.revision) or e
    files = []
    for directory, _, names in os.walk(folder):
      for name in names:
        path = os.path.join(directory, name)
        key = os.path.relpath(path, folder).replace(os.sep, "/")
        if _matches(key, patterns):
          files.append(ResolvedFile(path, key))
    return sorted(files, key=lambda f: f.key)


_FALLBACKS_LOGGED: set[tuple[str, str]] = set()


@dataclasses.dataclass(frozen=True)
class FallbackFiles:
  """A repository's files, or another's when it is absent or refused.

  For a maintained but gated successor (`openlanguagedata/flores_plus`)
  with a public predecessor (`facebook/flores`): the first is read when the
  mirror has it or the Hub grants access (HF_TOKEN with accepted terms);
  otherwise the fallback, with a warning once saying why. A Hub that cannot
  be reached at all is no reason to switch: that error stands.
  """

  primary: HubFiles
  fallback: FileSet

  @property
  def repo_id(self) -> str:
    return self.primary.repo_id

  @property
  def splits(self) -> Sequence[str]:
    return self.primary.splits

  def resolve(self, split: str) -> list[ResolvedFile]:
    try:
      return self.primary.resolve(split)
    except (FileNotFoundError, hub_access.HubUnreachable) as e:
      if isinstance(e, hub_access.HubUnreachable) and not e.refused:
        raise
      # Raises when the fallback lacks the files too (a language with no
      # data anywhere): nothing was switched, so nothing to warn about.
      files = self.fallback.resolve(split)
      key = (self.primary.repo_id, type(e).__name__)
      if key not in _FALLBACKS_LOGGED:
        _FALLBACKS_LOGGED.add(key)
        logging.warning(
            "%s cannot be read (%s); reading %s instead. For the maintained "
            "set, accept its terms on the Hub and set HF_TOKEN, or mirror it"
            " into AYA_DATA_DIR.", self.primary.repo_id,
            str(e).split(". ")[0],
            getattr(self.fallback, "repo_id", "the fallback"))
      return files


# env_var -> directory set in the configuration (`mixing.UserSources`),
# which wins over the environment variable itself.
_USER_DIRS: dict[str, str] = {}


def set_user_dir(env_var: str, directory: str) -> None:
  """Points the `LocalFiles` of `env_var` at `directory` (gin knob)."""
  _USER_DIRS[env_var] = directory


@dataclasses.dataclass(frozen=True)
class LocalFiles:
  """File patterns on any filesystem TensorFlow reads.

  A pattern may contain `{dir}`, filled from the environment variable
  `env_var` when the files are listed (for data that users bring, such as
  ShareGPT-Command, which was not released).
  """

  split_patterns: Mapping[str, tuple[str, ...]]
  env_var: str | None = None
  # Said when `env_var` is unset: how to get the data.
  hint: str = ""

  @property
  def splits(self) -> Sequence[str]:
    return tuple(self.split_patterns)

  def _root(self) -> str | None:
    if self.env_var is None:
      return None
    root = _USER_DIRS.get(self.env_var) or os.environ.get(self.env_var)
    if not root:
      raise FileNotFoundError(
          f"Set {self.env_var} to the directory of this source's files. "
          f"{self.hint}")
    return root

  def resolve(self, split: str) -> list[ResolvedFile]:
    if split not in self.split_patterns:
      raise ValueError(f"No split {split!r}; splits: "
                       f"{sorted(self.split_patterns)}.")
    root = self._root()
    patterns = [p.format(dir=root) if root is not None else p
                for p in self.split_patterns[split]]
    for pattern in patterns:
      gcs_access.check(pattern, self.env_var or "a file pattern")
    paths = sorted({p for pattern in patterns
                    for p in tf.io.gfile.glob(pattern)})
    if not paths:
      raise FileNotFoundError(f"No files match {patterns} (split {split!r})."
                              f" {self.hint}")
    base = root if root else _common_dir(paths)
    files = [ResolvedFile(p, _relative(p, base)) for p in paths]
    _check_data_files(files, f"{patterns}")
    return files


def _common_dir(paths: Sequence[str]) -> str:
  if len(paths) == 1:
    return paths[0].rsplit("/", 1)[0] if "/" in paths[0] else ""
  prefix = os.path.commonprefix(list(paths))
  return prefix.rsplit("/", 1)[0] if "/" in prefix else ""


def _relative(path: str, base: str) -> str:
  """`path` below `base`, with / separators (works for gs:// too)."""
  if base and path.startswith(base.rstrip("/") + "/"):
    return path[len(base.rstrip("/")) + 1:]
  return path


# --- Reading rows ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Fields:
  """Which column of the source holds each row field.

  `inputs` and `targets` are required; `language` and `dataset` may be None
  (the task then gives every row one value); `extra` maps further row
  fields the filters read (e.g. {"template": "template"}) to columns. A
  column written `?name` (`OPTIONAL`) may be absent from a file: its field
  is then None (logged once), for layouts that may have dropped it.
  """

  inputs: str = "inputs"
  targets: str = "targets"
  language: str | None = "language"
  dataset: str | None = None
  extra: Mapping[str, str] = dataclasses.field(default_factory=dict)

  def columns(self, text: bool = True) -> dict[str, str]:
    """Row field -> source column; `text=False` leaves out the texts."""
    columns = {"inputs": self.inputs, "targets": self.targets} if text else {}
    if self.language:
      columns["language"] = self.language
    if self.dataset:
      columns["dataset"] = self.dataset
    columns.update(self.extra)
    return columns


@dataclasses.dataclass(frozen=True)
class BadRecord:
  """A record that could not be decoded at all."""

  reason: str
  field: str
  detail: str


def _decode_json(line: bytes, columns: Mapping[str, str]
                 ) -> preprocessors.Row | BadRecord:
  try:
    text = line.decode("utf-8")
  except UnicodeDecodeError:  # Keep the bad bytes; hygiene names the field.
    text = line.decode("utf-8", errors="surrogateescape")
  try:
    record = json.loads(text)
  except ValueError as e:
    return BadRecord(preprocessors.MALFORMED, "line", f"not JSON: {e}")
  return _json_row(record, columns, "line")


def _json_row(record: Any, columns: Mapping[str, str], unit: str
              ) -> preprocessors.Row | BadRecord:
  if not isinstance(record, dict):
    return BadRecord(preprocessors.MALFORMED, unit,
                     f"a JSON {type(record).__name__}, not an object")
  return {name: _lookup(record, column) for name, column in columns.items()}


_JSON_FORMS_LOGGED: set[str] = set()


def json_is_array(path: str) -> bool:
  """Whether a `.json` file is one JSON array (else JSON lines), logged
  once per form: which one a repository ships is not always documented."""
  with tf.io.gfile.GFile(local_path(path), "rb") as f:
    head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
  is_array = head.startswith(b"[")
  form = "one JSON array" if is_array else "JSON lines"
  if form not in _JSON_FORMS_LOGGED:
    _JSON_FORMS_LOGGED.add(form)
    logging.info("%s holds %s (both forms of .json are read).", path, form)
  return is_array


def _iter_json_array(path: str, columns: Mapping[str, str]
                     ) -> Iterator[tuple[int, preprocessors.Row | BadRecord]]:
  """The objects of a JSON array file, by position (from 0)."""
  with tf.io.gfile.GFile(local_path(path), "rb") as f:
    try:
      records = json.loads(f.read().decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as e:
      raise ValueError(f"{path} is not a JSON array of objects: {e}") from e
  for index, record in enumerate(records):
    yield index, _json_row(record, columns, "element")


def _decode_example(record: bytes, columns: Mapping[str, str]
                    ) -> preprocessors.Row | BadRecord:
  try:
    example = tf.train.Example.FromString(record)
  except Exception as e:  # pylint: disable=broad-except  # DecodeError.
    return BadRecord(preprocessors.MALFORMED, "record", f"not a "
                     f"tf.train.Example: {e}")
  row = {}
  for name, column in columns.items():
    feature = example.features.feature.get(
        _pick(column, example.features.feature) or "")
    values = list(feature.bytes_list.value) if feature is not None else []
    row[name] = values[0] if values else None
  return row


def write_parquet(path: str | os.PathLike, table, **options) -> str:
  """Writes a pyarrow table to a local parquet file, creating its folder.

  What builds a mirror laid out like the Hub (the shipped samples, tests);
  `options` go to `pyarrow.parquet.write_table` (`row_group_size`,
  `compression`). Returns the path.
  """
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  path = str(path)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  pq.write_table(table, path, **options)
  return path


def _open_parquet(path: str):
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  path = local_path(path)
  if "://" in path:  # gs:// and friends, through TensorFlow's filesystems.
    return pq.ParquetFile(tf.io.gfile.GFile(path, "rb"))
  return pq.ParquetFile(path)


def column_name(column: str) -> str:
  """The file's column name of a `Fields` column (without `OPTIONAL`)."""
  return column[len(OPTIONAL):] if column.startswith(OPTIONAL) else column


def column_choices(column: str) -> list[str]:
  """The names a `Fields` column may have, first match wins (`a|b`)."""
  return column_name(column).split(ALTERNATIVES)


def _pick(column: str, present) -> str | None:
  """The first of a column's names that `present` holds."""
  return next((c for c in column_choices(column) if c in present), None)


def _lookup(record: Mapping[str, Any], column: str):
  for name in column_choices(column):
    if record.get(name) is not None:
      return record[name]
  return None


_ABSENT_LOGGED: set[str] = set()


def _log_absent(column: str, path: str) -> None:
  if column not in _ABSENT_LOGGED:
    _ABSENT_LOGGED.add(column)
    logging.warning("%s has no column %r (optional): its field is empty in "
                    "every row of such files.", path, column)


def _parquet_columns(parquet, columns: Mapping[str, str], path: str):
  """The file columns to read; a required one missing is an error."""
  names = set(parquet.schema_arrow.names)
  missing = sorted({c for c in columns.values()
                    if not c.startswith(OPTIONAL) and not _pick(c, names)})
  if missing:
    raise ValueError(f"{path} has no column(s) {missing}; it has "
                     f"{sorted(names)}. Map the fields with "
                     "aya_t5x.sources.Fields.")
  for c in columns.values():
    if c.startswith(OPTIONAL) and not _pick(c, names):
      _log_absent(column_name(c), path)
  return sorted({_pick(c, names) for c in columns.values()} - {None})


def _column_values(table, column: str) -> list[Any]:
  import pyarrow as pa  # pylint: disable=g-import-not-at-top
  values = table.column(column)
  if pa.types.is_string(values.type):  # Bytes: hygiene checks the UTF-8.
    values = values.cast(pa.binary())
  elif pa.types.is_large_string(values.type):
    values = values.cast(pa.large_binary())
  return values.to_pylist()


def _single_value_stats(parquet, group: int, column: str) -> str | None:
  """The one value of `column` in a row group, if statistics say so."""
  meta = parquet.metadata.row_group(group)
  for i in range(meta.num_columns):
    chunk = meta.column(i)
    if chunk.path_in_schema == column and chunk.is_stats_set:
      stats = chunk.statistics
      if stats.has_min_max and stats.min == stats.max:
        value = stats.min
        return value.decode("utf-8", "replace") if isinstance(
            value, bytes) else str(value)
  return None


def read_parquet_group(path: str, group: int, columns: Mapping[str, str],
                       keep_language: Callable[[str], bool] | None = None
                       ) -> list[tuple[int, preprocessors.Row]]:
  """Rows of one row group as (row index in the file, row).

  With `keep_language`, a row group whose statistics show a single language
  value that it rejects is skipped unread (files sorted by language, as the
  Aya Collection's are, then cost one row group per language task).
  """
  parquet = _open_parquet(path)
  wanted = _parquet_columns(parquet, columns, path)
  language_column = columns.get("language")
  language_column = language_column and _pick(
      language_column, parquet.schema_arrow.names)
  if keep_language and language_column:
    only = _single_value_stats(parquet, group, language_column)
    if only is not None and not keep_language(only):
      return []
  table = parquet.read_row_group(group, columns=wanted)
  values = {c: _column_values(table, c) for c in wanted}
  absent = [None] * table.num_rows
  start = sum(parquet.metadata.row_group(g).num_rows for g in range(group))
  actual = {name: _pick(column, values) for name, column in columns.items()}
  return [(start + i, {name: values.get(actual[name], absent)[i]
                       for name in columns})
          for i in range(table.num_rows)]


def _iter_lines(path: str, compressed: bool) -> Iterator[tuple[int, bytes]]:
  with tf.io.gfile.GFile(local_path(path), "rb") as f:
    stream = gzip.GzipFile(fileobj=f) if compressed else f
    for number, line in enumerate(stream, start=1):
      yield number, line.rstrip(b"\r\n")


def iter_rows(path: str, fmt: str, columns: Mapping[str, str],
              limit: int | None = None, keep_language=None
              ) -> Iterator[tuple[int, preprocessors.Row | BadRecord]]:
  """Every row of a file (the first `limit`), in order, in Python.

  Row indices are the ones the tf.data readers use: JSONL line numbers
  (from 1), parquet and TFRecord positions (from 0); the objects of a JSON
  array file count from 0.
  """
  count = 0
  if fmt == "parquet":
    groups = _open_parquet(path).metadata.num_row_groups
    for group in range(groups):
      for index, row in read_parquet_group(path, group, columns,
                                           keep_language):
        yield index, row
        count += 1
        if limit is not None and count >= limit:
          return
    return
  if fmt == "json" and json_is_array(path):
    for index, row in _iter_json_array(path, columns):
      yield index, row
      count += 1
      if limit is not None and count >= limit:
        return
    return
  if fmt == "tfrecord":
    records = enumerate(tf.data.TFRecordDataset(local_path(path))
                        .as_numpy_iterator())
    decode = _decode_example
  else:
    records = _iter_lines(path, fmt == "jsonl.gz")
    decode = _decode_json
  for index, record in records:
    if fmt != "tfrecord" and not record.strip():
      continue
    yield index, decode(record, columns)
    count += 1
    if limit is not None and count >= limit:
      return


# --- The DataSource ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SourceSpec:
  """Everything a task needs to know about its rows.

  The spec is declarative and shared; `RowSource` builds the per-task state
  (filters, cap thresholds) from it.
  """

  # Source name in every example's `source` field, e.g. "xp3x".
  source: str
  files: FileSet
  fields: Fields = Fields()
  # Registry codes the task selects; None = every language.
  languages: frozenset[str] | None = None
  # One language for every row (when the files are per language).
  language: str | None = None
  # The language of rows whose language field is empty or absent.
  default_language: str | None = None
  # The `dataset` of rows without one: a fixed name, or the first directory
  # of the file's key when `dataset_from_dir` (the Aya Collection config).
  dataset: str | None = None
  dataset_from_dir: bool = False
  filters: preprocessors.FilterFactory = lambda: ()
  hygiene: preprocessors.HygieneConfig = preprocessors.HygieneConfig()
  cap: preprocessors.Cap | None = None


@dataclasses.dataclass
class _Prepared:
  """Per-split state built once: files, the pipeline, the cap thresholds."""

  files: list[ResolvedFile]
  fmt: str
  pipeline: preprocessors.RowPipeline
  thresholds: dict | None


class RowSource(seqio.DataSource):
  """A `seqio.DataSource` of rows from a `SourceSpec` (module docstring)."""

  def __init__(self, task: str, spec: SourceSpec,
               tally: preprocessors.Tally = preprocessors.TALLY):
    """Args: task: the task name counts go under; spec: the rows; tally:
    where counts go."""
    self.task = task
    self.spec = spec
    self._tally = tally
    self._prepared: dict[str, _Prepared] = {}
    self._lock = threading.Lock()
    self._counted: dict[str, int] = {}
    super().__init__(splits=spec.files.splits)

  @property
  def supports_arbitrary_sharding(self) -> bool:
    return False

  def __repr__(self) -> str:
    return f"RowSource(task={self.task!r}, spec={self.spec!r})"

  def list_shards(self, split: str) -> Sequence[str]:
    return [f.path for f in self.prepare(split).files]

  def set_num_input_examples(self, split: str, count: int) -> None:
    """Records a split's counted size (`aya_t5x.mixing` does, once a mixture
    has counted its tasks), so SeqIO caches small splits in memory instead
    of re-reading their files on every epoch."""
    self._counted[split] = int(count)

  def num_input_examples(self, split: str) -> int | None:
    return self._counted.get(split)

  def reset(self) -> None:
    """Forgets the per-split state (re-lists files, re-runs pre-passes)."""
    with self._lock:
      self._prepared.clear()

  def prepare(self, split: str) -> _Prepared:
    """Lists the files and runs the pre-passes once per split."""
    with self._lock:
      if split not in self._prepared:
        self._prepared[split] = self._build(split)
      return self._prepared[split]

  def _build(self, split: str) -> _Prepared:
    files = self.spec.files.resolve(split)
    formats = sorted({file_format(f.path) for f in files})
    if len(formats) != 1:
      raise ValueError(f"Split {split!r} of {self.task} mixes formats "
                       f"{formats}; use one format per split.")
    if formats[0] == "json":
      arrays = [f.path for f in files if json_is_array(f.path)]
      if arrays:
        raise ValueError(
            f"{arrays[0]} is one JSON array; {self.task} reads files in "
            "blocks and needs JSON lines (one object per line): convert it, "
            "e.g. with `jq -c '.[]'`.")
    spec = self.spec
    filters = tuple(spec.filters())
    from aya_t5x import decontaminate  # pylint: disable=g-import-not-at-top
    excluded = decontaminate.exclusion_filter()  # $AYA_EXCLUSION_LIST
    if excluded is not None:
      filters += (excluded,)
    pipeline = preprocessors.RowPipeline(
        task=self.task, source=spec.source, languages=spec.languages,
        language=spec.language, default_language=spec.default_language,
        dataset=spec.dataset, filters=filters,
        hygiene=spec.hygiene, cap=spec.cap, tally=self._tally)
    prepared = _Prepared(files, formats[0], pipeline, None)
    if any(hasattr(f, "prepare") for f in filters):
      sample = self._sample(prepared)
      for row_filter in filters:
        if hasattr(row_filter, "prepare"):
          row_filter.prepare(sample)
    if spec.cap is not None:
      prepared.thresholds = self._thresholds(prepared)
    return prepared

  def _keep_language(self):
    if self.spec.languages is None or self.spec.language is not None:
      return None
    def keep(raw: str) -> bool:
      found = languages.find(raw)
      return found is not None and found.code in self.spec.languages
    return keep

  def _rows(self, prepared: _Prepared, f: ResolvedFile, text: bool,
            limit: int | None = None):
    columns = self.spec.fields.columns(text=text)
    for index, row in iter_rows(f.path, prepared.fmt, columns, limit,
                                self._keep_language()):
      if isinstance(row, BadRecord):
        continue
      if self.spec.dataset_from_dir and not row.get("dataset"):
        row["dataset"] = f.key.split("/")[0]
      yield index, row

  def _sample(self, prepared: _Prepared) -> list[preprocessors.Row]:
    sample = []
    for f in prepared.files:
      for _, row in self._rows(prepared, f, True, SAMPLE_ROWS_PER_FILE):
        row = dict(row)
        row["dataset"] = preprocessors.as_text(row.get("dataset")) or (
            self.spec.dataset or self.spec.source)
        sample.append({k: preprocessors.as_text(v) for k, v in row.items()})
    return sample

  def _thresholds(self, prepared: _Prepared) -> dict:
    cap, pipeline = self.spec.cap, prepared.pipeline
    def hashed():
      for f in prepared.files:
        for index, row in self._rows(prepared, f, False):
          group = pipeline.population(row)
          if group is not None:
            yield group, cap.row_hash(f.key, index)
    thresholds = preprocessors.cap_thresholds(cap, hashed())
    logging.info("%s: cap of %d rows per %s over %d group(s)", self.task,
                 cap.max_rows, cap.group_by or "task", len(thresholds))
    return thresholds

  def _process_block(self, split: str, path: bytes, key: bytes,
                     indices: np.ndarray, records: np.ndarray
                     ) -> list[np.ndarray]:
    """One block -> the kept rows as 5 string arrays (tf.numpy_function)."""
    prepared = self.prepare(split)
    path, key = path.decode("utf-8"), key.decode("utf-8")
    columns = self.spec.fields.columns()
    if prepared.fmt == "parquet":
      rows = read_parquet_group(path, int(indices[0]), columns,
                                self._keep_language())
    else:
      decode = (_decode_example if prepared.fmt == "tfrecord" else
                _decode_json)
      rows = [(int(i), decode(r, columns)) for i, r in zip(indices, records)
              if prepared.fmt == "tfrecord" or r.strip()]
    good = []
    for index, row in rows:
      if isinstance(row, BadRecord):
        self._tally.event(self.task, row.reason, row.field, path, index,
                          row.detail)
        continue
      if self.spec.dataset_from_dir and not row.get("dataset"):
        row["dataset"] = key.split("/")[0]
      good.append((index, row))
    kept = prepared.pipeline.process(good, path, key, prepared.thresholds)
    columns_out = list(zip(*kept)) or [()] * len(OUTPUT_FIELDS)
    return [np.array([v.encode("utf-8") for v in column], dtype=object)
            for column in columns_out]

  def _blocks(self, fmt: str, path: tf.Tensor, key: tf.Tensor
              ) -> tf.data.Dataset:
    """A file as blocks {path, key, indices, records}."""
    if fmt == "parquet":
      count = tf.numpy_function(
          lambda p: np.int64(_open_parquet(p.decode()).metadata
                             .num_row_groups), [path], tf.int64,
          stateful=False)
      groups = tf.data.Dataset.range(tf.reshape(count, []))
      return groups.map(lambda g: {"path": path, "key": key,
                                   "indices": tf.reshape(g, [1]),
                                   "records": tf.zeros([0], tf.string)})
    local = tf.numpy_function(lambda p: local_path(p.decode()).encode(),
                              [path], tf.string, stateful=False)
    local = tf.reshape(local, [])
    if fmt == "tfrecord":
      records = tf.data.TFRecordDataset(local).enumerate()
    else:
      records = tf.data.TextLineDataset(
          local, compression_type="GZIP" if fmt == "jsonl.gz" else "",
      ).enumerate(start=1)
    return records.batch(BLOCK_ROWS).map(
        lambda i, r: {"path": path, "key": key, "indices": i, "records": r})

  def get_dataset(
      self,
      split: str = "train",
      shuffle: bool = True,
      seed: int | None = None,
      shard_info: seqio.ShardInfo | None = None,
      *,
      sequence_length: Mapping[str, int] | None = None,  # Unused.
      use_cached: bool = False,  # Unused.
      num_epochs: int | None = 1,  # Unused.
  ) -> tf.data.Dataset:
    del sequence_length, use_cached, num_epochs
    prepared = self.prepare(split)
    files = prepared.files
    ds = tf.data.Dataset.from_tensor_slices((
        np.array([f.path for f in files], dtype=object),
        np.array([f.key for f in files], dtype=object)))
    if shard_info:
      if len(files) < shard_info.num_shards:
        raise ValueError(f"{self.task} split {split!r} has {len(files)} "
                         f"file(s), fewer than the {shard_info.num_shards} "
                         "shards requested.")
      ds = ds.shard(shard_info.num_shards, shard_info.index)
    if shuffle:
      ds = ds.shuffle(len(files), seed=seed)
    fmt = prepared.fmt
    blocks = ds.interleave(
        functools.partial(self._blocks, fmt),
        cycle_length=min(16, len(files)), block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    process = functools.partial(self._process_block, split)

    def run(block):
      outputs = tf.numpy_function(
          process, [block["path"], block["key"], block["indices"],
                    block["records"]],
          [tf.string] * len(OUTPUT_FIELDS),
          stateful=False)  # Pure in its outputs; it only counts (docstring).
      return {name: tf.ensure_shape(value, [None])
              for name, value in zip(OUTPUT_FIELDS, outputs)}

    rows = blocks.map(run, num_parallel_calls=tf.data.AUTOTUNE,
                      deterministic=True)
    return rows.unbatch()


def count_task(task: "str | seqio.Task", split: str = "train"
               ) -> preprocessors.Report:
  """One pass over a task's source; what was kept and dropped, and why.

  Counting needs no tokenization: every row decision happens in the source.
  This is how mixtures learn the size of each task (`kept`), and how a
  report lists kept examples per language.

  Raises:
    TypeError: the task's source is not a `RowSource`.
  """
  task = seqio.get_mixture_or_task(task) if isinstance(task, str) else task
  source = task.source
  if not isinstance(source, RowSource):
    raise TypeError(f"Task {task.name} reads a {type(source).__name__}; only "
                    "RowSource tasks count their rows.")
  preprocessors.TALLY.reset(source.task)
  dataset = source.get_dataset(split, shuffle=False)
  for _ in dataset.as_numpy_iterator():
    pass
  return preprocessors.TALLY.report(source.task)


def language_census(task: "str | seqio.Task", split: str = "train"
                    ) -> dict[str, int]:
  """Rows per raw language value in a task's files, mapped or not.

  Per-language tasks only see their own language; this shows what else the
  files hold (values the registry does not know stay as written).
  """
  task = seqio.get_mixture_or_task(task) if isinstance(task, str) else task
  source = task.source
  prepared = source.prepare(split)
  counts = collections.Counter()
  for f in prepared.files:
    columns = {"language": source.spec.fields.language} if (
        source.spec.fields.language) else {}
    for _, row in iter_rows(f.path, prepared.fmt, columns):
      if isinstance(row, BadRecord):
        continue
      raw = preprocessors.as_text(row.get("language")) or (
          source.spec.language or "")
      found = languages.find(raw)
      counts[found.code if found else raw] += 1
  return dict(counts)


def write_task_cache(task: "str | seqio.Task", cache_root: str,
                     splits: Sequence[str] = ("train",)) -> str:
  """Caches a task in one process, in the files SeqIO's offline cache writes.

  `seqio.scripts.cache_tasks_main` does this on Apache Beam (DirectRunner on
  one machine, Dataflow on GCP) and is the tool at scale. This writes the
  same layout for small tasks and tests, with no Beam: the task's
  preprocessors up to `CacheDatasetPlaceholder`, as tf.Examples in
  `<cache_root>/<task>/<split>.tfrecord-00000-of-00001`, with
  `info.<split>.json`, `stats.<split>.json` and `COMPLETED`. Training reads
  it with `USE_CACHED_TASKS = True` once `cache_root` is a SeqIO cache
  directory (`seqio.add_global_cache_dirs`).

  Returns:
    The task's cache directory.
  """
  task = seqio.get_mixture_or_task(task) if isinstance(task, str) else task
  out = os.path.join(cache_root, seqio.utils.get_task_dir_from_name(task.name))
  tf.io.gfile.makedirs(out)
  for split in splits:
    dataset = task.preprocess_precache(
        task.source.get_dataset(split, shuffle=False), seed=0)
    features, stats = {}, collections.Counter()
    path = seqio.utils.get_cached_tfrecord_prefix(out, split)
    with tf.io.TFRecordWriter(f"{path}-00000-of-00001") as writer:
      for example in dataset:
        writer.write(seqio.dict_to_tfexample(example).SerializeToString())
        stats["examples"] += 1
        for key, value in example.items():
          shape = value.shape.as_list()
          features[key] = {"shape": [None] + shape[1:] if shape else [],
                           "dtype": value.dtype.name}
          if key in task.output_features and value.dtype.is_integer:
            tokens = int(tf.size(value))
            stats[f"{key}_tokens"] += tokens
            stats[f"{key}_max_tokens"] = max(stats[f"{key}_max_tokens"],
                                             tokens)
    info = {"num_shards": 1, "features": features,
            "seqio_version": seqio.__version__}
    for name, content in ((seqio.utils.get_cached_info_path(out, split), info),
                          (seqio.utils.get_cached_stats_path(out, split),
                           dict(stats))):
      with tf.io.gfile.GFile(name, "w") as f:
        json.dump(content, f, indent=2, sort_keys=True)
  with tf.io.gfile.GFile(os.path.join(out, "COMPLETED"), "w") as f:
    f.write("")
  return out

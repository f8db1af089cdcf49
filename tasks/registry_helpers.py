"""Registering training tasks: the shared recipe and the one-call helper.

Every training task of `aya_t5x.tasks` is a `sources.RowSource` (rows from
the Hub, a mirror or files, cleaned and filtered) followed by the same SeqIO
preprocessors:

    tokenize -> CacheDatasetPlaceholder -> append_eos_after_trim

so the offline cache (`seqio.scripts.cache_tasks_main`, on Apache Beam)
stores tokenized examples and `USE_CACHED_TASKS=True` trains from it. Output
features are `inputs` and `targets` with EOS appended; `language`, `source`
and `dataset` ride along as string metadata.

The vocabulary is mT5's (`mc4.250000.100extra`, on GCS) unless the
`AYA_VOCABULARY` environment variable says `demo` (the shipped 1,200-piece
model, for CPU runs and tests) or names a `.model` file; every `register`
function also takes a `vocabulary` argument. Nothing is read from GCS until
a task is tokenized.

`register_dataset` is the public one-call helper: a new language or dataset
from local files or a Hub repository (README, "Add your language").
"""

import functools
import json
import os
from collections.abc import Mapping, Sequence

import seqio

from aya_t5x import languages
from aya_t5x import preprocessors
from aya_t5x import sources
from aya_t5x import vocabularies
from aya_t5x.tasks import catalog

ENV_VOCABULARY = "AYA_VOCABULARY"
CUSTOM_SOURCE = "custom"


def default_vocabulary() -> seqio.Vocabulary:
  """mT5's vocabulary, or what `AYA_VOCABULARY` names (demo | a .model)."""
  choice = os.environ.get(ENV_VOCABULARY, "mt5").strip()
  if choice in ("", "mt5"):
    return vocabularies.mt5_vocabulary()
  if choice == "demo":
    return vocabularies.demo_vocabulary()
  return vocabularies.sentencepiece_vocabulary(choice)


def output_features(vocabulary: seqio.Vocabulary | None = None
                    ) -> dict[str, seqio.Feature]:
  vocabulary = vocabulary or default_vocabulary()
  feature = seqio.Feature(vocabulary=vocabulary, add_eos=True)
  return {"inputs": feature, "targets": feature}


def preprocessors_list() -> list:
  return [seqio.preprocessors.tokenize, seqio.CacheDatasetPlaceholder(),
          seqio.preprocessors.append_eos_after_trim]


def user_files_spec(*, source: str, dataset: str,
                    split_patterns: Mapping[str, tuple[str, ...]],
                    env_var: str, hint: str, filters,
                    fields: sources.Fields,
                    patterns: Mapping[str, tuple[str, ...]] | None = None
                    ) -> sources.SourceSpec:
  """Rows a user supplies (unreleased or generated data, not on the Hub).

  They come from explicit `patterns`, else from `split_patterns` under the
  directory named by `env_var` (whose absence is explained by `hint`).
  """
  files = (sources.LocalFiles(dict(patterns)) if patterns else
           sources.LocalFiles(split_patterns, env_var=env_var, hint=hint))
  return sources.SourceSpec(source=source, files=files, fields=fields,
                            dataset=dataset, filters=filters)


def register_source_task(name: str, spec: sources.SourceSpec, *,
                         language: str | None, dataset: str | None,
                         vocabulary: seqio.Vocabulary | None = None,
                         catalog_source: str | None = None) -> seqio.Task:
  """Registers one task over `spec` once; later calls return it unchanged.

  Args:
    name: the SeqIO task name.
    spec: its rows.
    language: for the catalog: the task's one language, or None.
    dataset: for the catalog: the task's one dataset, or None.
    vocabulary: for both features; None = `default_vocabulary()`.
    catalog_source: the catalog's source name; default `spec.source`.

  Returns:
    The registered task.
  """
  if name not in seqio.TaskRegistry.names():
    seqio.TaskRegistry.add(
        name,
        source=sources.RowSource(name, spec),
        preprocessors=preprocessors_list(),
        output_features=output_features(vocabulary),
        metric_fns=[])
  catalog.add(catalog.Entry(name, catalog_source or spec.source, language,
                            dataset))
  return seqio.TaskRegistry.get(name)


def _file_set(files, hub_repo, revision, hub_patterns) -> sources.FileSet:
  if (files is None) == (hub_repo is None):
    raise ValueError("Give either files={split: pattern(s)} (local or gs:// "
                     "paths) or hub_repo= with hub_patterns=.")
  if hub_repo is not None:
    if not hub_patterns:
      raise ValueError(f"hub_repo={hub_repo!r} needs hub_patterns, e.g. "
                       "{'train': 'data/train-*.parquet'}.")
    return sources.HubFiles(hub_repo, revision, _as_patterns(hub_patterns))
  return sources.LocalFiles(_as_patterns(files))


def _as_patterns(by_split: Mapping[str, str | Sequence[str]]
                 ) -> dict[str, tuple[str, ...]]:
  return {split: (p,) if isinstance(p, str) else tuple(p)
          for split, p in by_split.items()}


def register_dataset(
    name: str,
    *,
    files: Mapping[str, str | Sequence[str]] | None = None,
    hub_repo: str | None = None,
    revision: str | None = None,
    hub_patterns: Mapping[str, str | Sequence[str]] | None = None,
    language: "str | languages.Language | None" = None,
    dataset: str | None = None,
    fields: sources.Fields | None = None,
    source: str = CUSTOM_SOURCE,
    max_examples: int | None = None,
    filters: Sequence[preprocessors.RowFilter] = (),
    hygiene: preprocessors.HygieneConfig = preprocessors.HygieneConfig(),
    vocabulary: seqio.Vocabulary | None = None,
) -> seqio.Task:
  """Registers a training task for a new dataset or language in one call.

  The rows get the same hygiene, counting, tokenization and caching as the
  Aya sources. Registering an existing name again returns the task that is
  already registered (the first registration wins).

  Args:
    name: the task name, e.g. "my_quechua_instructions".
    files: split -> file pattern(s), JSONL / parquet / TFRecord in the
      `fields` schema (local or gs:// paths).
    hub_repo: instead of `files`, a Hub dataset repository id, read like the
      Aya sources (AYA_DATA_DIR mirror, or the Hub).
    revision: the repository commit to pin (recommended).
    hub_patterns: split -> pattern(s) inside `hub_repo`.
    language: the language of every row: a registry code or name, or a
      `languages.Language` for one outside the registry (it is registered).
      None: each row's own `language` field, any registered language.
    dataset: the `dataset` metadata of every row (default: `name`).
    fields: column names of the files (default inputs/targets/language).
    source: the `source` metadata and catalog source.
    max_examples: keep at most this many rows (a reproducible sample).
    filters: extra row filters (see `aya_t5x.preprocessors`).
    hygiene: hygiene settings.
    vocabulary: None = `default_vocabulary()`.

  Returns:
    The registered seqio.Task.
  """
  if isinstance(language, languages.Language):
    languages.register(language)
  code = languages.code(language) if language is not None else None
  fields = fields or sources.Fields()
  if code is not None:  # One language for every row: no column needed.
    fields = sources.Fields(fields.inputs, fields.targets, None,
                            fields.dataset, dict(fields.extra))
  spec = sources.SourceSpec(
      source=source,
      files=_file_set(files, hub_repo, revision, hub_patterns),
      fields=fields,
      language=code,
      dataset=dataset or name,
      filters=lambda: tuple(filters),
      hygiene=hygiene,
      cap=preprocessors.Cap(max_examples) if max_examples else None)
  return register_source_task(name, spec, language=code,
                              dataset=dataset or name,
                              vocabulary=vocabulary)


DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
# Small files in each source's real schema, laid out like the Hub
# repositories: point AYA_DATA_DIR here to train or test without network.
SAMPLE_DIR = os.path.join(DATA_DIR, "sample")


@functools.cache
def _hub_metadata() -> dict:
  with open(os.path.join(DATA_DIR, "hub_metadata.json"), encoding="utf-8") as f:
    return json.load(f)


def hub_revision(repo_id: str) -> str | None:
  """The commit the loaders pin for a repository (tasks/data/hub_metadata.json)."""
  return _hub_metadata()[repo_id]["revision"]


def card_languages(repo_id: str) -> tuple[str, ...]:
  """Registry codes of a repository's dataset-card languages that are Aya
  languages, in registry order (codes the registry lacks are left out)."""
  found = {languages.find(c) for c in _hub_metadata()[repo_id]["card_languages"]}
  return tuple(l.code for l in languages.aya_languages() if l in found)

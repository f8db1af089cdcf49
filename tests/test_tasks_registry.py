"""The registered training tasks: names, languages, features, the catalog,
idempotent registration and the README's "Add your language" example."""

import importlib
import os
import re

import pytest
import seqio

from aya_t5x import languages
from aya_t5x import sources
from aya_t5x import vocabularies
import aya_t5x.tasks
from aya_t5x.tasks import aya_collection
from aya_t5x.tasks import aya_dataset
from aya_t5x.tasks import catalog
from aya_t5x.tasks import data_provenance
from aya_t5x.tasks import registry_helpers
from aya_t5x.tasks import safety
from aya_t5x.tasks import sharegpt_command
from aya_t5x.tasks import xp3x

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Production task-name prefix per source (tests register others).
PREFIXES = {catalog.XP3X: "aya_xp3x_", catalog.AYA_DATASET: "aya_dataset_",
            catalog.AYA_TEMPLATED: "aya_templated_",
            catalog.AYA_TRANSLATED: "aya_translated_"}


def _production(source):
  return [e for e in catalog.entries(source=source)
          if e.task.startswith(PREFIXES[source])]


def test_language_counts_per_source_match_the_paper_where_enumerable():
  """Table 1 counts xP3x 101 and Aya Dataset 64 languages: both follow from
  metadata (xP3x covers all of mT5's; the Aya Dataset card lists 65
  languages, Wolof not an Aya one). The Aya Collection card lists 98 Aya
  languages; the paper's 61/93 come from a selection it does not list."""
  counts = {s: len({e.language for e in _production(s)}) for s in PREFIXES}
  assert counts == {catalog.XP3X: 101, catalog.AYA_DATASET: 64,
                    catalog.AYA_TEMPLATED: 98, catalog.AYA_TRANSLATED: 98}
  assert "wol" not in {e.language for e in _production(catalog.AYA_DATASET)}
  assert {"fry", "lat", "ory"}.isdisjoint(
      e.language for e in _production(catalog.AYA_TRANSLATED))


def test_translated_tasks_cover_the_19_datasets_per_language():
  assert len(aya_collection.TRANSLATED_DATASETS) == 19
  swahili = catalog.entries(source=catalog.AYA_TRANSLATED, language="swa")
  assert {e.dataset for e in swahili} == set(
      aya_collection.TRANSLATED_DATASETS)
  assert "aya_translated_dolly_swa" in {e.task for e in swahili}
  assert aya_collection.translated_spec("translated_dolly", "swa").cap is None
  assert aya_collection.translated_spec("translated_piqa",
                                        "swa").cap.max_rows == 3_000


def test_every_source_has_tasks_in_the_catalog():
  assert set(catalog.SOURCES) <= set(catalog.sources())
  for name in (data_provenance.TASK_NAME, sharegpt_command.TASK_NAME,
               safety.TASK_NAME):
    assert name in seqio.TaskRegistry.names()
  assert catalog.tasks(catalog.XP3X, "hin") == ["aya_xp3x_hin"]


def test_tasks_have_mt5_features_with_eos_and_a_cache_point():
  for name in ("aya_xp3x_yor", "aya_dataset_hin", "aya_templated_swa",
               "aya_translated_dolly_amh", "aya_data_provenance",
               "aya_sharegpt_command", "aya_safety_distillation"):
    task = seqio.get_mixture_or_task(name)
    assert set(task.output_features) == {"inputs", "targets"}
    for feature in task.output_features.values():
      assert feature.add_eos
      assert feature.vocabulary.sentencepiece_model_file == (
          vocabularies.MT5_SPM_PATH)
    steps = [getattr(p, "__name__", type(p).__name__)
             for p in task.preprocessors]
    assert steps == ["tokenize", "CacheDatasetPlaceholder",
                     "append_eos_after_trim"], name
    assert task.supports_caching
    assert isinstance(task.source, sources.RowSource)


def test_vocabulary_comes_from_aya_vocabulary(monkeypatch):
  monkeypatch.setenv(registry_helpers.ENV_VOCABULARY, "demo")
  assert registry_helpers.default_vocabulary().sentencepiece_model_file == (
      vocabularies.DEMO_SPM_PATH)
  monkeypatch.setenv(registry_helpers.ENV_VOCABULARY, "/nowhere/x.model")
  with pytest.raises(FileNotFoundError, match="nowhere"):
    registry_helpers.default_vocabulary()


def test_hub_sources_pin_commits_or_say_they_do_not():
  for module in (xp3x, aya_dataset, aya_collection):
    revision = registry_helpers.hub_revision(module.REPO_ID)
    assert re.fullmatch(r"[0-9a-f]{40}", revision), module.REPO_ID
  assert xp3x.spec("hin").files.revision == registry_helpers.hub_revision(
      xp3x.REPO_ID)
  assert registry_helpers.hub_revision(data_provenance.REPO_ID) is None


def test_reimporting_every_task_module_is_a_no_op():
  before = set(seqio.TaskRegistry.names())
  for module in (xp3x, aya_dataset, aya_collection, data_provenance,
                 sharegpt_command, safety, aya_t5x.tasks):
    importlib.reload(module)
  assert set(seqio.TaskRegistry.names()) == before


def test_tasks_register_under_one_import_name_only():
  spec = importlib.util.spec_from_file_location(
      "tasks", os.path.join(REPO_ROOT, "tasks", "__init__.py"))
  module = importlib.util.module_from_spec(spec)
  with pytest.raises(ImportError, match="aya_t5x.tasks"):
    spec.loader.exec_module(module)


def test_catalog_refuses_a_conflicting_entry():
  entry = catalog.entries(source=catalog.XP3X, language="hin")[0]
  catalog.add(entry)  # The same entry again: a no-op.
  with pytest.raises(ValueError, match="already in the catalog"):
    catalog.add(catalog.Entry(entry.task, "other", "hin", None))


def _readme_example() -> str:
  with open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8") as f:
    readme = f.read()
  section = readme.split("## Add your language", 1)[1].split("\n## ", 1)[0]
  return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_add_your_language_example_works_as_written(monkeypatch,
                                                           capsys):
  monkeypatch.chdir(REPO_ROOT)
  seqio.TaskRegistry.remove("my_quechua_instructions")
  catalog.remove("my_quechua_instructions")
  exec(_readme_example(), {})  # pylint: disable=exec-used
  assert "my_quechua_instructions: kept 4, dropped 0" in capsys.readouterr().out
  assert languages.get("qu").name == "Quechua"
  task = seqio.get_mixture_or_task("my_quechua_instructions")
  examples = list(task.get_dataset({"inputs": 32, "targets": 32},
                                   shuffle=False).as_numpy_iterator())
  assert len(examples) == 4
  assert {ex["language"] for ex in examples} == {b"que"}
  assert all(ex["targets"][-1] == vocabularies.EOS_ID for ex in examples)
  assert catalog.entries(language="que")[0].task == "my_quechua_instructions"

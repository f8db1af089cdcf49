"""The Aya Collection: templated and translated subsets (Table 1, rows 3, 5).

`CohereForAI/aya_collection` stores each config as
`<config>/<split>-XXXXX-of-XXXXX.parquet`; every row carries its `language`
(ISO 639-3). Tasks:

- `aya_templated_<code>`: every `templated_*` config for one language (the
  templated subset: 34 datasets made from templates written by fluent
  speakers). The `dataset` metadata is the config, e.g. `templated_xlel_wd`.
- `aya_translated_<dataset>_<code>`: one of the 19 translated datasets
  (NLLB translations of English instruction data) for one language, at most
  3,000 rows per language and dataset except Dolly (paper section 2); the
  3,000 are a reproducible uniform sample (`preprocessors.Cap`).

Languages: the Aya languages of the dataset card (98). The paper counts 61
(templated) and 93 (translated) after its own selection, which it does not
list; tasks of languages a config lacks are empty (size 0 when counted).
The Hub files are sorted by language, so a per-language task skips other
languages' row groups from parquet statistics without reading them.
"""

import seqio

from aya_t5x import languages
from aya_t5x import preprocessors
from aya_t5x import sources
from aya_t5x.tasks import catalog
from aya_t5x.tasks import registry_helpers

REPO_ID = "CohereForAI/aya_collection"
TEMPLATED_PREFIX = "aya_templated"
TRANSLATED_PREFIX = "aya_translated"
SPLITS = ("train", "validation", "test")
# The 19 translated datasets of the paper, as the repository's configs:
# adversarial_qa, cnn_dailymail, Flan coqa, Flan cot_submix, Flan
# wiki_lingua_en (flan_gem_wiki), Flan lambada, Flan unified_qa_science_inst
# (flan_qa), HotpotQA, joke_explaination, Mintaka, MLQA-en, nq_open,
# PAWS-Wiki, PIQA, SODA, WikiQA, wiki_split, xlel_wd, Dolly v2.
TRANSLATED_DATASETS = (
    "translated_adversarial_qa", "translated_cnn_dailymail",
    "translated_flan_coqa", "translated_flan_cot", "translated_flan_gem_wiki",
    "translated_flan_lambada", "translated_flan_qa", "translated_hotpotqa",
    "translated_joke_explaination", "translated_mintaka", "translated_mlqa",
    "translated_nqopen", "translated_paws", "translated_piqa",
    "translated_soda", "translated_wikiqa", "translated_wiki_split",
    "translated_xlel_wd", "translated_dolly")
UNCAPPED = frozenset({"translated_dolly"})
CAP_PER_LANGUAGE = 3_000
FIELDS = sources.Fields(language="language")


def language_codes() -> tuple[str, ...]:
  return registry_helpers.card_languages(REPO_ID)


def _files(config_glob: str, revision: str | None) -> sources.HubFiles:
  return sources.HubFiles(
      REPO_ID, revision or registry_helpers.hub_revision(REPO_ID),
      {split: (f"{config_glob}/{split}-*.parquet",) for split in SPLITS})


def templated_spec(language: str, revision: str | None = None
                   ) -> sources.SourceSpec:
  return sources.SourceSpec(
      source=catalog.AYA_TEMPLATED,
      files=_files("templated_*", revision),
      fields=FIELDS,
      languages=frozenset({languages.code(language)}),
      dataset_from_dir=True)


def translated_spec(dataset: str, language: str,
                    revision: str | None = None,
                    cap: int | None = CAP_PER_LANGUAGE) -> sources.SourceSpec:
  """One translated dataset in one language; Dolly is never capped."""
  if dataset not in TRANSLATED_DATASETS:
    raise ValueError(f"Unknown translated dataset {dataset!r}; the 19 are "
                     f"{list(TRANSLATED_DATASETS)}.")
  capped = cap is not None and dataset not in UNCAPPED
  return sources.SourceSpec(
      source=catalog.AYA_TRANSLATED,
      files=_files(dataset, revision),
      fields=FIELDS,
      languages=frozenset({languages.code(language)}),
      dataset=dataset,
      cap=preprocessors.Cap(cap) if capped else None)


def templated_task_name(language: str, prefix: str = TEMPLATED_PREFIX) -> str:
  return f"{prefix}_{languages.code(language)}"


def translated_task_name(dataset: str, language: str,
                         prefix: str = TRANSLATED_PREFIX) -> str:
  short = dataset.removeprefix("translated_")
  return f"{prefix}_{short}_{languages.code(language)}"


def register(vocabulary: seqio.Vocabulary | None = None,
             templated_prefix: str = TEMPLATED_PREFIX,
             translated_prefix: str = TRANSLATED_PREFIX,
             codes: tuple[str, ...] | None = None,
             datasets: tuple[str, ...] = TRANSLATED_DATASETS) -> list[str]:
  """Registers the templated and translated tasks; returns their names."""
  names = []
  for code in codes or language_codes():
    name = templated_task_name(code, templated_prefix)
    registry_helpers.register_source_task(
        name, templated_spec(code), language=code, dataset=None,
        vocabulary=vocabulary)
    names.append(name)
    for dataset in datasets:
      name = translated_task_name(dataset, code, translated_prefix)
      registry_helpers.register_source_task(
          name, translated_spec(dataset, code), language=code,
          dataset=dataset, vocabulary=vocabulary)
      names.append(name)
  return names


register()

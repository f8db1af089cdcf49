"""The generative benchmarks: FLORES-200, XLSum and TyDiQA GoldP.

- FLORES-200 devtest (`facebook/flores`, one config per language such as
  `hin_Deva`; rows `id`, `sentence`, ...): `flores_x_en` translates each
  language into English and `flores_en_x` English into it, rows paired by
  `id`; spBLEU and chrF++ (`eval_metrics.translation_metrics`, whose key says
  which BLEU tokenizer was used).
- XLSum validation (`csebuetnlp/xlsum`, configs by language name; rows `id`,
  `url`, `title`, `summary`, `text`): RougeLsum with a tokenizer that keeps
  every script, equal to XL-Sum's own scorer without stemming on spaced
  scripts, and `rougeLsum_stemmed` with XL-Sum's stemmers where they can be
  built (`xlsum_rouge`; docs/evaluation_metrics.md has the figures).
- TyDiQA GoldP validation (`google-research-datasets/tydiqa`, config
  `secondary_task`; rows `id`, `title`, `context`, `question`, `answers`
  {`text`, `answer_start`}): one multilingual file whose ids start with the
  language's English name; SQuAD F1 and exact match.
"""

import functools
from collections.abc import Sequence

from aya_t5x import eval_metrics
from aya_t5x import languages
from aya_t5x import sources
from aya_t5x import xlsum_rouge
from aya_t5x.tasks.eval import benchmark as benchmark_lib
from aya_t5x.tasks.eval import example as example_lib
from aya_t5x.tasks.eval import prompts
from aya_t5x.tasks.eval import source as source_lib

text = example_lib.text

FLORES_REPO = "facebook/flores"
# The maintained, gated successor, read first (sources.FallbackFiles):
# `<split>/<lang_Script>.parquet`, column `text` where facebook/flores has
# `sentence`.
FLORES_PLUS_REPO = "openlanguagedata/flores_plus"
FLORES_SPLIT = "devtest"
ENGLISH_CONFIG = "eng_Latn"
# Aya language -> FLORES-200 config. Macrolanguages map to the variety
# FLORES carries (ara -> arb, msa -> zsm, ...). Western Frisian and Latin
# are not in FLORES-200; English is the pivot.
FLORES_CONFIGS = {
    "afr": "afr_Latn", "amh": "amh_Ethi", "ara": "arb_Arab",
    "aze": "azj_Latn", "bel": "bel_Cyrl", "ben": "ben_Beng",
    "bul": "bul_Cyrl", "cat": "cat_Latn", "ceb": "ceb_Latn",
    "ces": "ces_Latn", "cym": "cym_Latn", "dan": "dan_Latn",
    "deu": "deu_Latn", "ell": "ell_Grek", "epo": "epo_Latn",
    "est": "est_Latn", "eus": "eus_Latn", "fin": "fin_Latn",
    "fil": "tgl_Latn", "fra": "fra_Latn", "gla": "gla_Latn",
    "gle": "gle_Latn", "glg": "glg_Latn", "guj": "guj_Gujr",
    "hat": "hat_Latn", "hau": "hau_Latn", "heb": "heb_Hebr",
    "hin": "hin_Deva", "hun": "hun_Latn", "hye": "hye_Armn",
    "ibo": "ibo_Latn", "ind": "ind_Latn", "isl": "isl_Latn",
    "ita": "ita_Latn", "jav": "jav_Latn", "jpn": "jpn_Jpan",
    "kan": "kan_Knda", "kat": "kat_Geor", "kaz": "kaz_Cyrl",
    "khm": "khm_Khmr", "kir": "kir_Cyrl", "kor": "kor_Hang",
    "kur": "kmr_Latn", "lao": "lao_Laoo", "lav": "lvs_Latn",
    "lit": "lit_Latn", "ltz": "ltz_Latn", "mal": "mal_Mlym",
    "mar": "mar_Deva", "mkd": "mkd_Cyrl", "mlg": "plt_Latn",
    "mlt": "mlt_Latn", "mon": "khk_Cyrl", "mri": "mri_Latn",
    "msa": "zsm_Latn", "mya": "mya_Mymr", "nep": "npi_Deva",
    "nld": "nld_Latn", "nor": "nob_Latn", "nso": "nso_Latn",
    "nya": "nya_Latn", "ory": "ory_Orya", "pan": "pan_Guru",
    "pes": "pes_Arab", "pol": "pol_Latn", "por": "por_Latn",
    "pus": "pbt_Arab", "ron": "ron_Latn", "rus": "rus_Cyrl",
    "sin": "sin_Sinh", "slk": "slk_Latn", "slv": "slv_Latn",
    "smo": "smo_Latn", "sna": "sna_Latn", "snd": "snd_Arab",
    "som": "som_Latn", "sot": "sot_Latn", "spa": "spa_Latn",
    "sqi": "als_Latn", "srp": "srp_Cyrl", "sun": "sun_Latn",
    "swa": "swh_Latn", "swe": "swe_Latn", "tam": "tam_Taml",
    "tel": "tel_Telu", "tgk": "tgk_Cyrl", "tha": "tha_Thai",
    "tur": "tur_Latn", "twi": "twi_Latn", "ukr": "ukr_Cyrl",
    "urd": "urd_Arab", "uzb": "uzn_Latn", "vie": "vie_Latn",
    "xho": "xho_Latn", "yid": "ydd_Hebr", "yor": "yor_Latn",
    "zho": "zho_Hans", "zul": "zul_Latn",
}
FLORES_COLUMNS = {"id": "id", "sentence": "text|sentence"}

XLSUM_REPO = "csebuetnlp/xlsum"
XLSUM_SPLIT = "validation"
# XLSum config -> language: its 45 configs less the second script of
# Chinese and Serbian (43 languages, as the paper counts them).
XLSUM_CONFIGS = {
    "amharic": "amh", "arabic": "ara", "azerbaijani": "aze",
    "bengali": "ben", "burmese": "mya", "chinese_simplified": "zho",
    "english": "eng", "french": "fra", "gujarati": "guj", "hausa": "hau",
    "hindi": "hin", "igbo": "ibo", "indonesian": "ind", "japanese": "jpn",
    "kirundi": "run", "korean": "kor", "kyrgyz": "kir", "marathi": "mar",
    "nepali": "nep", "oromo": "orm", "pashto": "pus", "persian": "pes",
    "pidgin": "pcm", "portuguese": "por", "punjabi": "pan",
    "russian": "rus", "scottish_gaelic": "gla", "serbian_cyrillic": "srp",
    "sinhala": "sin", "somali": "som", "spanish": "spa", "swahili": "swa",
    "tamil": "tam", "telugu": "tel", "thai": "tha", "tigrinya": "tir",
    "turkish": "tur", "ukrainian": "ukr", "urdu": "urd", "uzbek": "uzb",
    "vietnamese": "vie", "welsh": "cym", "yoruba": "yor",
}
# Language -> the config name, which XL-Sum's scorer takes as `lang`.
XLSUM_CONFIG_OF = {code: config for config, code in XLSUM_CONFIGS.items()}
XLSUM_COLUMNS = {"id": "id", "summary": "summary", "text": "text"}

TYDIQA_REPO = "google-research-datasets/tydiqa"
TYDIQA_CONFIG = "secondary_task"
TYDIQA_SPLIT = "validation"
# The English language name TyDiQA ids start with -> language code.
TYDIQA_LANGUAGES = {"arabic": "ara", "bengali": "ben", "english": "eng",
                    "finnish": "fin", "indonesian": "ind",
                    "japanese": "jpn", "korean": "kor", "russian": "rus",
                    "swahili": "swa", "telugu": "tel", "thai": "tha"}
TYDIQA_COLUMNS = {"id": "id", "context": "context", "question": "question",
                  "answers": "answers"}


def language_name(code: str) -> str:
  found = languages.find(code)
  return found.name if found else code


# --- metrics: (gold answers per example, predictions) -> metrics ---------


def translation(targets: Sequence[Sequence[str]],
                predictions: Sequence[str], language: str | None = None, *,
                into: str | None = None) -> dict[str, float]:
  """spBLEU/chrF++; without spBLEU's model, BLEU tokenized for the language
  translated into (`into`, else the evaluated `language`)."""
  return eval_metrics.translation_metrics(
      [t[0] for t in targets], predictions, language=into or language)


def summarization(targets: Sequence[Sequence[str]],
                  predictions: Sequence[str],
                  language: str | None = None) -> dict[str, float]:
  """RougeLsum and, where XL-Sum's stemmer for `language` can be built,
  its stemmed twin (`xlsum_rouge.STEMMED_KEY`)."""
  summaries = [t[0] for t in targets]
  scores = eval_metrics.rouge_lsum(summaries, predictions)
  config = XLSUM_CONFIG_OF.get(language)
  if config:
    scores.update(xlsum_rouge.stemmed_rouge_lsum(summaries, predictions,
                                                 config))
  return scores


def extractive_qa(targets: Sequence[Sequence[str]],
                  predictions: Sequence[str]) -> dict[str, float]:
  return eval_metrics.squad([list(t) for t in targets], predictions)


# --- rows -> examples ----------------------------------------------------


def _english_side(row, context: source_lib.Context) -> str:
  row_id = text(row["id"], "id", numeric=True)
  english = context.aligned.get(row_id)
  if english is None:
    raise example_lib.BadRow(f"no {ENGLISH_CONFIG} row with id {row_id}",
                             "id")
  return text(english["sentence"], f"{ENGLISH_CONFIG}.text")


def flores_x_en(row, context: source_lib.Context):
  yield example_lib.Example(
      id=text(row["id"], "id", numeric=True), language=context.language,
      inputs=prompts.TRANSLATE.format(target_language="English",
                                      sentence=text(row["sentence"],
                                                    "sentence")),
      targets=(_english_side(row, context),))


def flores_en_x(row, context: source_lib.Context):
  yield example_lib.Example(
      id=text(row["id"], "id", numeric=True), language=context.language,
      inputs=prompts.TRANSLATE.format(
          target_language=language_name(context.language),
          sentence=_english_side(row, context)),
      targets=(text(row["sentence"], "sentence"),))


def xlsum_examples(row, context: source_lib.Context):
  yield example_lib.Example(
      id=text(row["id"], "id"), language=context.language,
      inputs=prompts.SUMMARIZE.format(
          language=language_name(context.language),
          text=text(row["text"], "text")),
      targets=(text(row["summary"], "summary"),))


def tydiqa_examples(row, context: source_lib.Context):
  answers = row["answers"]
  texts = answers.get("text") if isinstance(answers, dict) else None
  if not texts:
    raise example_lib.BadRow("no answer text", "answers")
  yield example_lib.Example(
      id=text(row["id"], "id"), language=context.language,
      inputs=prompts.EXTRACTIVE_QA.format(
          question=text(row["question"], "question"),
          context=text(row["context"], "context")),
      targets=tuple(text(t, "answers.text") for t in texts))


def _tydiqa_keep(language_name_: str):
  prefix = language_name_ + "-"
  def keep(row) -> bool:
    row_id = row.get("id")
    if isinstance(row_id, bytes):
      row_id = row_id.decode("utf-8", "replace")
    return isinstance(row_id, str) and row_id.startswith(prefix)
  return keep


# --- registration --------------------------------------------------------


# flores_plus renamed some FLORES-200 configs: Mandarin is `cmn_Hans` there
# (public code reading flores_plus asks for `cmn_Hans`); whether it kept a
# `zho_Hans` copy is UNCERTAIN, so both names are read.
FLORES_PLUS_NAMES = {"zho_Hans": ("zho_Hans", "cmn_Hans"),
                     "zho_Hant": ("zho_Hant", "cmn_Hant")}


def flores_files(config: str, split: str = FLORES_SPLIT
                 ) -> sources.FallbackFiles:
  """A FLORES-200 language's split: flores_plus, else facebook/flores."""
  names = FLORES_PLUS_NAMES.get(config, (config,))
  return sources.FallbackFiles(
      benchmark_lib.hub_files(FLORES_PLUS_REPO, {
          split: tuple(f"{split}/{name}.parquet" for name in names)}),
      benchmark_lib.hub_files(FLORES_REPO, {
          split: benchmark_lib.split_patterns(config, split)}))


def _flores(name: str, build, vocabulary, into: str | None
            ) -> benchmark_lib.Benchmark:
  english = flores_files(ENGLISH_CONFIG)
  tasks = {}
  for code, config in FLORES_CONFIGS.items():
    task = benchmark_lib.task_name(name, code)
    spec = source_lib.EvalSourceSpec(
        files=flores_files(config),
        split=FLORES_SPLIT, columns=FLORES_COLUMNS, build=build,
        language=code, aligned=english)
    benchmark_lib.register_task(task, spec, vocabulary)
    tasks[code] = task
  return benchmark_lib.add(benchmark_lib.Benchmark(
      name=name, kind=benchmark_lib.GENERATE, tasks=tasks,
      metric=functools.partial(translation, into=into),
      metric_takes_language=True, max_new_tokens=256))


def _xlsum(vocabulary) -> benchmark_lib.Benchmark:
  tasks = {}
  for config, code in XLSUM_CONFIGS.items():
    task = benchmark_lib.task_name("xlsum", code)
    spec = source_lib.EvalSourceSpec(
        files=benchmark_lib.hub_files(XLSUM_REPO, {
            XLSUM_SPLIT: benchmark_lib.split_patterns(config, XLSUM_SPLIT)}),
        split=XLSUM_SPLIT, columns=XLSUM_COLUMNS, build=xlsum_examples,
        language=code)
    benchmark_lib.register_task(task, spec, vocabulary)
    tasks[code] = task
  return benchmark_lib.add(benchmark_lib.Benchmark(
      name="xlsum", kind=benchmark_lib.GENERATE, tasks=tasks,
      metric=summarization, metric_takes_language=True,
      max_new_tokens=128))


def _tydiqa(vocabulary) -> benchmark_lib.Benchmark:
  files = benchmark_lib.hub_files(TYDIQA_REPO, {
      TYDIQA_SPLIT: benchmark_lib.split_patterns(TYDIQA_CONFIG,
                                                 TYDIQA_SPLIT)})
  tasks = {}
  for name, code in TYDIQA_LANGUAGES.items():
    task = benchmark_lib.task_name("tydiqa", code)
    spec = source_lib.EvalSourceSpec(
        files=files, split=TYDIQA_SPLIT, columns=TYDIQA_COLUMNS,
        build=tydiqa_examples, language=code, keep=_tydiqa_keep(name))
    benchmark_lib.register_task(task, spec, vocabulary)
    tasks[code] = task
  return benchmark_lib.add(benchmark_lib.Benchmark(
      name="tydiqa", kind=benchmark_lib.GENERATE, tasks=tasks,
      metric=extractive_qa, max_new_tokens=32))


def register(vocabulary=None) -> list[benchmark_lib.Benchmark]:
  return [_flores("flores_x_en", flores_x_en, vocabulary, into="eng"),
          _flores("flores_en_x", flores_en_x, vocabulary, into=None),
          _xlsum(vocabulary), _tydiqa(vocabulary)]

"""Writes the sample training data: tiny files in each source's real schema.

    python tasks/data/sample/build_sample_data.py [OUT_DIR]

The examples are our own (short sentences about rivers, books and tea in
eight languages and six scripts, three of them lower-resourced: Swahili,
Yoruba, Amharic), laid out like the Hugging Face repositories so the Hub
loaders read them through `AYA_DATA_DIR=tasks/data/sample`:

  CohereForAI/xP3x/data/<code>_<Script>/<dataset>_<template>.jsonl
  CohereForAI/aya_dataset/data/{train,test}-00000-of-00001.parquet
  CohereForAI/aya_collection/<config>/train-00000-of-00001.parquet
  DataProvenanceInitiative/Commercially-Verified-Licenses/data/<folder>/<Collection Name>-processed.jsonl
  sharegpt_command/train-00000-of-00001.jsonl        (AYA_SHAREGPT_COMMAND_DIR)
  safety_distillation/train-00000-of-00001.jsonl     (AYA_SAFETY_DISTILLATION_DIR)
  custom/quechua/train.jsonl                         (README "Add your language")

A few rows are built to trip the filters (a held-out dataset, a pruned, a
near-duplicate and a short template, an empty target, a duplicate, a URL, a
short and a repetitive safety answer, excluded Data Provenance datasets), so
reports on the sample show every kind of drop; `EXPECTED` records what the
tests expect. The xP3x file names are ours: the Hub's paths.json lists the
real ones, which the loaders match by directory (`*.jsonl`), not by name.
"""

import json
import os
import sys

import pyarrow as pa

from aya_t5x import sources

OUT_DIR = os.path.dirname(os.path.abspath(__file__))

# code -> (xP3x directory, English name, aya_dataset language_code,
# aya_dataset language name).
LANGUAGES = {
    "eng": ("eng_Latn", "English", "eng", "English"),
    "hin": ("hin_Deva", "Hindi", "hin", "Hindi"),
    "ara": ("arb_Arab", "Arabic", "arb", "Standard Arabic"),
    "zho": ("zho_Hans", "Chinese", "zho", "Simplified Chinese"),
    "rus": ("rus_Cyrl", "Russian", "rus", "Russian"),
    "swa": ("swh_Latn", "Swahili", "swa", "Swahili"),
    "yor": ("yor_Latn", "Yoruba", "yor", "Yoruba"),
    "amh": ("amh_Ethi", "Amharic", "amh", "Amharic"),
}
SCRIPTS = {"eng": "Latn", "hin": "Deva", "ara": "Arab", "zho": "Hans",
           "rus": "Cyrl", "swa": "Latn", "yor": "Latn", "amh": "Ethi"}
# Five sentences per language, aligned with the English ones.
SENTENCES = {
    "eng": ["The river is long.", "I like to read books.",
            "The market opens early.", "Children play in the park.",
            "We drink tea in the morning."],
    "hin": ["नदी लंबी है।", "मुझे किताबें पढ़ना पसंद है।",
            "बाज़ार जल्दी खुलता है।", "बच्चे पार्क में खेलते हैं।",
            "हम सुबह चाय पीते हैं।"],
    "ara": ["النهر طويل.", "أحب قراءة الكتب.", "يفتح السوق مبكرا.",
            "يلعب الأطفال في الحديقة.", "نشرب الشاي في الصباح."],
    "zho": ["这条河很长。", "我喜欢读书。", "市场很早开门。", "孩子们在公园里玩。",
            "我们早上喝茶。"],
    "rus": ["Река длинная.", "Я люблю читать книги.",
            "Рынок открывается рано.", "Дети играют в парке.",
            "Мы пьём чай утром."],
    "swa": ["Mto ni mrefu.", "Ninapenda kusoma vitabu.",
            "Soko hufunguliwa mapema.", "Watoto wanacheza bustanini.",
            "Tunakunywa chai asubuhi."],
    "yor": ["Odò náà gùn.", "Mo fẹ́ràn láti ka ìwé.", "Ọjà ṣí ní kùtùkùtù.",
            "Àwọn ọmọdé ń ṣeré ní pápá.", "A máa ń mu tíì ní àárọ̀."],
    "amh": ["ወንዙ ረጅም ነው።", "መጽሐፍ ማንበብ እወዳለሁ።", "ገበያው ቀደም ብሎ ይከፈታል።",
            "ልጆች በፓርኩ ውስጥ ይጫወታሉ።", "ጠዋት ሻይ እንጠጣለን።"],
}

# What the tests expect the loaders to keep and drop on this sample.
EXPECTED = {
    # Per xP3x language task: 5 rows of `reverse-words` and 5 of
    # `to-english` kept; dropped: 5 pruned_template (reverse-words-terse),
    # 5 near_duplicate_template (to-english-please), 5 short_template
    # (first-letter), 5 held_out_dataset (xwinograd). Hindi also has one
    # duplicate row, English one empty target.
    "xp3x_kept_per_language": 10,
    "xp3x_dropped_per_language": {
        "pruned_template:template": 5, "near_duplicate_template:template": 5,
        "short_template:template": 5, "held_out_dataset:dataset": 5},
    "xp3x_extra_drops": {"hin": {"duplicate:inputs+targets": 1},
                         "eng": {"empty:targets": 1}},
    # aya_dataset: 3 train rows per language (Arabic: 2 arb + 1 ary), 1 test
    # row; plus 2 Wolof rows, in no Aya task.
    "aya_dataset_train_per_language": 3,
    "aya_dataset_test_per_language": 1,
}


def _jsonl(path: str, rows: list[dict]) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    for row in rows:
      f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _parquet(path: str, rows: list[dict], schema: pa.Schema,
             row_group_size: int = 1024) -> None:
  sources.write_parquet(path, pa.Table.from_pylist(rows, schema=schema),
                        row_group_size=row_group_size, compression="zstd")


def _xp3x_rows(code: str) -> dict[str, list[dict]]:
  """file stem -> rows, for one language directory."""
  directory, name = LANGUAGES[code][0], LANGUAGES[code][1]
  sentences = SENTENCES[code]
  english = SENTENCES["eng"]

  def row(inputs, targets, dataset, config, template):
    return {"inputs": inputs, "targets": targets, "language": directory,
            "split": "train", "template": template, "dataset": dataset,
            "config": config}

  files = {}
  word_order = "aya_sample/word_order"
  files["word_order_reverse-words"] = [
      row(f"Reverse the order of the words: {s}",
          " ".join(reversed(s.split())), word_order, code, "reverse-words")
      for s in sentences]
  files["word_order_reverse-words-terse"] = [
      row(f"Reverse: {s}", " ".join(reversed(s.split())), word_order, code,
          "reverse-words-terse") for s in sentences]
  translation = "aya_sample/translation"
  files["translation_to-english"] = [
      row(f"Translate the following sentence from {name} to English. "
          f"Sentence: {s} Translation:", e, translation, code, "to-english")
      for s, e in zip(sentences, english)]
  files["translation_to-english-please"] = [
      row(f"Please translate the following sentence from {name} to "
          f"English. Sentence: {s} Translation:", e, translation, code,
          "to-english-please") for s, e in zip(sentences, english)]
  files["translation_first-letter"] = [
      row(f"What is the first character of this sentence? {s}", s[0],
          translation, code, "first-letter") for s in sentences]
  files["xwinograd_fill-blank"] = [
      row(f"Fill in the blank: {s[:len(s) // 2]} _", s[len(s) // 2:],
          "Muennighoff/xwinograd", code[:2], "fill-blank")
      for s in sentences]
  if code == "hin":  # One exact duplicate, counted as such.
    files["word_order_reverse-words"].append(
        files["word_order_reverse-words"][0])
  if code == "eng":  # One empty target.
    files["translation_to-english"].append(
        row("Translate the following sentence from English to English. "
            "Sentence: Hello. Translation:", "   ", translation, code,
            "to-english"))
  return files


def build_xp3x(out: str) -> None:
  root = os.path.join(out, "CohereForAI", "xP3x", "data")
  for code in LANGUAGES:
    for stem, rows in _xp3x_rows(code).items():
      _jsonl(os.path.join(root, LANGUAGES[code][0], f"{stem}.jsonl"), rows)


_AYA_DATASET_SCHEMA = pa.schema([
    ("inputs", pa.string()), ("targets", pa.string()),
    ("language", pa.string()), ("language_code", pa.string()),
    ("annotation_type", pa.string()), ("user_id", pa.string())])


def _aya_dataset_rows(split: str) -> list[dict]:
  rows = []
  for i, code in enumerate(LANGUAGES):
    sentences, english = SENTENCES[code], SENTENCES["eng"]
    picks = range(3) if split == "train" else range(3, 4)
    for j in picks:
      language, language_code = LANGUAGES[code][3], LANGUAGES[code][2]
      if code == "ara" and j == 2:
        language, language_code = "Moroccan Arabic", "ary"
      rows.append({
          "inputs": f"What does this mean in English? {sentences[j]}",
          "targets": f"It means: {english[j]}",
          "language": language, "language_code": language_code,
          "annotation_type": ("original-annotations" if j % 2 == 0
                              else "re-annotations"),
          "user_id": f"{(i * 7919 + j * 104729):032x}"})
  if split == "train":
    for j in range(2):  # Wolof: in the dataset, not an Aya language.
      rows.append({"inputs": f"Translate: Jërëjëf {j}",
                   "targets": "Thank you", "language": "Wolof",
                   "language_code": "wol",
                   "annotation_type": "original-annotations",
                   "user_id": f"{j:032x}"})
  return rows


def build_aya_dataset(out: str) -> None:
  root = os.path.join(out, "CohereForAI", "aya_dataset", "data")
  for split in ("train", "test"):
    _parquet(os.path.join(root, f"{split}-00000-of-00001.parquet"),
             _aya_dataset_rows(split), _AYA_DATASET_SCHEMA)


_COLLECTION_FIELDS = [
    ("id", pa.int64()), ("inputs", pa.string()), ("targets", pa.string()),
    ("dataset_name", pa.string()), ("sub_dataset_name", pa.string()),
    ("task_type", pa.string()), ("template_id", pa.int64()),
    ("language", pa.string()), ("script", pa.string()),
    ("split", pa.string())]
TEMPLATED_SCHEMA = pa.schema(_COLLECTION_FIELDS)
TRANSLATED_SCHEMA = pa.schema(
    [_COLLECTION_FIELDS[0], _COLLECTION_FIELDS[1], _COLLECTION_FIELDS[2],
     ("info_uuid", pa.string())] + _COLLECTION_FIELDS[3:])


def collection_row(i: int, code: str, inputs: str, targets: str,
                   dataset_name: str, task_type: str, translated: bool
                   ) -> dict:
  """One row in the Aya Collection schema (tests build capped data too)."""
  row = {"id": i, "inputs": inputs, "targets": targets,
         "dataset_name": dataset_name, "sub_dataset_name": "-",
         "task_type": task_type, "template_id": 1 + i % 3,
         "language": code, "script": SCRIPTS.get(code, "Latn"),
         "split": "train"}
  if translated:
    row["info_uuid"] = f"{i:08x}-0000-4000-8000-{i:012x}"
  return row


def build_aya_collection(out: str) -> None:
  root = os.path.join(out, "CohereForAI", "aya_collection")
  # Rows sorted by language, 5 per row group: per-language tasks skip the
  # row groups of other languages from the parquet statistics.
  templated, dolly, cot = [], [], []
  for code in sorted(LANGUAGES):
    for j, (s, e) in enumerate(zip(SENTENCES[code], SENTENCES["eng"])):
      i = len(templated)
      templated.append(collection_row(
          i, code, f"Which event does this sentence describe? {s}",
          f"An everyday event: {e}", "Xlel_wd-inst", "event-linking", False))
      dolly.append(collection_row(
          i, code, f"Explain simply: {s}", f"{s} ({e})", "Dolly-v2",
          "generation", True))
      cot.append(collection_row(
          i, code, f"Think step by step. Is this sentence about a place? {s}",
          f"Let us think. {s} Answer: {'yes' if j in (0, 2, 3) else 'no'}",
          "Flan-CoT-submix", "question-answering", True))
  _parquet(os.path.join(root, "templated_xlel_wd",
                        "train-00000-of-00001.parquet"), templated,
           TEMPLATED_SCHEMA, row_group_size=5)
  _parquet(os.path.join(root, "translated_dolly",
                        "train-00000-of-00001.parquet"), dolly,
           TRANSLATED_SCHEMA, row_group_size=5)
  _parquet(os.path.join(root, "translated_flan_cot",
                        "train-00000-of-00001.parquet"), cot,
           TRANSLATED_SCHEMA, row_group_size=5)


# Data Provenance as the Hub holds it: one JSONL per collection, names with
# spaces and dots, `labels` or `targets`, the dataset uid in `dataset` or
# `user_parent`, a `language` column only where a file has one.
# folder, file, targets column, dataset column, datasets, language.
DATA_PROVENANCE_FILES = (
    ("dolly_15k", "Dolly 15k-processed.jsonl", "labels", "dataset",
     ("dolly_15k",), None),
    ("flan_2021", "Flan 2021-processed.jsonl", "labels", "dataset",
     ("flan/quartz", "flan/anli_r1", "flan/copa"), None),
    ("rlhf_anthropic_hh", "Anthropic HH-RLHF.j-processed.jsonl", "targets",
     "user_parent", ("anthropic_hh",), None),
    ("open_assistant", "OpenAssistant OASST1-processed.jsonl", "labels",
     "dataset", ("oasst_es",), "spa"),
    ("commitpack_ft", "CommitPackFT-processed.jsonl", "labels", "dataset",
     ("commitpackft",), None),  # Code: never read.
)


def build_data_provenance(out: str) -> None:
  root = os.path.join(out, "DataProvenanceInitiative",
                      "Commercially-Verified-Licenses", "data")
  spanish = ["El río es largo.", "Me gusta leer libros.",
             "El mercado abre temprano."]
  for folder, name, targets, dataset_column, datasets, language in (
      DATA_PROVENANCE_FILES):
    rows = []
    for dataset in datasets:
      texts = spanish if language == "spa" else SENTENCES["eng"][:3]
      for s in texts:
        row = {"inputs": f"[{dataset}] Rewrite politely: {s}",
               targets: f"Could you note that {s[0].lower()}{s[1:]}",
               dataset_column: dataset}
        if language:
          row["language"] = language
        rows.append(row)
    _jsonl(os.path.join(root, folder, name), rows)


def build_sharegpt_command(out: str) -> None:
  rows = []
  for code in ("eng", "hin", "swa", "zho"):
    for j, s in enumerate(SENTENCES[code][:3]):
      rows.append({"inputs": f"Write a short reply to: {s}",
                   "targets": f"{s} " * 2 + "!", "language": code})
  rows.append({"inputs": "Summarise https://example.com/article please",
               "targets": "I cannot open links.", "language": "eng"})
  _jsonl(os.path.join(out, "sharegpt_command",
                      "train-00000-of-00001.jsonl"), rows)


def build_safety(out: str) -> None:
  rows = []
  refusal = {
      "eng": "I cannot help with that request because it could hurt people.",
      "hin": "मैं इस अनुरोध में मदद नहीं कर सकता क्योंकि इससे लोगों को नुकसान हो सकता है।",
      "swa": "Siwezi kusaidia ombi hilo kwa sababu linaweza kuwadhuru watu.",
      "yor": "Mi ò lè ràn yín lọ́wọ́ nínú ìbéèrè yìí nítorí ó lè pa àwọn èèyàn lára.",
  }
  for code, answer in refusal.items():
    rows.append({"prompt": f"How do I hurt someone? ({code})",
                 "response": answer, "language": code})
  rows.append({"prompt": "Tell me something harmful.", "response": "No.",
               "language": "eng"})
  rows.append({"prompt": "Say it again and again.",
               "response": "I will not. " * 8, "language": "eng"})
  _jsonl(os.path.join(out, "safety_distillation",
                      "train-00000-of-00001.jsonl"), rows)


def build_custom(out: str) -> None:
  pairs = [("Allillanchu?", "How are you?"),
           ("Sulpayki.", "Thank you."),
           ("Mayu sunilla.", "The river is long."),
           ("Unuta munani.", "I want water.")]
  _jsonl(os.path.join(out, "custom", "quechua", "train.jsonl"),
         [{"inputs": f"Translate to English: {q}", "targets": e}
          for q, e in pairs])


def build(out: str = OUT_DIR) -> None:
  build_xp3x(out)
  build_aya_dataset(out)
  build_aya_collection(out)
  build_data_provenance(out)
  build_sharegpt_command(out)
  build_safety(out)
  build_custom(out)


if __name__ == "__main__":
  build(sys.argv[1] if len(sys.argv) > 1 else OUT_DIR)

"""Writes the sample evaluation data: tiny files in each benchmark's Hub schema.

    python tasks/data/eval_sample/build_eval_sample.py [OUT_DIR]

The rows are our own (a few short items per language, in languages the
shipped demo vocabulary covers), laid out like the Hub repositories the
evaluation tasks read, so `AYA_DATA_DIR=tasks/data/eval_sample` runs every
benchmark offline through the real loaders:

  cambridgeltl/xcopa/<config>/validation/0000.parquet         (conversion)
  facebook/xnli/<config>/validation-00000-of-00001.parquet    (upload)
  juletxara/xstory_cloze/<config>/eval/0000.parquet
  Muennighoff/xwinograd/<config>/test/0000.parquet
  jon-tow/okapi_mmlu/data/<config>_{dev,test}.json          (JSON arrays)
  facebook/flores/<lang_Script>/devtest/0000.parquet
  csebuetnlp/xlsum/<language>/validation/0000.parquet
  google-research-datasets/tydiqa/secondary_task/validation-00000-of-00001.parquet
  CohereForAI/aya_evaluation_suite/<set>/test-00000-of-00001.parquet

Column types follow the Hub (int64 labels and ids, a struct of lists for
TyDiQA answers; okapi MMLU in Okapi's own JSON form: an array of objects
with `instruction`, `option_a`..`option_d`, a letter `answer` and `id`). A few rows are broken on
purpose (a label out of range, an unpaired FLORES id, a TyDiQA row without
answers, a Winograd sentence without a blank): the tasks must skip and count
them. `EXPECTED` is what the tests check: examples per task language.
"""

import json
import os
import sys

import pyarrow as pa

from aya_t5x import sources

OUT_DIR = os.path.dirname(os.path.abspath(__file__))

XCOPA = {  # config -> rows (premise, choice1, choice2, question, label)
    "sw": [("Mtoto alilia.", "Alikuwa na njaa.", "Alikuwa na furaha.",
            "cause", 0),
           ("Mvua ilinyesha sana.", "Barabara zilijaa maji.",
            "Jua liliwaka.", "effect", 0),
           ("Nilifungua dirisha.", "Chumba kilikuwa na joto.",
            "Nilikuwa nimelala.", "cause", 0),
           ("Duka lilifungwa.", "Watu walinunua mkate.",
            "Hatukununua mkate.", "effect", 5)],  # Bad label: skipped.
    "th": [("เด็กร้องไห้", "เขาหิว", "เขามีความสุข", "cause", 0),
           ("ฝนตกหนัก", "แดดออก", "ถนนน้ำท่วม", "effect", 1),
           ("ฉันเปิดหน้าต่าง", "ห้องร้อน", "ฉันนอนหลับ", "cause", 0)],
    "zh": [("孩子哭了。", "他饿了。", "他很开心。", "cause", 0),
           ("雨下得很大。", "太阳出来了。", "街道被淹了。", "effect", 1),
           ("我打开了窗户。", "房间很热。", "我睡着了。", "cause", 0)],
}

XNLI = {  # config -> rows (premise, hypothesis, label)
    "en": [("The market opens early.", "The market opens in the morning.", 0),
           ("The market opens early.", "The market sells fish.", 1),
           ("The market opens early.", "The market never opens.", 2)],
    "fr": [("Le marché ouvre tôt.", "Le marché ouvre le matin.", 0),
           ("Le marché ouvre tôt.", "Le marché vend du poisson.", 1),
           ("Le marché ouvre tôt.", "Le marché n'ouvre jamais.", 2)],
    "hi": [("बाज़ार जल्दी खुलता है।", "बाज़ार सुबह खुलता है।", 0),
           ("बाज़ार जल्दी खुलता है।", "बाज़ार में मछली मिलती है।", 1),
           ("बाज़ार जल्दी खुलता है।", "बाज़ार कभी नहीं खुलता।", 2)],
    "ru": [("Рынок открывается рано.", "Рынок открывается утром.", 0),
           ("Рынок открывается рано.", "На рынке продают рыбу.", 1),
           ("Рынок открывается рано.", "Рынок никогда не открывается.", 2)],
}

XSTORYCLOZE = {  # config -> rows (id, 4 sentences, ending 1, ending 2, right)
    "es": [("es-1", ("Ana tenía sed.", "Fue a la cocina.",
                     "Abrió el grifo.", "Llenó un vaso."),
            "Bebió el agua.", "Se fue a dormir al parque.", 1),
           ("es-2", ("Luis perdió el autobús.", "Llovía mucho.",
                     "No tenía paraguas.", "Esperó el siguiente."),
            "Ganó la lotería.", "Llegó tarde y mojado.", 2)],
    "ar": [("ar-1", ("كانت سارة عطشانة.", "ذهبت إلى المطبخ.",
                     "فتحت الصنبور.", "ملأت كوبا."),
            "شربت الماء.", "نامت في الحديقة.", 1),
           ("ar-2", ("فات علي الحافلة.", "كان المطر غزيرا.",
                     "لم تكن معه مظلة.", "انتظر الحافلة التالية."),
            "ربح اليانصيب.", "وصل متأخرا ومبللا.", 2)],
    "zh": [("zh-1", ("小明很渴。", "他走进厨房。", "他打开水龙头。", "他倒了一杯水。"),
            "他喝了水。", "他去公园睡觉了。", 1),
           ("zh-2", ("小红错过了公交车。", "雨下得很大。", "她没有带伞。", "她等下一班车。"),
            "她中了彩票。", "她迟到了，全身湿透。", 2)],
}

XWINOGRAD = {  # config -> rows (sentence, option1, option2, answer)
    "en": [("The cup did not fit in the bag because _ was too big.",
            "the cup", "the bag", "1"),
           ("The cup did not fit in the bag because _ was too small.",
            "the cup", "the bag", "2"),
           ("The cup did not fit in the bag.", "the cup", "the bag", "1")],
    "fr": [("La tasse n'entrait pas dans le sac car _ était trop grande.",
            "la tasse", "le sac", "1"),
           ("La tasse n'entrait pas dans le sac car _ était trop petit.",
            "la tasse", "le sac", "2")],
    "jp": [("カップは大きすぎたので、_はかばんに入らなかった。", "カップ", "かばん", "1"),
           ("かばんが小さすぎたので、カップは_に入らなかった。", "カップ", "かばん", "2")],
}

MMLU_DEV = {  # config -> rows (question, choices, answer, subject)
    "de": [("Was ist 2 + 2?", ["3", "4", "5", "6"], "B",
            "elementary_mathematics"),
           ("Was ist 3 * 3?", ["6", "9", "12", "8"], "B",
            "elementary_mathematics"),
           ("Welche Farbe hat der Himmel?", ["Grün", "Rot", "Blau", "Gelb"],
            "C", "miscellaneous"),
           ("Was ist 10 - 7?", ["3", "2", "4", "7"], "A",
            "elementary_mathematics"),
           ("Wie viele Tage hat eine Woche?", ["5", "6", "8", "7"], "D",
            "miscellaneous")],
    "hi": [("2 + 2 कितना है?", ["3", "4", "5", "6"], "B",
            "elementary_mathematics"),
           ("3 * 3 कितना है?", ["6", "9", "12", "8"], "B",
            "elementary_mathematics"),
           ("आसमान का रंग क्या है?", ["हरा", "लाल", "नीला", "पीला"], "C",
            "miscellaneous"),
           ("10 - 7 कितना है?", ["3", "2", "4", "7"], "A",
            "elementary_mathematics"),
           ("एक सप्ताह में कितने दिन होते हैं?", ["5", "6", "8", "7"], "D",
            "miscellaneous")],
}
MMLU_TEST = {
    "de": [("Was ist 5 + 1?", ["6", "7", "4", "5"], "A",
            "elementary_mathematics"),
           ("Was ist 8 / 2?", ["2", "3", "4", "16"], "C",
            "elementary_mathematics"),
           ("Wie viele Monate hat ein Jahr?", ["10", "11", "12"], "C",
            "miscellaneous")],  # Three choices: skipped.
    "hi": [("5 + 1 कितना है?", ["6", "7", "4", "5"], "A",
            "elementary_mathematics"),
           ("8 / 2 कितना है?", ["2", "3", "4", "16"], "C",
            "elementary_mathematics")],
}

FLORES = {  # config -> sentences, aligned by position (ids 1..)
    "eng_Latn": ["The river is long.", "I like to read books.",
                 "We drink tea in the morning."],
    "hin_Deva": ["नदी लंबी है।", "मुझे किताबें पढ़ना पसंद है।",
                 "हम सुबह चाय पीते हैं।"],
    "swh_Latn": ["Mto ni mrefu.", "Ninapenda kusoma vitabu.",
                 "Tunakunywa chai asubuhi.",
                 "Sentensi hii haina jozi."],  # id 4: no English row.
    "zho_Hans": ["这条河很长。", "我喜欢读书。", "我们早上喝茶。"],
}

XLSUM = {  # config -> rows (summary, text)
    "english": [("The town opened a new library.",
                 "The town opened a new library on Monday. It has many "
                 "books for children. People came early to see it."),
                ("Heavy rain closed the roads.",
                 "Heavy rain fell all night. Many roads were closed in the "
                 "morning. Schools opened late.")],
    "hindi": [("शहर में नया पुस्तकालय खुला।",
               "सोमवार को शहर में नया पुस्तकालय खुला। इसमें बच्चों के लिए कई "
               "किताबें हैं। लोग इसे देखने जल्दी आए।"),
              ("भारी बारिश से सड़कें बंद हुईं।",
               "रात भर भारी बारिश हुई। सुबह कई सड़कें बंद रहीं। स्कूल देर से "
               "खुले।")],
    "russian": [("В городе открылась новая библиотека.",
                 "В понедельник в городе открылась новая библиотека. В ней "
                 "много книг для детей. Люди пришли рано."),
                ("Сильный дождь закрыл дороги.",
                 "Всю ночь шёл сильный дождь. Утром многие дороги были "
                 "закрыты. Школы открылись поздно.")],
}

TYDIQA = [  # (id, question, context, answers)
    ("english-1-0", "What colour is the sky?",
     "On clear days the sky is blue. At night it is dark.", ["blue"]),
    ("english-2-0", "When does the market open?",
     "The market opens early, at six in the morning.",
     ["early", "at six in the morning"]),
    ("arabic-1-0", "ما لون السماء؟", "في الأيام الصافية تكون السماء زرقاء.",
     ["زرقاء"]),
    ("arabic-2-0", "متى يفتح السوق؟", "يفتح السوق مبكرا في السادسة صباحا.",
     ["مبكرا"]),
    ("swahili-1-0", "Anga lina rangi gani?",
     "Siku zisizo na mawingu anga ni la buluu.", ["buluu"]),
    ("swahili-2-0", "Soko hufunguliwa lini?", "Soko hufunguliwa mapema.",
     []),  # No answer: skipped.
    ("thai-1-0", "ท้องฟ้าสีอะไร", "ในวันที่อากาศแจ่มใส ท้องฟ้าเป็นสีฟ้า",
     ["สีฟ้า"]),
]

OPEN_ENDED = {  # set -> rows (id, inputs, targets, language, script)
    "aya_human_annotated": [
        (1, "Write a short poem about the sea.",
         "The sea is wide and blue,\nit sings the whole night through.",
         "eng", "Latn"),
        (2, "समुद्र के बारे में एक छोटी कविता लिखिए।",
         "समुद्र गहरा और नीला है।", "hin", "Deva"),
        (3, "اكتب جملة عن البحر.", "البحر واسع وأزرق.", "arb", "Arab"),
    ],
    "dolly_human_edited": [
        (11, "Explique pourquoi le ciel est bleu.",
         "La lumière bleue est davantage diffusée par l'air.", "fra",
         "Latn"),
        (12, "Объясни, почему небо голубое.",
         "Синий свет сильнее рассеивается в воздухе.", "rus", "Cyrl"),
    ],
    "dolly_machine_translated": [
        (21, "Explica por qué el cielo es azul.",
         "La luz azul se dispersa más en el aire.", "spa", "Latn"),
        (22, "空が青いのはなぜですか。", "青い光は空気中でより多く散乱するからです。",
         "jpn", "Jpan"),
    ],
}

# Examples per task language that the tasks must produce from these rows.
EXPECTED = {
    "xcopa": {"swa": 15, "tha": 15, "zho": 15},  # 3 rows x 5 templates.
    "xnli": {"eng": 15, "fra": 15, "hin": 15, "rus": 15},
    "xstorycloze": {"spa": 10, "ara": 10, "zho": 10},
    "xwinograd": {"eng": 10, "fra": 10, "jpn": 10},
    "mmlu": {"deu": 2, "hin": 2},
    "flores_x_en": {"hin": 3, "swa": 3, "zho": 3},
    "flores_en_x": {"hin": 3, "swa": 3, "zho": 3},
    "xlsum": {"eng": 2, "hin": 2, "rus": 2},
    "tydiqa": {"eng": 2, "ara": 2, "swa": 1, "tha": 1},
    "aya_human_annotated": {"eng": 1, "hin": 1, "ara": 1},
    "dolly_human_edited": {"fra": 1, "rus": 1},
    "dolly_machine_translated": {"spa": 1, "jpn": 1},
}
# Rows skipped per task language, and why.
EXPECTED_SKIPPED = {
    ("xcopa", "swa"): "label 5 is not one of [0, 1]",
    ("xwinograd", "eng"): "needs exactly one '_' blank",
    ("mmlu", "deu"): "needs exactly four choices",
    ("flores_x_en", "swa"): "no eng_Latn row with id 4",
    ("flores_en_x", "swa"): "no eng_Latn row with id 4",
    ("tydiqa", "swa"): "no answer text",
}


def _write(out_dir: str, relative: str, table: pa.Table) -> None:
  sources.write_parquet(os.path.join(out_dir, relative), table)


def _conversion(repo: str, config: str, split: str) -> str:
  return f"{repo}/{config}/{split}/0000.parquet"


def _upload(repo: str, config: str, split: str) -> str:
  return f"{repo}/{config}/{split}-00000-of-00001.parquet"


def write_heldout(out_dir: str) -> None:
  for config, rows in XCOPA.items():
    _write(out_dir, _upload("cambridgeltl/xcopa", config, "validation"),
           pa.table({
               "premise": [r[0] for r in rows],
               "choice1": [r[1] for r in rows],
               "choice2": [r[2] for r in rows],
               "question": [r[3] for r in rows],
               "label": pa.array([r[4] for r in rows], pa.int64()),
               "idx": pa.array(range(len(rows)), pa.int32()),
               "changed": [False] * len(rows)}))
  for config, rows in XNLI.items():
    _write(out_dir, _upload("facebook/xnli", config, "validation"),
           pa.table({"premise": [r[0] for r in rows],
                     "hypothesis": [r[1] for r in rows],
                     "label": pa.array([r[2] for r in rows], pa.int64())}))
  for config, rows in XSTORYCLOZE.items():
    columns = {"story_id": [r[0] for r in rows]}
    for i in range(4):
      columns[f"input_sentence_{i + 1}"] = [r[1][i] for r in rows]
    columns["sentence_quiz1"] = [r[2] for r in rows]
    columns["sentence_quiz2"] = [r[3] for r in rows]
    columns["answer_right_ending"] = pa.array([r[4] for r in rows],
                                              pa.int32())
    _write(out_dir, _conversion("juletxara/xstory_cloze", config, "eval"),
           pa.table(columns))
  for config, rows in XWINOGRAD.items():
    _write(out_dir, _conversion("Muennighoff/xwinograd", config, "test"),
           pa.table({"sentence": [r[0] for r in rows],
                     "option1": [r[1] for r in rows],
                     "option2": [r[2] for r in rows],
                     "answer": [r[3] for r in rows]}))


def write_mmlu(out_dir: str) -> None:
  """Okapi's files: `data/<lang>_<split>.json`, one JSON array each.

  A question with three choices has no `option_d`: the task skips it.
  """
  for split, by_config in (("dev", MMLU_DEV), ("test", MMLU_TEST)):
    for config, rows in by_config.items():
      records = []
      for i, (question, choices, answer, subject) in enumerate(rows):
        record = {"id": f"{subject}/{split}/{i}", "instruction": question}
        record.update(zip(("option_a", "option_b", "option_c", "option_d"),
                          choices))
        record["answer"] = answer
        records.append(record)
      path = os.path.join(out_dir, "jon-tow", "okapi_mmlu", "data",
                          f"{config}_{split}.json")
      os.makedirs(os.path.dirname(path), exist_ok=True)
      with open(path, "w", encoding="utf-8") as f:
        json.dump(records, f, ensure_ascii=False, indent=1)
        f.write("\n")


def write_generative(out_dir: str) -> None:
  for config, sentences in FLORES.items():
    n = len(sentences)
    _write(out_dir, _conversion("facebook/flores", config, "devtest"),
           pa.table({"id": pa.array(range(1, n + 1), pa.int32()),
                     "URL": ["https://example.org/sample"] * n,
                     "domain": ["wikinews"] * n, "topic": ["daily life"] * n,
                     "has_image": pa.array([0] * n, pa.int32()),
                     "has_hyperlink": pa.array([0] * n, pa.int32()),
                     "sentence": sentences}))
  for config, rows in XLSUM.items():
    _write(out_dir, _conversion("csebuetnlp/xlsum", config, "validation"),
           pa.table({"id": [f"{config}-{i}" for i in range(len(rows))],
                     "url": ["https://example.org/news"] * len(rows),
                     "title": [r[0] for r in rows],
                     "summary": [r[0] for r in rows],
                     "text": [r[1] for r in rows]}))
  answers_type = pa.struct([("text", pa.list_(pa.string())),
                            ("answer_start", pa.list_(pa.int32()))])
  answers = [{"text": r[3], "answer_start": [r[2].find(a) for a in r[3]]}
             for r in TYDIQA]
  _write(out_dir, _upload("google-research-datasets/tydiqa",
                          "secondary_task", "validation"),
         pa.table({"id": [r[0] for r in TYDIQA],
                   "title": ["sample"] * len(TYDIQA),
                   "context": [r[2] for r in TYDIQA],
                   "question": [r[1] for r in TYDIQA],
                   "answers": pa.array(answers, answers_type)}))


def write_open_ended(out_dir: str) -> None:
  for name, rows in OPEN_ENDED.items():
    _write(out_dir, _upload("CohereForAI/aya_evaluation_suite", name, "test"),
           pa.table({"id": pa.array([r[0] for r in rows], pa.int64()),
                     "inputs": [r[1] for r in rows],
                     "targets": [r[2] for r in rows],
                     "language": [r[3] for r in rows],
                     "script": [r[4] for r in rows]}))


# Global-MMLU (CohereLabs/Global-MMLU, <lang>/{dev,test}-*.parquet):
# config -> (question, options, answer, subject, cultural label) per split.
GLOBAL_MMLU = {
    "sw": {
        "dev": [("Mto mrefu zaidi duniani ni upi?",
                 ("Nile", "Tana", "Rufiji", "Pangani"), "A", "geography",
                 "CA"),
                ("2 + 3 ni ngapi?", ("4", "5", "6", "7"), "B",
                 "elementary_mathematics", "CA")],
        "test": [("Mji mkuu wa Kenya ni upi?",
                  ("Mombasa", "Kisumu", "Nairobi", "Nakuru"), "C",
                  "geography", "CS"),
                 ("4 + 4 ni ngapi?", ("6", "7", "9", "8"), "D",
                  "elementary_mathematics", "CA"),
                 ("Swali bila jibu sahihi?", ("a", "b", "c", "d"), "E",
                  "geography", "CA")],  # Answer not A-D: skipped.
    },
}


def write_global_mmlu(out_dir: str) -> None:
  for config, splits in GLOBAL_MMLU.items():
    for split, rows in splits.items():
      columns = {
          "sample_id": [f"{r[3]}/{split}/{i}" for i, r in enumerate(rows)],
          "subject": [r[3] for r in rows],
          "subject_category": ["STEM" if "math" in r[3] else "Humanities"
                               for r in rows],
          "question": [r[0] for r in rows]}
      for k, option in enumerate(("option_a", "option_b", "option_c",
                                  "option_d")):
        columns[option] = [r[1][k] for r in rows]
      columns["answer"] = [r[2] for r in rows]
      # The columns hub_layouts confirms (the Hub has more, unread here).
      columns["cultural_sensitivity_label"] = [r[4] for r in rows]
      columns["is_annotated"] = [True] * len(rows)
      _write(out_dir, _upload("CohereLabs/Global-MMLU", config, split),
             pa.table(columns))


# m-ArenaHard (CohereLabs/m-ArenaHard, <lang>/test-00000-of-00001.parquet).
M_ARENAHARD = {
    "hi": [("a1b2", "coding", "Python scripting",
            "एक पायथन फ़ंक्शन लिखिए जो किसी सूची को उलट दे।"),
           ("c3d4", "writing", "Poetry", "")],  # Empty prompt: skipped.
}


def write_m_arenahard(out_dir: str) -> None:
  for config, rows in M_ARENAHARD.items():
    _write(out_dir, _upload("CohereLabs/m-ArenaHard", config, "test"),
           pa.table({"question_id": [r[0] for r in rows],
                     "category": [r[1] for r in rows],
                     "cluster": [r[2] for r in rows],
                     "prompt": [r[3] for r in rows]}))


# openlanguagedata/flores_plus (gated): <split>/<lang_Script>.parquet with
# the same sentences as the facebook/flores sample, under flores_plus's names
# (Mandarin is cmn_Hans there). The demo reads it; the tests of the fallback
# to facebook/flores take a file away.
FLORES_PLUS = {"eng_Latn": ("eng_Latn", "eng", "Latn"),
               "swh_Latn": ("swh_Latn", "swh", "Latn"),
               "hin_Deva": ("hin_Deva", "hin", "Deva"),
               "zho_Hans": ("cmn_Hans", "cmn", "Hans")}


def write_flores_plus(out_dir: str) -> None:
  for config, (name, iso_639_3, iso_15924) in FLORES_PLUS.items():
    sentences = FLORES[config]
    n = len(sentences)
    _write(out_dir, f"openlanguagedata/flores_plus/devtest/{name}.parquet",
           pa.table({"id": pa.array(range(1, n + 1), pa.int64()),
                     "iso_639_3": [iso_639_3] * n,
                     "iso_15924": [iso_15924] * n,
                     "glottocode": ["sample"] * n,
                     "text": sentences}))


def main(out_dir: str = OUT_DIR) -> None:
  write_heldout(out_dir)
  write_mmlu(out_dir)
  write_global_mmlu(out_dir)
  write_m_arenahard(out_dir)
  write_flores_plus(out_dir)
  write_generative(out_dir)
  write_open_ended(out_dir)


if __name__ == "__main__":
  main(sys.argv[1] if len(sys.argv) > 1 else OUT_DIR)

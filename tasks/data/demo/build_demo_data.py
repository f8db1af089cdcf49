r"""Builds the embedded demo data: toy multilingual tasks and their vocabulary.

Why this exists: the tests and the tiny-model smoke run need real multilingual
text (several scripts, with and without spaces between words) and a matching
SentencePiece model, without network access or the 4 GB mT5 vocabulary. The
text comes from a small word-slot grammar written for this project: for each
of 12 languages, 10 subjects, 8 verbs, 10 objects and 5 time phrases, put in
that language's word order. Every sentence means the same thing in every
language, so word-for-word translation is well defined.

Three instruction tasks, each a pure function of its input so a tiny model can
learn them in a few hundred steps:
  demo_copy       "Repeat the sentence: S"                 -> S
  demo_reverse    "Reverse the order of the words: w1 .. wn" -> "wn .. w1"
  demo_translate  "Translate to English: S"                -> English S
                  (for English rows: "Translate to <Language>: S" -> that one)
Languages without spaces between words (zho, jpn, tha) show their words
separated by spaces in `demo_reverse` inputs, so "words" stays well defined.

Validation sentences use slot combinations never used for training in any
language, so a validation translation target is never seen in training.

All text is NFKC-normalised before it is written, because the vocabulary
normalises with nmt_nfkc: decoded model output then equals the stored target
byte for byte (Thai SARA AM and the Devanagari/Bengali nukta letters change
under NFKC).

Outputs (paths relative to the repository root):
  tasks/data/demo/train-0000{0..3}-of-00004.jsonl  training rows, 4 shards
  tasks/data/demo/validation.jsonl                 validation rows
  aya_t5x/assets/vocab/aya_demo_spm.model          SentencePiece unigram model
  aya_t5x/assets/vocab/aya_demo_spm.vocab          its pieces and scores

Training is split into 4 files so that up to 4 data-loading hosts each read
only their own files (SeqIO shards a FileDataSource by file); with more hosts
SeqIO falls back to sharding by example index.

Determinism: Python's `random.Random(SEED)` draws every choice, nothing
iterates over a set or dict of unordered keys, and SentencePiece trains on one
thread without input shuffling from an in-memory iterator (so no temporary
path is recorded in the model). Re-running writes byte-identical files; the
tests check this for the JSONL files and the model.

Usage:
  python tasks/data/demo/build_demo_data.py
  python tasks/data/demo/build_demo_data.py --data_dir /tmp/d --vocab_dir /tmp/v
"""

import argparse
import dataclasses
import io
import itertools
import json
import os
import random
import unicodedata
from typing import Iterator, Optional, Sequence

SEED = 20240212
NUM_TRAIN_SHARDS = 4
TRAIN_PER_LANGUAGE_AND_TASK = 128
VALIDATION_PER_LANGUAGE_AND_TASK = 8
# Slot combinations held out for validation (of 10 * 8 * 10 * 5 = 4000).
VALIDATION_COMBINATIONS = 400
# The largest size the unigram trainer accepts on this corpus is a little
# above this; a round number keeps the model's embedding table readable.
VOCAB_SIZE = 1200
VOCAB_NAME = "aya_demo_spm"
SOURCE = "demo"

_HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.normpath(os.path.join(_HERE, "..", "..", ".."))
DEFAULT_DATA_DIR = _HERE
DEFAULT_VOCAB_DIR = os.path.join(REPO_ROOT, "aya_t5x", "assets", "vocab")

# A slot combination: (subject, verb, object, time) indices into a Language.
Combination = tuple[int, int, int, int]
SLOT_SIZES = (10, 8, 10, 5)


@dataclasses.dataclass(frozen=True)
class Language:
  """One language of the grammar; lists are aligned with English by index."""

  code: str  # ISO 639-3, as in aya_languages.tsv.
  name: str  # English name, used in "Translate to <name>:" prompts.
  order: str  # Slot order, letters from S (subject) V O T (time).
  subjects: Sequence[str]
  verbs: Sequence[str]
  objects: Sequence[str]
  times: Sequence[str]
  stop: str = "."  # Sentence-final punctuation.
  spaced: bool = True  # False where words are written without spaces.
  # Where the verb agrees with the subject's gender: which subjects are
  # feminine, and the feminine verb forms aligned with `verbs`.
  feminine_subjects: frozenset[int] = frozenset()
  feminine_verbs: Optional[Sequence[str]] = None


LANGUAGES = (
    Language(
        code="eng", name="English", order="SVOT",
        subjects=("the boy", "the girl", "the teacher", "the doctor",
                  "the farmer", "the child", "the woman", "the man",
                  "the student", "the cook"),
        verbs=("sees", "buys", "finds", "carries", "wants", "sells", "takes",
               "looks for"),
        objects=("the book", "the apple", "the water", "the letter",
                 "the house", "the bread", "the ball", "the bag", "the chair",
                 "the flower"),
        times=("today", "every day", "every morning", "every evening",
               "on Sundays"),
    ),
    Language(
        code="spa", name="Spanish", order="SVOT",
        subjects=("el chico", "la chica", "el maestro", "el médico",
                  "el granjero", "el niño", "la mujer", "el hombre",
                  "el estudiante", "el cocinero"),
        verbs=("ve", "compra", "encuentra", "lleva", "quiere", "vende", "toma",
               "busca"),
        objects=("el libro", "la manzana", "el agua", "la carta", "la casa",
                 "el pan", "la pelota", "la bolsa", "la silla", "la flor"),
        times=("hoy", "cada día", "cada mañana", "cada noche",
               "los domingos"),
    ),
    Language(
        code="fra", name="French", order="SVOT",
        subjects=("le garçon", "la fille", "le professeur", "le médecin",
                  "l'agriculteur", "l'enfant", "la femme", "l'homme",
                  "l'étudiant", "le cuisinier"),
        verbs=("voit", "achète", "trouve", "porte", "veut", "vend", "prend",
               "cherche"),
        objects=("le livre", "la pomme", "l'eau", "la lettre", "la maison",
                 "le pain", "le ballon", "le sac", "la chaise", "la fleur"),
        times=("aujourd'hui", "chaque jour", "chaque matin", "chaque soir",
               "le dimanche"),
    ),
    Language(
        code="deu", name="German", order="SVTO",
        subjects=("der Junge", "das Mädchen", "der Lehrer", "der Arzt",
                  "der Bauer", "das Kind", "die Frau", "der Mann",
                  "der Student", "der Koch"),
        verbs=("sieht", "kauft", "findet", "trägt", "will", "verkauft",
               "nimmt", "sucht"),
        objects=("das Buch", "den Apfel", "das Wasser", "den Brief",
                 "das Haus", "das Brot", "den Ball", "die Tasche", "den Stuhl",
                 "die Blume"),
        times=("heute", "jeden Tag", "jeden Morgen", "jeden Abend",
               "sonntags"),
    ),
    Language(
        code="rus", name="Russian", order="STVO",
        subjects=("мальчик", "девочка", "учитель", "врач", "фермер",
                  "ребёнок", "женщина", "мужчина", "студент", "повар"),
        verbs=("видит", "покупает", "находит", "несёт", "хочет", "продаёт",
               "берёт", "ищет"),
        # Objects in the accusative case, as the verbs require.
        objects=("книгу", "яблоко", "воду", "письмо", "дом", "хлеб", "мяч",
                 "сумку", "стул", "цветок"),
        times=("сегодня", "каждый день", "каждое утро", "каждый вечер",
               "по воскресеньям"),
    ),
    Language(
        code="ara", name="Arabic", order="SVOT",
        subjects=("الولد", "البنت", "المعلم", "الطبيب", "المزارع", "الطفل",
                  "المرأة", "الرجل", "الطالب", "الطباخ"),
        verbs=("يرى", "يشتري", "يجد", "يحمل", "يريد", "يبيع", "يأخذ",
               "يبحث عن"),
        objects=("الكتاب", "التفاحة", "الماء", "الرسالة", "البيت", "الخبز",
                 "الكرة", "الحقيبة", "الكرسي", "الوردة"),
        times=("اليوم", "كل يوم", "كل صباح", "كل مساء", "يوم الأحد"),
        feminine_subjects=frozenset({1, 6}),
        feminine_verbs=("ترى", "تشتري", "تجد", "تحمل", "تريد", "تبيع", "تأخذ",
                        "تبحث عن"),
    ),
    Language(
        code="hin", name="Hindi", order="STOV", stop="।",
        subjects=("लड़का", "लड़की", "शिक्षक", "डॉक्टर", "किसान", "बच्चा",
                  "औरत", "आदमी", "छात्र", "रसोइया"),
        verbs=("देखता है", "खरीदता है", "पाता है", "उठाता है", "चाहता है",
               "बेचता है", "लेता है", "ढूँढता है"),
        objects=("किताब", "सेब", "पानी", "चिट्ठी", "घर", "रोटी", "गेंद",
                 "थैला", "कुर्सी", "फूल"),
        times=("आज", "हर दिन", "हर सुबह", "हर शाम", "रविवार को"),
        feminine_subjects=frozenset({1, 6}),
        feminine_verbs=("देखती है", "खरीदती है", "पाती है", "उठाती है",
                        "चाहती है", "बेचती है", "लेती है", "ढूँढती है"),
    ),
    Language(
        code="ben", name="Bengali", order="STOV", stop="।",
        subjects=("ছেলেটি", "মেয়েটি", "শিক্ষক", "ডাক্তার", "কৃষক", "শিশুটি",
                  "মহিলাটি", "লোকটি", "ছাত্রটি", "রাঁধুনি"),
        verbs=("দেখে", "কেনে", "খুঁজে পায়", "বহন করে", "চায়", "বিক্রি করে",
               "নেয়", "খোঁজে"),
        objects=("বই", "আপেল", "জল", "চিঠি", "বাড়ি", "রুটি", "বল", "ব্যাগ",
                 "চেয়ার", "ফুল"),
        times=("আজ", "প্রতিদিন", "প্রতি সকালে", "প্রতি সন্ধ্যায়", "রবিবারে"),
    ),
    Language(
        code="zho", name="Chinese", order="STVO", stop="。", spaced=False,
        subjects=("男孩", "女孩", "老师", "医生", "农民", "孩子", "女人", "男人",
                  "学生", "厨师"),
        verbs=("看见", "买", "找到", "搬", "想要", "卖", "拿", "找"),
        objects=("书", "苹果", "水", "信", "房子", "面包", "球", "包", "椅子",
                 "花"),
        times=("今天", "每天", "每天早上", "每天晚上", "星期天"),
    ),
    Language(
        code="jpn", name="Japanese", order="STOV", stop="。", spaced=False,
        # Case particles travel with their noun: は marks the subject and を
        # the object.
        subjects=("男の子は", "女の子は", "先生は", "医者は", "農家の人は",
                  "子どもは", "女の人は", "男の人は", "学生は", "料理人は"),
        verbs=("見ます", "買います", "見つけます", "運びます", "欲しがります",
               "売ります", "取ります", "探します"),
        objects=("本を", "りんごを", "水を", "手紙を", "家を", "パンを",
                 "ボールを", "かばんを", "椅子を", "花を"),
        times=("今日", "毎日", "毎朝", "毎晩", "日曜日に"),
    ),
    Language(
        code="swa", name="Swahili", order="SVOT",
        subjects=("mvulana", "msichana", "mwalimu", "daktari", "mkulima",
                  "mtoto", "mwanamke", "mwanamume", "mwanafunzi", "mpishi"),
        verbs=("anaona", "ananunua", "anapata", "anabeba", "anataka",
               "anauza", "anachukua", "anatafuta"),
        objects=("kitabu", "tufaha", "maji", "barua", "nyumba", "mkate",
                 "mpira", "mfuko", "kiti", "ua"),
        times=("leo", "kila siku", "kila asubuhi", "kila jioni",
               "kila Jumapili"),
    ),
    Language(
        code="tha", name="Thai", order="SVOT", stop="", spaced=False,
        subjects=("เด็กผู้ชาย", "เด็กผู้หญิง", "ครู", "หมอ", "ชาวนา", "เด็ก",
                  "ผู้หญิง", "ผู้ชาย", "นักเรียน", "พ่อครัว"),
        verbs=("เห็น", "ซื้อ", "เจอ", "ถือ", "อยากได้", "ขาย", "หยิบ", "หา"),
        objects=("หนังสือ", "แอปเปิล", "น้ำ", "จดหมาย", "บ้าน", "ขนมปัง",
                 "ลูกบอล", "กระเป๋า", "เก้าอี้", "ดอกไม้"),
        times=("วันนี้", "ทุกวัน", "ทุกเช้า", "ทุกเย็น", "ทุกวันอาทิตย์"),
    ),
)
ENGLISH = LANGUAGES[0]
TASKS = ("demo_copy", "demo_reverse", "demo_translate")


def nfkc(text: str) -> str:
  """Returns `text` in NFKC form, the form the vocabulary decodes to."""
  return unicodedata.normalize("NFKC", text)


def capitalize(text: str) -> str:
  """Upper-cases the first letter only (str.capitalize would lower the rest)."""
  return text[:1].upper() + text[1:]


def words(language: Language, combination: Combination) -> list[str]:
  """The sentence's words in the language's order, verb agreeing in gender."""
  subject, verb, obj, time = combination
  verbs = language.verbs
  if subject in language.feminine_subjects:
    verbs = language.feminine_verbs
  by_slot = {
      "S": language.subjects[subject],
      "V": verbs[verb],
      "O": language.objects[obj],
      "T": language.times[time],
  }
  return [nfkc(by_slot[slot]) for slot in language.order]


def sentence(language: Language, combination: Combination) -> str:
  """The sentence as the language writes it (spacing, final punctuation)."""
  separator = " " if language.spaced else ""
  return capitalize(separator.join(words(language, combination))) + nfkc(
      language.stop)


def word_list(language: Language, combination: Combination) -> str:
  """The sentence without final punctuation and with a space between words."""
  return capitalize(" ".join(words(language, combination)))


def copy_example(language: Language, combination: Combination,
                 rng: random.Random) -> dict[str, str]:
  del rng  # Deterministic task.
  text = sentence(language, combination)
  return {"inputs": f"Repeat the sentence: {text}", "targets": text}


def reverse_example(language: Language, combination: Combination,
                    rng: random.Random) -> dict[str, str]:
  del rng  # Deterministic task.
  text = word_list(language, combination)
  return {
      "inputs": f"Reverse the order of the words: {text}",
      "targets": " ".join(reversed(text.split())),
  }


def translate_example(language: Language, combination: Combination,
                      rng: random.Random) -> dict[str, str]:
  """Into English; English rows go into a language named in the prompt."""
  target_language = ENGLISH
  if language is ENGLISH:
    target_language = rng.choice(LANGUAGES[1:])
  return {
      "inputs": (f"Translate to {target_language.name}: "
                 f"{sentence(language, combination)}"),
      "targets": sentence(target_language, combination),
  }


EXAMPLE_BUILDERS = {
    "demo_copy": copy_example,
    "demo_reverse": reverse_example,
    "demo_translate": translate_example,
}


def check_grammar(language: Language) -> None:
  """Raises if the lexicon is malformed or two combinations share a sentence.

  Distinct sentences are what make `demo_translate` a function of its input,
  which matters most for zho, jpn and tha where words run together.
  """
  sizes = tuple(len(slot) for slot in (language.subjects, language.verbs,
                                       language.objects, language.times))
  if sizes != SLOT_SIZES:
    raise ValueError(f"{language.code}: slot sizes {sizes}, want {SLOT_SIZES}")
  if sorted(language.order) != sorted("SVOT"):
    raise ValueError(f"{language.code}: order {language.order!r} is not a "
                     "permutation of 'SVOT'")
  if language.feminine_subjects and (
      len(language.feminine_verbs or ()) != SLOT_SIZES[1]):
    raise ValueError(f"{language.code}: needs {SLOT_SIZES[1]} feminine verbs")
  seen = {}
  for combination in all_combinations():
    text = sentence(language, combination)
    if text in seen:
      raise ValueError(f"{language.code}: {seen[text]} and {combination} both "
                       f"give {text!r}")
    seen[text] = combination


def all_combinations() -> list[Combination]:
  return list(itertools.product(*(range(size) for size in SLOT_SIZES)))


def split_combinations(
    rng: random.Random) -> tuple[list[Combination], list[Combination]]:
  """Returns (train, validation) combinations, shared by all languages."""
  combinations = all_combinations()
  rng.shuffle(combinations)
  return (sorted(combinations[VALIDATION_COMBINATIONS:]),
          sorted(combinations[:VALIDATION_COMBINATIONS]))


def build_split(combinations: Sequence[Combination], per_language_and_task: int,
                rng: random.Random) -> list[dict[str, str]]:
  """Draws distinct combinations for each (language, task), then shuffles."""
  rows = []
  for language in LANGUAGES:
    for task in TASKS:
      for combination in rng.sample(combinations, per_language_and_task):
        row = EXAMPLE_BUILDERS[task](language, combination, rng)
        row.update(language=language.code, dataset=task, source=SOURCE)
        rows.append(row)
  rng.shuffle(rows)  # Interleaves languages and tasks.
  return rows


def build_rows() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
  """Returns (train rows, validation rows); the same on every call."""
  for language in LANGUAGES:
    check_grammar(language)
  rng = random.Random(SEED)
  train_combinations, validation_combinations = split_combinations(rng)
  train = build_split(train_combinations, TRAIN_PER_LANGUAGE_AND_TASK, rng)
  validation = build_split(validation_combinations,
                           VALIDATION_PER_LANGUAGE_AND_TASK, rng)
  return train, validation


def train_shard_name(index: int) -> str:
  return f"train-{index:05d}-of-{NUM_TRAIN_SHARDS:05d}.jsonl"


def write_jsonl(path: str, rows: Sequence[dict[str, str]]) -> None:
  # ensure_ascii=False keeps the files readable and small; "\n" line ends
  # keep them byte-identical on every platform.
  with open(path, "w", encoding="utf-8", newline="\n") as f:
    for row in rows:
      f.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_data(data_dir: str, train: Sequence[dict[str, str]],
               validation: Sequence[dict[str, str]]) -> list[str]:
  """Writes the train shards (row i to shard i % N) and validation file."""
  os.makedirs(data_dir, exist_ok=True)
  paths = []
  for index in range(NUM_TRAIN_SHARDS):
    paths.append(os.path.join(data_dir, train_shard_name(index)))
    write_jsonl(paths[-1], train[index::NUM_TRAIN_SHARDS])
  paths.append(os.path.join(data_dir, "validation.jsonl"))
  write_jsonl(paths[-1], validation)
  return paths


def vocabulary_corpus(rows: Sequence[dict[str, str]]) -> Iterator[str]:
  for row in rows:
    yield row["inputs"]
    yield row["targets"]


def train_vocabulary(rows: Sequence[dict[str, str]], vocab_dir: str) -> str:
  """Trains the SentencePiece model on train inputs and targets.

  Special ids follow T5/mT5 (pad 0, eos 1, unk 2, no bos) so model code can
  hard-code them. Byte fallback with full character coverage means any text,
  in any script, encodes without <unk>.

  Returns:
    The path of the written .model file.
  """
  import sentencepiece as spm  # pylint: disable=g-import-not-at-top

  spm.set_random_generator_seed(SEED)
  model = io.BytesIO()
  spm.SentencePieceTrainer.train(
      sentence_iterator=vocabulary_corpus(rows),
      model_writer=model,
      model_type="unigram",
      vocab_size=VOCAB_SIZE,
      character_coverage=1.0,
      byte_fallback=True,
      normalization_rule_name="nmt_nfkc",
      pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
      pad_piece="<pad>", eos_piece="</s>", unk_piece="<unk>",
      num_threads=1,
      shuffle_input_sentence=False,
      input_sentence_size=0,
      minloglevel=2,
  )
  os.makedirs(vocab_dir, exist_ok=True)
  model_path = os.path.join(vocab_dir, f"{VOCAB_NAME}.model")
  with open(model_path, "wb") as f:
    f.write(model.getvalue())
  write_vocab_listing(model.getvalue(),
                      os.path.join(vocab_dir, f"{VOCAB_NAME}.vocab"))
  return model_path


def write_vocab_listing(model_bytes: bytes, path: str) -> None:
  """Writes "piece<TAB>score" per id, like spm_train's .vocab, for humans."""
  import sentencepiece as spm  # pylint: disable=g-import-not-at-top

  processor = spm.SentencePieceProcessor(model_proto=model_bytes)
  with open(path, "w", encoding="utf-8", newline="\n") as f:
    for piece_id in range(processor.get_piece_size()):
      f.write(f"{processor.id_to_piece(piece_id)}\t"
              f"{processor.get_score(piece_id):g}\n")


def build(data_dir: str, vocab_dir: Optional[str]) -> list[str]:
  """Writes the data (and the vocabulary unless vocab_dir is None)."""
  train, validation = build_rows()
  paths = write_data(data_dir, train, validation)
  if vocab_dir is not None:
    paths.append(train_vocabulary(train, vocab_dir))
  return paths


def main(argv: Optional[Sequence[str]] = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--data_dir", default=DEFAULT_DATA_DIR,
                      help="where the JSONL files go")
  parser.add_argument("--vocab_dir", default=DEFAULT_VOCAB_DIR,
                      help="where the SentencePiece model goes")
  parser.add_argument("--skip_vocab", action="store_true",
                      help="write the JSONL files only")
  args = parser.parse_args(argv)
  for path in build(args.data_dir, None if args.skip_vocab else args.vocab_dir):
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":
  main()

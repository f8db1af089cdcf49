"""The exported tokenizer gives our ids, byte fallback included."""

import json
import os

import pytest

from aya_t5x import vocabularies
from aya_t5x.convert import hf

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Scripts and characters the 12-language demo vocabulary never saw (byte
# fallback), NFKC cases, and the whitespace SentencePiece normalises.
TEXTS = [
    "The cat sleeps on the warm mat.",
    "ქართული ენა 🙂 한국어 😀",
    "Ünïcödé ｆｕｌｌｗｉｄｔｈ ﬁ ligature Ꭰ ⅻ ½",
    "  Leading,  double   and trailing spaces  ",
    "tab\there\nnew line",
    "Ελληνικά: η γάτα κοιμάται. עברית: החתול ישן.",
    "",
]


def _prompts():
  with open(os.path.join(REPO, "prompts.jsonl"), encoding="utf-8") as f:
    return [json.loads(line)["inputs"] for line in f]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  import transformers  # pylint: disable=g-import-not-at-top
  folder = str(tmp_path_factory.mktemp("tokenizer"))
  hf._write_tokenizer(vocabularies.DEMO_SPM_PATH, folder)  # pylint: disable=protected-access
  return transformers.AutoTokenizer.from_pretrained(folder)


@pytest.mark.parametrize("text", TEXTS + _prompts())
def test_transformers_tokenizer_gives_our_ids_and_text(exported, text):
  ours = vocabularies.demo_vocabulary()
  ids = [int(i) for i in ours.encode(text)]
  assert exported(text).input_ids == ids + [1]  # seqio appends EOS.
  assert exported.decode(ids) == ours.decode(ids)


def test_unseen_characters_become_bytes_not_unk(exported):
  ids = exported("한국어 🙂").input_ids
  assert exported.unk_token_id not in ids
  assert exported.decode(ids, skip_special_tokens=True) == "한국어 🙂"

"""XL-Sum RougeLsum: ours against XL-Sum's own multilingual ROUGE scorer.

XL-Sum's scorer is `multilingual-rouge` (requirements/test.txt). Both score
the same summaries, split one sentence per line by `split_sentences` (XL-Sum
splits with nltk's punkt, whose data is not installed offline). The pairs
are tests/fixtures/xlsum_rouge_pairs.json; `bench/xlsum_rouge_parity.py`
prints the figures, docs/evaluation_metrics.md has them.
"""

import json
import os
import warnings

import pytest

from aya_t5x import eval_metrics

rouge_scorer = pytest.importorskip(
    "multilingual_rouge.rouge_scorer",
    reason="XL-Sum's scorer (multilingual-rouge, requirements/test.txt) is "
    "not installed")
tokenization_wrapper = pytest.importorskip(
    "multilingual_rouge.tokenization_wrapper")

with open(os.path.join(os.path.dirname(__file__), "fixtures",
                       "xlsum_rouge_pairs.json"), encoding="utf-8") as f:
  PAIRS = {pair["code"]: pair for pair in json.load(f)["pairs"]}
# Scripts written without spaces, which XL-Sum's scorer segments with a
# tool of its own (jieba, newmm) for rougeL but not for rougeLsum. Japanese
# needs UniDic data that only a download provides, so it is not compared.
UNSPACED = ("zho", "tha")
SPACED = sorted(set(PAIRS) - set(UNSPACED) - {"jpn", "mya"})


def _lines(text: str) -> str:
  return "\n".join(eval_metrics.split_sentences(text))


def _xlsum(code: str, rouge_type: str) -> float:
  pair = PAIRS[code]
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Its "unknown stemmer language" notes.
    scorer = rouge_scorer.RougeScorer([rouge_type], use_stemmer=False,
                                      lang=pair["config"])
  score = scorer.score(_lines(pair["target"]), _lines(pair["prediction"]))
  return 100 * score[rouge_type].fmeasure


def _ours(code: str) -> float:
  pair = PAIRS[code]
  return eval_metrics.rouge_lsum([pair["target"]],
                                 [pair["prediction"]])["rougeLsum"]


@pytest.mark.parametrize("code", SPACED)
def test_rouge_lsum_equals_xlsum_scorer_on_spaced_scripts(code):
  ours = _ours(code)
  assert 20 < ours < 100, ours  # A paraphrase: partial overlap.
  assert ours == pytest.approx(_xlsum(code, "rougeLsum"), abs=1e-9)


@pytest.mark.parametrize("text", [
    "The U.S. economy grew 2.5% in Q3, the e-mail said: \"don't panic\".",
    "Prices rose to €5,000 (about $5,400) at 30°C; A+B <=> C|D ~ E_F.",
    "«Кремль» заявил: рост ВВП — 3,1%!",
    "باران‌های شدید، «خیابان‌ها» را زیر آب برد؟",
    "भारत में ₹500 के नोट।  दूसरा\tवाक्य।",
    "Ülkenin KUZEYİNDE 12 kentte yağış; İstanbul’da 3 kişi öldü.",
    "শত শত মানুষ—ঘর ছেড়েছে।",
    "soft\u00adhyphen zero\u200dwidth joiner",
], ids=["latin", "symbols", "cyrillic", "persian_zwnj", "devanagari",
        "turkish", "bengali", "format_chars"])
def test_unicode_tokenizer_words_equal_xlsum_words(text):
  ours = eval_metrics.UnicodeTokenizer().tokenize(text)
  assert ours == tokenization_wrapper.tokenize(text, None)


@pytest.mark.parametrize("code", UNSPACED)
def test_xlsum_rouge_lsum_leaves_unspaced_sentences_whole(code):
  """XL-Sum's rougeLsum skips its segmenter: a paraphrase scores 0.

  Its rougeL segments (jieba for Chinese, newmm for Thai); ours, one token
  per character, stays within 3 points of that on these summaries.
  """
  assert _xlsum(code, "rougeLsum") == 0.0
  ours, segmented = _ours(code), _xlsum(code, "rougeL")
  assert ours > 40
  assert abs(ours - segmented) < 3, (ours, segmented)

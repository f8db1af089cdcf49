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
from aya_t5x import xlsum_rouge

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


# --- rougeLsum_stemmed: our words, XL-Sum's stemmers -------------------------


def _xlsum_stemmed(code: str) -> float:
  """XL-Sum's rougeLsum as XL-Sum runs it: use_stemmer=True."""
  pair = PAIRS[code]
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    scorer = rouge_scorer.RougeScorer(["rougeLsum"], use_stemmer=True,
                                      lang=pair["config"])
  score = scorer.score(_lines(pair["target"]), _lines(pair["prediction"]))
  return 100 * score["rougeLsum"].fmeasure


@pytest.mark.parametrize("code", SPACED)
def test_stemmed_rouge_lsum_equals_xlsum_stemmed_or_is_left_out(code):
  """Equal where XL-Sum's stemmer builds here; else no key, and XL-Sum's
  own scorer cannot be built either (NLTK stopwords, Bengali rules)."""
  pair = PAIRS[code]
  ours = xlsum_rouge.stemmed_rouge_lsum([pair["target"]],
                                        [pair["prediction"]], pair["config"])
  try:
    xlsum_rouge.xlsum_stemmer(pair["config"])
  except xlsum_rouge.StemmerUnavailable:
    assert ours == {}
    with pytest.raises((LookupError, OSError)):
      _xlsum_stemmed(code)
    return
  assert ours[xlsum_rouge.STEMMED_KEY] == pytest.approx(
      _xlsum_stemmed(code), abs=1e-9)


def test_xlsum_stemmers_change_hindi_and_turkish_scores():
  """The stemmed key is not the unstemmed one renamed (figures: docs)."""
  for code in ("hin", "tur"):
    pair = PAIRS[code]
    stemmed = xlsum_rouge.stemmed_rouge_lsum(
        [pair["target"]], [pair["prediction"]],
        pair["config"])[xlsum_rouge.STEMMED_KEY]
    assert stemmed > _ours(code) + 5, (code, stemmed, _ours(code))


def test_a_missing_stemmer_is_logged_once_with_what_to_do(monkeypatch):
  """At INFO: the report's note says it where people look (below)."""
  def unavailable(config):
    del config  # Every Snowball language fails alike.
    raise xlsum_rouge.StemmerUnavailable(
        xlsum_rouge._reason(LookupError("stopwords")))  # pylint: disable=protected-access
  monkeypatch.setattr(xlsum_rouge, "xlsum_stemmer", unavailable)
  xlsum_rouge._log_unavailable_once.cache_clear()  # pylint: disable=protected-access
  logged = []
  monkeypatch.setattr(xlsum_rouge.logging, "info",
                      lambda fmt, *args: logged.append(fmt % args))
  for config in ("english", "russian", "english"):
    assert xlsum_rouge.stemmed_rouge_lsum(["a b"], ["a c"], config) == {}
  assert logged == [
      "XL-Sum's Snowball stemmers need NLTK's stopwords corpus (python -m "
      "nltk.downloader stopwords, or NLTK_DATA): rougeLsum_stemmed left out."]


def test_xlsum_benchmark_reports_both_keys_for_hindi():
  from aya_t5x.tasks.eval import benchmark  # pylint: disable=g-import-not-at-top
  import aya_t5x.tasks.eval  # pylint: disable=g-import-not-at-top,unused-import
  pair = PAIRS["hin"]
  scores = benchmark.get("xlsum").score("hin", [[pair["target"]]],
                                        [pair["prediction"]])
  assert scores == {"rougeLsum": _ours("hin"),
                    xlsum_rouge.STEMMED_KEY: pytest.approx(
                        _xlsum_stemmed("hin"), abs=1e-9)}


def test_stemmer_does_not_apply_to_sentencepiece_pieces():
  with pytest.raises(ValueError, match="stemmer= applies to Unicode words"):
    eval_metrics.rouge_lsum(["a"], ["a"], spm_model_path=__file__,
                            stemmer=str.lower)


class _MadeUpStopwords:
  """Stands in for NLTK's stopwords corpus, which only a download brings:
  a few function words per language, written for this test."""

  WORDS = {"english": ["the", "of", "have", "were", "their", "after"],
           "spanish": ["las", "de", "del", "que", "sus"],
           "french": ["le", "du", "les", "par", "pour"],
           "russian": ["на", "были", "свои", "после", "как"],
           "arabic": ["في", "على", "مما"]}

  def words(self, language):
    return self.WORDS[language]


@pytest.mark.parametrize("code", ["eng", "spa", "fra", "rus", "ara"])
def test_snowball_languages_equal_xlsum_stemmed_given_stopwords(
    code, monkeypatch):
  snowball = pytest.importorskip("nltk.stem.snowball")
  monkeypatch.setattr(snowball, "stopwords", _MadeUpStopwords())
  xlsum_rouge.xlsum_stemmer.cache_clear()
  try:
    pair = PAIRS[code]
    ours = xlsum_rouge.stemmed_rouge_lsum(
        [pair["target"]], [pair["prediction"]], pair["config"])
    assert ours[xlsum_rouge.STEMMED_KEY] == pytest.approx(
        _xlsum_stemmed(code), abs=1e-9)
    if code != "ara":  # Stemming matches no further Arabic word here.
      assert ours[xlsum_rouge.STEMMED_KEY] > _ours(code) + 4
  finally:
    xlsum_rouge.xlsum_stemmer.cache_clear()  # No made-up stemmer outlives us.


def test_the_report_says_which_rouge_each_xlsum_key_is(monkeypatch):
  from aya_t5x import evaluation  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(xlsum_rouge, "unavailable_reason", {
      "russian": "XL-Sum's Snowball stemmers need NLTK's stopwords corpus",
      "english": "XL-Sum's Snowball stemmers need NLTK's stopwords corpus",
      "bengali": "XL-Sum's stemmer cannot be built: no common.rules",
  }.get)
  result = evaluation.SuiteResult(results={"xlsum": {
      "hin": {"rougeLsum": 51.2, xlsum_rouge.STEMMED_KEY: 60.5},
      "rus": {"rougeLsum": 46.7}, "eng": {"rougeLsum": 51.2},
      "ben": {"rougeLsum": 40.0}}})
  note = evaluation.report_notes(result)["xlsum"]
  assert note.startswith("rougeLsum: Unicode words, unstemmed")
  assert "rougeLsum_stemmed: the same words stemmed by XL-Sum's stemmers " \
         "(multilingual-rouge 0.0.1)" in note
  assert note.endswith(
      "could be built; left out for ben: XL-Sum's stemmer cannot be built: "
      "no common.rules; left out for eng, rus: XL-Sum's Snowball stemmers "
      "need NLTK's stopwords corpus.")

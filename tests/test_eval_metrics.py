"""Parity of the evaluation metrics with sacrebleu, rouge-score and SQuAD."""

import collections
import inspect
import os
import re
import shutil
import statistics
import string

import pytest
import sacrebleu
from rouge_score import rouge_scorer
from sacrebleu.tokenizers import tokenizer_spm

from aya_t5x import eval_metrics
from aya_t5x import vocabularies

REFS = [
    "The cat sat on the mat near the door.",
    "Der Hund läuft schnell durch den Park.",
    "मौसम आज बहुत अच्छा है।",
    "Сегодня хорошая погода в Москве.",
    "今天北京的天气很好。",
    "A quick brown fox jumps over the lazy dog.",
]
HYPS = [
    "The cat is sitting on the mat by the door.",
    "Der Hund rennt schnell im Park.",
    "आज मौसम बहुत अच्छा है।",
    "Сегодня в Москве хорошая погода.",
    "北京今天天气很好。",
    "The quick brown fox jumped over a lazy dog.",
]


@pytest.fixture(name="no_flores_model")
def fixture_no_flores_model(tmp_path, monkeypatch):
  """A $SACREBLEU without the FLORES-200 model (as on an offline machine)."""
  monkeypatch.setenv("SACREBLEU", str(tmp_path / "empty_sacrebleu"))


@pytest.fixture(name="flores_dir")
def fixture_flores_dir(tmp_path, monkeypatch):
  """A $SACREBLEU holding a SentencePiece model where sacrebleu looks.

  The shipped multilingual demo model stands in for the real FLORES-200
  one. sacrebleu fixes its folder at import, so its module constant is
  pointed there too, and its downloader is made to fail: a test passing
  through it would have fetched the real model instead of ours.
  """
  root = tmp_path / "sacrebleu"
  (root / "models").mkdir(parents=True)
  shutil.copy(vocabularies.DEMO_SPM_PATH,
              root / "models" / eval_metrics.FLORES200_MODEL_NAME)
  monkeypatch.setenv("SACREBLEU", str(root))
  monkeypatch.setattr(tokenizer_spm, "SACREBLEU_DIR", str(root))

  def no_download(*args, **kwargs):
    raise AssertionError(f"sacrebleu tried to download {args}")

  monkeypatch.setattr(tokenizer_spm, "download_file", no_download)
  return root


def _write_and_read(tmp_path, name, lines):
  path = tmp_path / name
  path.write_text("\n".join(lines) + "\n", encoding="utf-8")
  return path.read_text(encoding="utf-8").splitlines()


def test_bleu_and_chrf_equal_sacrebleu_on_same_files(tmp_path,
                                                     no_flores_model):
  refs = _write_and_read(tmp_path, "refs.txt", REFS)
  hyps = _write_and_read(tmp_path, "hyps.txt", HYPS)
  ours = eval_metrics.translation_metrics(refs, hyps)
  theirs_bleu = sacrebleu.corpus_bleu(hyps, [refs], tokenize="13a").score
  theirs_chrf = sacrebleu.CHRF(word_order=2).corpus_score(hyps, [refs]).score
  assert set(ours) == {"bleu_13a", "chrf++"}
  assert ours["bleu_13a"] == theirs_bleu
  assert ours["chrf++"] == theirs_chrf
  assert 10 < ours["bleu_13a"] < 100 and 10 < ours["chrf++"] < 100


def test_without_flores_model_score_is_never_called_spbleu(no_flores_model):
  assert eval_metrics.bleu_tokenizer_name() == "13a"
  description = eval_metrics.bleu_tokenizer_description()
  assert description.startswith("bleu_13a: ")
  assert "not spBLEU" in description
  assert "spbleu_flores200" not in eval_metrics.translation_metrics(
      REFS, HYPS)
  with pytest.raises(FileNotFoundError, match="flores200sacrebleuspm"):
    eval_metrics.translation_metrics(REFS, HYPS, tokenizer="flores200")


def test_flores200_model_in_sacrebleu_dir_gives_sacrebleus_spbleu(
    flores_dir):
  assert eval_metrics.bleu_tokenizer_name() == "flores200"
  assert eval_metrics.flores200_model_path().startswith(str(flores_dir))
  ours = eval_metrics.translation_metrics(REFS, HYPS)
  bleu = sacrebleu.BLEU(tokenize="flores200")
  theirs = bleu.corpus_score(HYPS, [REFS])
  assert "tok:flores200" in str(bleu.get_signature())
  assert set(ours) == {"spbleu_flores200", "chrf++"}
  assert ours["spbleu_flores200"] == theirs.score
  assert eval_metrics.bleu_tokenizer_description().startswith(
      "spbleu_flores200: spBLEU")
  # The pieces, not 13a words, were scored: they differ on this corpus.
  assert theirs.score != sacrebleu.corpus_bleu(HYPS, [REFS]).score


def test_spbleu_scores_unspaced_chinese_that_13a_cannot(flores_dir):
  refs, hyps = ["今天北京的天气很好。"], ["北京今天的天气很好。"]
  assert eval_metrics.translation_metrics(
      refs, hyps, tokenizer="13a")["bleu_13a"] == 0.0
  assert eval_metrics.translation_metrics(refs, hyps)["spbleu_flores200"] > 0


def test_bleu_over_own_sentencepiece_is_named_after_the_model(
    no_flores_model):
  ours = eval_metrics.translation_metrics(
      REFS, HYPS, tokenizer=vocabularies.DEMO_SPM_PATH)
  assert set(ours) == {"spbleu_aya_demo_spm", "chrf++"}
  with pytest.raises(ValueError, match="BLEU tokenizer 'flores101'"):
    eval_metrics.translation_metrics(REFS, HYPS, tokenizer="flores101")


def test_translation_metrics_rejects_unpaired_lists():
  with pytest.raises(ValueError, match="2 targets but 1 predictions"):
    eval_metrics.translation_metrics(["a", "b"], ["a"])


# --- RougeLsum ---------------------------------------------------------------

SUMMARIES = {
    "hin": ("भारत में आज भारी बारिश हुई और कई शहरों में पानी भर गया।",
            "आज भारत के कई शहरों में भारी बारिश हुई।"),
    "rus": ("В Москве прошёл сильный дождь, улицы затоплены.",
            "Сильный дождь затопил улицы в Москве."),
    "zho": ("北京今天下了大雨，很多街道被淹。", "今天北京下大雨，街道被淹了。"),
}


def _rouge_score_mean(tokenizer, targets, predictions):
  scorer = rouge_scorer.RougeScorer(["rougeLsum"], tokenizer=tokenizer)
  return 100 * statistics.fmean(
      scorer.score(t, p)["rougeLsum"].fmeasure
      for t, p in zip(targets, predictions))


def test_rouge_lsum_equals_rouge_score_given_the_same_tokenizer():
  # Newline-separated sentences: our splitter leaves them as they are.
  targets = [t for t, _ in SUMMARIES.values()] + [
      "The storm hit the coast.\nThousands lost power."]
  predictions = [p for _, p in SUMMARIES.values()] + [
      "Thousands lost power.\nA storm hit the coast on Monday."]
  ours = eval_metrics.rouge_lsum(targets, predictions)["rougeLsum"]
  assert ours == pytest.approx(_rouge_score_mean(
      eval_metrics.UnicodeTokenizer(), targets, predictions), abs=1e-12)
  ours_spm = eval_metrics.rouge_lsum(
      targets, predictions,
      spm_model_path=vocabularies.DEMO_SPM_PATH)["rougeLsum"]
  assert ours_spm == pytest.approx(_rouge_score_mean(
      eval_metrics.SentencePieceTokenizer(vocabularies.DEMO_SPM_PATH),
      targets, predictions), abs=1e-12)


@pytest.mark.parametrize("language", sorted(SUMMARIES))
def test_rouge_lsum_nonzero_on_non_latin_summaries(language):
  target, prediction = SUMMARIES[language]
  default = rouge_scorer.RougeScorer(["rougeLsum"]).score(target, prediction)
  assert default["rougeLsum"].fmeasure == 0.0  # The failure we fix.
  for spm in (None, vocabularies.DEMO_SPM_PATH):
    score = eval_metrics.rouge_lsum([target], [prediction],
                                    spm_model_path=spm)["rougeLsum"]
    assert 20 < score < 100, (language, spm, score)


def test_rouge_lsum_splits_sentences_before_scoring():
  target = "Первое предложение здесь. Второе предложение там."
  split = "\n".join(eval_metrics.split_sentences(target))
  assert split == "Первое предложение здесь.\nВторое предложение там."
  prediction = "Второе предложение там. Первое предложение здесь."
  ours = eval_metrics.rouge_lsum([target], [prediction])["rougeLsum"]
  expected = _rouge_score_mean(
      eval_metrics.UnicodeTokenizer(), [split],
      ["\n".join(eval_metrics.split_sentences(prediction))])
  assert ours == pytest.approx(expected, abs=1e-12)
  # Unsplit, the LCS could only match one of the two swapped sentences.
  assert ours == pytest.approx(100.0)


def test_unicode_tokenizer_keeps_marks_and_splits_unspaced_scripts():
  tokenize = eval_metrics.UnicodeTokenizer().tokenize
  assert tokenize("हिन्दी भाषा, ठीक!") == ["हिन्दी", "भाषा", "ठीक"]
  assert tokenize("Привет, Мир") == ["привет", "мир"]
  assert tokenize("我爱abc北京") == ["我", "爱", "abc", "北", "京"]
  assert tokenize("ไทย") == ["ไ", "ท", "ย"]
  # Vowel and tone marks stay with their letter.
  assert tokenize("กิน ก่อน") == ["กิ", "น", "ก่", "อ", "น"]


def test_split_sentences_handles_danda_and_cjk_stops():
  assert eval_metrics.split_sentences("पहला वाक्य। दूसरा वाक्य।") == [
      "पहला वाक्य।", "दूसरा वाक्य।"]
  assert eval_metrics.split_sentences("第一句。第二句！\nthird") == [
      "第一句。", "第二句！", "third"]


# --- SQuAD v1.1 --------------------------------------------------------------
# The reference definition, written out here independently of the module.


def _v11_normalize(s):
  s = s.lower()
  s = "".join(ch for ch in s if ch not in set(string.punctuation))
  s = re.sub(r"\b(a|an|the)\b", " ", s)
  return " ".join(s.split())


def _v11_f1(prediction, ground_truth):
  p, g = _v11_normalize(prediction).split(), _v11_normalize(
      ground_truth).split()
  common = collections.Counter(p) & collections.Counter(g)
  same = sum(common.values())
  if same == 0:
    return 0
  precision, recall = 1.0 * same / len(p), 1.0 * same / len(g)
  return (2 * precision * recall) / (precision + recall)


def _v11_evaluate(answer_lists, predictions):
  f1 = em = 0.0
  for answers, prediction in zip(answer_lists, predictions):
    em += max(_v11_normalize(prediction) == _v11_normalize(a)
              for a in answers)
    f1 += max(_v11_f1(prediction, a) for a in answers)
  return {"em": 100.0 * em / len(predictions),
          "f1": 100.0 * f1 / len(predictions)}


SQUAD_CASES = [
    (["The Eiffel Tower"], "eiffel tower!"),
    (["Denver Broncos", "The Denver Broncos"], "the broncos"),
    (["1,000 people"], "1000 people were there"),
    (["an apple a day"], "a day"),
    (["München"], "münchen"),
    (["東京"], "東京都"),
    (["New York City", "NYC"], "nyc"),
    (["the"], "a"),  # Both normalise to nothing: v1.1 gives F1 0, EM 1.
    (["Santa Clara, California"], "Levi's Stadium in Santa Clara"),
    (["سبعة"], "سبعة أيام"),
]


def test_squad_equals_v11_definition_on_hand_built_cases():
  targets = [answers for answers, _ in SQUAD_CASES]
  predictions = [prediction for _, prediction in SQUAD_CASES]
  ours = eval_metrics.squad(targets, predictions)
  reference = _v11_evaluate(targets, predictions)
  assert ours["f1"] == pytest.approx(reference["f1"], abs=1e-9)
  assert ours["em"] == pytest.approx(reference["em"], abs=1e-9)
  for answers, prediction in SQUAD_CASES:
    one = eval_metrics.squad([answers], [prediction])
    assert one == pytest.approx(_v11_evaluate([answers], [prediction]))


def test_squad_known_values():
  assert eval_metrics.squad([["The Eiffel Tower"]], ["eiffel tower!"]) == {
      "f1": 100.0, "em": 100.0}
  # Precision 1/2, recall 1/3: F1 = 0.4. A lone string is one answer.
  assert eval_metrics.squad(["red green blue"], ["blue sky"]) == (
      pytest.approx({"f1": 40.0, "em": 0.0}))
  with pytest.raises(ValueError, match="example 0 has no gold answer"):
    eval_metrics.squad([[]], ["x"])


def test_metric_fns_have_the_signature_seqio_dispatches_on():
  """seqio.Task calls a metric fn with (targets, predictions) when those
  are its only parameters without defaults."""
  for fn in (eval_metrics.translation_metrics, eval_metrics.rouge_lsum,
             eval_metrics.squad, eval_metrics.accuracy):
    required = tuple(
        name for name, p in inspect.signature(fn).parameters.items()
        if p.default is inspect.Parameter.empty)
    assert required == ("targets", "predictions"), fn.__name__


# --- Rank classification -----------------------------------------------------


def test_accuracy_and_median_over_prompts():
  assert eval_metrics.accuracy([0, 1, 2, 1], [0, 1, 1, 1]) == {
      "accuracy": 75.0}
  assert eval_metrics.median_over_prompts([50.0, 70.0, 60.0, 90.0,
                                           40.0]) == 60.0
  assert eval_metrics.median_over_prompts({"p1": 40.0, "p2": 60.0}) == 50.0
  with pytest.raises(ValueError, match="at least one prompt"):
    eval_metrics.median_over_prompts([])


UNSPACED = {
    "zho": (["今天北京的天气很好。", "我喜欢读书和写字。"],
            ["北京今天的天气很好。", "我喜欢读书。"]),
    "jpn": (["今日は東京の天気がとても良いです。", "私は本を読むのが好きです。"],
            ["東京の今日の天気はとても良いです。", "私は本が好きです。"]),
    "tha": (["วันนี้อากาศในกรุงเทพดีมาก", "ฉันชอบอ่านหนังสือ"],
            ["อากาศในกรุงเทพวันนี้ดีมาก", "ฉันชอบหนังสือ"]),
}


@pytest.mark.parametrize("language", sorted(UNSPACED))
def test_bleu_without_flores_model_uses_the_scripts_sacrebleu_tokenizer(
    language, no_flores_model):
  refs, hyps = UNSPACED[language]
  expected = ({"zho": "zh", "tha": "char"}.get(language) or
              ("ja-mecab" if eval_metrics.mecab_available() else "char"))
  ours = eval_metrics.translation_metrics(refs, hyps, language=language)
  theirs = sacrebleu.BLEU(tokenize=expected).corpus_score(hyps, [refs]).score
  assert set(ours) == {f"bleu_{expected}", "chrf++"}
  assert ours[f"bleu_{expected}"] == theirs > 0
  # 13a sees each unspaced sentence as one word: what the fallback avoids.
  assert eval_metrics.translation_metrics(
      refs, hyps, tokenizer="13a")["bleu_13a"] < theirs


def test_flores_benchmarks_score_bleu_for_the_language_translated_into(
    no_flores_model):
  from aya_t5x.tasks.eval import benchmark  # pylint: disable=g-import-not-at-top
  import aya_t5x.tasks.eval  # pylint: disable=g-import-not-at-top,unused-import
  refs, hyps = UNSPACED["zho"]
  en_x = benchmark.get("flores_en_x").score("zho", [[r] for r in refs], hyps)
  x_en = benchmark.get("flores_x_en").score("zho", [[r] for r in REFS],
                                            HYPS)
  assert "bleu_zh" in en_x and en_x["bleu_zh"] > 0
  assert "bleu_13a" in x_en  # Into English.

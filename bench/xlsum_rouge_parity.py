"""Our XL-Sum RougeLsum against XL-Sum's own scorer, language by language.

XL-Sum scores with its multilingual ROUGE (`multilingual-rouge` on PyPI,
module `multilingual_rouge`), called as its pipeline calls it:
`RougeScorer(types, use_stemmer=True, lang=<xlsum config>)`, on summaries
split one sentence per line. This prints, for the shipped pairs
(tests/fixtures/xlsum_rouge_pairs.json: a reference summary and a
paraphrase per language), one Markdown row per language:

- ours: `eval_metrics.rouge_lsum`, the XL-Sum benchmark's `rougeLsum`;
- xlsum: XL-Sum's rougeLsum without stemming, given our sentence split;
- ours stemmed: the benchmark's `rougeLsum_stemmed` (`xlsum_rouge`: our
  words, XL-Sum's stemmer), or `-` where that stemmer cannot be built;
- xlsum stemmed: XL-Sum's rougeLsum with `use_stemmer=True` as XL-Sum runs
  it, or why it cannot run here;
- xlsum segmented rougeL: for the languages XL-Sum segments into words
  (Chinese: jieba, Japanese: fugashi, Thai: newmm, Burmese: syllables), its
  rougeL, the only type that uses the segmenter: its rougeLsum splits at
  spaces and punctuation only, so a Chinese sentence is one token.

Run from the repository root (needs `multilingual-rouge`, requirements/test.txt):

  .venv/bin/python bench/xlsum_rouge_parity.py
"""

import json
import os
import sys
import warnings

from _table import markdown_row

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAIRS = os.path.join(REPO, "tests", "fixtures", "xlsum_rouge_pairs.json")
sys.path.insert(0, REPO)

from aya_t5x import eval_metrics  # pylint: disable=g-import-not-at-top,wrong-import-position
from aya_t5x import xlsum_rouge  # pylint: disable=g-import-not-at-top,wrong-import-position

# Why XL-Sum's scorer cannot be built for a language on an offline machine.
_CANNOT_BUILD = {
    LookupError: "needs NLTK's stopwords corpus (nltk.download, offline: no)",
    FileNotFoundError: "the 0.0.1 wheel lacks its Bengali stemmer rules",
    RuntimeError: "fugashi finds no UniDic data (python -m unidic download)",
}

# XL-Sum configs whose scorer has a word segmenter (its LANG2TOKENIZER).
SEGMENTED = ("chinese_simplified", "japanese", "thai", "burmese")


def xlsum_score(config: str, target: str, prediction: str, rouge_type: str,
                stem: bool) -> str:
  """XL-Sum's F-measure (0-100) as text, or why its scorer cannot run."""
  from multilingual_rouge import rouge_scorer  # pylint: disable=g-import-not-at-top
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")  # "unknown stemmer language" etc.
      scorer = rouge_scorer.RougeScorer([rouge_type], use_stemmer=stem,
                                        lang=config)
      score = scorer.score(target, prediction)[rouge_type].fmeasure
  except tuple(_CANNOT_BUILD) as e:
    return "n/a: " + _CANNOT_BUILD[type(e)]
  return f"{100 * score:.1f}"


def rows(pairs) -> list[list[str]]:
  out = []
  for pair in pairs:
    target = "\n".join(eval_metrics.split_sentences(pair["target"]))
    prediction = "\n".join(eval_metrics.split_sentences(pair["prediction"]))
    ours = eval_metrics.rouge_lsum([pair["target"]], [pair["prediction"]])
    stemmed = xlsum_rouge.stemmed_rouge_lsum(
        [pair["target"]], [pair["prediction"]], pair["config"])
    out.append([
        pair["code"], pair["config"], f"{ours['rougeLsum']:.1f}",
        xlsum_score(pair["config"], target, prediction, "rougeLsum", False),
        (f"{stemmed[xlsum_rouge.STEMMED_KEY]:.1f}" if stemmed else "-"),
        xlsum_score(pair["config"], target, prediction, "rougeLsum", True),
        xlsum_score(pair["config"], target, prediction, "rougeL", False)
        if pair["config"] in SEGMENTED else "-"])
  return out


def main() -> None:
  with open(PAIRS, encoding="utf-8") as f:
    pairs = json.load(f)["pairs"]
  print(markdown_row(["language", "xlsum config", "ours rougeLsum",
                      "xlsum rougeLsum", "ours rougeLsum_stemmed",
                      "xlsum rougeLsum stemmed", "xlsum segmented rougeL"]))
  print(markdown_row(["---"] * 7))
  for row in rows(pairs):
    print(markdown_row(row))


if __name__ == "__main__":
  main()

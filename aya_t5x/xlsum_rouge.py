"""XL-Sum's stemmed RougeLsum: our words, stemmed by XL-Sum's own stemmers.

XL-Sum scores with its multilingual ROUGE (`multilingual-rouge` on PyPI)
and `use_stemmer=True, lang=<xlsum config>`. On spaced scripts our
`eval_metrics.rouge_lsum` already gives that scorer's words and scores
without stemming; this adds its stemming, taken from the package itself
(`MultiStemmer`: NLTK Snowball for English, Spanish, French, Portuguese,
Russian, Arabic, ..., its own for Hindi, Bengali and Turkish, nothing for
the other languages; words of 3 characters or fewer stay as they are), so
`rougeLsum_stemmed` equals XL-Sum's stemmed rougeLsum where its stemmer
can be built. Unspaced scripts keep our one-token-per-character words (its
rougeLsum would leave their sentences whole, docs/evaluation_metrics.md).

The stemmer cannot always be built: the package is optional
(requirements/test.txt), its Snowball stemmers read NLTK's stopwords corpus
(`python -m nltk.downloader stopwords`, which needs a network), and the
0.0.1 wheel lacks its Bengali rules file. Then the stemmed score is left
out for that language, and the report's note under the XL-Sum table names
the languages left out and why (logged once at INFO too: the console of a
run stays as it was).
"""

import collections
import functools
import importlib.metadata
import warnings
from collections.abc import Callable, Mapping, Sequence

from absl import logging

from aya_t5x import eval_metrics

STEMMED_KEY = "rougeLsum_stemmed"
Stemmer = Callable[[str], str]


class StemmerUnavailable(Exception):
  """XL-Sum's stemmer for a language cannot be built here; says why."""


def _reason(error: Exception) -> str:
  """The cause, worded alike for every language it stops (logged once)."""
  if isinstance(error, ImportError):
    return ("XL-Sum's scorer is not installed (pip install "
            "multilingual-rouge==0.0.1)")
  if isinstance(error, LookupError):
    return ("XL-Sum's Snowball stemmers need NLTK's stopwords corpus "
            "(python -m nltk.downloader stopwords, or NLTK_DATA)")
  return f"XL-Sum's stemmer cannot be built: {error}"


@functools.lru_cache(maxsize=None)
def xlsum_stemmer(config: str) -> Stemmer:
  """XL-Sum's stemmer for a csebuetnlp/xlsum config (e.g. `hindi`).

  A language without a stemmer in XL-Sum's scorer gets the identity, as
  `use_stemmer=True` leaves its words as they are.

  Raises:
    StemmerUnavailable: the package, NLTK data or a rules file is missing.
  """
  try:
    from multilingual_rouge import rouge_scorer  # pylint: disable=g-import-not-at-top
    lang = rouge_scorer.SPECIAL_LANGID_CONVERSION_MAP.get(config, config)
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")  # "unknown stemmer language-> ..."
      return rouge_scorer.MultiStemmer(lang=lang)
  except (ImportError, LookupError, OSError) as e:
    raise StemmerUnavailable(_reason(e)) from e


@functools.lru_cache(maxsize=None)
def _log_unavailable_once(reason: str) -> None:
  logging.info("%s: %s left out.", reason, STEMMED_KEY)


def stemmed_rouge_lsum(targets: Sequence[str], predictions: Sequence[str],
                       config: str) -> dict[str, float]:
  """{STEMMED_KEY: score} with XL-Sum's stemmer for `config`, or {} when
  that stemmer cannot be built here (logged once per reason)."""
  try:
    stemmer = xlsum_stemmer(config)
  except StemmerUnavailable as e:
    _log_unavailable_once(str(e))
    return {}
  score = eval_metrics.rouge_lsum(targets, predictions, stemmer=stemmer)
  return {STEMMED_KEY: score["rougeLsum"]}


def unavailable_reason(config: str) -> str | None:
  """Why XL-Sum's stemmer for `config` cannot be built here; None if it can."""
  try:
    xlsum_stemmer(config)
  except StemmerUnavailable as e:
    return str(e)
  return None


def description(left_out: Mapping[str, str] | None = None) -> str:
  """One line for a report under the XL-Sum table: what each key is, and
  why `STEMMED_KEY` is missing for the languages of `left_out` (language
  code -> XL-Sum config)."""
  codes_by_reason = collections.defaultdict(list)
  for code, config in sorted((left_out or {}).items()):
    codes_by_reason[unavailable_reason(config) or "not scored"].append(code)
  missing = "".join(f"; left out for {', '.join(codes)}: {reason}"
                    for reason, codes in codes_by_reason.items())
  try:
    version = importlib.metadata.version("multilingual-rouge")
  except importlib.metadata.PackageNotFoundError:
    version = "not installed, so no language has it"
  return (f"rougeLsum: Unicode words, unstemmed, one token per character "
          f"of unspaced scripts (on spaced scripts equal to XL-Sum's "
          f"multilingual ROUGE without stemming); {STEMMED_KEY}: the same "
          f"words stemmed by XL-Sum's stemmers (multilingual-rouge "
          f"{version}), for the languages whose stemmer could be "
          f"built{missing}.")

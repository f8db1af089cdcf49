"""Metrics of the Aya evaluation suite, as SeqIO metric functions.

Each public metric is `fn(targets, predictions) -> {name: float}` on the
percent scale (0-100), as the paper's tables report them, so it can be put in
a `seqio.Task`'s `metric_fns` as is.

Two choices here differ from the libraries' defaults, for multilingual text:

- BLEU. The paper reports spBLEU: sacrebleu with the FLORES-200 SentencePiece
  tokenizer. sacrebleu downloads that model at first use, which fails
  offline, so it is used only when the file is already at
  `$SACREBLEU/models/flores200sacrebleuspm` (default `~/.sacrebleu`; place
  the file there from any machine that can download it, README). Without
  it the score is plain sacrebleu BLEU with the sacrebleu tokenizer that
  suits the target language's script (`fallback_bleu_tokenizer`: `zh` for
  Chinese, `ja-mecab` for Japanese when MeCab is installed else `char`,
  `char` for Thai, Lao, Khmer and Myanmar, `13a` otherwise: 13a would score
  unspaced Chinese 0), and the metric's key says so (`bleu_zh`,
  `bleu_char`, `bleu_13a`, never `spbleu_flores200`).
- ROUGE. rouge-score's default tokenizer keeps only `[a-z0-9]`, so Hindi,
  Russian or Chinese summaries score 0. `rouge_lsum` keeps every script:
  words are runs of letters, marks and digits of any script, and scripts
  written without spaces (Han, kana, Thai, Lao, Khmer, Myanmar) count one
  token per character. A SentencePiece model can be used instead.
"""

import collections
import functools
import os
import re
import statistics
import string
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence

import sacrebleu
import sentencepiece

from aya_t5x import languages

# The file name sacrebleu gives the FLORES-200 SentencePiece model (the
# basename of its download URL), under $SACREBLEU/models.
FLORES200_MODEL_NAME = "flores200sacrebleuspm"
# sacrebleu's BLEU tokenizers that need no download.
_OFFLINE_BLEU_TOKENIZERS = ("13a", "intl", "zh", "char", "ja-mecab", "none")
_FALLBACK_BLEU_TOKENIZER = "13a"
# Languages (registry codes) written without spaces between words: sacrebleu's
# tokenizer for each when spBLEU's model is absent (Japanese: see below).
_UNSPACED_BLEU_TOKENIZERS = {"zho": "zh", "yue": "zh", "tha": "char",
                             "lao": "char", "khm": "char", "mya": "char"}


def _text(value) -> str:
  """SeqIO hands over bytes for pretokenized fields; metrics want str."""
  if isinstance(value, bytes):
    return value.decode("utf-8")
  return str(value)


def _check_lengths(targets: Sequence, predictions: Sequence) -> None:
  if len(targets) != len(predictions):
    raise ValueError(f"{len(targets)} targets but {len(predictions)} "
                     "predictions: each prediction needs its target.")


# ----------------------------------------------------------------------------
# Translation: spBLEU (or an honestly named BLEU) and chrF++.


def sacrebleu_dir() -> str:
  """Where sacrebleu keeps its files: $SACREBLEU, else ~/.sacrebleu.

  Read at call time (sacrebleu reads it once at import), so a caller that
  sets $SACREBLEU later is still honoured.
  """
  return os.environ.get("SACREBLEU") or os.path.join(
      os.path.expanduser("~"), ".sacrebleu")


def flores200_model_path() -> str:
  """The path sacrebleu's `flores200` tokenizer loads its model from."""
  return os.path.join(sacrebleu_dir(), "models", FLORES200_MODEL_NAME)


def bleu_tokenizer_name(language: str | None = None) -> str:
  """`flores200` when its model file is present, else the fallback for
  `language` (`fallback_bleu_tokenizer`; `13a` when no language is given)."""
  if os.path.isfile(flores200_model_path()):
    return "flores200"
  return fallback_bleu_tokenizer(language)


def mecab_available() -> bool:
  """Whether sacrebleu's `ja-mecab` tokenizer can run (MeCab + ipadic)."""
  try:
    from sacrebleu.tokenizers import tokenizer_ja_mecab  # pylint: disable=g-import-not-at-top
    tokenizer_ja_mecab.TokenizerJaMecab()
  except Exception:  # pylint: disable=broad-except  # ImportError, no dict.
    return False
  return True


def fallback_bleu_tokenizer(language: str | None) -> str:
  """sacrebleu's tokenizer for text in `language` (a code or name).

  Unspaced scripts need their own: `zh` for Chinese, `ja-mecab` for
  Japanese (`char` when MeCab is not installed), `char` for Thai, Lao,
  Khmer and Myanmar; every other language (and None) gets `13a`.
  """
  found = languages.find(language) if language else None
  code = found.code if found else (language or "")
  if code == "jpn":
    return "ja-mecab" if mecab_available() else "char"
  return _UNSPACED_BLEU_TOKENIZERS.get(code, _FALLBACK_BLEU_TOKENIZER)


def bleu_metric_name(tokenizer: str | None = None) -> str:
  """The key a BLEU score gets: it names the tokenizer that produced it.

  `spbleu_flores200` for the paper's metric, `spbleu_<model>` for BLEU over
  the pieces of another SentencePiece model (a `.model` path), and
  `bleu_<tokenizer>` for sacrebleu's built-in tokenizers.
  """
  tokenizer = tokenizer or bleu_tokenizer_name()
  if tokenizer == "flores200":
    return "spbleu_flores200"
  if tokenizer.endswith(".model"):
    stem = os.path.splitext(os.path.basename(tokenizer))[0]
    return "spbleu_" + re.sub(r"[^0-9A-Za-z]+", "_", stem)
  return "bleu_" + tokenizer


def bleu_tokenizer_description(tokenizer: str | None = None) -> str:
  """One line for a report saying which BLEU this is, and why.

  E.g. under a FLORES table: either spBLEU as the paper computes it, or a
  BLEU that is not spBLEU because the FLORES-200 model is not installed.
  """
  tokenizer = tokenizer or bleu_tokenizer_name()
  name = bleu_metric_name(tokenizer)
  if tokenizer == "flores200":
    return (f"{name}: spBLEU, sacrebleu {sacrebleu.__version__} BLEU over "
            f"FLORES-200 SentencePiece pieces ({flores200_model_path()}).")
  if tokenizer.endswith(".model"):
    return (f"{name}: sacrebleu {sacrebleu.__version__} BLEU over the pieces "
            f"of {tokenizer}; not comparable with FLORES-200 spBLEU.")
  missing = ("" if os.path.isfile(flores200_model_path()) else
             f"; the FLORES-200 model is not at {flores200_model_path()}, "
             "so this is not spBLEU; per target language the fallback is "
             "bleu_zh (Chinese), bleu_ja-mecab or bleu_char (Japanese), "
             "bleu_char (Thai, Lao, Khmer, Myanmar), bleu_13a (others)")
  return (f"{name}: sacrebleu {sacrebleu.__version__} BLEU with its "
          f"'{tokenizer}' tokenizer{missing}.")


@functools.lru_cache(maxsize=8)
def _sentencepiece(path: str) -> sentencepiece.SentencePieceProcessor:
  return sentencepiece.SentencePieceProcessor(model_file=path)


def _spm_pieces(path: str, lines: Iterable[str]) -> list[str]:
  """Lines as sacrebleu's SentencePiece tokenizers write them.

  sacrebleu strips trailing whitespace, then joins the pieces with spaces;
  BLEU over these with tokenize='none' is sacrebleu's spBLEU.
  """
  processor = _sentencepiece(path)
  return [" ".join(processor.encode(line.rstrip(), out_type=str))
          for line in lines]


def _resolve_bleu_tokenizer(tokenizer: str | None,
                            language: str | None = None) -> str:
  """Checks an explicit tokenizer choice; None picks the best available."""
  if tokenizer is None:
    return bleu_tokenizer_name(language)
  if tokenizer == "flores200":
    if not os.path.isfile(flores200_model_path()):
      raise FileNotFoundError(
          f"tokenizer='flores200' needs {flores200_model_path()}: download "
          "https://tinyurl.com/flores200sacrebleuspm there (or set "
          "$SACREBLEU to a folder whose models/ holds it).")
    return tokenizer
  if tokenizer.endswith(".model"):
    if not os.path.isfile(tokenizer):
      raise FileNotFoundError(f"SentencePiece model not found: {tokenizer}")
    return tokenizer
  if tokenizer not in _OFFLINE_BLEU_TOKENIZERS:
    raise ValueError(
        f"BLEU tokenizer {tokenizer!r}: use 'flores200', a SentencePiece "
        f".model path, or one of {_OFFLINE_BLEU_TOKENIZERS}.")
  return tokenizer


def corpus_bleu(targets: Sequence[str], predictions: Sequence[str],
                tokenizer: str | None = None,
                language: str | None = None) -> tuple[str, float]:
  """Corpus BLEU and the key naming its tokenizer, e.g. ('bleu_13a', 21.3).

  `language` is the language of the references, for the fallback
  tokenizer when `tokenizer` is None and spBLEU's model is absent.

  SentencePiece tokenizers (flores200 or a given .model) are applied here
  and sacrebleu scores the pieces with tokenize='none'; that is exactly what
  sacrebleu's own `flores200` tokenizer computes, without its download.
  """
  _check_lengths(targets, predictions)
  tokenizer = _resolve_bleu_tokenizer(tokenizer, language)
  refs = [_text(t) for t in targets]
  hyps = [_text(p) for p in predictions]
  if tokenizer == "flores200" or tokenizer.endswith(".model"):
    path = (flores200_model_path() if tokenizer == "flores200"
            else tokenizer)
    refs, hyps = _spm_pieces(path, refs), _spm_pieces(path, hyps)
    sacrebleu_tokenizer = "none"
  else:
    sacrebleu_tokenizer = tokenizer
  bleu = sacrebleu.BLEU(tokenize=sacrebleu_tokenizer, force=True)
  score = bleu.corpus_score(hyps, [refs]).score
  return bleu_metric_name(tokenizer), float(score)


def chrf_plus_plus(targets: Sequence[str],
                   predictions: Sequence[str]) -> float:
  """Corpus chrF++ (character 6-grams plus word bigrams), sacrebleu's."""
  _check_lengths(targets, predictions)
  chrf = sacrebleu.CHRF(word_order=2)
  return float(chrf.corpus_score([_text(p) for p in predictions],
                                 [[_text(t) for t in targets]]).score)


def translation_metrics(targets: Sequence[str], predictions: Sequence[str],
                        *, tokenizer: str | None = None,
                        language: str | None = None) -> dict[str, float]:
  """spBLEU (or the BLEU its key names) and chrF++ of a translation set.

  Args:
    targets: one reference per example.
    predictions: the model's translations, in the same order.
    tokenizer: None for `bleu_tokenizer_name()`; else 'flores200', a path to
      a SentencePiece `.model`, or a built-in sacrebleu tokenizer ('13a',
      'intl', 'zh', 'char', 'none'). Bind it with functools.partial to use it
      as a SeqIO metric.
    language: the language translated into, which picks the fallback
      tokenizer when `tokenizer` is None and spBLEU's model is absent.

  Returns:
    {bleu_metric_name(tokenizer): BLEU, "chrf++": chrF++}, both 0-100.
  """
  name, bleu = corpus_bleu(targets, predictions, tokenizer, language)
  return {name: bleu, "chrf++": chrf_plus_plus(targets, predictions)}


# ----------------------------------------------------------------------------
# Summarisation: RougeLsum with a tokenizer that keeps every script.

# Scripts written without spaces between words: each character is a token.
_UNSPACED_RANGES = (
    (0x0E00, 0x0E7F),    # Thai
    (0x0E80, 0x0EFF),    # Lao
    (0x1000, 0x109F),    # Myanmar
    (0x1780, 0x17FF),    # Khmer
    (0x19E0, 0x19FF),    # Khmer symbols
    (0x2E80, 0x2FDF),    # CJK radicals, Kangxi radicals
    (0x3040, 0x30FF),    # Hiragana, Katakana
    (0x3100, 0x312F),    # Bopomofo
    (0x31F0, 0x31FF),    # Katakana phonetic extensions
    (0x3400, 0x4DBF),    # CJK extension A
    (0x4E00, 0x9FFF),    # CJK unified ideographs
    (0xA9E0, 0xA9FF),    # Myanmar extended-B
    (0xAA60, 0xAA7F),    # Myanmar extended-A
    (0xF900, 0xFAFF),    # CJK compatibility ideographs
    (0xFF66, 0xFF9F),    # Halfwidth katakana
    (0x20000, 0x3FFFF),  # CJK extensions B-H
)


def _is_unspaced(char: str) -> bool:
  point = ord(char)
  return any(lo <= point <= hi for lo, hi in _UNSPACED_RANGES)


def _is_word_char(char: str) -> bool:
  """Letters, combining marks, digits, and symbols beyond ASCII.

  Marks matter: Python's `\\w` excludes them, which would cut Hindi or
  Tamil words at every vowel sign. Non-ASCII symbols (`€`, `°`, `₹`) stay
  in their word, and ASCII symbols (`$`, `+`, `<`) separate words, as in
  XL-Sum's multilingual ROUGE, whose words ours equal on spaced scripts.
  """
  category = unicodedata.category(char)[0]
  return category in "LMN" or (category == "S" and ord(char) > 0x7F)


def _is_format_char(char: str) -> bool:
  """Invisible characters (zero-width non-joiner and joiner, soft hyphen,
  other controls, U+FFFD) that XL-Sum's scorer deletes: a Persian
  `باران‌های` is one word, not two."""
  return char == "\ufffd" or (unicodedata.category(char)[0] == "C"
                               and not char.isspace())


class RougeTokenizer:
  """rouge-score's tokenizer interface: `RougeScorer` calls only `tokenize`.

  Not a subclass of `rouge_score.tokenizers.Tokenizer`: importing rouge-score
  imports nltk and scipy (2 s), which every CLI that registers the eval
  tasks would pay at start-up; rouge-score is imported when ROUGE is scored.
  """

  def tokenize(self, text: str) -> list[str]:
    raise NotImplementedError


class UnicodeTokenizer(RougeTokenizer):
  """ROUGE tokens for every script, stemmed only if a stemmer is given.

  NFKC-normalised and lower-cased like rouge-score's default; invisible
  format characters are deleted; a token is a run of letters, marks, digits
  and non-ASCII symbols, or a single character (with its combining marks)
  of a script written without spaces. A `stemmer` (str -> str, e.g. XL-Sum's,
  `xlsum_rouge`) maps each token; tokens it empties are dropped.
  """

  name = "unicode_words_cjk_chars"

  def __init__(self, stemmer: Callable[[str], str] | None = None):
    self._stemmer = stemmer

  def tokenize(self, text: str) -> list[str]:
    tokens = self._words(text)
    if self._stemmer is None:
      return tokens
    return [stem for stem in map(self._stemmer, tokens) if stem]

  def _words(self, text: str) -> list[str]:
    tokens, word = [], []
    for char in unicodedata.normalize("NFKC", _text(text)).lower():
      if _is_format_char(char):
        continue
      if _is_unspaced(char) and unicodedata.category(char)[0] != "M":
        if word:
          tokens.append("".join(word))
        tokens.append(char)
        word = []
      elif _is_word_char(char):
        # A mark after an unspaced character joins that character's token.
        if (not word and tokens and unicodedata.category(char)[0] == "M"
            and _is_unspaced(tokens[-1][0])):
          tokens[-1] += char
        else:
          word.append(char)
      elif word:
        tokens.append("".join(word))
        word = []
    if word:
      tokens.append("".join(word))
    return tokens


class SentencePieceTokenizer(RougeTokenizer):
  """ROUGE tokens as the pieces of a (multilingual) SentencePiece model.

  This is how mT5-era multilingual summarisation work scores ROUGE; the
  word-boundary marker is dropped so a word's first piece matches
  mid-sentence and at the start alike.
  """

  def __init__(self, model_path: str):
    if not os.path.isfile(model_path):
      raise FileNotFoundError(f"SentencePiece model not found: {model_path}")
    self._processor = _sentencepiece(model_path)
    self.name = "spm_" + os.path.splitext(os.path.basename(model_path))[0]

  def tokenize(self, text: str) -> list[str]:
    pieces = self._processor.encode(_text(text).lower(), out_type=str)
    stripped = (p.replace("\u2581", "") for p in pieces)
    return [p for p in stripped if p]


# Sentence-final punctuation across the suite's scripts: Latin/Cyrillic/...,
# Devanagari danda, Arabic and Urdu question mark/full stop, Ethiopic,
# Armenian, Burmese, Khmer, Thai has none (spaces separate its sentences).
_LATIN_LIKE_ENDS = ".!?\u037e\u0589\u061f\u06d4\u0964\u0965\u1362\u1367" \
                   "\u1368\u104a\u104b\u17d4\u17d5"
# CJK full stops end a sentence even with no space after them.
_CJK_ENDS = "\u3002\uff01\uff1f\uff0e"
_SENTENCE_END = re.compile(
    f"(?<=[{re.escape(_LATIN_LIKE_ENDS)}])\\s+|(?<=[{_CJK_ENDS}])\\s*")


def split_sentences(text: str) -> list[str]:
  """Sentences of a summary, for RougeLsum, without nltk's punkt data.

  Splits at newlines and after sentence-final punctuation followed by space
  (any position for CJK full stops). Imperfect on abbreviations ("Dr."),
  like any rule splitter; references and predictions are split alike.
  """
  sentences = []
  for line in _text(text).split("\n"):
    sentences.extend(s.strip() for s in _SENTENCE_END.split(line))
  return [s for s in sentences if s]


def rouge_tokenizer(spm_model_path: str | None = None,
                    stemmer: Callable[[str], str] | None = None
                    ) -> RougeTokenizer:
  """The tokenizer `rouge_lsum` uses: SentencePiece if given, else Unicode
  words (stemmed by `stemmer` if given; pieces are never stemmed)."""
  if spm_model_path:
    if stemmer is not None:
      raise ValueError("rouge_lsum: stemmer= applies to Unicode words, not "
                       "to SentencePiece pieces (spm_model_path=).")
    return SentencePieceTokenizer(spm_model_path)
  return UnicodeTokenizer(stemmer)


def rouge_lsum(targets: Sequence[str], predictions: Sequence[str], *,
               spm_model_path: str | None = None,
               stemmer: Callable[[str], str] | None = None
               ) -> dict[str, float]:
  """Mean RougeLsum F-measure over examples, 0-100.

  Both sides are split with `split_sentences` and handed to rouge-score
  newline-separated (its own splitting needs nltk data). The mean is
  exact; seqio's bootstrap median of the same scores differs by noise only.

  Args:
    targets: one reference summary per example.
    predictions: the model's summaries, in the same order.
    spm_model_path: score SentencePiece pieces of this model instead of
      Unicode words (see `rouge_tokenizer`).
    stemmer: maps each Unicode word to its stem (`xlsum_rouge` passes
      XL-Sum's); None scores the words as they are.
  """
  _check_lengths(targets, predictions)
  if len(targets) == 0:  # pylint: disable=g-explicit-length-test
    raise ValueError("rouge_lsum needs at least one example.")
  from rouge_score import rouge_scorer  # pylint: disable=g-import-not-at-top
  scorer = rouge_scorer.RougeScorer(
      ["rougeLsum"], tokenizer=rouge_tokenizer(spm_model_path, stemmer))
  scores = [
      scorer.score("\n".join(split_sentences(t)),
                   "\n".join(split_sentences(p)))["rougeLsum"].fmeasure
      for t, p in zip(targets, predictions)]
  return {"rougeLsum": 100.0 * statistics.fmean(scores)}


# ----------------------------------------------------------------------------
# Extractive QA (TyDiQA GoldP): SQuAD v1.1 F1 and exact match.

_SQUAD_ARTICLES = re.compile(r"\b(a|an|the)\b")
_SQUAD_PUNCTUATION = frozenset(string.punctuation)


def normalize_squad_answer(text: str) -> str:
  """SQuAD v1.1's normalisation, unchanged (TyDiQA GoldP scores with it).

  Lower-case, drop ASCII punctuation, drop English articles, collapse
  whitespace. Nothing language-specific is added so scores stay comparable
  with published GoldP numbers.
  """
  text = "".join(c for c in _text(text).lower()
                 if c not in _SQUAD_PUNCTUATION)
  return " ".join(_SQUAD_ARTICLES.sub(" ", text).split())


def _squad_f1(prediction: str, answer: str) -> float:
  predicted = normalize_squad_answer(prediction).split()
  gold = normalize_squad_answer(answer).split()
  overlap = sum((collections.Counter(predicted)
                 & collections.Counter(gold)).values())
  if overlap == 0:
    return 0.0
  precision, recall = overlap / len(predicted), overlap / len(gold)
  return 2 * precision * recall / (precision + recall)


def _answers(target, index: int) -> list[str]:
  """A target as its list of gold answers (a lone string is one answer)."""
  if isinstance(target, (str, bytes)):
    answers = [_text(target)]
  else:
    answers = [_text(a) for a in target]
  if not answers:
    raise ValueError(f"squad: example {index} has no gold answer.")
  return answers


def squad(targets: Sequence[Sequence[str]] | Sequence[str],
          predictions: Sequence[str]) -> dict[str, float]:
  """SQuAD v1.1 F1 and exact match, best over each example's answers, 0-100.

  Args:
    targets: per example, its gold answers (a list) or a single answer.
    predictions: one predicted answer per example.
  """
  _check_lengths(targets, predictions)
  if len(targets) == 0:  # pylint: disable=g-explicit-length-test
    raise ValueError("squad needs at least one example.")
  f1s, exact = [], []
  for index, (target, prediction) in enumerate(zip(targets, predictions)):
    answers, prediction = _answers(target, index), _text(prediction)
    f1s.append(max(_squad_f1(prediction, a) for a in answers))
    exact.append(max(float(normalize_squad_answer(prediction)
                           == normalize_squad_answer(a)) for a in answers))
  return {"f1": 100.0 * statistics.fmean(f1s),
          "em": 100.0 * statistics.fmean(exact)}


# ----------------------------------------------------------------------------
# Rank classification (XCOPA, XNLI, XStoryCloze, XWinograd, m-MMLU).


def accuracy(targets: Sequence, predictions: Sequence) -> dict[str, float]:
  """Share of predictions equal to their target, 0-100.

  Rank-classification tasks predict the index (or text) of the best
  option; equality is exact, so both sides must use the same type.
  """
  _check_lengths(targets, predictions)
  if len(targets) == 0:  # pylint: disable=g-explicit-length-test
    raise ValueError("accuracy needs at least one example.")
  hits = [t == p for t, p in zip(targets, predictions)]
  return {"accuracy": 100.0 * sum(hits) / len(hits)}


def median_over_prompts(
    per_prompt_accuracies: Sequence[float] | Mapping[str, float]) -> float:
  """The paper's held-out score: the median of a language's prompt scores.

  Args:
    per_prompt_accuracies: one accuracy per prompt template (a mapping from
      template name works too); an even count gives the mean of the middle
      two, as `statistics.median` does.
  """
  values = (list(per_prompt_accuracies.values())
            if isinstance(per_prompt_accuracies, Mapping)
            else list(per_prompt_accuracies))
  if not values:
    raise ValueError("median_over_prompts needs at least one prompt's score.")
  return float(statistics.median(values))

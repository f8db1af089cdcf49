"""SentencePiece vocabularies: the shipped demo one and mT5's.

mT5 and Aya use `mc4.250000.100extra` (250,000 pieces whose last 100 are the
sentinel ids, so `extra_ids=0`). That file lives on GCS, so tests and the tiny
smoke model use the demo vocabulary shipped inside this package instead: a
1,200-piece unigram model over 12 languages with the same special ids (pad 0,
eos 1, unk 2, no bos) and byte fallback, so any text encodes without <unk>.
It is rebuilt by `tasks/data/demo/build_demo_data.py`.
"""

import os

import seqio

from aya_t5x import gcs_access

DEMO_SPM_PATH = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "assets", "vocab",
    "aya_demo_spm.model")
MT5_SPM_PATH = "gs://t5-data/vocabs/mc4.250000.100extra/sentencepiece.model"

PAD_ID = 0
EOS_ID = 1
UNK_ID = 2


def sentencepiece_vocabulary(
    path: str, extra_ids: int = 0) -> seqio.SentencePieceVocabulary:
  """Returns a SeqIO vocabulary for a SentencePiece model file.

  SeqIO loads the model lazily, so a wrong local path would otherwise surface
  only at the first encode, deep inside a tf.data pipeline. Local paths are
  checked here; remote ones (gs://, ...) are left to SeqIO because checking
  them would need network access at import time.

  Args:
    path: a .model file, local or on a filesystem tf.io.gfile understands.
    extra_ids: sentinel ids appended after the model's own pieces.

  Raises:
    FileNotFoundError: `path` is local and does not exist.
  """
  if "://" not in path and not os.path.isfile(path):
    raise FileNotFoundError(
        f"SentencePiece model not found: {path!r}. Pass the path of an "
        "existing .model file; the demo model is rebuilt with "
        "`python tasks/data/demo/build_demo_data.py`.")
  return seqio.SentencePieceVocabulary(path, extra_ids=extra_ids)


def demo_vocabulary(extra_ids: int = 0) -> seqio.SentencePieceVocabulary:
  """The shipped 12-language demo vocabulary (no network needed)."""
  return sentencepiece_vocabulary(DEMO_SPM_PATH, extra_ids=extra_ids)


def mt5_vocabulary() -> seqio.SentencePieceVocabulary:
  """mT5's vocabulary; its 100 sentinels are already in the model file."""
  return sentencepiece_vocabulary(MT5_SPM_PATH, extra_ids=0)


def check_loads(vocabulary: seqio.Vocabulary, where: str) -> None:
  """Loads the vocabulary now, naming its file if it is not a model.

  SeqIO parses a SentencePiece file at its first use, which in training is
  inside the tf.data pipeline: a corrupt file would fail there, long after
  start-up and with a protobuf message that names no file.

  Raises:
    gcs_access.GcsUnreachable: the file is on GCS, which does not answer.
    ValueError: the file is not a SentencePiece model.
  """
  path = getattr(vocabulary, "sentencepiece_model_file", "the vocabulary")
  # Offline: one line now, not libcurl's retries and message.
  gcs_access.check(path, f"the vocabulary of {where}; a local copy is used "
                   "with AYA_VOCABULARY=FILE")
  try:
    vocabulary.vocab_size  # pylint: disable=pointless-statement
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f"{where}: {path} is not a readable SentencePiece model "
                     f"({type(e).__name__}: {e}).") from None

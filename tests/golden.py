"""Access to `tests/fixtures/t5x_golden/`, the tiny run made with upstream T5X.

The fixture ships with the repository (its README says what it is and how it
was made), so the golden tests run on every clone.
"""

import json
import os

import jax.numpy as jnp
import numpy as np

from aya_t5x import network

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          "fixtures", "t5x_golden")

# The golden model (README of the golden run): float32 everywhere.
CONFIG = network.T5Config(vocab_size=640, emb_dim=32, num_heads=2,
                          num_encoder_layers=2, num_decoder_layers=2,
                          head_dim=16, mlp_dim=64, dtype="float32")
LEARNING_RATE = 0.01
STEP1_LOSS = 799.276123046875
STEP1_LOSS_AVG = 6.861445426940918


def path(*parts: str) -> str:
  return os.path.join(GOLDEN_DIR, *parts)


def first_batch() -> dict:
  with open(path("first_batch.json")) as f:
    return {k: jnp.asarray(v) for k, v in json.load(f).items()}


def losses(avg_per_sequence: bool) -> list[float]:
  name = "losses_avg_per_seq.json" if avg_per_sequence else "losses.json"
  with open(path(name)) as f:
    return json.load(f)["loss"]


def _read_params(checkpoint: str):
  from aya_t5x import checkpoints  # pylint: disable=g-import-not-at-top
  return checkpoints.read_t5x_orbax_params(path("checkpoints", checkpoint))


def initial_params():
  return _read_params("checkpoint_0")


def final_params(avg_per_sequence: bool):
  return _read_params("avg_per_seq/checkpoint_30" if avg_per_sequence
                      else "checkpoint_30")


def train_batches(num_steps: int):
  """The golden pipeline (README "Pipeline") re-done with SentencePiece.

  Kept independent of `aya_t5x.data` on purpose: it is the reference that
  the data tests compare our SeqIO path against.
  """
  import sentencepiece  # pylint: disable=g-import-not-at-top
  sp = sentencepiece.SentencePieceProcessor(model_file=path("data",
                                                            "spm.model"))
  with open(path("data", "train.jsonl"), encoding="utf-8") as f:
    rows = [json.loads(line) for line in f]
  def tokens(text):
    ids = (sp.encode(text) + [1])[:32]
    return ids + [0] * (32 - len(ids))
  for step in range(num_steps):
    chunk = rows[8 * step:8 * step + 8]
    enc = np.array([tokens(r["inputs"]) for r in chunk], np.int32)
    tgt = np.array([tokens(r["targets"]) for r in chunk], np.int32)
    dec_in = np.concatenate([np.zeros((8, 1), np.int32), tgt[:, :-1]], 1)
    yield {"encoder_input_tokens": jnp.asarray(enc),
           "decoder_target_tokens": jnp.asarray(tgt),
           "decoder_input_tokens": jnp.asarray(dec_in),
           "decoder_loss_weights": jnp.asarray((tgt > 0).astype(np.int32))}

"""What a run learned, per language: loss and token accuracy at each eval.

The training eval reports one teacher-forced loss over the whole eval
split; a multilingual run needs it per language, and a number a reader can
picture beside it. `PerLanguageEval` (gin: BENCHMARK_EVAL, as in
`gin/aya_tiny_cpu.gin`) runs at step 0, every EVAL_PERIOD and at the end,
over a task whose examples carry a `language` feature (the demo data's
validation split does), and returns, per language (teacher-forced, one
compiled program for every language and eval):

- `languages/<code>/loss`: mean negative log-likelihood per target token
  (EOS included), teacher-forced, the training loss's quantity;
- `languages/<code>/accuracy`: the fraction of target tokens that are the
  model's most likely next token (the eval's token accuracy);
- `languages/<code>/examples`: how many examples that is.

They land in eval_metrics.jsonl and TensorBoard with the other eval
metrics; `python -m aya_t5x.learning_report` turns them into the
before/after table and the loss curves.
"""

import collections
import functools
from typing import Any

import gin
import jax
import jax.numpy as jnp
import numpy as np
import seqio

from aya_t5x import data
from aya_t5x import decoding
from aya_t5x import learning_report
from aya_t5x import model as model_lib
from aya_t5x import partitioning

PREFIX = learning_report.PREFIX
PyTree = Any


def _text(value) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def read_examples(task_name: str, split: str, module: str | None,
                  max_per_language: int | None = None
                  ) -> dict[str, list[tuple[str, str]]]:
  """{language: [(input text, target text)]} of a task's split.

  Raises:
    ValueError: the task's examples have no `language` feature.
  """
  task = data.get_mixture_or_task(task_name, module)
  dataset = task.get_dataset(sequence_length=None, split=split,
                             shuffle=False, num_epochs=1)
  by_language = collections.defaultdict(list)
  for example in dataset.as_numpy_iterator():
    if "language" not in example:
      raise ValueError(f"PerLanguageEval: task {task_name!r} has no "
                       "'language' feature to group its examples by.")
    rows = by_language[_text(example["language"])]
    if max_per_language is None or len(rows) < max_per_language:
      rows.append((_text(example["inputs_pretokenized"]),
                   _text(example["targets_pretokenized"])))
  return dict(sorted(by_language.items()))


def _pad(rows: list[list[int]], length: int) -> np.ndarray:
  out = np.zeros((len(rows), length), np.int32)
  for i, row in enumerate(rows):
    out[i, :len(row)] = row
  return out


def _features(pairs: list[tuple[list[int], list[int]]], rows: int,
              inputs: int, targets: int) -> dict[str, np.ndarray]:
  """T5X features of (input, target) token pairs, padded to `rows` rows
  (empty rows weigh nothing) and the given lengths."""
  pairs = pairs + [([], [])] * (rows - len(pairs))
  target = _pad([y for _, y in pairs], targets)
  return {"encoder_input_tokens": _pad([x for x, _ in pairs], inputs),
          "decoder_target_tokens": target,
          "decoder_input_tokens": np.concatenate(
              [np.zeros((rows, 1), np.int32), target[:, :-1]], axis=1)}


def _round_up(n: int, multiple: int = 8) -> int:
  return max(multiple, -(-n // multiple) * multiple)


@gin.configurable
class PerLanguageEval:
  """Per-language teacher-forced loss and accuracy (module docstring)."""

  def __init__(self, vocabulary: seqio.Vocabulary, task_name: str, *,
               split: str = "validation",
               module: str | None = "aya_t5x.mixtures",
               max_per_language: int | None = None,
               batch_size: int = 32):
    self.vocabulary = vocabulary
    self.task_name, self.split, self.module = task_name, split, module
    self.max_per_language = max_per_language
    # Rows per forward pass: a language's examples go in chunks of this
    # many, so the logits' memory does not grow with the validation set.
    self.batch_size = batch_size
    self._batches: dict[str, list[dict[str, np.ndarray]]] | None = None
    self._sums = None

  def batches(self) -> dict[str, list[dict[str, np.ndarray]]]:
    """{language: [T5X features of up to `batch_size` rows]}, every chunk
    padded to one shape (one compiled program)."""
    if self._batches is None:
      examples = read_examples(self.task_name, self.split, self.module,
                               self.max_per_language)
      encode = lambda t: list(self.vocabulary.encode(t)) + [decoding.EOS_ID]  # pylint: disable=unnecessary-lambda-assignment
      pairs = {l: [(encode(x), encode(y)) for x, y in rows]
               for l, rows in examples.items()}
      rows = min(self.batch_size, max(len(p) for p in pairs.values()))
      inputs = _round_up(max(len(x) for p in pairs.values() for x, _ in p))
      targets = _round_up(max(len(y) for p in pairs.values() for _, y in p))
      self._batches = {
          language: [_features(p[i:i + rows], rows, inputs, targets)
                     for i in range(0, len(p), rows)]
          for language, p in pairs.items()}
    return self._batches

  def __call__(self, model: model_lib.EncoderDecoderModel, params: PyTree,
               partitioner: partitioning.Partitioner, step: int,
               model_dir: str) -> dict[str, float]:
    del partitioner, step, model_dir  # Params carry their sharding.
    if self._sums is None:
      self._sums = jax.jit(functools.partial(_token_sums, model))
    metrics = {}
    for language, chunks in self.batches().items():
      nll, correct, tokens = np.sum(
          [jax.device_get(self._sums(params, b)) for b in chunks], axis=0)
      examples = sum(int(np.sum(b["decoder_target_tokens"][:, 0] > 0))
                     for b in chunks)
      key = f"{PREFIX}/{language}"
      metrics.update({f"{key}/loss": float(nll / tokens),
                      f"{key}/accuracy": float(correct / tokens),
                      f"{key}/examples": float(examples)})
    return metrics


def _token_sums(model: model_lib.EncoderDecoderModel, params: PyTree,
                batch: dict) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Summed target-token NLL, correct argmaxes and target tokens."""
  logits = model.logits(params, batch).astype(jnp.float32)
  targets = batch["decoder_target_tokens"]
  weights = (targets > 0).astype(jnp.float32)
  log_probs = jax.nn.log_softmax(logits)
  nll = -jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
  correct = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32)
  return (jnp.sum(nll * weights), jnp.sum(correct * weights),
          jnp.sum(weights))

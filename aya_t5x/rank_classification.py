"""Rank classification: score every option, pick the likeliest.

The zero-shot held-out tasks and m-MMLU are scored the way T5X/SeqIO score
them (`seqio.preprocessors.rank_classification`): each option is a target
sequence given the prompt, its score is the total log-likelihood of its
tokens (EOS included), and the prediction is the option with the highest
score. Totals, not per-token means, as the paper's setup (and T5X) ranks.

The scoring function is injected (`inference.Predictor.score_ids` in the
runner), so this module is plain Python over token ids and can be checked
against log-likelihoods computed any other way.
"""

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np

TokenRows = Sequence[Sequence[int]]
# (input rows, target rows) -> one total log-likelihood per row.
ScoreFn = Callable[[TokenRows, TokenRows], np.ndarray]


@dataclasses.dataclass(frozen=True)
class Ranked:
  """One example's option scores and the chosen option."""

  scores: tuple[float, ...]  # Total log-likelihood of each option.

  @property
  def choice(self) -> int:
    """The likeliest option; ties go to the first (np.argmax)."""
    return int(np.argmax(self.scores))


def rank(score_fn: ScoreFn, inputs: TokenRows,
         options: Sequence[TokenRows]) -> list[Ranked]:
  """Scores every option of every example in one call and ranks them.

  The pairs go to `score_fn` in example order; batching them by length is
  the scorer's business (`Predictor.score_ids` does).

  Args:
    score_fn: total log-likelihood of each (input, target) token row pair.
    inputs: per example, its prompt's token ids (EOS-terminated).
    options: per example, the token ids of each option (EOS-terminated).

  Returns:
    One `Ranked` per example.

  Raises:
    ValueError: lengths differ, or an example has no option.
  """
  if len(inputs) != len(options):
    raise ValueError(f"rank: {len(inputs)} inputs but {len(options)} option "
                     "lists.")
  if not inputs:
    return []
  pair_inputs, pair_targets, owners = [], [], []
  for index, (prompt, choices) in enumerate(zip(inputs, options)):
    if not choices:
      raise ValueError(f"rank: example {index} has no options.")
    for choice in choices:
      pair_inputs.append(prompt)
      pair_targets.append(choice)
      owners.append(index)
  scores = score_fn(pair_inputs, pair_targets)
  per_example = [[] for _ in inputs]
  for owner, score in zip(owners, scores):
    per_example[owner].append(float(score))
  return [Ranked(tuple(s)) for s in per_example]

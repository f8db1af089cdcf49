"""The non-finite guard: no NaN or Inf is trained on or checkpointed.

A run of weeks must not go on training on garbage after one bad batch or an
absurd learning rate, and must never write a checkpoint of NaNs (keep-N would
then delete the last good one). Three parts:

  * on device, in the train step (`step_is_finite`): the loss and the global
    gradient norm are checked; under the `skip` policy the update is dropped
    (`keep_if_finite`) so the state stays the last finite one. The flag is a
    metric like any other, so detecting it costs no host sync beyond the
    periodic metric fetch;
  * on the host (`Monitor`), when metrics are fetched: `stop` (the default)
    ends the run at the first non-finite step with one line naming the step
    and the metric; `skip` counts skipped steps and stops after
    `max_consecutive_skips` in a row;
  * before every save (`first_nonfinite_leaf`): the state itself is checked,
    so even an update that overflowed from finite gradients is never saved.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

import jax
import jax.numpy as jnp

from aya_t5x import gin_utils

PyTree = Any
POLICIES = ("stop", "skip")
# Metrics the step adds: the global gradient norm and 1.0 for a step whose
# loss or gradient norm was not finite (0.0 otherwise).
GRAD_NORM = "grad_norm"
NONFINITE = "nonfinite"
# Checked in this order; the first non-finite one is named.
_CHECKED = ("loss", GRAD_NORM)


class NonFiniteError(gin_utils.RunError):
  """Training met a non-finite value; nothing non-finite was saved."""


@dataclasses.dataclass(frozen=True)
class NonFiniteConfig:
  """What a non-finite loss or gradient does (gin: `NonFiniteConfig`)."""
  # NONFINITE_POLICY: "stop" ends the run (exit 1, nothing saved after the
  # last finite checkpoint); "skip" drops the update and continues.
  policy: str = "stop"
  # MAX_CONSECUTIVE_SKIPS: under "skip", stop after this many non-finite
  # steps in a row (the run is diverging, not hitting one bad batch).
  max_consecutive_skips: int = 10

  def __post_init__(self):
    if self.policy not in POLICIES:
      raise ValueError(f"NONFINITE_POLICY must be one of {POLICIES}, got "
                       f"{self.policy!r}.")
    if (not isinstance(self.max_consecutive_skips, int) or
        isinstance(self.max_consecutive_skips, bool) or
        self.max_consecutive_skips < 1):
      raise ValueError(f"MAX_CONSECUTIVE_SKIPS must be an integer >= 1, got "
                       f"{self.max_consecutive_skips!r}.")


# ------------------------------------------------------------- on device ---


def global_norm(tree: PyTree) -> jax.Array:
  """sqrt(sum of squares) over every leaf, in float32."""
  squares = [jnp.sum(jnp.square(x.astype(jnp.float32)))
             for x in jax.tree.leaves(tree)]
  return jnp.sqrt(sum(squares))


def step_is_finite(loss: jax.Array, grad_norm: jax.Array) -> jax.Array:
  """True when the step's loss and gradient norm are both finite.

  A single non-finite gradient element makes the norm non-finite, so one
  scalar test covers every gradient.
  """
  return jnp.isfinite(loss) & jnp.isfinite(grad_norm)


def keep_if_finite(finite: jax.Array, new: PyTree, old: PyTree) -> PyTree:
  """`new` where the step was finite, else `old` (elementwise select, which
  XLA fuses into the update: no extra pass over the state)."""
  return jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)


def guarded_state(config: NonFiniteConfig, state: PyTree, grads: PyTree,
                  loss: jax.Array, params: PyTree, opt_state: PyTree
                  ) -> tuple[dict, dict[str, jax.Array]]:
  """The step's new `{"step", "params", "opt_state"}` and the guard metrics.

  Every train step (full or LoRA) ends here: the update is kept, or under
  `skip` dropped when the loss or gradient norm is not finite.
  """
  grad_norm = global_norm(grads)
  finite = step_is_finite(loss, grad_norm)
  if config.policy == "skip":
    params, opt_state = keep_if_finite(
        finite, (params, opt_state), (state["params"], state["opt_state"]))
  new_state = {"step": state["step"] + 1, "params": params,
               "opt_state": opt_state}
  return new_state, {GRAD_NORM: grad_norm,
                     NONFINITE: 1.0 - finite.astype(jnp.float32)}


@jax.jit
def _leaf_finite(tree: PyTree) -> list[jax.Array]:
  return [jnp.all(jnp.isfinite(x)) if jnp.issubdtype(x.dtype, jnp.inexact)
          else jnp.asarray(True) for x in jax.tree.leaves(tree)]


def first_nonfinite_leaf(state: PyTree) -> str | None:
  """The path of the first leaf of `state` holding a NaN or Inf, or None.

  One reduction per leaf and one small fetch: run before each save only.
  """
  flags = jax.device_get(_leaf_finite(state))
  paths = [jax.tree_util.keystr(p)
           for p, _ in jax.tree_util.tree_flatten_with_path(state)[0]]
  for path, ok in zip(paths, flags):
    if not ok:
      return path
  return None


# --------------------------------------------------------------- on host ---


class Monitor:
  """Applies the policy to fetched per-step metrics (host side)."""

  def __init__(self, config: NonFiniteConfig):
    self.config = config
    self.skipped = 0  # Non-finite steps whose update was dropped.
    self._consecutive = 0

  def check(self, step: int, metrics: Mapping[str, float]) -> None:
    """Raises NonFiniteError when the policy says the run must stop."""
    if not metrics.get(NONFINITE):
      self._consecutive = 0
      return
    culprit = _first_nonfinite(metrics)
    if self.config.policy == "stop":
      raise NonFiniteError(
          f"non-finite {culprit} at step {step} "
          f"(NONFINITE_POLICY='stop'): stopped without saving it; the last "
          "checkpoint holds the last finite state. Lower LEARNING_RATE or "
          "set NONFINITE_POLICY='skip'.")
    self.skipped += 1
    self._consecutive += 1
    if self._consecutive >= self.config.max_consecutive_skips:
      raise NonFiniteError(
          f"non-finite {culprit} at step {step}: {self._consecutive} "
          f"non-finite steps in a row (MAX_CONSECUTIVE_SKIPS="
          f"{self.config.max_consecutive_skips}); stopped, the last "
          "checkpoint holds the last finite state.")

  def check_state(self, step: int, state: PyTree) -> None:
    """Raises NonFiniteError if `state` holds a NaN or Inf (before saving)."""
    leaf = first_nonfinite_leaf(state)
    if leaf is not None:
      raise NonFiniteError(
          f"non-finite state {leaf} at step {step}: not saved; the last "
          "checkpoint holds the last finite state. Lower LEARNING_RATE.")


def _first_nonfinite(metrics: Mapping[str, float]) -> str:
  for name in _CHECKED:
    value = metrics.get(name)
    if value is not None and not math.isfinite(value):
      return f"{name}={value}"
  return "value"

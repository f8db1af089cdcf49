"""Adafactor as T5X runs it, and learning-rate schedules.

The update rule (see `tests/fixtures/t5x_golden/README.md`):
  beta_t = 1 - (t + 1)^-decay_rate                      (t = 0 first)
  v      = beta_t v + (1 - beta_t)(g^2 + epsilon1)       (factored if large)
  u      = g / sqrt(v);   u /= max(1, RMS(u) / clipping_threshold)
  p     -= lr * max(RMS(p), epsilon2) * u                (parameter scaling)

Factoring follows T5X's heuristic: a tensor is factored over its two largest
dimensions when the smaller of those is >= `min_dim_size_to_factor`; the row
statistic averages out the largest dimension, the column statistic the second
largest. No momentum (beta1=None), as in the mT5/Aya finetuning runs.

The state mirrors T5X's `param_states` naming (`v`, `v_row`, `v_col`) but only
stores what a tensor uses, so the optimizer state of mT5-XXL stays small.
"""

import dataclasses
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from aya_t5x import reductions
from aya_t5x import validation

Array = jax.Array
PyTree = Any
Schedule = Callable[[Array], Array]


@dataclasses.dataclass(frozen=True)
class AdafactorConfig:
  """T5X Adafactor settings (gin: `optim.AdafactorConfig`)."""
  decay_rate: float = 0.8  # Second-moment decay exponent.
  step_offset: int = 0  # Steps subtracted before computing beta_t.
  factored: bool = True  # Factor second moments of large matrices.
  min_dim_size_to_factor: int = 128  # Both factored dims must be this big.
  multiply_by_parameter_scale: bool = True  # Scale updates by RMS(param).
  clipping_threshold: float | None = 1.0  # Update clipping (RMS of u).
  epsilon1: float = 1e-30  # Added to g^2.
  epsilon2: float = 1e-3  # Floor of the parameter scale.
  weight_decay_rate: float | None = None  # Decoupled decay, times lr.


def factored_dims(shape: Sequence[int], config: AdafactorConfig
                  ) -> tuple[int, int] | None:
  """(row_axis, col_axis) to factor over, or None for a full accumulator.

  The column axis is the largest dimension and the row axis the second
  largest (a stable sort keeps [d, d] matrices as rows x columns).
  """
  if not config.factored or len(shape) < 2:
    return None
  order = np.argsort(shape, kind="stable")
  row_axis, col_axis = int(order[-2]), int(order[-1])
  if shape[row_axis] < config.min_dim_size_to_factor:
    return None
  return row_axis, col_axis


def _mean_over(x: Array, axis: int) -> Array:
  """jnp.mean(x, axis), fast on the CPU for kernels' column means."""
  return reductions.sum_over(x, axis, scale=1.0 / x.shape[axis])


def _rms(x: Array) -> Array:
  return jnp.sqrt(jnp.mean(jnp.square(x)))


def constant_schedule(value: float) -> Schedule:
  return lambda step: jnp.asarray(value, jnp.float32)


def rsqrt_schedule(base: float, warmup_steps: int = 0, decay: bool = True,
                   offset: int = 0) -> Schedule:
  """T5's schedule: linear warmup, then base * rsqrt(step / warmup) decay.

  With `decay=False` the rate stays at `base` after warmup (the constant LR
  of finetuning, optionally warmed up).
  """
  validation.number("LEARNING_RATE", base, low=0.0, low_open=True)
  validation.integer("WARMUP_STEPS", warmup_steps, 0)
  def schedule(step):
    step = jnp.asarray(step, jnp.float32) - offset
    warm = jnp.maximum(float(max(warmup_steps, 1)), 1.0)
    warmup = jnp.minimum(1.0, (step + 1.0) / warm) if warmup_steps else 1.0
    if not decay:
      return base * warmup
    return base * jnp.where(step < warm, warmup,
                            jax.lax.rsqrt(jnp.maximum(step, 1.0) / warm))
  return schedule


class Adafactor:
  """Adafactor with T5X semantics, as pure functions over pytrees."""

  def __init__(self, learning_rate: Schedule | float,
               config: AdafactorConfig = AdafactorConfig()):
    self.config = config
    self.learning_rate = (learning_rate if callable(learning_rate) else
                          constant_schedule(learning_rate))

  def _init_one(self, param: Array) -> dict[str, Array]:
    dims = factored_dims(param.shape, self.config)
    if dims is None:
      return {"v": jnp.zeros(param.shape, jnp.float32)}
    row_axis, col_axis = dims
    drop = lambda axis: tuple(d for i, d in enumerate(param.shape) if i != axis)
    return {"v_row": jnp.zeros(drop(col_axis), jnp.float32),
            "v_col": jnp.zeros(drop(row_axis), jnp.float32)}

  def init(self, params: PyTree, stacked: PyTree | None = None) -> PyTree:
    """Zero state. `stacked` marks params with a leading scanned-layer axis.

    Stacked tensors (from `nn.scan`) get per-layer statistics, so a scanned
    model trains exactly like its unrolled twin.
    """
    stacked = _default_stacked(params, stacked)
    return jax.tree.map(
        lambda p, s: (jax.vmap(self._init_one)(p) if s else
                      self._init_one(p)), params, stacked)

  def state_axes(self, param_axes: PyTree) -> PyTree:
    """Logical axis names of the state, derived from the parameters' names.

    `param_axes` holds a tuple of names per parameter (from the network's
    annotations); the shapes come along in the same tuple order.
    """
    def one(names_and_shape):
      names, shape = names_and_shape
      if names and names[0] == "layers":
        inner = one((names[1:], shape[1:]))
        return {k: ("layers",) + v for k, v in inner.items()}
      dims = factored_dims(shape, self.config)
      if dims is None:
        return {"v": tuple(names)}
      row_axis, col_axis = dims
      drop = lambda axis: tuple(n for i, n in enumerate(names) if i != axis)
      return {"v_row": drop(col_axis), "v_col": drop(row_axis)}
    return jax.tree.map(one, param_axes,
                        is_leaf=lambda x: isinstance(x, tuple) and len(x) == 2
                        and isinstance(x[1], tuple))

  def _update_one(self, grad: Array, param: Array, state: dict[str, Array],
                  beta: Array, lr: Array) -> tuple[Array, dict[str, Array]]:
    cfg = self.config
    grad = grad.astype(jnp.float32)
    grad_sqr = jnp.square(grad) + cfg.epsilon1
    dims = factored_dims(param.shape, cfg)
    if dims is None:
      v = beta * state["v"] + (1.0 - beta) * grad_sqr
      new_state = {"v": v}
      update = grad * jax.lax.rsqrt(v)
    else:
      row_axis, col_axis = dims
      v_row = beta * state["v_row"] + (1.0 - beta) * _mean_over(grad_sqr,
                                                                col_axis)
      v_col = beta * state["v_col"] + (1.0 - beta) * _mean_over(grad_sqr,
                                                                row_axis)
      new_state = {"v_row": v_row, "v_col": v_col}
      # Row axis index inside v_row is unchanged when col_axis > row_axis.
      row_in_v_row = row_axis if row_axis < col_axis else row_axis - 1
      row_factor = jax.lax.rsqrt(
          v_row / jnp.mean(v_row, axis=row_in_v_row, keepdims=True))
      col_factor = jax.lax.rsqrt(v_col)
      update = (grad * jnp.expand_dims(row_factor, col_axis) *
                jnp.expand_dims(col_factor, row_axis))
    if cfg.clipping_threshold is not None:
      update = update / jnp.maximum(1.0, _rms(update) / cfg.clipping_threshold)
    step_size = lr
    if cfg.multiply_by_parameter_scale:
      step_size = lr * jnp.maximum(_rms(param.astype(jnp.float32)),
                                   cfg.epsilon2)
    new_param = param.astype(jnp.float32) - step_size * update
    if cfg.weight_decay_rate:
      new_param = new_param - lr * cfg.weight_decay_rate * param
    return new_param.astype(param.dtype), new_state

  def apply(self, step: Array, grads: PyTree, params: PyTree, state: PyTree,
            stacked: PyTree | None = None) -> tuple[PyTree, PyTree, Array]:
    """One update. `step` counts updates already applied (0 first).

    Returns the new parameters, the new state and the learning rate used.
    """
    stacked = _default_stacked(params, stacked)
    t = jnp.asarray(step, jnp.float32) - self.config.step_offset
    beta = 1.0 - jnp.power(t + 1.0, -self.config.decay_rate)
    lr = self.learning_rate(step)
    flat_params, treedef = jax.tree.flatten(params)
    flat_grads = treedef.flatten_up_to(grads)
    flat_states = treedef.flatten_up_to(state)
    flat_stacked = treedef.flatten_up_to(stacked)
    per_layer = jax.vmap(self._update_one, in_axes=(0, 0, 0, None, None))
    results = [(per_layer if k else self._update_one)(g, p, s, beta, lr)
               for g, p, s, k in zip(flat_grads, flat_params, flat_states,
                                     flat_stacked)]
    new_params = treedef.unflatten([r[0] for r in results])
    new_state = treedef.unflatten([r[1] for r in results])
    return new_params, new_state, lr


def _default_stacked(params: PyTree, stacked: PyTree | None) -> PyTree:
  return jax.tree.map(lambda _: False, params) if stacked is None else stacked

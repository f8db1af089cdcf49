"""The train state and the jitted, partitioned train and eval steps.

Arrays in, arrays out: no files, gin or SeqIO here. The state is a plain
pytree `{"step", "params", "opt_state"}` so orbax saves it as is and the
parameter subtree keeps T5X's names.

Gradient accumulation splits the batch into `num_microbatches` strided
slices (row i*k+j goes to microbatch j, so every microbatch stays spread over
all data shards) and sums their gradients. Because the loss normaliser is
computed once on the full batch, k microbatches give the same update as one
full batch, whichever `LOSS_NORMALIZING_FACTOR` is used.
"""

import dataclasses
import functools
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from aya_t5x import finite_guard
from aya_t5x import model as model_lib
from aya_t5x import optim
from aya_t5x import partitioning
from aya_t5x import validation

Array = jax.Array
PyTree = Any
Batch = Mapping[str, Array]

# Keys of the summable per-step metrics returned by the model's loss.
_SUMMED = ("loss", "z_loss", "cross_ent_loss", "correct_tokens",
           "target_tokens", "nonpadding_encoder_tokens", "sequences")


@dataclasses.dataclass(frozen=True)
class TrainerConfig:
  """Train step settings (gin: `trainer.TrainerConfig`)."""
  num_microbatches: int = 1  # NUM_MICROBATCHES: gradient accumulation.
  seed: int = 0  # RANDOM_SEED: parameter init and dropout.
  # NONFINITE_POLICY / MAX_CONSECUTIVE_SKIPS: what a NaN or Inf loss or
  # gradient does (aya_t5x.finite_guard).
  nonfinite: finite_guard.NonFiniteConfig = finite_guard.NonFiniteConfig()

  def __post_init__(self):
    validation.integer("NUM_MICROBATCHES", self.num_microbatches, 1)
    validation.integer("RANDOM_SEED", self.seed)


def _stacked_layers(axes: PyTree) -> PyTree:
  """True for parameters whose leading axis is a scanned `layers` axis."""
  return jax.tree.map(lambda names: bool(names) and names[0] == "layers",
                      axes, is_leaf=partitioning.is_axes)


def _split_microbatches(batch: Batch, k: int) -> Batch:
  """[B, ...] -> [k, B/k, ...] with row i*k+j in microbatch j."""
  def split(x):
    if x.shape[0] % k:
      raise ValueError(f"Batch of {x.shape[0]} rows is not divisible by "
                       f"NUM_MICROBATCHES={k}.")
    return jnp.swapaxes(x.reshape((x.shape[0] // k, k) + x.shape[1:]), 0, 1)
  return jax.tree.map(split, batch)


def _finalize_metrics(sums: Mapping[str, Array], lr: Array) -> dict:
  metrics = {k: sums[k] for k in ("loss", "z_loss", "cross_ent_loss")}
  metrics["accuracy"] = sums["correct_tokens"] / jnp.maximum(
      sums["target_tokens"], 1.0)
  metrics["num_target_tokens"] = sums["target_tokens"]
  metrics["num_encoder_tokens"] = sums["nonpadding_encoder_tokens"]
  metrics["num_sequences"] = sums["sequences"]
  if lr is not None:
    metrics["learning_rate"] = lr
  return metrics


def accumulate_gradients(loss_fn, params, batch: Batch, weights: Array,
                         rng: Array | None, k: int) -> tuple[PyTree, dict]:
  """Gradients of `loss_fn(params, batch, weights, rng) -> (loss, sums)`
  over `k` microbatches, summed, and the summed metrics.

  Shared with `lora.LoraTrainer`, whose `params` are the adapters alone.
  """
  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
  if k == 1:
    (_, sums), grads = grad_fn(params, batch, weights, rng)
    return grads, sums
  micro = _split_microbatches(dict(batch, _weights=weights), k)
  def body(carry, xs):
    grads_acc, sums_acc = carry
    mb, index = xs
    w = mb.pop("_weights")
    mb_rng = None if rng is None else jax.random.fold_in(rng, index)
    (_, sums), grads = grad_fn(params, mb, w, mb_rng)
    return (jax.tree.map(jnp.add, grads_acc, grads),
            jax.tree.map(jnp.add, sums_acc, sums)), None
  zeros = (jax.tree.map(jnp.zeros_like, params),
           {key: jnp.zeros((), jnp.float32) for key in _SUMMED})
  (grads, sums), _ = jax.lax.scan(body, zeros, (micro, jnp.arange(k)))
  return grads, sums


class Trainer:
  """Builds, shards and steps the train state of an encoder-decoder model."""

  def __init__(self, model: model_lib.EncoderDecoderModel,
               optimizer: optim.Adafactor,
               partitioner: partitioning.Partitioner,
               config: TrainerConfig = TrainerConfig()):
    self.model = model
    self.optimizer = optimizer
    self.partitioner = partitioner
    self.config = config
    self._dropout_key = jax.random.PRNGKey(config.seed + 1)
    self._compiled = {}

  # -- State ------------------------------------------------------------------

  @functools.cached_property
  def _param_axes(self) -> PyTree:
    return self.state_axes()["params"]

  def state_axes(self) -> PyTree:
    """Logical axis names of every leaf of the train state."""
    boxed = partitioning.abstract_boxed_params(self.model)
    param_axes = partitioning.logical_axes(boxed)
    shapes = jax.tree.map(lambda x: x.shape, nn.meta.unbox(boxed))
    named = jax.tree.map(lambda a, s: (a, s), param_axes, shapes,
                         is_leaf=partitioning.is_axes)
    return {"step": (), "params": param_axes,
            "opt_state": self.optimizer.state_axes(named)}

  def state_shardings(self) -> PyTree:
    return self.partitioner.shardings(self.state_axes())

  def abstract_state(self) -> PyTree:
    """ShapeDtypeStructs with shardings: what a restore needs, no memory."""
    shapes = jax.eval_shape(self._init_state, jax.random.PRNGKey(0))
    return partitioning.with_shardings(shapes, self.state_shardings())

  def _init_state(self, rng):
    boxed = partitioning.init_boxed_params(self.model, rng)
    stacked = _stacked_layers(partitioning.logical_axes(boxed))
    params = nn.meta.unbox(boxed)
    return {"step": jnp.zeros((), jnp.int32), "params": params,
            "opt_state": self.optimizer.init(params, stacked)}

  @functools.cached_property
  def _jitted_init(self):
    # Kept: a fresh jax.jit of a bound method compiles again on every call.
    return jax.jit(self._init_state, out_shardings=self.state_shardings())

  def init_state(self) -> PyTree:
    """Randomly initialised state, created directly in its sharded layout."""
    init = self._jitted_init  # Shardings are derived outside the mesh.
    with self.partitioner.activate():
      return init(jax.random.PRNGKey(self.config.seed))

  def state_from_params(self, params: PyTree, step: int = 0) -> PyTree:
    """A fresh optimizer state around given (e.g. imported) parameters."""
    shardings = self.state_shardings()
    stacked = _stacked_layers(self._param_axes)
    def build(params):
      return {"step": jnp.asarray(step, jnp.int32), "params": params,
              "opt_state": self.optimizer.init(params, stacked)}
    params = jax.device_put(params, shardings["params"])
    with self.partitioner.activate():
      return jax.jit(build, out_shardings=shardings)(params)

  # -- Steps ------------------------------------------------------------------

  def _grads_and_sums(self, params, batch, weights, denominator, rng):
    def loss_fn(p, b, w, r):
      return self.model.loss_and_metrics(p, b, w, denominator, r)
    return accumulate_gradients(loss_fn, params, batch, weights, rng,
                                self.config.num_microbatches)

  def _train_step(self, state, batch, dropout_key):
    weights, denominator = model_lib.loss_weights_and_denominator(
        batch, self.model.loss_config.normalizing_factor)
    rng = None
    if self.model.config.dropout_rate > 0:
      rng = jax.random.fold_in(dropout_key, state["step"])
    grads, sums = self._grads_and_sums(state["params"], batch, weights,
                                       denominator, rng)
    stacked = _stacked_layers(self._param_axes)
    params, opt_state, lr = self.optimizer.apply(
        state["step"], grads, state["params"], state["opt_state"], stacked)
    new_state, guard = finite_guard.guarded_state(
        self.config.nonfinite, state, grads, sums["loss"], params, opt_state)
    return new_state, {**_finalize_metrics(sums, lr), **guard}

  def _eval_step(self, params, batch):
    weights, denominator = model_lib.loss_weights_and_denominator(
        batch, self.model.loss_config.normalizing_factor)
    _, sums = self.model.loss_and_metrics(params, batch, weights, denominator,
                                          None)
    return sums

  def _batch_shardings(self, batch):
    return {k: self.partitioner.batch_sharding(np.ndim(v))
            for k, v in batch.items()}

  def _compile(self, kind: str, batch):
    key = (kind, tuple(sorted((k, v.shape) for k, v in batch.items())))
    if key not in self._compiled:
      state_shardings = self.state_shardings()
      replicated = self.partitioner.replicated()
      if kind == "train":
        fn = jax.jit(self._train_step,
                     in_shardings=(state_shardings,
                                   self._batch_shardings(batch), replicated),
                     out_shardings=(state_shardings, replicated),
                     donate_argnums=(0,))
      else:
        fn = jax.jit(self._eval_step,
                     in_shardings=(state_shardings["params"],
                                   self._batch_shardings(batch)),
                     out_shardings=replicated)
      self._compiled[key] = fn
    return self._compiled[key]

  def train_step(self, state: PyTree, batch: Batch
                 ) -> tuple[PyTree, dict[str, Array]]:
    """One optimizer update on a global batch; the old state is donated."""
    fn = self._compile("train", batch)
    with self.partitioner.activate():
      return fn(state, batch, self._dropout_key)

  def eval_sums(self, params: PyTree, batch: Batch) -> dict[str, Array]:
    """Teacher-forced, summable loss/accuracy terms of one eval batch."""
    fn = self._compile("eval", batch)
    with self.partitioner.activate():
      return fn(params, batch)

  def lower_train_step(self, abstract_state: PyTree,
                       abstract_batch: Mapping[str, jax.ShapeDtypeStruct]):
    """Lowers the exact train step for AOT compilation (precompile)."""
    fn = self._compile("train", abstract_batch)
    with self.partitioner.activate():
      return fn.lower(abstract_state, abstract_batch, self._dropout_key)


def summarize_eval(sums_per_batch: list[Mapping[str, Array]]) -> dict:
  """T5X eval semantics: loss averaged over batches, accuracy pooled."""
  n = len(sums_per_batch)
  total = {k: sum(float(s[k]) for s in sums_per_batch) for k in _SUMMED}
  metrics = _finalize_metrics(total, None)
  for key in ("loss", "z_loss", "cross_ent_loss"):
    metrics[key] = total[key] / n
  return {k: float(v) for k, v in metrics.items()}

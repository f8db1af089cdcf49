"""LoRA: low-rank adapters trained over a frozen base model.

A targeted projection's kernel W [in, out] is used as W + (alpha / rank) A B,
A [in, rank], B [rank, out] (B starts at zero, so step 0 is the base model).
Only A and B are trained: they are the train state's `params`, the only
tensors the optimizer keeps statistics for, and the only ones checkpoints
hold. The base parameters are an argument of the jitted step (never
donated, optionally stored in bfloat16) loaded from INITIAL_CHECKPOINT_PATH:
ours, upstream T5X's, or a Hugging Face folder.

Why our own module (not `qwix`, `peft` or a Flax LoRA layer): the adapter
is applied to the kernel, as a weight delta, before the network runs. So it
needs no change to the network and works in every path the network has
(the fused decoding projections, `nn.scan` stacks, remat), its shardings
follow from the base kernel's logical axes (A keeps the kernel's input axis,
B its output axis; the rank axis is replicated), and merging is exact by
construction: the merged model is the very function trained. qwix 0.1.8
intercepts `dot_general`, which our `project` helper fuses across kernels
while decoding, and its LoRA state is not a separate tree we could
checkpoint alone. The cost of the delta form: a targeted kernel's delta
and its full-size weight gradient are computed each step (transiently) and
the forward pass's input-side dropout of PEFT's LoRA cannot be expressed;
`dropout` here drops whole rank components (LyCORIS' "rank dropout",
rescaled), which also keeps the merge exact.

`python -m aya_t5x.lora_merge ...` writes base + adapters as an ordinary
checkpoint and, optionally, a Hugging Face folder (docs/lora.md).
"""

import dataclasses
import functools
import re
from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from aya_t5x import checkpoints
from aya_t5x import finite_guard
from aya_t5x import model as model_lib
from aya_t5x import optim
from aya_t5x import partitioning
from aya_t5x import trainer as trainer_lib

Array = jax.Array
PyTree = Any
# The network's matmul kernels, by the name of the module that owns them.
PROJECTIONS = ("query", "key", "value", "out", "wi", "wi_0", "wi_1", "wo",
               "logits_dense")
BASE_DTYPES = ("float32", "bfloat16")


@dataclasses.dataclass(frozen=True)
class LoraConfig:
  """Which projections get adapters, and how big (gin: `lora.LoraConfig`)."""
  # Projection names (PROJECTIONS) or regular expressions matched against
  # the module path, e.g. 'encoder/.*/attention/(query|value)'.
  targets: Sequence[str] = ("query", "value")
  rank: int = 8  # Columns of A / rows of B.
  alpha: float = 16.0  # The delta is scaled by alpha / rank.
  dropout: float = 0.0  # Rank dropout: drop whole rank components.
  base_dtype: str = "float32"  # Frozen base storage: float32 or bfloat16.
  seed: int = 0  # Initialisation of A.

  def __post_init__(self):
    if isinstance(self.targets, str) or not self.targets:
      raise ValueError(f"LoraConfig.targets={self.targets!r}: expected a "
                       f"non-empty list of names from {PROJECTIONS} or "
                       "regular expressions over module paths.")
    if self.rank < 1 or not 0 <= self.dropout < 1 or self.alpha <= 0:
      raise ValueError(
          f"LoraConfig: rank={self.rank} must be >= 1, alpha={self.alpha} "
          f"> 0 and dropout={self.dropout} in [0, 1).")
    if self.base_dtype not in BASE_DTYPES:
      raise ValueError(f"LoraConfig.base_dtype={self.base_dtype!r}; expected "
                       f"one of {BASE_DTYPES}.")

  @property
  def scale(self) -> float:
    return self.alpha / self.rank


def _target_pattern(target: str) -> re.Pattern:
  if target in PROJECTIONS:
    return re.compile(f"(.*/)?{target}")
  return re.compile(target)


def targeted_kernels(param_axes: PyTree, config: LoraConfig
                     ) -> dict[str, tuple]:
  """{module path: kernel axes} of the kernels the targets select.

  Raises:
    ValueError: a target that selects no kernel (naming the kernels there
      are).
  """
  kernels = {}
  leaves, _ = jax.tree_util.tree_flatten_with_path(
      param_axes, is_leaf=partitioning.is_axes)
  for path, axes in leaves:
    name = checkpoints.path_str(path)
    if name.endswith("/kernel"):
      kernels[name[:-len("/kernel")]] = axes
  chosen = {}
  for target in config.targets:
    pattern = _target_pattern(target)
    hits = [m for m in kernels if pattern.fullmatch(m)]
    if not hits:
      examples = ", ".join(sorted(kernels)[:6])
      raise ValueError(
          f"LoraConfig.targets: {target!r} selects no projection kernel. "
          f"Use names from {PROJECTIONS} or a regular expression over "
          f"module paths such as {examples}, ...")
    chosen.update({m: kernels[m] for m in hits})
  return chosen


def _nest(flat: Mapping[str, Any]) -> dict:
  tree: dict = {}
  for path, value in flat.items():
    node = tree
    for key in path.split("/"):
      node = node.setdefault(key, {})
    node.update(value)
  return tree


def _flat_adapters(adapters: PyTree) -> dict[str, dict]:
  """{module path: {"lora_a", "lora_b"}} of a nested adapter tree."""
  out = {}
  def walk(node, prefix):
    if "lora_a" in node:
      out[prefix] = node
      return
    for key, child in node.items():
      walk(child, f"{prefix}/{key}" if prefix else key)
  walk(adapters, "")
  return out


def adapter_axes(param_axes: PyTree, config: LoraConfig) -> PyTree:
  """Logical axes of A and B: the kernel's input / output axis, the rank
  axis unsharded (a scanned kernel's leading `layers` axis kept)."""
  flat = {}
  for path, axes in targeted_kernels(param_axes, config).items():
    *lead, in_axis, out_axis = axes
    flat[path] = {"lora_a": (*lead, in_axis, None),
                  "lora_b": (*lead, None, out_axis)}
  return _nest(flat)


def _kernel_shapes(param_shapes: PyTree) -> dict[str, tuple[int, ...]]:
  return {path[:-len("/kernel")]: shape
          for path, shape in checkpoints.flat_shapes(param_shapes).items()
          if path.endswith("/kernel")}


def init_adapters(rng: Array, param_shapes: PyTree, config: LoraConfig,
                  axes: PyTree) -> PyTree:
  """A ~ N(0, 1/in) (fan-in scaled, as a kernel), B = 0: the delta is 0."""
  shapes = _kernel_shapes(param_shapes)
  flat = {}
  for index, path in enumerate(sorted(_flat_adapters(axes))):
    *lead, fan_in, fan_out = shapes[path]
    key = jax.random.fold_in(rng, index)
    a = jax.random.normal(key, (*lead, fan_in, config.rank), jnp.float32)
    flat[path] = {"lora_a": a / jnp.sqrt(float(fan_in)),
                  "lora_b": jnp.zeros((*lead, config.rank, fan_out),
                                      jnp.float32)}
  return _nest(flat)


def delta(adapter: Mapping[str, Array], scale: float,
          keep: Array | None = None) -> Array:
  """scale * A B (over a leading layer axis if any); `keep` [.., rank]
  masks (and rescales) rank components."""
  a = adapter["lora_a"]
  if keep is not None:
    a = a * keep[..., None, :]
  return scale * jnp.einsum("...ir,...ro->...io", a, adapter["lora_b"])


def _rank_keep(rng: Array, adapter: Mapping[str, Array],
               rate: float) -> Array:
  shape = adapter["lora_a"].shape[:-2] + adapter["lora_a"].shape[-1:]
  return jax.random.bernoulli(rng, 1.0 - rate, shape) / (1.0 - rate)


def merge(base: PyTree, adapters: PyTree, config: LoraConfig,
          dropout_rng: Array | None = None) -> PyTree:
  """The base parameters with every adapted kernel replaced by W + delta
  (float32). With `dropout_rng`, rank dropout at `config.dropout`."""
  flat_base = checkpoints.flat_shapes(base)  # Only for the error below.
  merged = jax.tree.map(lambda x: x, base)
  for index, (path, adapter) in enumerate(
      sorted(_flat_adapters(adapters).items())):
    if f"{path}/kernel" not in flat_base:
      raise ValueError(f"Adapter {path}: the base has no {path}/kernel.")
    keep = None
    if dropout_rng is not None and config.dropout > 0:
      keep = _rank_keep(jax.random.fold_in(dropout_rng, index), adapter,
                        config.dropout)
    node = merged
    for key in path.split("/"):
      node = node[key]
    node["kernel"] = (node["kernel"].astype(jnp.float32) +
                      delta(adapter, config.scale, keep))
  return merged


def parameter_count(adapters: PyTree) -> int:
  """Parameters in the adapters (works on arrays and ShapeDtypeStructs)."""
  return sum(int(x.size) for x in jax.tree.leaves(adapters))


class LoraTrainer:
  """The Trainer's API (`train_step`, `eval_sums`, `abstract_state`, ...)
  over the adapters: state = {"step", "params": adapters, "opt_state"}.

  The base parameters live beside the state, sharded by their own logical
  axes, and are passed to every jitted step.
  """

  def __init__(self, model: model_lib.EncoderDecoderModel,
               optimizer: optim.Adafactor,
               partitioner: partitioning.Partitioner,
               config: trainer_lib.TrainerConfig, lora: LoraConfig):
    self.model = model
    self.optimizer = optimizer
    self.partitioner = partitioner
    self.config = config
    self.lora = lora
    self._dropout_key = jax.random.PRNGKey(config.seed + 1)
    self._compiled = {}
    self.base = None  # Set by `set_base`.

  # -- The frozen base ---------------------------------------------------------

  @functools.cached_property
  def base_param_axes(self) -> PyTree:
    return partitioning.param_axes(self.model)

  def abstract_base(self) -> PyTree:
    """The base parameters as sharded structs in their storage dtype."""
    abstract = partitioning.abstract_params(self.model, self.partitioner)
    dtype = jnp.dtype(self.lora.base_dtype)
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(
        s.shape, dtype, sharding=s.sharding), abstract)

  def set_base(self, params: PyTree) -> None:
    """Places the base parameters on the mesh, in `base_dtype`."""
    abstract = self.abstract_base()
    cast = jax.jit(lambda p: jax.tree.map(
        lambda x, s: x.astype(s.dtype), p, abstract),
                   out_shardings=jax.tree.map(lambda s: s.sharding, abstract))
    self.base = cast(params)

  # -- State ---------------------------------------------------------------------

  @functools.cached_property
  def _adapter_axes(self) -> PyTree:
    return adapter_axes(self.base_param_axes, self.lora)

  def state_axes(self) -> PyTree:
    shapes = jax.eval_shape(self._init_adapters, jax.random.PRNGKey(0))
    named = jax.tree.map(lambda a, s: (a, s.shape), self._adapter_axes,
                         shapes, is_leaf=partitioning.is_axes)
    return {"step": (), "params": self._adapter_axes,
            "opt_state": self.optimizer.state_axes(named)}

  def state_shardings(self) -> PyTree:
    return self.partitioner.shardings(self.state_axes())

  def _init_adapters(self, rng: Array) -> PyTree:
    shapes = nn.meta.unbox(partitioning.abstract_boxed_params(self.model))
    return init_adapters(rng, shapes, self.lora, self._adapter_axes)

  def _stacked(self) -> PyTree:
    return trainer_lib._stacked_layers(self._adapter_axes)  # pylint: disable=protected-access

  def _init_state(self, rng: Array) -> PyTree:
    adapters = self._init_adapters(rng)
    return {"step": jnp.zeros((), jnp.int32), "params": adapters,
            "opt_state": self.optimizer.init(adapters, self._stacked())}

  def abstract_state(self) -> PyTree:
    shapes = jax.eval_shape(self._init_state, jax.random.PRNGKey(0))
    return partitioning.with_shardings(shapes, self.state_shardings())

  @functools.cached_property
  def _jitted_init(self):
    # Kept: a fresh jax.jit of a bound method compiles again on every call.
    return jax.jit(self._init_state, out_shardings=self.state_shardings())

  def init_state(self) -> PyTree:
    init = self._jitted_init
    with self.partitioner.activate():
      return init(jax.random.PRNGKey(self.lora.seed))

  # -- Steps ---------------------------------------------------------------------

  def _loss_fn(self, base: PyTree, denominator: Array):
    def loss_fn(adapters, batch, weights, rng):
      model_rng = lora_rng = None
      if rng is not None:
        model_rng, lora_rng = jax.random.split(rng)
      if self.model.config.dropout_rate == 0:
        model_rng = None
      params = merge(base, adapters, self.lora, lora_rng)
      return self.model.loss_and_metrics(params, batch, weights, denominator,
                                         model_rng)
    return loss_fn

  def _train_step(self, state, batch, dropout_key, base):
    weights, denominator = model_lib.loss_weights_and_denominator(
        batch, self.model.loss_config.normalizing_factor)
    rng = None
    if self.model.config.dropout_rate > 0 or self.lora.dropout > 0:
      rng = jax.random.fold_in(dropout_key, state["step"])
    grads, sums = trainer_lib.accumulate_gradients(
        self._loss_fn(base, denominator), state["params"], batch, weights,
        rng, self.config.num_microbatches)
    params, opt_state, lr = self.optimizer.apply(
        state["step"], grads, state["params"], state["opt_state"],
        self._stacked())
    new_state, guard = finite_guard.guarded_state(
        self.config.nonfinite, state, grads, sums["loss"], params, opt_state)
    return new_state, {**trainer_lib._finalize_metrics(sums, lr), **guard}  # pylint: disable=protected-access

  def _eval_step(self, adapters, batch, base):
    weights, denominator = model_lib.loss_weights_and_denominator(
        batch, self.model.loss_config.normalizing_factor)
    _, sums = self._loss_fn(base, denominator)(adapters, batch, weights,
                                               None)
    return sums

  def _compile(self, kind: str, batch):
    key = (kind, tuple(sorted((k, v.shape) for k, v in batch.items())))
    if key not in self._compiled:
      state = self.state_shardings()
      base = jax.tree.map(lambda s: s.sharding, self.abstract_base())
      rows = {k: self.partitioner.batch_sharding(len(v.shape))
              for k, v in batch.items()}
      replicated = self.partitioner.replicated()
      if kind == "train":
        fn = jax.jit(self._train_step,
                     in_shardings=(state, rows, replicated, base),
                     out_shardings=(state, replicated), donate_argnums=(0,))
      else:
        fn = jax.jit(self._eval_step,
                     in_shardings=(state["params"], rows, base),
                     out_shardings=replicated)
      self._compiled[key] = fn
    return self._compiled[key]

  def _require_base(self) -> PyTree:
    if self.base is None:
      raise ValueError("LoraTrainer: no base parameters; call set_base().")
    return self.base

  def train_step(self, state: PyTree, batch) -> tuple[PyTree, dict]:
    """One update of the adapters; the old state is donated, the base not."""
    fn = self._compile("train", batch)
    with self.partitioner.activate():
      return fn(state, batch, self._dropout_key, self._require_base())

  def eval_sums(self, adapters: PyTree, batch) -> dict:
    fn = self._compile("eval", batch)
    with self.partitioner.activate():
      return fn(adapters, batch, self._require_base())

  def lower_train_step(self, abstract_state: PyTree, abstract_batch):
    """Lowers the step with an abstract base too (precompile)."""
    fn = self._compile("train", abstract_batch)
    base = self.abstract_base()  # Traced off the mesh (its init RNG).
    with self.partitioner.activate():
      return fn.lower(abstract_state, abstract_batch, self._dropout_key, base)

  def merged_params(self, adapters: PyTree) -> PyTree:
    """Base + adapters as float32 parameters on the mesh (for export)."""
    shardings = self.partitioner.shardings(self.base_param_axes)
    fn = jax.jit(lambda b, a: merge(b, a, self.lora),
                 out_shardings=shardings)
    with self.partitioner.activate():
      return fn(self._require_base(), adapters)


def base_checkpoint(restore_cfg: checkpoints.RestoreCheckpointConfig) -> str:
  """The folder INITIAL_CHECKPOINT_PATH names: the base of a LoRA run."""
  if restore_cfg.path is None:
    raise ValueError(
        "LoRA adapts a pretrained model: set INITIAL_CHECKPOINT_PATH (our or "
        "T5X's checkpoint, or a Hugging Face folder) to the base.")
  from aya_t5x.convert import sources  # pylint: disable=g-import-not-at-top
  if (restore_cfg.mode == "specific" or
      sources.detect_format(restore_cfg.path) is not None):
    return restore_cfg.path
  return str(checkpoints._path_for_mode(restore_cfg))  # pylint: disable=protected-access


def trainer_for_run(model: model_lib.EncoderDecoderModel,
                    optimizer: optim.Adafactor,
                    partitioner: partitioning.Partitioner,
                    trainer_config: trainer_lib.TrainerConfig,
                    lora: LoraConfig,
                    restore_cfg: checkpoints.RestoreCheckpointConfig
                    ) -> tuple[LoraTrainer, checkpoints.RestoreCheckpointConfig]:
  """`train`'s LoRA trainer with its base loaded, and the restore config of
  its state: the newest adapters in MODEL_DIR, else fresh ones (the
  initial checkpoint holds the base, not adapters)."""
  from aya_t5x import inference  # pylint: disable=g-import-not-at-top
  trainer = LoraTrainer(model, optimizer, partitioner, trainer_config, lora)
  trainer.set_base(inference.restore_params(model, base_checkpoint(restore_cfg),
                                            partitioner))
  # Only ALLOW_DATA_REPLAY carries over: the rest describes the base's path.
  return trainer, checkpoints.RestoreCheckpointConfig(
      path=None, allow_data_replay=restore_cfg.allow_data_replay)

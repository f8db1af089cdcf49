"""Device mesh and logical axis rules: how arrays are laid out on devices.

As in T5X, the network names its axes logically (`batch`, `embed`, `mlp`,
`heads`, `joined_kv`, `vocab`, ...) and a list of rules maps each name to a
mesh axis (`data` or `model`) or to nothing (replicated). One gin macro,
`NUM_PARTITIONS`, sets the size of the `model` axis; the rest of the devices
form the `data` axis. `parameter_partitioning_dims=2` also shards parameters'
`embed` dimension over `data` (T5X's 2-D parameter sharding, the ZeRO-3 / FSDP
idea), which is what lets mT5-XXL fit on 32 GiB chips.

Everything here is plain `jax.jit` with explicit shardings: no pjit, no
`with mesh:`.
"""

import contextlib
import dataclasses
import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from aya_t5x import model as model_lib

PyTree = Any
LogicalRules = Sequence[tuple[str, str | None]]
DATA_AXIS = "data"
MODEL_AXIS = "model"
# Parameter shapes do not depend on batch or sequence length, so parameters
# are built (or traced) from a [1, 1] dummy batch.
_DUMMY_INPUT_SHAPES = {k: (1, 1) for k in ("encoder_input_tokens",
                                           "decoder_input_tokens",
                                           "decoder_target_tokens")}


def standard_logical_axis_rules(activation_partitioning_dims: int = 1,
                                parameter_partitioning_dims: int = 1
                                ) -> list[tuple[str, str | None]]:
  """T5X's default rules; earlier rules win when a mesh axis is taken."""
  for name, value in (("activation_partitioning_dims",
                       activation_partitioning_dims),
                      ("parameter_partitioning_dims",
                       parameter_partitioning_dims)):
    if value not in (1, 2):
      raise ValueError(f"{name}={value}: must be 1 or 2")
  rules = [("batch", DATA_AXIS), ("vocab", MODEL_AXIS)]
  if activation_partitioning_dims == 2:
    rules.append(("embed", MODEL_AXIS))
  if parameter_partitioning_dims == 2:
    rules.append(("embed", DATA_AXIS))
  rules += [
      ("mlp", MODEL_AXIS),
      ("heads", MODEL_AXIS),
      ("kv", None),
      ("joined_kv", MODEL_AXIS),
      ("embed", None),
      ("relpos_buckets", None),
      ("abspos_buckets", None),
      ("length", None),
      ("layers", None),
      ("stack", None),
      ("mlp_activations", None),
  ]
  return rules


@dataclasses.dataclass(frozen=True)
class PartitioningConfig:
  """How the mesh is built (gin: `partitioning.PartitioningConfig`)."""
  num_partitions: int = 1  # NUM_PARTITIONS: size of the `model` mesh axis.
  parameter_partitioning_dims: int = 1  # 2 = also shard params over `data`.
  activation_partitioning_dims: int = 1  # 2 = shard activations' embed.
  # Extra (logical name, mesh axis) rules tried before the standard ones.
  additional_rules: tuple[tuple[str, str | None], ...] = ()


def make_mesh(num_partitions: int,
              devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A (data, model) mesh over all devices (topology-aware on TPU)."""
  devices = list(jax.devices() if devices is None else devices)
  if num_partitions < 1 or len(devices) % num_partitions:
    raise ValueError(
        f"NUM_PARTITIONS={num_partitions} must divide the number of devices "
        f"({len(devices)}).")
  shape = (len(devices) // num_partitions, num_partitions)
  auto = (jax.sharding.AxisType.Auto,) * 2
  # Splitting a physical torus axis lets e.g. 8 model partitions live on a
  # v4-128's 4x4x4 chips (jax.make_mesh refuses that shape there).
  grid = mesh_utils.create_device_mesh(shape, devices,
                                       allow_split_physical_axes=True)
  return Mesh(grid, (DATA_AXIS, MODEL_AXIS), axis_types=auto)


class Partitioner:
  """Owns the mesh and the rules; turns logical names into shardings."""

  def __init__(self, config: PartitioningConfig = PartitioningConfig(),
               devices: Sequence[jax.Device] | None = None):
    self.config = config
    self.mesh = make_mesh(config.num_partitions, devices)
    self.rules = list(config.additional_rules) + standard_logical_axis_rules(
        config.activation_partitioning_dims,
        config.parameter_partitioning_dims)

  @property
  def data_parallel_size(self) -> int:
    return self.mesh.shape[DATA_AXIS]

  def mesh_axes(self, logical_axes: Sequence[str | None]) -> PartitionSpec:
    return nn.logical_to_mesh_axes(tuple(logical_axes), self.rules)

  def sharding(self, logical_axes: Sequence[str | None]) -> NamedSharding:
    return NamedSharding(self.mesh, self.mesh_axes(logical_axes))

  def shardings(self, axes_tree: PyTree) -> PyTree:
    """A NamedSharding per leaf of a tree of logical-axis tuples."""
    return jax.tree.map(self.sharding, axes_tree, is_leaf=is_axes)

  def batch_sharding(self, ndim: int = 2) -> NamedSharding:
    return self.sharding(("batch",) + (None,) * (ndim - 1))

  def replicated(self) -> NamedSharding:
    return NamedSharding(self.mesh, PartitionSpec())

  @contextlib.contextmanager
  def activate(self):
    """Context for tracing: logical constraints resolve on this mesh."""
    with jax.set_mesh(self.mesh), nn.logical_axis_rules(self.rules):
      yield

  def local_batch_rows(self, global_batch_size: int) -> int:
    """Rows of the global batch that this process feeds."""
    if global_batch_size % self.data_parallel_size:
      raise ValueError(
          f"BATCH_SIZE={global_batch_size} must be divisible by the data "
          f"parallelism ({self.data_parallel_size} = devices / "
          f"NUM_PARTITIONS).")
    return global_batch_size // jax.process_count()


def is_axes(x) -> bool:
  """Whether `x` is one leaf's tuple of logical axis names."""
  return isinstance(x, tuple) and all(isinstance(n, (str, type(None)))
                                      for n in x)


def logical_axes(boxed_tree: PyTree) -> PyTree:
  """Logical axis names (a tuple per leaf) of boxed Flax variables."""
  return jax.tree.map(
      lambda x: tuple(x.names) if isinstance(x, nn.LogicallyPartitioned)
      else (None,) * np.ndim(x),
      boxed_tree, is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))


def init_boxed_params(model: model_lib.EncoderDecoderModel,
                      rng: jax.Array) -> PyTree:
  """Initial parameters, each boxed with its logical axis names."""
  return model.init_params(rng, _DUMMY_INPUT_SHAPES)


def abstract_boxed_params(model: model_lib.EncoderDecoderModel) -> PyTree:
  """The boxed parameters traced, not built: shapes and names, no memory."""
  return jax.eval_shape(functools.partial(init_boxed_params, model),
                        jax.random.PRNGKey(0))


def param_axes(model: model_lib.EncoderDecoderModel) -> PyTree:
  """Logical axis names (a tuple per leaf) of the model's parameters."""
  return logical_axes(abstract_boxed_params(model))


def with_shardings(shapes: PyTree, shardings: PyTree) -> PyTree:
  """ShapeDtypeStructs that carry their shardings: a restore target."""
  return jax.tree.map(
      lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
      shapes, shardings)


def abstract_params(model: model_lib.EncoderDecoderModel,
                    partitioner: Partitioner) -> PyTree:
  """The model's parameters as sharded ShapeDtypeStructs, without memory:
  what restoring a checkpoint into this mesh needs."""
  boxed = abstract_boxed_params(model)
  return with_shardings(nn.meta.unbox(boxed),
                        partitioner.shardings(logical_axes(boxed)))

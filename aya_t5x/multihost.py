"""Multi-process JAX: one process per TPU VM worker (or per test CPU process).

Every process runs the same `aya_t5x.train` command. `jax.distributed`
connects them before any device is touched, after which `jax.devices()` is
the whole slice, each process feeds the rows of its own data shard
(`data.get_global_shard_info`) and Orbax writes every checkpoint
collectively (each process its own parameter shards, plus its own data
iterator state).

Two ways in, as in T5X:
- `--multiprocess`: on a Cloud TPU VM slice, JAX finds the coordinator,
  process count and index from the TPU environment (the VM metadata);
- `--coordinator_address=HOST:PORT --process_count=N --process_index=I`:
  explicit, anywhere (the two-process CPU test uses 127.0.0.1).
"""

import dataclasses

import jax

from aya_t5x import gin_utils


@dataclasses.dataclass(frozen=True)
class DistributedConfig:
  """How this process joins the others (from the CLI flags)."""
  coordinator_address: str | None = None  # --coordinator_address host:port
  num_processes: int | None = None  # --process_count
  process_id: int | None = None  # --process_index
  auto_detect: bool = False  # --multiprocess: TPU VM environment

  def __post_init__(self):
    explicit = (self.coordinator_address, self.num_processes,
                self.process_id)
    if self.auto_detect or not any(v is not None for v in explicit):
      return
    if None in explicit:
      raise gin_utils.UsageError(
          "--coordinator_address, --process_count and --process_index go "
          f"together (got {self.coordinator_address!r}, "
          f"{self.num_processes!r}, {self.process_id!r}); or pass "
          "--multiprocess on a TPU VM to read them from its environment.")
    if ":" not in self.coordinator_address:
      raise gin_utils.UsageError(
          f"--coordinator_address={self.coordinator_address!r}: expected "
          "HOST:PORT (the address of process 0).")
    if self.num_processes < 1 or not 0 <= self.process_id < self.num_processes:
      raise gin_utils.UsageError(
          f"--process_index={self.process_id} must be in [0, "
          f"--process_count={self.num_processes}).")

  @property
  def enabled(self) -> bool:
    return self.auto_detect or self.coordinator_address is not None


def config_from_command_line(
    command_line: gin_utils.CommandLine) -> DistributedConfig:
  return DistributedConfig(command_line.coordinator_address,
                           command_line.process_count,
                           command_line.process_index,
                           command_line.multiprocess)


def initialize(config: DistributedConfig) -> None:
  """Joins the other processes (a no-op for a single-process run).

  Must run before anything asks jax for devices. With explicit flags every
  argument is given; with `--multiprocess` the ones left out (None) come
  from JAX's cluster detection (Cloud TPU, SLURM, ...).
  """
  if not config.enabled:
    return
  jax.distributed.initialize(coordinator_address=config.coordinator_address,
                             num_processes=config.num_processes,
                             process_id=config.process_id)

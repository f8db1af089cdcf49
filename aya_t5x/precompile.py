r"""Compile the exact train step for a TPU slice on this machine: does it fit?

  python -m aya_t5x.precompile --gin_file=gin/aya_13b_translation_heavy.gin \
      --gin_file=gin/hardware/v4_128.gin --topology=v4-128 --output=report.json

Renting a pod slice to learn that the step does not fit is slow and costly.
JAX can compile for a TPU topology without the chips (with `libtpu`
installed: the `tpu` extra), so this builds the same `Trainer` that
`aya_t5x.train` builds from the same gin files, lowers its train step with
abstract inputs (shapes and shardings only; no weights exist) and compiles it
with the TPU compiler. The report (printed, and JSON with `--output`) gives,
per chip: arguments (parameters and optimizer state, donated), temporaries,
the compiler's peak against the chip's HBM; and the FLOPs of a step from the
analytic formula (`aya_t5x.flops`) and from the compiler.

The compiler counts a scanned layer body once, so its FLOPs are taken from
small unrolled variants of the same model (1 and 2 layers per stack, no
microbatches, by default unsharded on one chip for `--flops_rows` rows and
scaled to the batch) and extrapolated linearly in the layer count; the
ratio to the analytic count is the remat policy's recompute overhead.
(XLA's `optimal_seconds` estimate is not reported: this libtpu returns
negative values for real train steps.)

When the step does not fit, the compiler refuses it, saying how much memory
it needed; the report records that and names the next knobs to try.
`--topology=cpu` compiles for this machine's CPU devices instead (the test
suite uses it on small models).
"""

import argparse
import dataclasses
import json
import os
import re
import sys
import time
from typing import Any, Callable, Mapping, Sequence

# A second process on the same machine otherwise fails on libtpu's lock file.
os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")

import gin  # pylint: disable=g-import-not-at-top
import jax
import jax.numpy as jnp

from aya_t5x import flops as flops_lib
from aya_t5x import gin_utils
from aya_t5x import lora as lora_lib
from aya_t5x import model as model_lib
from aya_t5x import network
from aya_t5x import partitioning
from aya_t5x import train as train_lib
from aya_t5x import trainer as trainer_lib

GIB = 2.0**30


@dataclasses.dataclass(frozen=True)
class Topology:
  """A TPU slice as `jax.experimental.topologies` names it, and its chips."""
  name: str  # Cloud TPU accelerator type, e.g. "v4-128" (counts cores).
  topology: str  # libtpu's name: "v4:4x4x4" is 64 chips.
  chip_config: str  # "megacore" (v4, v5p: 2 cores act as one device).
  hbm_gib_per_chip: float | None  # Physical HBM per chip (None: host RAM).
  peak_bf16_tflops: float | None  # Per chip, from Cloud TPU's spec sheets.
  chips_per_host_bounds: tuple[int, int, int] = (2, 2, 1)  # 4 chips per VM.


# Cloud TPU's published per-chip figures: v4 32 GiB / 275 TFLOP/s,
# v5e 16 GiB / 197, v5p 95 GiB / 459.
TOPOLOGIES = {t.name: t for t in (
    Topology("v4-8", "v4:2x2x1", "megacore", 32.0, 275.0),
    Topology("v4-32", "v4:2x2x4", "megacore", 32.0, 275.0),
    Topology("v4-128", "v4:4x4x4", "megacore", 32.0, 275.0),
    Topology("v4-256", "v4:4x4x8", "megacore", 32.0, 275.0),
    Topology("v5e-8", "v5e:2x4", "default", 16.0, 197.0),
    Topology("v5e-256", "v5e:16x16", "default", 16.0, 197.0),
    # One chip (Cloud TPU names count cores): the single-accelerator case.
    Topology("v5p-2", "v5p:1x1x1", "megacore", 95.0, 459.0, (1, 1, 1)),
    Topology("v5p-8", "v5p:2x2x1", "megacore", 95.0, 459.0),
    Topology("v5p-128", "v5p:4x4x4", "megacore", 95.0, 459.0),
)}
CPU = "cpu"


def topology_devices(name: str) -> list[jax.Device]:
  """The devices of a named slice (abstract TPU chips) or the local CPUs."""
  if name == CPU:
    return jax.devices("cpu")
  if name not in TOPOLOGIES:
    raise gin_utils.UsageError(
        f"--topology={name!r}: expected one of "
        f"{', '.join(sorted(TOPOLOGIES) + [CPU])}.")
  from jax.experimental import topologies  # pylint: disable=g-import-not-at-top
  topo = TOPOLOGIES[name]
  try:
    desc = topologies.get_topology_desc(
        platform="tpu", topology_name=topo.topology,
        chip_config_name=topo.chip_config,
        chips_per_host_bounds=topo.chips_per_host_bounds, num_slices=1)
  except RuntimeError as e:
    raise gin_utils.UsageError(
        f"--topology={name}: the TPU compiler is unavailable ({e}). Install "
        "the pinned libtpu: pip install -e '.[tpu]'.") from None
  return list(desc.devices)


# -- The run, as the gin files configure it ----------------------------------

# Run macros that the compiled step does not depend on: a hardware check
# should not need a model directory or a registered mixture.
_PLACEHOLDERS = {"MODEL_DIR": "'/tmp/aya_t5x_precompile_unused'",
                 "MIXTURE_OR_TASK_NAME": "'unused_by_precompile'",
                 "TRAIN_STEPS": "1"}
_REQUIRED = re.compile(r"^(\w+)/macro\.value set to `%gin\.REQUIRED`")


@dataclasses.dataclass(frozen=True)
class RunSpec:
  """What the train step's program depends on, read from the gin files."""
  model: model_lib.EncoderDecoderModel
  optimizer: Any
  partitioning_config: partitioning.PartitioningConfig
  trainer_config: trainer_lib.TrainerConfig
  batch_size: int  # Global rows per step (BATCH_SIZE).
  feature_lengths: Mapping[str, int]  # TASK_FEATURE_LENGTHS.
  pack: bool  # PACKING: packed batches carry segment ids and positions.
  lora: Any = None  # LORA (lora.LoraConfig): adapters over a frozen base.


def parse_gin_for_compile(command_line: gin_utils.CommandLine) -> None:
  """Parses gin like `train`, filling only run macros the step ignores."""
  bindings = list(command_line.gin_bindings)
  filled = []
  while True:
    try:
      gin_utils.parse_gin(command_line.gin_files, filled + bindings,
                          command_line.gin_search_paths)
      return
    except ValueError as e:
      match = _REQUIRED.match(str(e))
      if not match:
        raise gin_utils.UsageError(gin_utils.without_gin_context(e)) from None
      name = match.group(1)
      if name not in _PLACEHOLDERS or f"{name} = " in "".join(filled):
        raise gin_utils.UsageError(
            f"{name} is required by the gin files: set it with "
            f"--gin.{name}=... (precompile needs it).") from None
      filled.append(f"{name} = {_PLACEHOLDERS[name]}")


def run_spec_from_gin() -> RunSpec:
  """Resolves `train.train`'s gin bindings into the step's ingredients."""
  bound = gin.get_bindings(train_lib.train, resolve_references=True)
  missing = [k for k in ("model", "optimizer", "train_dataset_cfg")
             if k not in bound]
  if missing:
    raise gin_utils.UsageError(
        f"The gin files bind no {', '.join(missing)} for train.train: include "
        "gin/runs/finetune.gin and a gin/models/mt5_*.gin file.")
  data_cfg = bound["train_dataset_cfg"]
  return RunSpec(
      model=bound["model"], optimizer=bound["optimizer"],
      partitioning_config=bound.get("partitioning_config",
                                    partitioning.PartitioningConfig()),
      trainer_config=bound.get("trainer_config", trainer_lib.TrainerConfig()),
      batch_size=data_cfg.batch_size,
      feature_lengths=dict(data_cfg.task_feature_lengths),
      pack=data_cfg.pack, lora=bound.get("lora"))


def with_layers(spec: RunSpec, encoder_layers: int, decoder_layers: int
                ) -> RunSpec:
  """The same run with fewer, unrolled layers and no microbatch loop."""
  config = dataclasses.replace(spec.model.config, scan_layers=False,
                               num_encoder_layers=encoder_layers,
                               num_decoder_layers=decoder_layers)
  model = model_lib.EncoderDecoderModel(config, spec.model.loss_config)
  trainer_config = dataclasses.replace(spec.trainer_config,
                                       num_microbatches=1)
  return dataclasses.replace(spec, model=model, trainer_config=trainer_config)


# -- Lowering and compiling ---------------------------------------------------


def model_features(lengths: Mapping[str, int], pack: bool) -> dict[str, int]:
  """The EncDecFeatureConverter's output features and their lengths."""
  if set(lengths) != {"inputs", "targets"}:
    raise gin_utils.UsageError(
        f"TASK_FEATURE_LENGTHS={dict(lengths)}: expected the keys 'inputs' "
        "and 'targets'.")
  encoder = {"encoder_input_tokens": lengths["inputs"]}
  decoder = {k: lengths["targets"] for k in (
      "decoder_input_tokens", "decoder_target_tokens",
      "decoder_loss_weights")}
  if pack:
    encoder.update(encoder_segment_ids=lengths["inputs"],
                   encoder_positions=lengths["inputs"])
    decoder.update(decoder_segment_ids=lengths["targets"],
                   decoder_positions=lengths["targets"])
  return {**encoder, **decoder}


def abstract_batch(partitioner: partitioning.Partitioner, batch_size: int,
                   lengths: Mapping[str, int], pack: bool
                   ) -> dict[str, jax.ShapeDtypeStruct]:
  sharding = partitioner.batch_sharding(2)
  return {k: jax.ShapeDtypeStruct((batch_size, n), jnp.int32,
                                  sharding=sharding)
          for k, n in model_features(lengths, pack).items()}


def build_trainer(spec: RunSpec, devices: Sequence[jax.Device]):
  """The Trainer `train` builds, on `devices` instead of jax.devices().

  A LoRA run's trainer is built without its base: the step is lowered
  with an abstract one.
  """
  try:
    partitioner = partitioning.Partitioner(spec.partitioning_config, devices)
    partitioner.local_batch_rows(spec.batch_size)
  except ValueError as e:
    raise gin_utils.UsageError(str(e)) from None
  if spec.lora is not None:
    return lora_lib.LoraTrainer(spec.model, spec.optimizer, partitioner,
                                spec.trainer_config, spec.lora)
  return trainer_lib.Trainer(spec.model, spec.optimizer, partitioner,
                             spec.trainer_config)


def lower(spec: RunSpec, devices: Sequence[jax.Device]):
  trainer = build_trainer(spec, devices)
  batch = abstract_batch(trainer.partitioner, spec.batch_size,
                         spec.feature_lengths, spec.pack)
  try:
    return trainer.lower_train_step(trainer.abstract_state(), batch)
  except ValueError as e:
    if "evenly divide" not in str(e):
      raise
    part, cfg = spec.partitioning_config, spec.model.config
    raise gin_utils.UsageError(
        f"NUM_PARTITIONS={part.num_partitions} must divide the sharded "
        f"model dimensions (num_heads={cfg.num_heads}, mlp_dim="
        f"{cfg.mlp_dim}, vocab_size={cfg.vocab_size}); with "
        f"PARAMETER_PARTITIONING_DIMS=2 the data axis must divide emb_dim="
        f"{cfg.emb_dim}. JAX says: {str(e).splitlines()[0]}") from None


@dataclasses.dataclass(frozen=True)
class Compiled:
  """What the compiler said about one program (per chip, in bytes)."""
  seconds: float  # Lowering + compiling wall time.
  fits: bool
  argument_bytes: int | None = None  # Parameters + optimizer state + batch.
  output_bytes: int | None = None
  alias_bytes: int | None = None  # Outputs living in donated arguments.
  temp_bytes: int | None = None  # Activations, gradients, workspace.
  code_bytes: int | None = None
  peak_bytes: int | None = None  # The compiler's own peak estimate.
  flops: float | None = None  # Compiler cost analysis, per device.
  needed_bytes: int | None = None  # When refused: what it asked for.
  limit_bytes: int | None = None  # When refused: what it had.
  error: str | None = None  # When refused: the compiler's message.


_SIZE = r"([0-9.]+)([KMGT]?)(?:i?B)?"
# The TPU compiler words its refusal two ways (both seen with this libtpu).
_REFUSALS = (
    re.compile(r"Used " + _SIZE + r" of " + _SIZE + r" hbm"),
    re.compile(r"memory required for HLO temporaries \(" + _SIZE +
               r"\) exceeds available HBM \(" + _SIZE + r"\)"),
)
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_refusal(message: str) -> tuple[int, int] | None:
  """(needed, limit) bytes from the TPU compiler's out-of-memory error."""
  for pattern in _REFUSALS:
    match = pattern.search(message)
    if match:
      needed = float(match.group(1)) * _UNITS[match.group(2)]
      limit = float(match.group(3)) * _UNITS[match.group(4)]
      return int(needed), int(limit)
  return None


def compile_step(spec: RunSpec, devices: Sequence[jax.Device]) -> Compiled:
  """Lowers and compiles; a refusal for memory is a result, not a crash."""
  start = time.time()
  try:
    compiled = lower(spec, devices).compile()
  except Exception as e:  # pylint: disable=broad-except
    refusal = parse_refusal(str(e))
    if refusal is None:
      raise
    return Compiled(time.time() - start, False, needed_bytes=refusal[0],
                    limit_bytes=refusal[1], error=str(e).split("\n")[0][:500])
  memory = compiled.memory_analysis()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return Compiled(
      time.time() - start, True,
      argument_bytes=memory.argument_size_in_bytes,
      output_bytes=memory.output_size_in_bytes,
      alias_bytes=memory.alias_size_in_bytes,
      temp_bytes=memory.temp_size_in_bytes,
      code_bytes=memory.generated_code_size_in_bytes,
      peak_bytes=memory.peak_memory_in_bytes,
      flops=float(cost["flops"]) if cost and "flops" in cost else None)


# -- FLOPs ---------------------------------------------------------------------


def _variants(cfg: network.T5Config) -> list[tuple[int, int]]:
  """Layer counts to compile: enough points for a line in each stack."""
  if cfg.num_encoder_layers == cfg.num_decoder_layers:
    return [(1, 1), (2, 2)]
  return [(1, 1), (2, 1), (1, 2)]


def extrapolate_flops(cfg: network.T5Config,
                      measured: Mapping[tuple[int, int], float]) -> float:
  """Per-device FLOPs of the full depth from the small unrolled variants."""
  base = measured[(1, 1)]
  if (2, 2) in measured:
    per_pair = measured[(2, 2)] - base
    return base + (cfg.num_encoder_layers - 1) * per_pair
  per_encoder = measured[(2, 1)] - base
  per_decoder = measured[(1, 2)] - base
  return (base + (cfg.num_encoder_layers - 1) * per_encoder
          + (cfg.num_decoder_layers - 1) * per_decoder)


def compiler_flops(spec: RunSpec, devices: Sequence[jax.Device],
                   rows: int | None = None,
                   compile_fn: Callable[[RunSpec, Sequence[jax.Device]],
                                        Compiled] = compile_step) -> dict:
  """The compiler's FLOPs for the full depth, from unrolled variants.

  With `rows`, the variants are compiled unsharded on one device for
  `rows` rows and scaled to the batch: the TPU compiler turns sharded
  matmuls into loops whose bodies its cost analysis also counts once (on
  v4-128 the sharded count came out at 0.56-0.77 of the matmul FLOPs,
  varying with the layout), while one device runs every FLOP in plain
  sight. Without `rows`, the variants keep the run's sharding and the count
  is per device times the devices.
  """
  cfg = spec.model.config
  scale, where = 1.0, list(devices)
  if rows is not None:
    if rows < 1 or spec.batch_size % rows:
      raise gin_utils.UsageError(
          f"--flops_rows={rows} must divide BATCH_SIZE={spec.batch_size}.")
    scale, where = spec.batch_size / rows, where[:1]
    spec = dataclasses.replace(
        spec, batch_size=rows,
        partitioning_config=partitioning.PartitioningConfig())
  measured, seconds = {}, 0.0
  for layers in _variants(cfg):
    result = compile_fn(with_layers(spec, *layers), where)
    seconds += result.seconds
    if result.flops is None:
      return {"error": f"variant {layers} gave no FLOPs (fits="
                       f"{result.fits}: {result.error})"}
    measured[layers] = result.flops
  per_device = extrapolate_flops(cfg, measured)
  method = (f"unsharded on one device, {rows} rows, x{scale:g}" if rows
            else f"sharded, per device x {len(where)} devices")
  return {"total": per_device * len(where) * scale, "method": method,
          "variants": {f"{e}+{d}": f for (e, d), f in measured.items()},
          "compile_seconds": seconds}


def analytic_flops(spec: RunSpec) -> dict:
  cfg = spec.model.config
  step = flops_lib.train_step_flops(cfg, spec.batch_size,
                                    spec.feature_lengths["inputs"],
                                    spec.feature_lengths["targets"])
  return {"forward": step.forward, "train_step": step.train_step,
          "full_remat_train_step": step.full_remat_train_step,
          "parameters": flops_lib.parameter_count(cfg)}


# -- The report ----------------------------------------------------------------


def _bytes(tree) -> int:
  return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree))


def lora_memory(spec: RunSpec, devices: Sequence[jax.Device]) -> dict:
  """What a LoRA run keeps, in total over the chips: the train state (the
  adapters and their optimizer statistics, all that is donated and
  checkpointed) beside the frozen base."""
  trainer = build_trainer(spec, devices)
  state, base = trainer.abstract_state(), trainer.abstract_base()
  return {"targets": list(spec.lora.targets), "rank": spec.lora.rank,
          "adapter_parameters": lora_lib.parameter_count(state["params"]),
          "adapter_bytes": _bytes(state["params"]),
          "optimizer_state_bytes": _bytes(state["opt_state"]),
          "train_state_bytes": _bytes(state),
          "base_parameters": lora_lib.parameter_count(base),
          "base_dtype": spec.lora.base_dtype,
          "base_bytes": _bytes(base)}


def suggestions(spec: RunSpec, num_devices: int) -> list[str]:
  """Knobs to turn next, cheapest in FLOPs first."""
  part, cfg = spec.partitioning_config, spec.model.config
  k = spec.trainer_config.num_microbatches
  data_size = num_devices // part.num_partitions
  out = []
  if part.parameter_partitioning_dims == 1:
    out.append("PARAMETER_PARTITIONING_DIMS=2 (shard parameters, gradients "
               "and optimizer state over `data` too)")
  if spec.batch_size % (2 * k * data_size) == 0:
    out.append(f"NUM_MICROBATCHES={2 * k} (halves activations, same update)")
  if part.activation_partitioning_dims == 1:
    out.append("ACTIVATION_PARTITIONING_DIMS=2 (shard activations' embed "
               "over `model`)")
  if (num_devices % (2 * part.num_partitions) == 0
      and cfg.num_heads % (2 * part.num_partitions) == 0):
    out.append(f"NUM_PARTITIONS={2 * part.num_partitions} (more model "
               "parallelism, smaller data axis)")
  cheaper_memory = {"none": "minimal", "save_dots": "minimal",
                    "minimal": "full"}
  if cfg.remat_policy in cheaper_memory:
    out.append(f"REMAT_POLICY='{cheaper_memory[cfg.remat_policy]}' "
               "(recomputes more of the forward pass)")
  return out


def _gib(n: float | None) -> float | None:
  return None if n is None else round(n / GIB, 3)


def build_report(spec: RunSpec, topology: str, devices: Sequence[jax.Device],
                 result: Compiled, flops: dict | None) -> dict:
  """The JSON report: the run's knobs, per-chip memory, FLOPs."""
  cfg, part = spec.model.config, spec.partitioning_config
  topo = TOPOLOGIES.get(topology)
  capacity = topo.hbm_gib_per_chip if topo else None
  memory = {
      "fits": result.fits,
      "arguments_gib": _gib(result.argument_bytes),
      "outputs_gib": _gib(result.output_bytes),
      "aliased_gib": _gib(result.alias_bytes),
      "temporaries_gib": _gib(result.temp_bytes),
      "generated_code_gib": _gib(result.code_bytes),
      "peak_gib": _gib(result.peak_bytes),
      "capacity_gib": capacity,
      "needed_gib": _gib(result.needed_bytes),
      "compiler_limit_gib": _gib(result.limit_bytes),
      "compiler_error": result.error,
  }
  if capacity and result.peak_bytes is not None:
    memory["peak_fraction_of_capacity"] = round(
        result.peak_bytes / GIB / capacity, 3)
  analytic = analytic_flops(spec)
  report = {
      "topology": topology,
      "devices": len(devices),
      "device_kind": devices[0].device_kind,
      "model": {"emb_dim": cfg.emb_dim, "num_heads": cfg.num_heads,
                "mlp_dim": cfg.mlp_dim, "vocab_size": cfg.vocab_size,
                "encoder_layers": cfg.num_encoder_layers,
                "decoder_layers": cfg.num_decoder_layers,
                "scan_layers": cfg.scan_layers,
                "remat_policy": cfg.remat_policy,
                "activation_dtype": cfg.dtype},
      "run": {"batch_size": spec.batch_size,
              "feature_lengths": dict(spec.feature_lengths),
              "pack": spec.pack,
              "num_partitions": part.num_partitions,
              "data_parallel": len(devices) // part.num_partitions,
              "parameter_partitioning_dims": part.parameter_partitioning_dims,
              "activation_partitioning_dims":
                  part.activation_partitioning_dims,
              "num_microbatches": spec.trainer_config.num_microbatches},
      "memory_per_chip": memory,
      "compile_seconds": round(result.seconds, 1),
      "flops": {"analytic": analytic},
  }
  if flops is not None:
    report["flops"]["compiler"] = flops
    if "total" in flops:
      report["flops"]["compiler_over_analytic"] = round(
          flops["total"] / analytic["train_step"], 3)
  if topo and topo.peak_bf16_tflops:
    # A bound, not a step time: no step runs faster than this at 100% MFU.
    report["flops"]["seconds_at_peak_bf16"] = round(
        analytic["train_step"] / (len(devices) * topo.peak_bf16_tflops
                                  * 1e12), 3)
  if not result.fits or (memory.get("peak_fraction_of_capacity") or 0) > 0.9:
    report["next_knobs"] = suggestions(spec, len(devices))
  return report


def format_report(report: dict) -> str:
  """A few lines for the terminal; the JSON holds everything."""
  mem, run = report["memory_per_chip"], report["run"]
  lines = [f"aya_t5x.precompile: {report['topology']} ({report['devices']} x "
           f"{report['device_kind']}), batch {run['batch_size']}, "
           f"partitions {run['num_partitions']}, parameter dims "
           f"{run['parameter_partitioning_dims']}, microbatches "
           f"{run['num_microbatches']}, remat "
           f"{report['model']['remat_policy']}"]
  if mem["fits"]:
    capacity = (f"of {mem['capacity_gib']} GiB" if mem["capacity_gib"]
                else "(host memory)")
    lines.append(f"  fits: peak {mem['peak_gib']} GiB per chip (arguments "
                 f"{mem['arguments_gib']}, temporaries "
                 f"{mem['temporaries_gib']}) {capacity}")
  else:
    lines.append(f"  DOES NOT FIT: the compiler needed {mem['needed_gib']} "
                 f"GiB per chip, limit {mem['compiler_limit_gib']} GiB")
  flops = report["flops"]
  line = f"  FLOPs/step: analytic {flops['analytic']['train_step']:.4g}"
  if "total" in flops.get("compiler", {}):
    line += (f", compiler {flops['compiler']['total']:.4g} (x"
             f"{flops['compiler_over_analytic']}: remat recompute and "
             "non-matmul work)")
  lines.append(line)
  if "lora" in report:
    lora = report["lora"]
    mib = lambda key: f"{lora[key] / 2**20:,.1f} MiB"
    lines.append(f"  LoRA rank {lora['rank']} on {', '.join(lora['targets'])}: "
                 f"{lora['adapter_parameters']:,} adapter parameters; train "
                 f"state {mib('train_state_bytes')} (adapters "
                 f"{mib('adapter_bytes')} + optimizer "
                 f"{mib('optimizer_state_bytes')}), frozen base "
                 f"{lora['base_bytes'] / GIB:.2f} GiB ({lora['base_dtype']}); "
                 "totals over all chips")
  for knob in report.get("next_knobs", []):
    lines.append(f"  try: {knob}")
  lines.append(f"  compile time: {report['compile_seconds']} s")
  return "\n".join(lines)


# -- Command line ----------------------------------------------------------------


def precompile(command_line: gin_utils.CommandLine, topology: str,
               extrapolate: bool = True, flops_rows: int | None = 2) -> dict:
  """Parses gin, compiles the step for `topology`, returns the report."""
  parse_gin_for_compile(command_line)
  spec = run_spec_from_gin()
  devices = topology_devices(topology)
  result = compile_step(spec, devices)
  flops = compiler_flops(spec, devices, flops_rows) if extrapolate else None
  report = build_report(spec, topology, devices, result, flops)
  if spec.lora is not None:
    report["lora"] = lora_memory(spec, devices)
  return report


def main(argv: Sequence[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(
      description=__doc__.split("\n\n")[0], allow_abbrev=False)
  parser.add_argument("--topology", required=True,
                      help=f"one of {', '.join(sorted(TOPOLOGIES))}, {CPU}")
  parser.add_argument("--output", default=None, help="write the JSON here")
  parser.add_argument("--no_flops_extrapolation", action="store_true",
                      help="skip the unrolled variants (faster)")
  parser.add_argument("--flops_rows", type=int, default=2,
                      help="rows of the one-device FLOPs variants; 0 = "
                      "compile them with the run's sharding instead")
  known, rest = parser.parse_known_args(
      sys.argv[1:] if argv is None else argv)
  report = precompile(gin_utils.parse_command_line(rest), known.topology,
                      not known.no_flops_extrapolation,
                      known.flops_rows or None)
  print(format_report(report), flush=True)
  if known.output:
    with open(known.output, "w") as f:
      json.dump(report, f, indent=2)
  return report


def console_main() -> None:
  try:
    main()
  except gin_utils.UsageError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  console_main()

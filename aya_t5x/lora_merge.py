r"""Merge trained LoRA adapters into their base: an ordinary checkpoint, and
optionally a Hugging Face folder.

  python -m aya_t5x.lora_merge --gin_file=gin/lora/tiny_cpu.gin \
      --output_dir=/tmp/merged [--adapters=MODEL_DIR/checkpoint_60] \
      [--hf_output_dir=/tmp/merged_hf --spm_model=... --hf_dtype=bfloat16]

The gin files are the training run's: they name the model, the LoRA
targets and scale, the base (INITIAL_CHECKPOINT_PATH) and MODEL_DIR, whose
newest checkpoint holds the adapters unless `--adapters` names one.
Writes `OUTPUT_DIR/checkpoint_0` (params only, float32) and its
`model.gin`: serve it, evaluate it, or finetune it further like any
imported checkpoint.
"""

import argparse
import dataclasses
import sys
from typing import Sequence

from aya_t5x import startup  # pylint: disable=g-bad-import-order

if __name__ == "__main__":
  startup.begin(sys.argv)

import gin  # pylint: disable=g-import-not-at-top,g-bad-import-order
import jax

from aya_t5x import architecture
from aya_t5x import checkpoints
from aya_t5x import gin_utils
from aya_t5x import lora as lora_lib
from aya_t5x import optim
from aya_t5x import partitioning
from aya_t5x import precompile
from aya_t5x import train as train_lib
from aya_t5x import trainer as trainer_lib


@dataclasses.dataclass(frozen=True)
class MergeResult:
  checkpoint: str  # OUTPUT_DIR/checkpoint_0
  hf_dir: str | None
  adapters: str  # The adapter checkpoint merged.
  adapter_parameters: int


def _run_trainer(command_line: gin_utils.CommandLine
                 ) -> tuple[lora_lib.LoraTrainer, str]:
  """The run's LoRA trainer (base loaded) and its MODEL_DIR."""
  precompile.parse_gin_for_compile(command_line)
  bound = gin.get_bindings(train_lib.train, resolve_references=True)
  if bound.get("lora") is None:
    raise gin_utils.UsageError(
        "The gin files configure no LoRA run (train.train.lora): include "
        "gin/lora/lora.gin.")
  partitioner = partitioning.Partitioner(bound.get(
      "partitioning_config", partitioning.PartitioningConfig()))
  trainer, _ = lora_lib.trainer_for_run(
      bound["model"], bound.get("optimizer") or optim.Adafactor(0.0),
      partitioner, trainer_lib.TrainerConfig(), bound["lora"],
      bound.get("restore_cfg", checkpoints.RestoreCheckpointConfig()))
  return trainer, bound["model_dir"]


def _adapter_dir(model_dir: str, adapters: str | None) -> str:
  if adapters is not None:
    return adapters
  steps = checkpoints.committed_steps(model_dir)
  if not steps:
    raise gin_utils.UsageError(f"MODEL_DIR {model_dir} has no finished "
                               "checkpoint; pass --adapters.")
  return str(checkpoints.step_dir(model_dir, steps[-1]))


def merge(command_line: gin_utils.CommandLine, output_dir: str,
          adapters: str | None = None, hf_output_dir: str | None = None,
          spm_model: str | None = None,
          hf_dtype: str = "float32") -> MergeResult:
  """Restores base and adapters, writes the merged parameters."""
  # Imported here: the writers are only needed by this command.
  from aya_t5x.convert import hf  # pylint: disable=g-import-not-at-top
  from aya_t5x.convert import layout  # pylint: disable=g-import-not-at-top
  from aya_t5x.convert import sources  # pylint: disable=g-import-not-at-top
  trainer, model_dir = _run_trainer(command_line)
  adapter_dir = _adapter_dir(model_dir, adapters)
  abstract = trainer.abstract_state()["params"]
  restored = checkpoints.restore_params_tree(
      checkpoints.resolve_state_dir(adapter_dir), abstract)
  merged = jax.device_get(trainer.merged_params(restored))
  config = trainer.model.config
  target = sources.write_checkpoint(output_dir, merged)
  architecture.write(output_dir, config, f"LoRA merge of {adapter_dir}")
  if hf_output_dir:
    flat = dict(layout.unstack(layout.flatten(merged)))
    hf.write_checkpoint(flat, dataclasses.replace(config, scan_layers=False),
                        hf_output_dir, dtype=hf_dtype, spm_model=spm_model)
  return MergeResult(str(target), hf_output_dir, adapter_dir,
                     lora_lib.parameter_count(abstract))


def main(argv: Sequence[str]) -> MergeResult:
  parser = argparse.ArgumentParser(prog="python -m aya_t5x.lora_merge",
                                   allow_abbrev=False)
  parser.add_argument("--output_dir", required=True)
  parser.add_argument("--adapters", default=None,
                      help="checkpoint_N folder of the adapters (default: "
                      "the newest in MODEL_DIR)")
  parser.add_argument("--hf_output_dir", default=None)
  parser.add_argument("--spm_model", default=None,
                      help="SentencePiece model to carry into the HF folder")
  parser.add_argument("--hf_dtype", default="float32",
                      choices=("float32", "bfloat16"))
  known, rest = parser.parse_known_args(argv)
  command_line = gin_utils.parse_command_line(rest)
  startup.ready()
  with gin_utils.SetupPhase().usage_errors(ValueError, FileNotFoundError):
    result = merge(command_line, known.output_dir, known.adapters,
                   known.hf_output_dir, known.spm_model, known.hf_dtype)
  print(f"aya_t5x.lora_merge: {result.adapter_parameters:,} adapter "
        f"parameters of {result.adapters} merged -> {result.checkpoint}"
        + (f" and {result.hf_dir}" if result.hf_dir else ""), flush=True)
  return result


def console_main() -> None:
  status = gin_utils.exit_status(lambda: main(sys.argv[1:]))
  if status:
    sys.exit(status)


if __name__ == "__main__":
  import importlib  # pylint: disable=g-import-not-at-top
  importlib.import_module("aya_t5x.lora_merge").console_main()

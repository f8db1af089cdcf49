r"""Command line of the weight conversions.

  python -m aya_t5x.convert hf_to_aya --hf_dir=DIR --output_dir=OUT \
      [--scan_layers]
  python -m aya_t5x.convert t5x_to_aya --checkpoint=T5X_CKPT \
      --output_dir=OUT [--scan_layers]
  python -m aya_t5x.convert aya_to_hf --checkpoint=CKPT --output_dir=DIR \
      [--gin_file=MODEL.gin] [--spm_model=spm.model] \
      [--dtype=float32|bfloat16] [--max_shard_size=5GB]

A mistake (a missing file, an unsupported config.json field, a tensor that
does not fit) prints one `error:` line naming it and exits with status 2.
Each run ends with its peak host memory, relative to the weights' size.
"""

import argparse
import dataclasses
import re
import sys
from typing import Sequence

# Run as a program: hide native start-up noise before the heavy imports
# (aya_t5x.startup; --verbose shows it).
from aya_t5x import startup  # pylint: disable=g-bad-import-order
if __name__ == "__main__":
  startup.begin(sys.argv)

from aya_t5x import gin_utils
from aya_t5x.convert import commands

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def parse_size(text: str) -> int:
  """Bytes of "5GB", "500MiB" or "1000" (transformers' max_shard_size units)."""
  match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
  if not match or match.group(2).upper() not in _UNITS:
    raise argparse.ArgumentTypeError(f"--max_shard_size={text!r}: expected "
                                     "e.g. 5GB, 500MB or 2GiB.")
  return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="python -m aya_t5x.convert",
                                   allow_abbrev=False)
  sub = parser.add_subparsers(dest="command", required=True)
  hf_in = sub.add_parser("hf_to_aya", help="Hugging Face folder -> Orbax.")
  hf_in.add_argument("--hf_dir", required=True)
  t5x_in = sub.add_parser("t5x_to_aya", help="Legacy T5X -> Orbax.")
  t5x_in.add_argument("--checkpoint", required=True)
  for p in (hf_in, t5x_in):
    p.add_argument("--output_dir", required=True)
    p.add_argument("--scan_layers", action="store_true",
                   help="Stack layers as SCAN_LAYERS=True models keep them.")
  out = sub.add_parser("aya_to_hf", help="Checkpoint -> Hugging Face folder.")
  out.add_argument("--checkpoint", required=True)
  out.add_argument("--output_dir", required=True)
  out.add_argument("--gin_file", action="append", default=[],
                   help="Gin file(s) binding network.T5Config.")
  out.add_argument("--spm_model", default=None)
  out.add_argument("--dtype", default="float32",
                   choices=("float32", "bfloat16"))
  out.add_argument("--max_shard_size", type=parse_size, default="5GB")
  for p in (hf_in, t5x_in, out):
    p.add_argument("--verbose", action="store_true",
                   help="Show native start-up logs and INFO lines.")
  # No default: parameter shapes do not record them (aya_t5x.architecture).
  out.add_argument("--relative_attention_max_distance", type=int,
                   default=None)
  out.add_argument("--layer_norm_epsilon", type=float, default=None)
  return parser


class PeakMemory:
  """Peak resident memory of this process over a span (Linux /proc).

  Writing 5 to /proc/self/clear_refs resets the high-water mark, so the
  figure covers the conversion only, not imports before it.
  """

  def __init__(self):
    try:
      with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    except OSError:
      pass
    self.start = self.read("VmRSS")

  @staticmethod
  def read(field: str) -> int:
    """A /proc/self/status field in bytes (0 where unavailable)."""
    try:
      with open("/proc/self/status") as f:
        for line in f:
          if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    except OSError:
      pass
    return 0

  def summary(self, weight_bytes: int) -> str:
    peak = self.read("VmHWM")
    growth = max(peak - self.start, 0)
    ratio = growth / weight_bytes if weight_bytes else float("nan")
    return (f"peak host memory {peak / 2**20:.0f} MiB, {growth / 2**20:.0f} "
            f"MiB above the start, for {weight_bytes / 2**20:.0f} MiB of "
            f"weights (ratio {ratio:.2f})")


def _run(args: argparse.Namespace) -> str:
  memory = PeakMemory()
  if args.command == "aya_to_hf":
    result = commands.aya_to_hf(
        args.checkpoint, args.output_dir, gin_files=args.gin_file,
        spm_model=args.spm_model, dtype=args.dtype,
        max_shard_bytes=args.max_shard_size,
        relative_attention_max_distance=args.relative_attention_max_distance,
        layer_norm_epsilon=args.layer_norm_epsilon)
    return (f"aya_to_hf: wrote {result.num_tensors} tensors to "
            f"{args.output_dir} ({len(result.files)} safetensors file(s)); "
            f"{memory.summary(result.total_bytes)}.")
  if args.command == "hf_to_aya":
    result = commands.hf_to_aya(args.hf_dir, args.output_dir,
                                scan_layers=args.scan_layers)
  else:
    result = commands.t5x_to_aya(args.checkpoint, args.output_dir,
                                 scan_layers=args.scan_layers)
  lines = [f"{args.command}: {result.num_params:,} parameters -> "
           f"INITIAL_CHECKPOINT_PATH='{result.checkpoint}'",
           f"  {memory.summary(result.source_bytes)}",
           f"  network.T5Config: {dataclasses.asdict(result.config)}"]
  if result.gin_file:
    lines.append(f"  architecture gin: {result.gin_file}")
  return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
  """Runs one conversion; returns the exit status."""
  try:
    args = _parser().parse_args(argv)
    gin_utils.set_verbosity(args.verbose)
  finally:
    startup.ready()
  return gin_utils.exit_status(lambda: print(_run(args), flush=True),
                               (ValueError, OSError))


if __name__ == "__main__":
  sys.exit(main())

r"""Cache the tasks of an Aya mixture with SeqIO's Beam job (local or Dataflow).

  python -m aya_t5x.cache_tasks --mixture=aya_demo_mixture \
      --output_cache_dir=/tmp/aya_cache --dry_run

SeqIO's `seqio.scripts.cache_tasks_main` preprocesses tasks with Apache Beam
and writes TFRecords that training reads with `USE_CACHED_TASKS = True`
(plus the cache folder in seqio's cache dirs). It takes task-name regexes;
a mixture is not a task, so this expands the mixture into its leaf tasks
and passes each as an anchored regex, so that exactly those are cached.

Beam cannot live in the main venv (its protobuf cap conflicts with our
pins; see requirements/beam.txt), so the job runs under `--beam_python`, the
cache venv's interpreter, while this expansion runs here. Without
`--dry_run` it runs the job and returns its exit code.

Runners:
- DirectRunner (default): this machine, for samples and tests.
- DataflowRunner: pass `--runner=DataflowRunner --project=P --region=R
  --temp_location=gs://.../tmp`; workers need this package and the cache
  venv's pins: `--sdk_container_image=IMAGE` built from that venv (or
  `--setup_file=./setup.py` with a matching requirements file). Other Beam
  options go in `--pipeline_option=--name=value` (repeatable).
"""

import argparse
import re
import shlex
import subprocess
import sys
from typing import Sequence

import seqio

from aya_t5x import data

_DATAFLOW_REQUIRED = ("project", "region", "temp_location")


def leaf_tasks(name: str, module: str) -> list[str]:
  """Sorted task names under a mixture (or the task itself)."""
  found = data.get_mixture_or_task(name, module)
  if isinstance(found, seqio.Mixture):
    return sorted({t.name for t in found.tasks})
  return [found.name]


def pipeline_options(args: argparse.Namespace) -> list[str]:
  """Beam options: the runner, Dataflow's required ones, then extras."""
  options = [f"--runner={args.runner}"]
  if args.runner == "DataflowRunner":
    missing = [f"--{k}" for k in _DATAFLOW_REQUIRED if not getattr(args, k)]
    if missing:
      raise ValueError(f"--runner=DataflowRunner needs {', '.join(missing)}.")
    options += [f"--{k}={getattr(args, k)}" for k in _DATAFLOW_REQUIRED]
    if not args.output_cache_dir.startswith("gs://"):
      raise ValueError(f"--output_cache_dir={args.output_cache_dir!r}: "
                       "Dataflow workers write it, so it must be gs://.")
  return options + list(args.pipeline_option)


def cache_command(args: argparse.Namespace) -> list[str]:
  """The exact seqio.scripts.cache_tasks_main command line."""
  tasks = leaf_tasks(args.mixture, args.module)
  regexes = ",".join(f"^{re.escape(t)}$" for t in tasks)
  options = pipeline_options(args)
  if any("," in o for o in options):
    raise ValueError(f"Pipeline options {options}: commas are not allowed "
                     "(seqio splits --pipeline_options on commas).")
  return [args.beam_python, "-m", "seqio.scripts.cache_tasks_main",
          f"--module_import={args.module}", f"--tasks={regexes}",
          f"--output_cache_dir={args.output_cache_dir}",
          f"--min_shards={args.min_shards}",
          f"--pipeline_options={','.join(options)}"]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--mixture", required=True,
                      help="mixture or task name (MIXTURE_OR_TASK_NAME)")
  parser.add_argument("--output_cache_dir", required=True)
  parser.add_argument("--module", default="aya_t5x.mixtures",
                      help="module that registers the mixture")
  parser.add_argument("--runner", default="DirectRunner",
                      choices=("DirectRunner", "DataflowRunner"))
  for name in _DATAFLOW_REQUIRED:
    parser.add_argument(f"--{name}", default=None, help="Dataflow only")
  parser.add_argument("--pipeline_option", action="append", default=[],
                      help="extra Beam option, e.g. --max_num_workers=50")
  parser.add_argument("--min_shards", type=int, default=64,
                      help="output shards per task (SeqIO's default)")
  parser.add_argument("--beam_python", default=sys.executable,
                      help="python of the Beam venv (requirements/beam.txt)")
  parser.add_argument("--dry_run", action="store_true",
                      help="print the command and the tasks, run nothing")
  return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  try:
    command = cache_command(args)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(shlex.join(command), flush=True)
  if args.dry_run:
    return 0
  return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
  sys.exit(main())

"""Mirrors exactly the Hub files a mixture's and a suite's tasks read.

    python -m aya_t5x.download --mixture=aya_translation_heavy \\
        [--suite=all|xcopa,flores_x_en,...] --output_dir=DIR [--dry_run]
    python -m aya_t5x.download --repo=CohereForAI/xP3x --revision=REV \\
        --patterns='data/swh_Latn/*.jsonl' --output_dir=DIR

The tasks' own `HubFiles` say what is read: each repository at its pinned
revision, with the glob patterns of every split a task reads (evaluation
tasks: the evaluated split, the few-shot split and FLORES's English side).
Patterns of one (repository, revision) are merged, so each repository is
fetched once. The files and their total size are listed first; then each
repository is downloaded with `huggingface_hub.snapshot_download(
allow_patterns=..., local_dir=DIR/<repo>)`, which skips files already there
(a rerun resumes) and shows a progress bar. `DIR` is then what
`AYA_DATA_DIR` reads. A `gs://` output is staged in `--staging_dir` first and
copied file by file (files already there with the same size are kept).

Sources that are not on the Hub (ShareGPT-Command, safety distillation)
are listed with the gin knob or variable that points at your files.
"""

import argparse
import collections
import dataclasses
import os
import sys
import tempfile
from collections.abc import Iterable, Sequence
from typing import Protocol

from aya_t5x import gin_utils
from aya_t5x import hub_access
from aya_t5x import sources

Patterns = dict[tuple[str, str | None], set[str]]


@dataclasses.dataclass(frozen=True)
class HubFile:
  path: str  # Inside the repository.
  size: int | None  # Bytes, when the Hub says.


class Hub(Protocol):
  """What the mirror needs of the Hub (`HfHub`; tests use a local fake)."""

  def list_files(self, repo_id: str, revision: str | None
                 ) -> list[HubFile]:
    ...

  def download(self, repo_id: str, revision: str | None,
               patterns: Sequence[str], local_dir: str) -> None:
    ...


class HfHub:
  """The real Hub through huggingface_hub (HF_TOKEN is read by it)."""

  def list_files(self, repo_id, revision):
    from huggingface_hub import HfApi  # pylint: disable=g-import-not-at-top
    hub_access.check(repo_id, revision)
    try:
      tree = HfApi().list_repo_tree(repo_id, repo_type="dataset",
                                    revision=revision, recursive=True)
      return [HubFile(item.path, getattr(item, "size", None))
              for item in tree if hasattr(item, "size")]
    except Exception as e:  # pylint: disable=broad-except
      raise hub_access.explain(e, repo_id, revision) or e

  def download(self, repo_id, revision, patterns, local_dir):
    from huggingface_hub import snapshot_download  # pylint: disable=g-import-not-at-top
    try:
      snapshot_download(repo_id, repo_type="dataset", revision=revision,
                        allow_patterns=list(patterns), local_dir=local_dir)
    except Exception as e:  # pylint: disable=broad-except
      raise hub_access.explain(e, repo_id, revision) or e


# --- What the tasks read -----------------------------------------------------


def _add(wanted: Patterns, files: sources.FileSet,
         splits: Iterable[str] | None = None) -> bool:
  """Adds a file set's patterns; False if it is not a Hub file set."""
  if isinstance(files, sources.FallbackFiles):  # Both: either may serve.
    return _add(wanted, files.primary, splits) | _add(
        wanted, files.fallback, splits)
  if not isinstance(files, sources.HubFiles):
    return False
  for split in splits or files.splits:
    if split in files.split_patterns:
      wanted[(files.repo_id, files.revision)].update(
          files.split_patterns[split])
  return True


def _task_names(name: str) -> list[str]:
  import seqio  # pylint: disable=g-import-not-at-top
  found = seqio.get_mixture_or_task(name)
  members = getattr(found, "members", None)
  if members is not None:
    return [m.task for m in members]
  if isinstance(found, seqio.Mixture):
    return [t.name for t in found.tasks]
  return [found.name]


def mixture_patterns(name: str, wanted: Patterns) -> list[str]:
  """Adds the Hub patterns of a mixture's (or task's) training tasks.

  Returns:
    Lines for the tasks whose data is not on the Hub.
  """
  import seqio  # pylint: disable=g-import-not-at-top
  import aya_t5x.mixtures  # pylint: disable=g-import-not-at-top,unused-import
  elsewhere = []
  for task_name in _task_names(name):
    spec = seqio.get_mixture_or_task(task_name).source.spec
    if not _add(wanted, spec.files):
      where = getattr(spec.files, "env_var", None)
      elsewhere.append(f"{task_name}: not on the Hub; your files "
                       f"({where or 'patterns given at registration'})")
  return elsewhere


def suite_patterns(suite: str, wanted: Patterns) -> None:
  """Adds the Hub patterns of a suite's evaluation tasks (`all` or names)."""
  import aya_t5x.tasks.eval  # pylint: disable=g-import-not-at-top,unused-import
  from aya_t5x.tasks.eval import benchmark  # pylint: disable=g-import-not-at-top
  names = (benchmark.names() if suite == "all" else
           [n.strip() for n in suite.split(",") if n.strip()])
  for name in names:
    for task in benchmark.get(name).tasks.values():
      spec = benchmark.eval_source(task).spec
      _add(wanted, spec.files, [spec.split] + (
          [spec.shots_split] if spec.shots_split else []))
      if spec.aligned is not None:
        _add(wanted, spec.aligned, [spec.split])


# --- Plan and mirror ---------------------------------------------------------


@dataclasses.dataclass
class RepoPlan:
  repo_id: str
  revision: str | None
  patterns: list[str]
  files: list[HubFile]

  @property
  def size(self) -> int:
    return sum(f.size or 0 for f in self.files)


def plan(hub: Hub, wanted: Patterns) -> list[RepoPlan]:
  """The files each (repository, revision) has under its patterns."""
  plans = []
  for (repo_id, revision), patterns in sorted(
      wanted.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
    patterns = sorted(patterns)
    files = [f for f in hub.list_files(repo_id, revision)
             if sources._matches(f.path, patterns)  # pylint: disable=protected-access
             and not f.path.endswith(".py")]
    plans.append(RepoPlan(repo_id, revision, patterns, files))
  return plans


def _size(n: int) -> str:
  for unit in ("B", "KB", "MB", "GB"):
    if n < 1024 or unit == "GB":
      return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
    n /= 1024
  return f"{n} B"


def describe(plans: Sequence[RepoPlan]) -> str:
  lines = [f"{p.repo_id}@{p.revision or 'main'}: {len(p.files)} file(s), "
           f"{_size(p.size)}" for p in plans]
  total = sum(p.size for p in plans)
  lines.append(f"total: {sum(len(p.files) for p in plans)} file(s), "
               f"{_size(total)}")
  return "\n".join(lines)


def _copy_tree(local: str, remote: str) -> None:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  for directory, _, names in os.walk(local):
    for name in names:
      source = os.path.join(directory, name)
      relative = os.path.relpath(source, local).replace(os.sep, "/")
      target = f"{remote.rstrip('/')}/{relative}"
      if (tf.io.gfile.exists(target) and tf.io.gfile.stat(target).length
          == os.path.getsize(source)):
        continue
      tf.io.gfile.makedirs(target.rsplit("/", 1)[0])
      tf.io.gfile.copy(source, target, overwrite=True)


def mirror(hub: Hub, plans: Sequence[RepoPlan], output_dir: str,
           staging_dir: str | None = None) -> None:
  """Downloads every planned repository into `output_dir/<repo_id>`."""
  remote = "://" in output_dir
  local_root = (staging_dir or tempfile.mkdtemp(prefix="aya_download_")
                ) if remote else output_dir
  for p in plans:
    if not p.files:
      continue
    print(f"{p.repo_id}@{p.revision or 'main'}: downloading "
          f"{len(p.files)} file(s), {_size(p.size)}", flush=True)
    local = os.path.join(local_root, p.repo_id)
    hub.download(p.repo_id, p.revision, p.patterns, local)
    if remote:
      _copy_tree(local, f"{output_dir.rstrip('/')}/{p.repo_id}")


# --- CLI ---------------------------------------------------------------------


@dataclasses.dataclass
class DownloadConfig:
  output_dir: str
  mixture: str | None = None
  suite: str | None = None
  repo: str | None = None
  revision: str | None = None
  patterns: str | None = None  # Comma separated, with --repo.
  staging_dir: str | None = None
  dry_run: bool = False


def wanted_files(config: DownloadConfig) -> tuple[Patterns, list[str]]:
  """The patterns the config asks for, and lines for non-Hub sources."""
  wanted: Patterns = collections.defaultdict(set)
  elsewhere = []
  if config.repo:
    wanted[(config.repo, config.revision)].update(
        p.strip() for p in (config.patterns or "**").split(",") if p.strip())
  if config.mixture:
    elsewhere = mixture_patterns(config.mixture, wanted)
  if config.suite:
    suite_patterns(config.suite, wanted)
  if not wanted and not elsewhere:
    raise gin_utils.UsageError("Give --mixture=NAME, --suite=NAME or "
                               "--repo=ID: nothing to download.")
  return wanted, elsewhere


def run(config: DownloadConfig, hub: Hub | None = None) -> list[RepoPlan]:
  hub = hub or HfHub()
  try:
    wanted, elsewhere = wanted_files(config)
  except (KeyError, ValueError) as e:
    raise gin_utils.UsageError(str(e).strip("'\"")) from None
  plans = plan(hub, wanted)
  print(describe(plans), flush=True)
  for line in elsewhere:
    print(line, flush=True)
  if not config.dry_run:
    mirror(hub, plans, config.output_dir, config.staging_dir)
    print(f"Mirror ready: AYA_DATA_DIR={config.output_dir}", flush=True)
  return plans


def parse_args(argv: Sequence[str]) -> DownloadConfig:
  parser = argparse.ArgumentParser(
      prog="python -m aya_t5x.download", allow_abbrev=False,
      description="Mirror the Hub files that tasks read (AYA_DATA_DIR).")
  parser.add_argument("--output_dir", required=True)
  parser.add_argument("--mixture")
  parser.add_argument("--suite")
  parser.add_argument("--repo")
  parser.add_argument("--revision")
  parser.add_argument("--patterns")
  parser.add_argument("--staging_dir")
  parser.add_argument("--dry_run", action="store_true")
  return DownloadConfig(**vars(parser.parse_args(argv)))


def main(argv: Sequence[str] | None = None) -> int:
  argv = sys.argv[1:] if argv is None else argv
  return gin_utils.exit_status(lambda: run(parse_args(argv)))


if __name__ == "__main__":
  sys.exit(main())

"""T5X-style command lines: `--gin_file`, `--gin.NAME=VALUE`, checked early.

Upstream T5X rewrites `--gin.X=Y` into a gin binding and lets gin fail
wherever it fails. Here every mistake a user makes on the command line fails
at start-up, before any device or data is touched, with a message that names
the flag, file or macro: a missing gin file (with the search path), a macro
that no gin file uses (usually a typo), a value that is not a gin literal.
"""

import argparse
import contextlib
import dataclasses
import difflib
import logging
import os
import re
import sys
import tokenize
from typing import Callable, Sequence

import gin

from aya_t5x import startup

# The repository's gin/ folder (a checkout or an editable install).
DEFAULT_GIN_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "gin")
_MACRO_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
# A gin file for upstream T5X: it imports t5x modules or includes T5X's own
# gin files (t5x/...) or ours for T5X (gin/t5x/...).
_UPSTREAM_T5X_GIN = re.compile(
    r"^\s*(from\s+t5x[\s.]|import\s+t5x\b|include\s+['\"]([^'\"]*/)?t5x/)",
    re.MULTILINE)


class UsageError(ValueError):
  """A mistake in flags or gin configuration: reported without a traceback."""


class RunError(RuntimeError):
  """A run that had to stop (e.g. on a NaN): one line, exit status 1.

  Not a usage error (the flags may be fine) and not a bug: the message says
  what happened and what was kept.
  """
  exit_code = 1


@dataclasses.dataclass
class CommandLine:
  """Flags shared by the CLIs (the T5X names)."""
  gin_files: list[str]  # --gin_file, repeatable; later files override.
  gin_bindings: list[str]  # --gin.NAME=VALUE and --gin_bindings, in order.
  gin_search_paths: list[str]  # --gin_search_paths (comma separated).
  tfds_data_dir: str | None  # --tfds_data_dir
  coordinator_address: str | None  # --coordinator_address (multi-process)
  process_count: int | None  # --process_count
  process_index: int | None  # --process_index
  multiprocess: bool  # --multiprocess: call jax.distributed.initialize()
  # --seqio_additional_cache_dirs (comma separated, repeatable): where
  # SeqIO also looks for cached tasks (USE_CACHED_TASKS).
  seqio_additional_cache_dirs: list[str]
  # --verbose: native start-up logs (aya_t5x.startup) and INFO log lines.
  verbose: bool = False


def parse_command_line(argv: Sequence[str]) -> CommandLine:
  """Parses T5X-style flags; `--gin.X=Y` becomes the binding `X = Y`."""
  parser = argparse.ArgumentParser(allow_abbrev=False)
  parser.add_argument("--gin_file", action="append", default=[])
  parser.add_argument("--gin_search_paths", default="")
  parser.add_argument("--tfds_data_dir", default=None)
  parser.add_argument("--coordinator_address", default=None)
  parser.add_argument("--process_count", type=int, default=None)
  parser.add_argument("--process_index", type=int, default=None)
  parser.add_argument("--multiprocess", action="store_true")
  parser.add_argument("--verbose", action="store_true")
  parser.add_argument("--seqio_additional_cache_dirs", action="append",
                      default=[])
  bindings, argv = _bindings_in_order(argv)
  known, rest = parser.parse_known_args(argv)
  if rest:
    raise UsageError(f"Unknown flag {rest[0]!r}. Flags: --gin_file, "
                     "--gin.NAME=VALUE, --gin_bindings, --gin_search_paths, "
                     "--tfds_data_dir, --seqio_additional_cache_dirs, "
                     "--multiprocess, --coordinator_address, "
                     "--process_count, --process_index, --verbose.")
  search = [p for p in known.gin_search_paths.split(",") if p]
  cache_dirs = [d for flag in known.seqio_additional_cache_dirs
                for d in flag.split(",") if d]
  return CommandLine(known.gin_file, bindings, search, known.tfds_data_dir,
                     known.coordinator_address, known.process_count,
                     known.process_index, known.multiprocess, cache_dirs,
                     known.verbose)


def _bindings_in_order(argv: Sequence[str]) -> tuple[list[str], list[str]]:
  """(--gin.X=Y and --gin_bindings values in command-line order, the rest).

  Later bindings override earlier ones, so the order the user typed them in
  is the order they apply in, whichever of the two spellings each uses.
  """
  bindings, rest, args = [], [], list(argv)
  while args:
    arg = args.pop(0)
    if arg.startswith("--gin."):
      name, sep, value = arg[len("--gin."):].partition("=")
      if not sep or not name:
        raise UsageError(f"{arg!r}: expected --gin.NAME=VALUE.")
      bindings.append(f"{name} = {value}")
    elif arg.startswith("--gin_bindings="):
      bindings.append(arg[len("--gin_bindings="):])
    elif arg == "--gin_bindings":
      if not args:
        raise UsageError("--gin_bindings needs a value, e.g. "
                         "--gin_bindings=\"TRAIN_STEPS = 10\".")
      bindings.append(args.pop(0))
    else:
      rest.append(arg)
  return bindings, rest


def _resolve_gin_file(path: str, search_paths: Sequence[str]) -> str:
  candidates = [path] + [os.path.join(d, path) for d in search_paths]
  for candidate in candidates:
    if os.path.isfile(candidate):
      return candidate
  raise UsageError(f"--gin_file {path!r} not found (looked in: "
                   f"{', '.join(['.'] + list(search_paths))}).")


def _t5x_command() -> str:
  """The upstream T5X command that matches the running one (t5x.train...)."""
  spec = getattr(sys.modules.get("__main__"), "__spec__", None)
  name = (spec.name if spec else "").rsplit(".", 1)[-1]
  return f"python -m t5x.{name if name in ('eval', 'infer') else 'train'}"


def _refuse_upstream_t5x_file(path: str, resolved: str) -> None:
  """A T5X gin file fails here in one line, not deep inside gin's parser.

  Its `train_script.train` bindings would land on our `train` (whose
  arguments differ) and its includes are not on our search path.
  """
  with open(resolved, encoding="utf-8") as f:
    if not _UPSTREAM_T5X_GIN.search(f.read()):
      return
  raise UsageError(
      f"--gin_file {path} is for upstream T5X: run `{_t5x_command()} "
      f"--gin_file={path}` (docs/t5x.md); aya_t5x's own run files are the "
      "gin/*.gin outside gin/t5x/.")


@contextlib.contextmanager
def _quiet_include_search():
  """gin logs an ERROR for every search path an `include` is not found in."""
  class _DropPathNotFound(logging.Filter):
    def filter(self, record):
      return not record.getMessage().startswith("Path not found:")
  drop = _DropPathNotFound()
  logging.getLogger().addFilter(drop)
  try:
    yield
  finally:
    logging.getLogger().removeFilter(drop)


def _set_include_search_paths(search_paths: Sequence[str]) -> None:
  """Where gin looks for `include`d files: the project's gin/ folder first.

  gin tries its search paths in order, the working directory first. A
  `runs/` folder there (a common name for run outputs) made every
  `include 'runs/finetune.gin'` fail: gin took it for a Python package. The
  project's own files are found first now, whatever the working directory
  holds; the user's search paths and the working directory follow.
  """
  # pylint: disable=protected-access
  gin.config._LOCATION_PREFIXES[:] = [DEFAULT_GIN_DIR, ""] + [
      p for p in search_paths if p != DEFAULT_GIN_DIR]
  gin.config._FILE_READERS[:] = [
      (reader, _never_raises(exists))
      for reader, exists in gin.config._FILE_READERS]


def _never_raises(exists: Callable[[str], bool]) -> Callable[[str], bool]:
  """A gin file-existence check that says False instead of raising (gin's
  package-resource check raises TypeError on a namespace package)."""
  if getattr(exists, "never_raises", False):
    return exists
  def check(path: str) -> bool:
    try:
      return exists(path)
    except (TypeError, ValueError, ImportError):
      return False
  check.never_raises = True
  return check


def _walk_values(value):
  if isinstance(value, dict):
    for v in value.values():
      yield from _walk_values(v)
  elif isinstance(value, (list, tuple)):
    for v in value:
      yield from _walk_values(v)
  else:
    yield value


def referenced_macros() -> set[str]:
  """Names of the macros (`%NAME`) that the parsed gin config refers to."""
  names = set()
  for params in gin.config._CONFIG.values():  # pylint: disable=protected-access
    for value in _walk_values(params):
      if isinstance(value, gin.config.ConfigurableReference):
        selector = value.scoped_selector
        if selector.endswith("/gin.macro"):
          names.add(selector[:-len("/gin.macro")])
  return names


def _check_binding_targets(bindings: Sequence[str], known: set[str]) -> None:
  for binding in bindings:
    name = binding.split("=", 1)[0].strip()
    if _MACRO_NAME.match(name) and name not in known:
      close = difflib.get_close_matches(name, sorted(known), n=3)
      hint = f" Did you mean {', '.join(close)}?" if close else ""
      raise UsageError(
          f"--gin.{name}: no gin file uses the macro {name}.{hint} Macros in "
          f"use: {', '.join(sorted(known))}.")


def parse_gin(gin_files: Sequence[str], bindings: Sequence[str],
              search_paths: Sequence[str] = ()) -> None:
  """Parses gin files then bindings, failing early with named culprits."""
  if not gin_files:
    raise UsageError("No --gin_file given (e.g. --gin_file=gin/aya_tiny_cpu.gin).")
  search_paths = list(search_paths) + [os.getcwd(), DEFAULT_GIN_DIR,
                                       os.path.dirname(DEFAULT_GIN_DIR)]
  gin.clear_config(clear_constants=False)
  _set_include_search_paths(search_paths)
  for path in gin_files:
    resolved = _resolve_gin_file(path, search_paths)
    _refuse_upstream_t5x_file(path, resolved)
    try:
      with _quiet_include_search():
        gin.parse_config_file(resolved)
    except IOError as e:
      raise UsageError(f"In gin file {resolved}: {e}") from None
    except (ValueError, SyntaxError, ImportError, tokenize.TokenError) as e:
      raise UsageError(f"Bad gin file {resolved}: {e}") from None
  _check_binding_targets(bindings, referenced_macros())
  for binding in bindings:
    try:
      gin.parse_config(binding)
    except (ValueError, SyntaxError, tokenize.TokenError) as e:
      # TokenError: an unclosed bracket or quote (`--gin.X=[8,`).
      raise UsageError(
          f"Bad binding '{binding}': {e}. Values are gin literals: quote "
          "strings, e.g. --gin.MODEL_DIR=\"'/tmp/run'\".") from None
  gin.finalize()


def without_gin_context(error: BaseException) -> str:
  """The error's message without the lines gin appends about its call."""
  lines = str(error).splitlines()
  kept = [l for l in lines if not l.strip().startswith("In call to configurable")]
  return " ".join(l.strip() for l in kept if l.strip()) or type(error).__name__


class SetupPhase:
  """Tells a CLI's set-up errors from the errors of its real work.

  A ValueError while reading the config, the inputs or the checkpoint is a
  mistake in the flags: one line, exit 2. The same error once training or
  generation has started is a bug to debug and keeps its traceback. Gin
  calls the entry point, so the entry point itself says when set-up is over
  (`finish()`); `main` wraps the call in `usage_errors(...)`.
  """

  def __init__(self):
    self.done = True  # Outside `usage_errors` nothing is converted.

  def finish(self) -> None:
    self.done = True

  @contextlib.contextmanager
  def usage_errors(self, *error_types: type[BaseException]):
    """Raises the given errors as UsageError until `finish()` is called."""
    self.done = False
    try:
      yield
    except error_types as e:
      if self.done:
        raise
      raise UsageError(without_gin_context(e)) from None


def exit_status(action: Callable[[], object],
                errors: tuple[type[BaseException], ...] = (UsageError,)
                ) -> int:
  """Runs `action`: 0, or 2 after one `error:` line for one of `errors`.

  The errors a user can fix (a flag, a file, a value) get their message,
  not a traceback; every CLI of the package reports them the same way.
  """
  try:
    action()
  except errors as e:
    print(f"error: {one_line(str(e))}", file=sys.stderr)
    return 2
  except RunError as e:
    print(f"error: {one_line(str(e))}", file=sys.stderr)
    return e.exit_code
  return 0


def one_line(message: str) -> str:
  """`message` with its line breaks folded (gin and protobuf add some), so
  a log scanner sees the whole error on its `error:` line."""
  return " ".join(l.strip() for l in message.splitlines() if l.strip())


def set_verbosity(verbose: bool) -> None:
  """absl's INFO lines with --verbose; warnings and errors only without."""
  from absl import logging as absl_logging  # pylint: disable=g-import-not-at-top
  absl_logging.set_verbosity(absl_logging.INFO if verbose
                             else absl_logging.WARNING)


def _main_with(main: Callable[[CommandLine], object],
               argv: Sequence[str]) -> object:
  command_line = parse_command_line(argv)
  set_verbosity(command_line.verbose)
  return main(command_line)


def run(main: Callable[[CommandLine], object],
        argv: Sequence[str] | None = None) -> None:
  """Runs a CLI entry point; usage errors print one line and exit 2.

  Start-up noise hidden by `aya_t5x.startup.begin` is released here at the
  latest (a usage error stops the CLI before its own `startup.ready()`).
  """
  argv = sys.argv[1:] if argv is None else argv
  try:
    status = exit_status(lambda: _main_with(main, argv))
  finally:
    startup.end()
  if status:
    sys.exit(status)

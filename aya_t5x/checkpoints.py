"""Checkpoints in the T5X layout, written and read with Orbax.

A run directory holds `MODEL_DIR/checkpoint_<step>/` folders, each with two
items, exactly as upstream T5X writes them:
  * `state`: an Orbax PyTree checkpoint of the whole train state in T5X's
    names (`{"target", "state": {"step", "param_states"}}`, see
    `aya_t5x.t5x_state`), sharded arrays written by every host; checkpoints
    of the older `{"step", "params", "opt_state"}` layout still restore;
  * `dataset`: the data iterator's own files, one sub-folder per process, so
    a resumed run continues the data stream instead of replaying it.

What this module adds on top of `orbax.checkpoint.CheckpointManager`:
  * a checkpoint that was cut off mid-save is never restored: besides Orbax's
    own protection (write to `*.orbax-checkpoint-tmp*`, then rename), every
    `checkpoint_N` must carry a commit marker and the `state` item's metadata,
    or it is skipped with a warning naming it;
  * restores check the checkpoint's metadata against the model first, and the
    error names every missing parameter and every shape mismatch;
  * finetuning restores (`restore_from_path`) can take only the parameters
    from a pretrained checkpoint, reset the step, or keep initial values for
    parameters the checkpoint lacks;
  * `PreemptionHandler` turns SIGTERM into a flag the train loop polls, so a
    preempted job writes one last checkpoint and exits cleanly.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
import time
from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence

from absl import logging
from etils import epath
import jax
from jax.experimental import multihost_utils
import numpy as np
import orbax.checkpoint as ocp

from aya_t5x import integrity
from aya_t5x import t5x_state
from aya_t5x import validation

PyTree = Any

STATE_ITEM = "state"  # Item holding the train-state PyTree.
DATASET_ITEM = "dataset"  # Item holding the data iterator's files.
STEP_PREFIX = "checkpoint"  # Step folders are `checkpoint_<step>`, as in T5X.

# What Orbax 0.12.8 leaves in a finished step folder. It writes both markers
# before the atomic rename on local disks (AtomicRenameTemporaryPath), and
# `commit_success.txt` last on object stores (CommitFileTemporaryPath).
COMMIT_FILE = "commit_success.txt"
STEP_METADATA_FILE = "_CHECKPOINT_METADATA"
TREE_METADATA_FILE = "_METADATA"  # Written by the PyTree handler per item.
_TMP_MARKER = ".orbax-checkpoint-tmp"
# Prefixes of folders set aside (never deleted on sight): a save that was cut
# off, and a committed checkpoint that failed verification or reading.
INCOMPLETE_PREFIX = "incomplete."
CORRUPT_PREFIX = "corrupt."
SET_ASIDE_KEPT = 3  # Newest set-aside folders of each kind kept for a look.


class CheckpointMismatchError(ValueError):
  """The checkpoint's tree does not fit the model's state."""


class IncompleteCheckpointError(FileNotFoundError):
  """A checkpoint folder lacks the files a finished save leaves behind."""


class DataStateError(ValueError):
  """The checkpoint's data iterator state is missing or unreadable, and
  resuming would silently replay data (see `allow_data_replay`)."""


class DataIterator(Protocol):
  """What a data iterator offers so its position is checkpointed with the model.

  `aya_t5x.data` implements it with a tf.data iterator checkpoint.
  """

  def save_state(self, directory: str) -> None:
    """Writes this process's iterator state under `directory`."""

  def restore_state(self, directory: str) -> None:
    """Continues from the state `save_state` wrote under `directory`."""


# ----------------------------------------------------------------- configs ---


@dataclasses.dataclass
class CheckpointConfig:
  """When and how checkpoints of a run are written (gin: `CheckpointConfig`)."""
  period: int = 1000  # Save every `period` steps (T5X `checkpoint_period`).
  keep: int | None = None  # Keep the newest `keep` checkpoints; None keeps all.
  async_save: bool = True  # Write files in the background after the D2H copy.
  # Delete unfinished `*.orbax-checkpoint-tmp*` folders at start-up. Only the
  # run's single writer may: a reader would delete a save in flight.
  cleanup_tmp_dirs: bool = True

  def __post_init__(self):
    validation.integer("CHECKPOINT_PERIOD", self.period, 1)
    if self.keep is not None:
      validation.integer("CHECKPOINTS_TO_KEEP (None keeps all)", self.keep, 1)


RESTORE_MODES = ("latest", "specific")


@dataclasses.dataclass
class RestoreCheckpointConfig:
  """Where a run's initial state comes from (gin: `RestoreCheckpointConfig`).

  As in T5X, a run first resumes from the newest committed checkpoint in its
  own MODEL_DIR; this config is used only when there is none there.
  """
  # A `checkpoint_N` folder ("specific") or a run folder ("latest"); None:
  # initialize from scratch when MODEL_DIR has no checkpoint.
  path: str | None = None
  mode: str = "latest"  # "latest": newest in `path`; "specific": `path` itself.
  reset_step: bool = False  # Start the step at 0 (finetuning from pretrained).
  restore_dataset: bool = False  # Also restore the iterator saved in `path`.
  strict: bool = True  # Every model parameter must be in the checkpoint.
  params_only: bool = False  # Take only `params`; optimizer state stays fresh.
  # ALLOW_DATA_REPLAY: resume from a checkpoint whose data iterator state is
  # missing or unreadable, restarting the data (a WARNING says how many
  # examples repeat). Off: such a resume stops with one line.
  allow_data_replay: bool = False

  def __post_init__(self):
    if self.mode not in RESTORE_MODES:
      raise ValueError(f"RestoreCheckpointConfig.mode must be one of "
                       f"{RESTORE_MODES}, got {self.mode!r}.")


def absolute(path: epath.PathLike) -> epath.Path:
  """`path`, made absolute when it is local.

  Orbax refuses relative paths ("Checkpoint path should be absolute"), and
  users type them (`--gin.CHECKPOINT_PATH="'demo_run/checkpoint_400'"`):
  every path a user gives is resolved against the working directory here,
  before Orbax sees it. Remote paths (gs://...) are left as they are.
  """
  text = os.fspath(path)
  if "://" in text:
    return epath.Path(text)
  return epath.Path(os.path.abspath(os.path.expanduser(text)))


# --------------------------------------------- finding finished checkpoints ---


def _commit_timestamp(step_dir: epath.Path) -> int | None:
  """Orbax's commit time from `_CHECKPOINT_METADATA`, None if not committed."""
  try:
    metadata = json.loads((step_dir / STEP_METADATA_FILE).read_text())
  except (FileNotFoundError, ValueError, OSError):
    return None
  return metadata.get("commit_timestamp_nsecs")


def incomplete_reason(step_dir: epath.PathLike) -> str | None:
  """Why `step_dir` is not a finished checkpoint, or None if it is.

  Orbax's own listing trusts any `checkpoint_N` folder on a local disk (the
  rename is its commit), so a copied, truncated or hand-made folder would be
  restored. Requiring the markers a finished save writes closes that hole.
  """
  step_dir = epath.Path(step_dir)
  if _TMP_MARKER in step_dir.name:
    return "it is an unfinished Orbax temporary folder"
  if not (step_dir / STATE_ITEM / TREE_METADATA_FILE).exists():
    return (f"its '{STATE_ITEM}' item has no {TREE_METADATA_FILE} "
            "(the arrays were not all written)")
  if (step_dir / COMMIT_FILE).exists() or _commit_timestamp(step_dir):
    return None
  return (f"it has neither {COMMIT_FILE} nor a commit timestamp in "
          f"{STEP_METADATA_FILE} (the save was cut off)")


class _CommittedStepNameFormat:
  """Orbax `NameFormat` for `checkpoint_N` that lists finished saves only.

  Handing this to the CheckpointManager keeps every one of its decisions
  (latest step, periodic saving, keep-N deletion) blind to broken folders.
  """

  def __init__(self):
    self._standard = ocp.step.standard_name_format(step_prefix=STEP_PREFIX)
    self._warned: set[str] = set()

  def build_name(self, step: int) -> str:
    return self._standard.build_name(step)

  def find_all(self, base_path: epath.PathLike) -> Iterator[Any]:
    for metadata in self._standard.find_all(base_path):
      reason = incomplete_reason(metadata.path)
      if reason is None:
        yield metadata
      else:
        self._warn_once(metadata.path, reason)

  def find_step(self, base_path: epath.PathLike, step: int) -> Any:
    metadata = self._standard.find_step(base_path, step)
    reason = incomplete_reason(metadata.path)
    if reason is not None:
      raise ValueError(f"Checkpoint {metadata.path} is incomplete: {reason}.")
    return metadata

  def _warn_once(self, path: epath.Path, reason: str) -> None:
    if str(path) not in self._warned:
      self._warned.add(str(path))
      logging.warning("Skipping checkpoint %s: %s. An earlier checkpoint will "
                      "be used.", path, reason)

  def __str__(self) -> str:
    return f"CommittedStepNameFormat({self.build_name(1234)})"


def committed_steps(model_dir: epath.PathLike) -> list[int]:
  """Steps of the finished `checkpoint_N` folders in `model_dir`, ascending."""
  model_dir = epath.Path(model_dir)
  if not model_dir.exists():
    return []
  found = _CommittedStepNameFormat().find_all(model_dir)
  return sorted(metadata.step for metadata in found)


def step_dir(model_dir: epath.PathLike, step: int) -> epath.Path:
  """`MODEL_DIR/checkpoint_<step>`."""
  return epath.Path(model_dir) / f"{STEP_PREFIX}_{step}"


# ------------------------------------------------------------ dataset item ---


def _process_dir_name() -> str:
  """Per-process sub-folder: each host reads its own shard of the data."""
  return f"process_{jax.process_index()}-of-{jax.process_count()}"


class DatasetCheckpointHandler(ocp.CheckpointHandler):
  """Orbax handler for the `dataset` item: the iterator writes its own files.

  Saving is synchronous on purpose: the iterator's position must be captured
  at the step being checkpointed, before the train loop pulls the next batch.
  """

  def save(self, directory: epath.Path, args: DatasetSave) -> None:
    process_dir = epath.Path(directory) / _process_dir_name()
    process_dir.mkdir(parents=True, exist_ok=True)
    args.iterator.save_state(os.fspath(process_dir))

  def restore(self, directory: epath.Path,
              args: DatasetRestore) -> DataIterator:
    process_dir = epath.Path(directory) / _process_dir_name()
    if not process_dir.exists():
      found = sorted(p.name for p in epath.Path(directory).iterdir())
      raise FileNotFoundError(
          f"No data iterator state for this process at {process_dir}; found "
          f"{found}. Resume with the same number of processes as the run "
          "that saved it, or restore without the dataset.")
    args.iterator.restore_state(os.fspath(process_dir))
    return args.iterator


@ocp.args.register_with_handler(DatasetCheckpointHandler, for_save=True)
@dataclasses.dataclass
class DatasetSave(ocp.args.CheckpointArgs):
  """Save args of the `dataset` item."""
  iterator: DataIterator  # Object whose `save_state(dir)` is called.


@ocp.args.register_with_handler(DatasetCheckpointHandler, for_restore=True)
@dataclasses.dataclass
class DatasetRestore(ocp.args.CheckpointArgs):
  """Restore args of the `dataset` item."""
  iterator: DataIterator  # Object whose `restore_state(dir)` is called.


@dataclasses.dataclass(frozen=True)
class DataReplay:
  """Whether a resume may restart the data when its iterator state is gone."""
  allowed: bool = False  # ALLOW_DATA_REPLAY
  examples_per_step: int | None = None  # BATCH_SIZE, to count the repeats.

  def repeated(self, step: int) -> str:
    if self.examples_per_step is None:
      return f"the first {step} batches"
    return (f"{step * self.examples_per_step} examples ({step} steps x "
            f"{self.examples_per_step})")


def has_dataset_state(checkpoint_dir: epath.PathLike) -> bool:
  """Whether any process saved iterator state in this checkpoint."""
  item_dir = epath.Path(checkpoint_dir) / DATASET_ITEM
  return item_dir.exists() and any(
      p.name.startswith("process_") for p in item_dir.iterdir())


def _restore_dataset(checkpoint_dir: epath.Path,
                     data_iterator: DataIterator | None, step: int,
                     replay: DataReplay) -> None:
  """Restores the iterator; missing or unreadable state never passes silently.

  Without the state the data would start again from its first example: the
  model would see data twice, unnoticed. That needs the user's consent.
  """
  if data_iterator is None:
    return
  try:
    if not has_dataset_state(checkpoint_dir):
      raise FileNotFoundError(
          f"{checkpoint_dir / DATASET_ITEM}: no data iterator state")
    DatasetCheckpointHandler().restore(checkpoint_dir / DATASET_ITEM,
                                       DatasetRestore(data_iterator))
  except OSError as e:  # Missing or unreadable files; not a dataset mismatch.
    if not replay.allowed:
      raise DataStateError(
          f"Cannot resume from {checkpoint_dir}: {e}. Resuming would replay "
          f"{replay.repeated(step)} from the start of the data; set "
          "ALLOW_DATA_REPLAY=True (RestoreCheckpointConfig."
          "allow_data_replay) to accept that.") from None
    logging.warning("Checkpoint %s: %s. ALLOW_DATA_REPLAY: the data starts "
                    "again from its beginning, so %s will be seen again.",
                    checkpoint_dir, e, replay.repeated(step))
    return
  logging.info("Restored the data iterator from %s.", checkpoint_dir)


def _verify(checkpoint_dir: epath.Path) -> integrity.Verdict:
  """`integrity.verify` on the primary process; its verdict on every one.

  One host reads the files once; the others must agree on the outcome or
  their collective restores would diverge.
  """
  if jax.process_count() == 1:
    return integrity.verify(checkpoint_dir)
  verdict = (integrity.verify(checkpoint_dir) if jax.process_index() == 0
             else None)
  ok = bool(multihost_utils.broadcast_one_to_all(
      np.asarray(verdict.ok if verdict else False)))
  verified = bool(multihost_utils.broadcast_one_to_all(
      np.asarray(verdict.verified if verdict else False)))
  if verdict is not None:
    return verdict
  return integrity.Verdict(ok=ok, verified=verified,
                           problem=None if ok else "failed on process 0")


def _restore_verified(checkpoint_dir: epath.Path, abstract_state: PyTree
                      ) -> tuple[PyTree, str | None]:
  """(state, None), or (None, why it cannot be used) naming the file."""
  verdict = _verify(checkpoint_dir)
  if not verdict.ok:
    return None, verdict.problem
  if not verdict.verified:
    logging.warning("Checkpoint %s has no %s (written before checkpoints "
                    "were checksummed): restoring it unverified.",
                    checkpoint_dir, integrity.MANIFEST_FILE)
  logging.info("Restoring %s.", checkpoint_dir)
  try:
    return restore_train_state(checkpoint_dir / STATE_ITEM,
                               abstract_state), None
  except CheckpointMismatchError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    if verdict.verified:
      # Its files are the ones written: the failure is not the checkpoint's
      # (a passing storage error, memory, a changed mesh). Setting it aside
      # would throw good checkpoints away one after another.
      raise
    # Any reader failure of an unverified checkpoint: try an older one.
    first_line = (str(e).strip().splitlines() or [""])[0][:300]
    return None, (f"{checkpoint_dir / STATE_ITEM}: unreadable "
                  f"({type(e).__name__}: {first_line})")


def set_aside(path: epath.Path, prefix: str) -> epath.Path:
  """Renames `path` to `<prefix><name>.<ns>` beside it; keeps only the
  newest `SET_ASIDE_KEPT` folders of that prefix (they are for inspection,
  and each can be as large as a checkpoint)."""
  path = epath.Path(path)
  aside = path.parent / f"{prefix}{path.name}.{time.time_ns()}"
  path.rename(aside)
  found = sorted(path.parent.glob(f"{prefix}*"),
                 key=lambda p: int(p.name.rsplit(".", 1)[-1])
                 if p.name.rsplit(".", 1)[-1].isdigit() else 0)
  for old in found[:-SET_ASIDE_KEPT]:
    logging.info("Deleting old set-aside folder %s.", old)
    old.rmtree()
  return aside


# ------------------------------------------------------- tree comparisons ---


def _key_name(key: Any) -> str:
  """One path component as T5X prints it (`layers_0`, `kernel`, `0`)."""
  for attr in ("key", "name", "idx"):
    if hasattr(key, attr):
      return str(getattr(key, attr))
  return str(key)


def path_str(path: Sequence[Any]) -> str:
  """`encoder/layers_0/mlp/wi_0/kernel` from a jax key path."""
  return "/".join(_key_name(k) for k in path)


def flat_shapes(tree: PyTree) -> dict[str, tuple[int, ...]]:
  """{"/"-joined path: shape} of every leaf (arrays, structs, metadata)."""
  leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
  return {path_str(p): tuple(getattr(leaf, "shape", ())) for p, leaf in leaves}


def check_tree_fits(expected: PyTree, found: PyTree, *, strict: bool,
                    where: str) -> list[str]:
  """Raises if `found` (checkpoint metadata) cannot fill `expected`.

  Args:
    expected: the model's (abstract) tree.
    found: the checkpoint's metadata tree, or any tree with shaped leaves.
    strict: a path of `expected` absent from `found` is an error.
    where: the checkpoint path, for the message.

  Returns:
    Paths of `expected` missing from `found` (empty when `strict`).

  Raises:
    CheckpointMismatchError: naming every missing path (if strict) and every
      shape mismatch, expected vs found.
  """
  want, have = flat_shapes(expected), flat_shapes(found)
  missing = sorted(set(want) - set(have))
  mismatched = [f"{p} expected {want[p]} found {have[p]}"
                for p in sorted(want) if p in have and want[p] != have[p]]
  problems = []
  if missing and strict:
    problems.append("missing in checkpoint: " + ", ".join(missing))
  if mismatched:
    problems.append("shape mismatch: " + ", ".join(mismatched))
  if problems:
    raise CheckpointMismatchError(
        f"Checkpoint {where} does not fit the model: {'; '.join(problems)}. "
        "Check the model size gin file; for a pretrained checkpoint with "
        "other optimizer state use params_only=True, and strict=False keeps "
        "initial values for missing parameters.")
  unused = sorted(set(have) - set(want))
  if unused:
    logging.info("Checkpoint %s: %d arrays not used by the model, e.g. %s.",
                 where, len(unused), ", ".join(unused[:3]))
  return missing


def _prune(tree: PyTree, drop: set[str], prefix: str = "") -> PyTree:
  """`tree` without the leaves at `drop` (dict nodes only)."""
  if not isinstance(tree, Mapping):
    if any(d.startswith(prefix + "/") for d in drop):
      raise CheckpointMismatchError(
          f"Cannot leave out parts of {prefix}: it is not a dict. Missing "
          f"parameters: {sorted(drop)}.")
    return tree
  kept = {}
  for key, value in tree.items():
    path = f"{prefix}/{key}" if prefix else str(key)
    if path in drop:
      continue
    value = _prune(value, drop, path)
    if not isinstance(value, Mapping) or value:
      kept[key] = value
  return kept


def _merge(base: PyTree, update: PyTree) -> PyTree:
  """`base` with every leaf that `update` holds replaced (dict nodes)."""
  if not isinstance(base, Mapping) or not isinstance(update, Mapping):
    return update
  merged = dict(base)
  for key, value in update.items():
    merged[key] = _merge(base[key], value) if key in base else value
  return merged


# ----------------------------------------------------- state item reading ---


def resolve_state_dir(path: epath.PathLike) -> epath.Path:
  """The `state` item folder for a `checkpoint_N` folder (or the item itself).

  Raises:
    FileNotFoundError: `path` holds no Orbax PyTree checkpoint, with a hint
      for the usual mix-ups (a run folder, a legacy T5X checkpoint).
  """
  path = absolute(path)
  if (path / STATE_ITEM / TREE_METADATA_FILE).exists():
    return path / STATE_ITEM
  if (path / TREE_METADATA_FILE).exists():
    return path
  hint = ""
  if (path / "checkpoint").exists():
    hint = (" It looks like a legacy T5X checkpoint (msgpack `checkpoint` "
            "file); convert it to the Orbax format first.")
  elif path.exists() and committed_steps(path):
    hint = (f" It is a run folder with checkpoints {committed_steps(path)}; "
            "name one `checkpoint_N` folder or use mode='latest'.")
  raise FileNotFoundError(
      f"No Orbax checkpoint at {path}: expected {path}/{STATE_ITEM}/"
      f"{TREE_METADATA_FILE}.{hint}")


def read_tree_metadata(state_dir: epath.PathLike) -> PyTree:
  """Nested dict of the checkpoint's array metadata (shape, dtype, sharding)."""
  # The handler, not a Checkpointer: the latter also looks for step-level
  # metadata inside the item folder and warns that there is none.
  handler = ocp.PyTreeCheckpointHandler()
  try:
    return handler.metadata(absolute(state_dir)).tree
  finally:
    handler.close()


def _restore_tree(state_dir: epath.Path, item: PyTree,
                  restore_args: PyTree) -> PyTree:
  """Reads the leaves named by `item` (a sub-tree of the checkpoint's)."""
  args = ocp.args.PyTreeRestore(item=item, restore_args=restore_args,
                                partial_restore=True)
  with ocp.PyTreeCheckpointer() as checkpointer:
    return checkpointer.restore(state_dir, args=args)


def restore_state_tree(state_dir: epath.PathLike, abstract: PyTree, *,
                       strict: bool = True, fallback: PyTree = None) -> PyTree:
  """Restores `abstract`'s leaves onto their requested shardings.

  Args:
    state_dir: an Orbax PyTree item folder.
    abstract: tree of `jax.ShapeDtypeStruct(shape, dtype, sharding=...)`;
      each leaf is read straight into its sharding (no full copy per host)
      and cast to its dtype.
    strict: every leaf of `abstract` must be in the checkpoint.
    fallback: concrete tree giving the values of leaves the checkpoint lacks
      (needed when `strict` is False and something is missing).

  Returns:
    The restored tree, same structure as `abstract`.
  """
  state_dir = absolute(state_dir)
  found = read_tree_metadata(state_dir)
  missing = check_tree_fits(abstract, found, strict=strict,
                            where=str(state_dir))
  if not missing:
    return _restore_tree(state_dir, abstract,
                         ocp.checkpoint_utils.construct_restore_args(abstract))
  if fallback is None:
    raise CheckpointMismatchError(
        f"Checkpoint {state_dir} lacks {missing}; strict=False needs a "
        "fallback state with initial values for them.")
  logging.warning("Checkpoint %s lacks %d arrays; keeping their initial "
                  "values: %s", state_dir, len(missing), ", ".join(missing))
  item = _prune(abstract, set(missing))
  restored = _restore_tree(state_dir, item,
                           ocp.checkpoint_utils.construct_restore_args(item))
  return _merge(fallback, restored)


def restore_train_state(state_dir: epath.PathLike, abstract: PyTree, *,
                        strict: bool = True, fallback: PyTree = None
                        ) -> PyTree:
  """`restore_state_tree` for a train state saved in either layout.

  `abstract` and `fallback` are in memory's `{"step", "params",
  "opt_state"}`; a T5X-layout checkpoint is asked for the same leaves under
  T5X's names (its unused Adafactor slots are never read).
  """
  state_dir = absolute(state_dir)
  if not t5x_state.is_t5x_layout(read_tree_metadata(state_dir)):
    return restore_state_tree(state_dir, abstract, strict=strict,
                              fallback=fallback)
  renamed_fallback = (None if fallback is None else
                      t5x_state.to_t5x_names(fallback))
  restored = restore_state_tree(state_dir, t5x_state.to_t5x_names(abstract),
                                strict=strict, fallback=renamed_fallback)
  return t5x_state.from_t5x_names(restored)


def _params_key(found: PyTree, where: epath.Path) -> str:
  """Where the parameters live: ours `params`, upstream T5X `target`."""
  for key in ("params", "target"):
    if key in found:
      return key
  raise CheckpointMismatchError(
      f"Checkpoint {where} has no parameters: expected a 'params' (aya_t5x) "
      f"or 'target' (T5X) sub-tree, found {sorted(found)}.")


def restore_params_tree(state_dir: epath.PathLike, abstract_params: PyTree, *,
                        strict: bool = True,
                        fallback_params: PyTree = None) -> PyTree:
  """Restores only the parameters, from our layout or upstream T5X's."""
  state_dir = absolute(state_dir)
  found = read_tree_metadata(state_dir)
  key = _params_key(found, state_dir)
  missing = check_tree_fits(abstract_params, found[key], strict=strict,
                            where=f"{state_dir} ({key}/...)")
  if missing and fallback_params is None:
    raise CheckpointMismatchError(
        f"Checkpoint {state_dir} lacks {missing}; strict=False needs a "
        "fallback state with initial values for them.")
  if missing:
    logging.warning("Checkpoint %s lacks %d parameters; keeping their "
                    "initial values: %s", state_dir, len(missing),
                    ", ".join(missing))
  item = {key: _prune(abstract_params, set(missing))}
  restored = _restore_tree(state_dir, item,
                           ocp.checkpoint_utils.construct_restore_args(item))
  return _merge(fallback_params, restored[key]) if missing else restored[key]


def read_t5x_orbax_params(path: epath.PathLike) -> dict[str, Any]:
  """The parameters (`target` tree) of an upstream T5X Orbax checkpoint.

  Reads on the host as numpy arrays, whatever the saved sharding, so it
  works on any machine (conversion, tests, inspection).

  Args:
    path: a T5X `checkpoint_N` folder or its `state` item.

  Returns:
    Nested dict of numpy arrays, e.g. `["token_embedder"]["embedding"]`.
  """
  state_dir = resolve_state_dir(path)
  found = read_tree_metadata(state_dir)
  key = _params_key(found, state_dir)
  item = {key: found[key]}
  restore_args = jax.tree.map(
      lambda m: ocp.RestoreArgs(restore_type=np.ndarray), item)
  return _restore_tree(state_dir, item, restore_args)[key]


def _reset_step(state: PyTree) -> PyTree:
  """`state` with `step` = 0, keeping the step's dtype and sharding."""
  if not isinstance(state, Mapping) or "step" not in state:
    raise ValueError("reset_step needs a dict state with a 'step' entry.")
  step = state["step"]
  # `.dtype`, not np.asarray: a replicated multi-host array is not addressable.
  zero = np.zeros(np.shape(step), getattr(step, "dtype", np.int32))
  sharding = getattr(step, "sharding", None)
  return {**state, "step": jax.device_put(zero, sharding)}


# ------------------------------------------------------------ checkpointer ---


class Checkpointer:
  """Saves and restores `MODEL_DIR/checkpoint_<step>` (items state, dataset).

  Every process must call `save` and the restore methods (Orbax coordinates
  the hosts); only finished checkpoints are ever listed or restored.
  """

  def __init__(self, model_dir: epath.PathLike,
               config: CheckpointConfig | None = None,
               read_only: bool = False):
    self._config = config or CheckpointConfig()
    self._dir = absolute(model_dir)
    self._name_format = _CommittedStepNameFormat()
    self._saving_step: int | None = None  # The save the manifest hook is for.
    if self._config.cleanup_tmp_dirs and not read_only:
      self._set_aside_incomplete()
    self._manager = ocp.CheckpointManager(
        self._dir,
        item_handlers={STATE_ITEM: ocp.PyTreeCheckpointHandler(),
                       DATASET_ITEM: DatasetCheckpointHandler()},
        options=self._manager_options(read_only))

  def _manager_options(self, read_only: bool) -> ocp.CheckpointManagerOptions:
    policies = ocp.checkpoint_managers
    return ocp.CheckpointManagerOptions(
        step_name_format=self._name_format,
        # Periodic saves plus JAX's multi-host preemption sync point (a no-op
        # unless jax.distributed runs its preemption service).
        save_decision_policy=policies.AnySavePolicy([
            policies.FixedIntervalPolicy(self._config.period),
            policies.PreemptionCheckpointingPolicy()]),
        preservation_policy=policies.LatestN(n=self._config.keep),
        # Always async: Orbax's hook that writes the integrity manifest
        # before the commit exists only there. `async_save=False` waits.
        enable_async_checkpointing=True,
        async_options=ocp.AsyncOptions(
            post_finalization_callback=self._write_manifest),
        cleanup_tmp_directories=self._config.cleanup_tmp_dirs and not read_only,
        read_only=read_only,
        create=not read_only)

  @property
  def config(self) -> CheckpointConfig:
    return self._config

  @property
  def directory(self) -> epath.Path:
    return self._dir

  def all_steps(self) -> list[int]:
    """Finished (or, during an async save, in-flight) checkpoint steps."""
    return sorted(self._manager.all_steps())

  def latest_step(self) -> int | None:
    """Newest finished checkpoint step in MODEL_DIR, None if there is none."""
    return self._manager.latest_step()

  def should_save(self, step: int) -> bool:
    """Whether `save(step, ...)` would write a checkpoint (on the period)."""
    step = int(step)
    return (step not in self._manager.all_steps() and
            self._manager.should_save(step))

  def save(self, step: int, state: PyTree,
           data_iterator: DataIterator | None = None,
           force: bool = False) -> bool:
    """Saves at `step` if it is on the period (or `force`); True if it did.

    Returns once the arrays are copied to host memory, so the caller may
    donate or overwrite `state`; files are written in the background when
    `async_save` (call `wait_until_finished` before relying on them).
    """
    step = int(step)
    if step in self._manager.all_steps():
      logging.info("Checkpoint for step %d already exists; not saving.", step)
      return False
    if not force and not self._manager.should_save(step):
      return False
    self._set_aside_broken_folder(step)
    items = {STATE_ITEM: ocp.args.PyTreeSave(t5x_state.to_t5x(state))}
    if data_iterator is not None:
      items[DATASET_ITEM] = DatasetSave(data_iterator)
    self._manager.wait_until_finished()  # The hook serves one save at a time.
    self._saving_step = step
    saved = self._manager.save(
        step, args=ocp.args.Composite(**items), force=True,
        custom_metadata={integrity.PROMISE_KEY: integrity.FORMAT})
    if saved:
      logging.info("Saving checkpoint %s.", step_dir(self._dir, step))
    if not self._config.async_save:
      self._manager.wait_until_finished()
    return saved

  def _write_manifest(self) -> None:
    """Orbax's post-finalization hook: the files are all written, the folder
    not yet committed (renamed, or marked on object stores)."""
    if jax.process_index() != 0 or self._saving_step is None:
      return
    final = step_dir(self._dir, self._saving_step)
    pending = sorted(self._dir.glob(f"{final.name}{_TMP_MARKER}*"))
    integrity.write_manifest(pending[-1] if pending else final)

  def _set_aside_broken_folder(self, step: int) -> None:
    """Renames an unfinished `checkpoint_<step>` so the save can take its name.

    Orbax's final rename fails onto an existing folder; the old one is kept
    (renamed) for inspection rather than deleted.
    """
    target = step_dir(self._dir, step)
    if jax.process_index() == 0 and target.exists():
      aside = set_aside(target, INCOMPLETE_PREFIX)
      logging.warning("Moving unfinished checkpoint %s to %s before saving "
                      "step %d again.", target, aside, step)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices(f"aya_t5x_set_aside_{step}")

  def wait_until_finished(self) -> None:
    """Blocks until every started save is committed."""
    self._manager.wait_until_finished()

  def restore(self, abstract_state: PyTree, step: int | None = None,
              data_iterator: DataIterator | None = None,
              replay: DataReplay | None = None) -> PyTree:
    """Resumes this run: the state (and iterator) saved at `step` or latest.

    Each checkpoint is verified (`aya_t5x.integrity`) before it is read; one
    that fails, or cannot be read, is set aside (`corrupt.checkpoint_N.*`)
    with one warning naming the file and the reason, and the next older one
    is tried.

    Raises:
      FileNotFoundError: no finished checkpoint (or not this step), or none
        that verifies.
      CheckpointMismatchError: the saved tree does not fit `abstract_state`.
      DataStateError: the iterator state is missing or unreadable and
        `replay` does not allow starting the data again.
    """
    self.wait_until_finished()
    self._manager.reload()
    steps = self.all_steps() if step is None else [int(step)]
    if not steps or steps[-1] not in self._manager.all_steps():
      raise FileNotFoundError(
          f"No finished checkpoint{'' if step is None else f' for step {step}'}"
          f" in {self._dir}; found steps {self.all_steps()}.")
    for candidate in reversed(steps):
      path = step_dir(self._dir, candidate)
      state, problem = _restore_verified(path, abstract_state)
      if problem is None:
        _restore_dataset(path, data_iterator, candidate,
                         replay or DataReplay())
        return state
      self._set_aside_corrupt(path, problem)
      if step is not None:
        break
    raise FileNotFoundError(
        f"No checkpoint in {self._dir} passed verification (each one was "
        f"moved to {CORRUPT_PREFIX}*, with a warning naming the bad file); "
        "run again to start from scratch, or restore a copy.")

  def _set_aside_incomplete(self) -> None:
    """Moves cut-off `checkpoint_N` folders out of the way at start-up, one
    warning each (the run's single writer only, like Orbax's tmp clean-up)."""
    if jax.process_index() == 0 and self._dir.exists():
      standard = ocp.step.standard_name_format(step_prefix=STEP_PREFIX)
      for metadata in standard.find_all(self._dir):
        reason = incomplete_reason(metadata.path)
        if reason is not None:
          aside = set_aside(metadata.path, INCOMPLETE_PREFIX)
          logging.warning("Checkpoint %s is incomplete, set aside as %s: %s.",
                          metadata.path.name, aside.name, reason)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices("aya_t5x_set_aside_incomplete")

  def _set_aside_corrupt(self, path: epath.Path, problem: str) -> None:
    """Moves a checkpoint that failed out of the listing, with ONE warning."""
    if jax.process_index() == 0:
      aside = set_aside(path, CORRUPT_PREFIX)
      logging.warning("Checkpoint %s is damaged, set aside as %s: %s. "
                      "Resuming from an earlier one.", path.name, aside.name,
                      problem)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices(f"aya_t5x_corrupt_{path.name}")
    self._manager.reload()

  def restore_from_path(self, path: epath.PathLike, abstract_state: PyTree, *,
                        data_iterator: DataIterator | None = None,
                        params_only: bool = False,
                        fallback_state: PyTree = None,
                        reset_step: bool = False,
                        strict: bool = True) -> PyTree:
    """Restores a given checkpoint, e.g. pretrained weights to finetune.

    Args:
      path: a `checkpoint_N` folder (ours or upstream T5X Orbax) or its
        `state` item folder.
      abstract_state: the model's state as ShapeDtypeStructs with shardings.
      data_iterator: restored too if given and the checkpoint holds its state.
      params_only: read only `params` (`target` in T5X checkpoints); the rest
        of the state, step included, comes from `fallback_state`.
      fallback_state: initialized state; needed for `params_only` and for
        missing parameters when not `strict`.
      reset_step: set the step to 0 afterwards.
      strict: every parameter must be in the checkpoint.

    Returns:
      The restored state.
    """
    return restore_from_path(path, abstract_state, data_iterator=data_iterator,
                             params_only=params_only,
                             fallback_state=fallback_state,
                             reset_step=reset_step, strict=strict)

  def close(self) -> None:
    """Waits for pending saves and releases Orbax's threads."""
    self._manager.wait_until_finished()
    self._manager.close()

  def __enter__(self) -> Checkpointer:
    return self

  def __exit__(self, *unused_exc_info) -> None:
    self.close()


def restore_from_path(path: epath.PathLike, abstract_state: PyTree, *,
                      data_iterator: DataIterator | None = None,
                      params_only: bool = False, fallback_state: PyTree = None,
                      reset_step: bool = False, strict: bool = True) -> PyTree:
  """See `Checkpointer.restore_from_path`; needs no run directory.

  `path` may also be a Hugging Face model folder or a legacy T5X checkpoint
  (recognised by their files); `aya_t5x.convert` reads their parameters
  tensor by tensor onto the devices.
  """
  path = absolute(path)
  # Imported here: aya_t5x.convert builds on this module.
  from aya_t5x.convert import sources  # pylint: disable=g-import-not-at-top
  if sources.detect_format(path) is not None:
    state = sources.restore_params_into(path, abstract_state, fallback_state,
                                        params_only=params_only, strict=strict)
    return _reset_step(state) if reset_step else state
  state_dir = resolve_state_dir(path)
  checkpoint_dir = state_dir.parent if state_dir.name == STATE_ITEM else path
  reason = incomplete_reason(checkpoint_dir)
  if state_dir.name == STATE_ITEM and reason is not None:
    # Named explicitly, so read it anyway: external tools may not write the
    # step-level markers. The user still hears about it.
    logging.warning("Checkpoint %s may be incomplete: %s.", checkpoint_dir,
                    reason)
  logging.info("Restoring %s from %s.", "params" if params_only else "state",
               state_dir)
  if params_only:
    state = _restore_params_into(state_dir, abstract_state, fallback_state,
                                 strict)
  else:
    fallback = fallback_state if not strict else None
    state = restore_train_state(state_dir, abstract_state, strict=strict,
                                fallback=fallback)
  if data_iterator is not None and not has_dataset_state(checkpoint_dir):
    # Finetuning from another run: its data position is optional.
    logging.info("Checkpoint %s has no dataset state; the data iterator "
                 "starts from its beginning.", checkpoint_dir)
  else:
    _restore_dataset(checkpoint_dir, data_iterator, 0, DataReplay())
  return _reset_step(state) if reset_step else state


def _restore_params_into(state_dir: epath.Path, abstract_state: PyTree,
                         fallback_state: PyTree, strict: bool) -> PyTree:
  """`fallback_state` with its `params` read from the checkpoint."""
  if fallback_state is None or "params" not in fallback_state:
    raise ValueError("params_only=True needs fallback_state: the initialized "
                     "state whose optimizer state and step are kept.")
  params = restore_params_tree(state_dir, abstract_state["params"],
                               strict=strict,
                               fallback_params=fallback_state["params"])
  return {**fallback_state, "params": params}


def restore_or_init(checkpointer: Checkpointer,
                    config: RestoreCheckpointConfig,
                    abstract_state: PyTree,
                    init_state: Callable[[], PyTree],
                    data_iterator: DataIterator | None = None,
                    examples_per_step: int | None = None) -> PyTree:
  """A run's initial state, with T5X's precedence.

  1. The newest finished checkpoint in MODEL_DIR (re-running a train command
     resumes it, data iterator included).
  2. Else `config.path` (finetuning from a pretrained checkpoint).
  3. Else `init_state()`, a fresh initialization.
  """
  if checkpointer.latest_step() is not None:
    replay = DataReplay(config.allow_data_replay, examples_per_step)
    return checkpointer.restore(abstract_state, data_iterator=data_iterator,
                                replay=replay)
  if config.path is None:
    logging.info("No checkpoint in %s and no restore path: initializing.",
                 checkpointer.directory)
    return init_state()
  path = _path_for_mode(config)
  needs_init = config.params_only or not config.strict
  return restore_from_path(
      path, abstract_state,
      data_iterator=data_iterator if config.restore_dataset else None,
      params_only=config.params_only,
      fallback_state=init_state() if needs_init else None,
      reset_step=config.reset_step, strict=config.strict)


def _path_for_mode(config: RestoreCheckpointConfig) -> epath.Path:
  """The checkpoint folder `config` names (newest one for mode 'latest')."""
  if config.mode == "specific":
    return absolute(config.path)
  steps = committed_steps(config.path)
  if not steps:
    raise FileNotFoundError(f"RestoreCheckpointConfig(mode='latest'): no "
                            f"finished checkpoint in {config.path}.")
  return step_dir(config.path, steps[-1])


# -------------------------------------------------------------- preemption ---


def _jax_preemption_service_running() -> bool:
  """Whether jax.distributed started its preemption sync manager.

  Reads a private field (there is no public query); any failure means no.
  """
  try:
    from jax._src import distributed  # pylint: disable=g-import-not-at-top
    return distributed.global_state.preemption_sync_manager is not None
  except (ImportError, AttributeError):
    return False


class PreemptionHandler:
  """Turns a termination signal into a flag the train loop polls.

  Usage:
    with PreemptionHandler() as preemption:
      for step in ...:
        ...
        if preemption.should_stop(step):
          checkpointer.save(step, state, data_iterator, force=True)
          checkpointer.wait_until_finished()
          break

  Single process: SIGTERM (and any other signal listed) sets the flag; the
  first signal of a kind is caught, a second one gets the previous handler,
  so a stuck save can still be interrupted.

  Multi-process: hosts must agree on the step to save at, or the collective
  save deadlocks. If jax.distributed runs its preemption service, it catches
  SIGTERM itself and `jax.experimental.multihost_utils.
  reached_preemption_sync_point(step)` decides (no Python handler is
  installed, as it would replace JAX's). Otherwise the local flags are
  combined every step with an all-gather, so `should_stop(step)` must be
  called by every process at every step.
  """

  def __init__(self, signals: Sequence[int] = (signal.SIGTERM,)):
    self._signals = tuple(signals)
    self._previous: dict[int, Any] = {}
    self._received: int | None = None
    self._use_jax_sync_point = False

  @property
  def received(self) -> bool:
    """Whether this process caught one of the signals."""
    return self._received is not None

  def __enter__(self) -> PreemptionHandler:
    multi = jax.process_count() > 1
    self._use_jax_sync_point = multi and _jax_preemption_service_running()
    if self._use_jax_sync_point:
      logging.info("Preemption: using JAX's multi-host sync point.")
      return self
    if threading.current_thread() is not threading.main_thread():
      raise RuntimeError("PreemptionHandler must be entered on the main "
                         "thread (Python delivers signals only there).")
    for signum in self._signals:
      self._previous[signum] = signal.signal(signum, self._on_signal)
    return self

  def __exit__(self, *unused_exc_info) -> None:
    for signum, previous in self._previous.items():
      signal.signal(signum, previous)
    self._previous.clear()

  def _on_signal(self, signum: int, unused_frame: Any) -> None:
    self._received = signum
    signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))
    logging.warning("Received %s: saving a checkpoint and stopping at the end "
                    "of this step.", signal.Signals(signum).name)

  def should_stop(self, step: int | None = None) -> bool:
    """True once the run should checkpoint and exit (same on all hosts)."""
    if self._use_jax_sync_point:
      if step is None:
        raise ValueError("should_stop(step) needs the step in multi-process "
                         "runs (JAX's preemption sync point).")
      return bool(multihost_utils.reached_preemption_sync_point(int(step)))
    if jax.process_count() > 1:
      flags = multihost_utils.process_allgather(np.asarray(self.received))
      return bool(np.any(flags))
    return self.received

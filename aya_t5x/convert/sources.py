"""Where imported weights come from, and how they land in a parameter tree.

A `ParamSource` offers T5X parameters by unrolled path, one array at a time:
a Hugging Face folder (`hf.HfSource`), a legacy T5X checkpoint
(`t5x_legacy.LegacyT5xSource`), or arrays already in memory (`ArraySource`).
`assemble` fills a target tree, unrolled or scanned, leaf by leaf, so the
host holds at most one source tensor besides what it has placed; placing on
devices as it goes (`restore_params_into`, used by `INITIAL_CHECKPOINT_PATH`)
keeps even that bounded by the largest tensor.

Every mismatch is found before any tensor is read and reported together,
each by the name the checkpoint uses (Hugging Face tensor or T5X array).
"""

from typing import Any, Callable, Mapping, Protocol

from absl import logging
from etils import epath
import flax.linen as nn
import jax
import numpy as np
import orbax.checkpoint as ocp

from aya_t5x import checkpoints
from aya_t5x import model as model_lib
from aya_t5x import network
from aya_t5x import partitioning
from aya_t5x import progress
from aya_t5x import t5x_state
from aya_t5x.convert import hf
from aya_t5x.convert import layout
from aya_t5x.convert import t5x_legacy

PyTree = Any
Shape = tuple[int, ...]

HF = "hf"  # A Hugging Face model folder.
T5X_LEGACY = "t5x_legacy"  # A legacy (msgpack + zarr) T5X checkpoint.
FORMAT_NAMES = {HF: "Hugging Face model folder",
                T5X_LEGACY: "legacy T5X checkpoint"}
_CHUNK_BYTES = 32 * 2**20  # Zarr chunk size of converted checkpoints.
_HF_MARKERS = (hf.CONFIG_FILE, hf.SINGLE_FILE, hf.INDEX_FILE,
               *hf.UNSAFE_FILES)


class ParamSource(Protocol):
  """T5X parameters by unrolled path (`encoder/layers_0/...`)."""
  where: str  # The folder or file, for messages.

  def shapes(self) -> Mapping[str, Shape]:
    """Shape (T5X orientation) of every parameter the source holds."""

  def read_into(self, path: str, out: np.ndarray) -> None:
    """Writes parameter `path` into `out` (same shape), casting."""

  def name_of(self, path: str) -> str:
    """The source's own name for `path`, e.g. a Hugging Face tensor."""


class ArraySource:
  """A flat {unrolled path: array} dict seen as a `ParamSource`."""

  def __init__(self, flat_unrolled: Mapping[str, np.ndarray], where: str):
    self.where = where
    self._arrays = dict(flat_unrolled)

  def shapes(self) -> dict[str, Shape]:
    return {p: tuple(np.shape(a)) for p, a in self._arrays.items()}

  def read_into(self, path: str, out: np.ndarray) -> None:
    out[...] = self._arrays[path]

  def name_of(self, path: str) -> str:
    return f"parameter {path} ({self.where})"


# --------------------------------------------------------------- detection ---


def detect_format(path: epath.PathLike) -> str | None:
  """`HF`, `T5X_LEGACY`, or None (e.g. an Orbax checkpoint), from the files."""
  path = epath.Path(path)
  if any((path / name).exists() for name in _HF_MARKERS):
    return HF
  if t5x_legacy.is_legacy_checkpoint(path):
    return T5X_LEGACY
  return None


def open_source(path: epath.PathLike) -> ParamSource:
  """The `ParamSource` of a Hugging Face folder or legacy T5X checkpoint.

  Raises:
    FileNotFoundError: `path` is neither.
  """
  kind = detect_format(path)
  if kind == HF:
    if str(path).startswith("gs://"):
      raise FileNotFoundError(f"{path}: Hugging Face folders are read from a "
                              "local disk; copy it first.")
    return hf.HfSource(str(path))
  if kind == T5X_LEGACY:
    return t5x_legacy.LegacyT5xSource(path)
  raise FileNotFoundError(
      f"{path} is neither a Hugging Face model folder (config.json + "
      f"{hf.SINGLE_FILE} or {hf.INDEX_FILE}) nor a legacy T5X checkpoint "
      f"(a `{t5x_legacy.CHECKPOINT_FILE}` msgpack file).")


# ---------------------------------------------------------------- assembly ---


def _leaf_shapes(expected: Mapping[str, Any]) -> dict[str, Shape]:
  return {p: tuple(getattr(v, "shape", v)) for p, v in expected.items()}


def check_fits(source: ParamSource, expected: Mapping[str, Any], *,
               strict: bool = True) -> list[str]:
  """Checks `source` can fill `expected` before anything is read.

  Args:
    source: where the parameters come from.
    expected: {path: shape or ShapeDtypeStruct} of the target tree (scanned
      paths have a leading layer axis).
    strict: every target parameter and every source tensor must be used.

  Returns:
    Target paths the source lacks (only possible when not `strict`).

  Raises:
    checkpoints.CheckpointMismatchError: naming every missing, misshapen or
      (when strict) unused tensor by the source's own names.
  """
  have = source.shapes()
  missing, absent_names, mismatched, used = [], [], [], set()
  for path, shape in _leaf_shapes(expected).items():
    parts = layout.unrolled_paths(path, shape)
    part_shape = shape[1:] if layout.is_scanned(path) else shape
    absent = [p for p in parts if p not in have]
    if absent:
      missing.append(path)
      absent_names += [source.name_of(p) for p in absent]
    for part in parts:
      if part in have:
        used.add(part)
        if tuple(have[part]) != tuple(part_shape):
          mismatched.append(
              f"{source.name_of(part)} has shape {tuple(have[part])} as T5X "
              f"{part}, the model expects {tuple(part_shape)}")
  unused = sorted(source.name_of(p) for p in set(have) - used)
  _report(source, absent_names if strict else [], mismatched,
          unused if strict else [])
  if unused:
    logging.warning("%s: %d tensors unused by the model, e.g. %s.",
                    source.where, len(unused), ", ".join(unused[:3]))
  if missing:
    logging.warning("%s lacks %d parameters; keeping their initial values: "
                    "%s", source.where, len(missing), ", ".join(absent_names))
  return missing


def _report(source: ParamSource, absent: list[str], mismatched: list[str],
            unused: list[str]) -> None:
  problems = []
  if absent:
    problems.append("missing: " + ", ".join(absent))
  if mismatched:
    problems.append("shape mismatch: " + "; ".join(mismatched))
  if unused:
    problems.append("not used by the model: " + ", ".join(unused))
  if problems:
    raise checkpoints.CheckpointMismatchError(
        f"{source.where} does not fit the model: {'. '.join(problems)}. Check "
        "that the gin model matches the checkpoint's architecture "
        "(`python -m aya_t5x.convert hf_to_aya` writes a model.gin that "
        "does).")


def assemble(source: ParamSource, expected: Mapping[str, Any], *,
             place: Callable[[np.ndarray, Any], Any] = lambda host, _: host,
             fallback: Mapping[str, Any] | None = None,
             missing: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
  """Builds {path: leaf} for `expected`, reading one parameter at a time.

  Args:
    source: checked with `check_fits` first.
    expected: {path: ShapeDtypeStruct} of the target tree; scanned paths get
      their layers stacked on axis 0.
    place: turns the filled host buffer into the leaf (e.g. onto devices),
      given the buffer and `expected[path]`; the buffer is dropped after.
    fallback: {path: leaf} for the `missing` paths.
    missing: paths `check_fits` found absent (taken from `fallback`).

  Returns:
    {path: placed leaf}, in `expected`'s order.
  """
  out = {}
  bar = progress.Progress(len(expected), "read", unit="tensor",
                          enabled=jax.process_index() == 0)
  for path, struct in expected.items():
    if path in missing:
      out[path] = fallback[path]
      bar.update()
      continue
    host = np.empty(struct.shape, np.dtype(getattr(struct, "dtype",
                                                   np.float32)))
    if layout.is_scanned(path):
      for i, part in enumerate(layout.unrolled_paths(path, struct.shape)):
        source.read_into(part, host[i])
    else:
      source.read_into(path, host)
    out[path] = place(host, struct)
    del host
    bar.update()
  bar.close()
  return out


def _on_devices(host: np.ndarray, struct: Any) -> jax.Array:
  """One host array onto its sharding; each device takes only its slice."""
  sharding = getattr(struct, "sharding", None)
  if sharding is None:
    return jax.numpy.asarray(host)
  return jax.make_array_from_callback(host.shape, sharding,
                                      lambda index: host[index])


def abstract_params(config: network.T5Config
                    ) -> dict[str, jax.ShapeDtypeStruct]:
  """{path: ShapeDtypeStruct} of the parameters of an architecture."""
  boxed = partitioning.abstract_boxed_params(
      model_lib.EncoderDecoderModel(config))
  return layout.flatten(nn.meta.unbox(boxed))


# ----------------------------------------------------- restore (training) ---


def _log_hidden_architecture(source: ParamSource) -> None:
  """Says which config.json values tensor shapes cannot confirm."""
  config = getattr(source, "t5_config", None)
  if config is None:
    return
  logging.info("%s/config.json: relative_attention_max_distance=%d, "
               "layer_norm_epsilon=%g; the gin model must use the same (no "
               "tensor shape shows them).", source.where,
               config.relative_attention_max_distance,
               config.layer_norm_epsilon)


def restore_params_into(path: epath.PathLike, abstract_state: PyTree,
                        fallback_state: PyTree, *, params_only: bool,
                        strict: bool) -> PyTree:
  """`fallback_state` with its params read from a foreign checkpoint.

  This is `checkpoints.restore_from_path` for the formats `detect_format`
  recognises: each parameter goes straight onto its devices.

  Raises:
    checkpoints.CheckpointMismatchError: `params_only` is False (these
      formats carry no optimizer state of ours), or the tensors do not fit.
  """
  kind = detect_format(path)
  if not params_only:
    raise checkpoints.CheckpointMismatchError(
        f"{path} is a {FORMAT_NAMES.get(kind, 'foreign checkpoint')}: it "
        "holds parameters only. Restore it with params_only=True, as "
        "gin/runs/finetune.gin does for INITIAL_CHECKPOINT_PATH.")
  if fallback_state is None or "params" not in fallback_state:
    raise ValueError("params_only=True needs fallback_state: the initialized "
                     "state whose optimizer state and step are kept.")
  source = open_source(path)
  _log_hidden_architecture(source)
  expected = layout.flatten(abstract_state["params"])
  missing = check_fits(source, expected, strict=strict)
  params = assemble(source, expected, place=_on_devices, missing=missing,
                    fallback=layout.flatten(fallback_state["params"]))
  logging.info("Restored %d parameters from %s.", len(params), path)
  return {**fallback_state, "params": layout.unflatten(params)}


# ------------------------------------------------------------ orbax output ---


def _no_copy_registry():
  """Orbax's type handlers, but numpy arrays are written without a copy.

  Orbax deep-copies host arrays before an async save; our save is
  synchronous and the arrays are not touched meanwhile, so the copy would
  only double the host memory of a conversion.
  """
  handlers = ocp.type_handlers
  return handlers.create_type_handler_registry(*[
      (ty, handlers.NumpyHandler(deepcopy_host_arrays=False)
       if ty is np.ndarray else handlers.get_type_handler(ty))
      for ty in handlers.supported_types()])


def write_checkpoint(output_dir: epath.PathLike, params: PyTree
                     ) -> epath.Path:
  """Writes `MODEL_DIR/checkpoint_0` holding `{"target", "state": {"step"}}`.

  The names are our Checkpointer's (T5X's), with no optimizer state, so
  `INITIAL_CHECKPOINT_PATH` and `restore_from_path(..., params_only=True)`
  read it. Arrays are written as
  plain zarr (not OCDBT), which buffers nothing beyond the array being
  written, in chunks of at most 32 MiB: peak host memory stays near one
  copy of the parameters.

  Raises:
    FileExistsError: `output_dir/checkpoint_0` exists.
  """
  target = checkpoints.step_dir(output_dir, 0)
  if target.exists():
    raise FileExistsError(f"{target} exists; convert into a new --output_dir.")
  handler = ocp.PyTreeCheckpointHandler(
      use_ocdbt=False, type_handler_registry=_no_copy_registry())
  options = ocp.CheckpointManagerOptions(
      step_name_format=ocp.step.standard_name_format(
          step_prefix=checkpoints.STEP_PREFIX),
      enable_async_checkpointing=False, create=True)
  state = t5x_state.to_t5x_names({"step": np.zeros((), np.int32),
                                  "params": params})
  # Bounded chunks bound the encoding buffers TensorStore holds while writing.
  save_args = jax.tree.map(
      lambda _: ocp.SaveArgs(chunk_byte_size=_CHUNK_BYTES), state)
  with ocp.CheckpointManager(checkpoints.absolute(output_dir),
                             item_handlers={checkpoints.STATE_ITEM: handler},
                             options=options) as manager:
    manager.save(0, args=ocp.args.Composite(**{
        checkpoints.STATE_ITEM: ocp.args.PyTreeSave(state,
                                                    save_args=save_args)}),
                 force=True)
    manager.wait_until_finished()
  return target

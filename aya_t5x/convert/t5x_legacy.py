"""Upstream T5X's legacy checkpoint format (the public mT5 checkpoints).

`gs://t5-data/pretrained_models/t5x/mt5_*/checkpoint_N` folders hold:
  * `checkpoint`: msgpack (flax serialization) of
    `{"version", "optimizer": {"target": params, "state": ...}}`, in which
    every large array is replaced by a TensorStore spec and small ones are
    inline flax-encoded numpy arrays;
  * one zarr folder per replaced array, named after its dotted path
    (`target.encoder.layers_0.mlp.wi_0.kernel`).
Everything is read through TensorStore, so a `gs://` folder is read in place
(no download step) as well as a local one. Only the parameters (`target`) are
read: finetuning starts a fresh optimizer state, as T5X's own finetuning does.
"""

import os
from typing import Any, Mapping

from etils import epath
from flax import serialization
import numpy as np
import tensorstore as ts

CHECKPOINT_FILE = "checkpoint"  # The msgpack file of a legacy checkpoint.
BLOCK_BYTES = 32 * 2**20  # Read granularity of one array.


class LegacyCheckpointError(ValueError):
  """A legacy T5X checkpoint we cannot read; names the file or array."""


def is_legacy_checkpoint(path: epath.PathLike) -> bool:
  """Whether `path` is a legacy T5X `checkpoint_N` folder (local or gs://)."""
  return epath.Path(path, CHECKPOINT_FILE).is_file()


def kvstore_spec(directory: str) -> dict[str, Any]:
  """TensorStore key-value store of a folder: local disk or GCS."""
  if directory.startswith("gs://"):
    bucket, _, prefix = directory[len("gs://"):].partition("/")
    prefix = prefix.strip("/")
    return {"driver": "gcs", "bucket": bucket,
            "path": f"{prefix}/" if prefix else ""}
  return {"driver": "file", "path": os.path.abspath(directory) + "/"}


def _read_msgpack(directory: str) -> Mapping[str, Any]:
  kvstore = ts.KvStore.open(kvstore_spec(directory)).result()
  result = kvstore.read(CHECKPOINT_FILE).result()
  if result.state != "value":
    raise FileNotFoundError(f"{directory}/{CHECKPOINT_FILE} not found: not a "
                            "legacy T5X checkpoint folder.")
  try:
    return serialization.msgpack_restore(bytes(result.value))
  except Exception as e:  # msgpack raises several unrelated types.
    raise LegacyCheckpointError(f"{directory}/{CHECKPOINT_FILE} is not a "
                                f"flax msgpack file ({e!r}).") from None


def _is_spec(value: Any) -> bool:
  """A TensorStore spec left where an array was (params have no `driver`)."""
  return isinstance(value, Mapping) and "driver" in value


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
  """{"a/b": leaf}, where a leaf is an inline array or a TensorStore spec."""
  flat = {}
  for key, value in tree.items():
    path = f"{prefix}/{key}" if prefix else str(key)
    if isinstance(value, Mapping) and not _is_spec(value):
      flat.update(_flatten(value, path))
    else:
      flat[path] = value
  return flat


def _array_folder(spec: Mapping[str, Any]) -> str:
  """The folder name an array was written to, whatever base path it recorded.

  Specs record the path relative to the checkpoint (new T5X) or an absolute
  path of wherever it was first written (older T5X); only the last component
  is the array's own, so it is resolved against where the checkpoint is now.
  """
  kvstore = spec.get("kvstore") or {}
  base = kvstore.get("path", "") if isinstance(kvstore, Mapping) else ""
  full = f"{base.rstrip('/')}/{spec.get('path', '')}".strip("/")
  return full.rsplit("/", 1)[-1]


class LegacyT5xSource:
  """The parameters of a legacy T5X checkpoint (a `ParamSource`).

  Opening reads the msgpack file only; each array is read from its zarr
  folder when `read_into` asks for it.
  """

  def __init__(self, path: epath.PathLike):
    self.where = str(path).rstrip("/")
    tree = _read_msgpack(self.where)
    target = tree.get("optimizer", tree).get("target")
    if not isinstance(target, Mapping):
      raise LegacyCheckpointError(
          f"{self.where}/{CHECKPOINT_FILE}: no 'optimizer/target' parameter "
          f"tree; top-level keys are {sorted(tree)}.")
    self._leaves = _flatten(target)

  def _spec(self, leaf: Mapping[str, Any]) -> dict[str, Any]:
    kvstore = kvstore_spec(self.where)
    kvstore["path"] += _array_folder(leaf) + "/"
    return {"driver": leaf.get("driver", "zarr"), "kvstore": kvstore}

  def _open(self, path: str) -> Any:
    spec = self._spec(self._leaves[path])
    try:
      return ts.open(spec, open=True, read=True).result()
    except ValueError as e:
      raise LegacyCheckpointError(f"{self.name_of(path)}: cannot open "
                                  f"{spec['kvstore']} ({e}).") from None

  def shapes(self) -> dict[str, tuple[int, ...]]:
    """{T5X path: shape} of every parameter in the checkpoint."""
    shapes = {}
    for path, leaf in self._leaves.items():
      if not _is_spec(leaf):
        shapes[path] = tuple(np.shape(leaf))
      elif "shape" in (leaf.get("metadata") or {}):
        shapes[path] = tuple(leaf["metadata"]["shape"])
      else:
        shapes[path] = tuple(self._open(path).shape)
    return shapes

  def read_into(self, path: str, out: np.ndarray) -> None:
    """Reads parameter `path` into `out`, casting, a block of rows at a time.

    Blocks bound the temporary buffer (an mT5-XXL embedding is 4 GB).
    """
    leaf = self._leaves[path]
    if not _is_spec(leaf) or out.ndim == 0:
      out[...] = self._open(path).read().result() if _is_spec(leaf) else leaf
      return
    store = self._open(path)
    row_bytes = max(out[:1].nbytes, 1)
    rows = max(BLOCK_BYTES // row_bytes, 1)
    for start in range(0, out.shape[0], rows):
      stop = min(start + rows, out.shape[0])  # TensorStore does not clip.
      out[start:stop] = store[start:stop].read().result()

  def name_of(self, path: str) -> str:
    """How the checkpoint names a parameter, for messages."""
    return f"array 'target.{path.replace('/', '.')}' ({self.where})"

"""Streaming reader and writer of the safetensors file format.

The format is an 8-byte little-endian header length, a JSON header mapping
each tensor name to `{"dtype", "shape", "data_offsets": [begin, end]}` (plus
an optional `"__metadata__"` dict of strings), then the raw little-endian
bytes. We parse it ourselves rather than through `safetensors.safe_open`
because:
  * `safe_open(framework="numpy")` cannot return bfloat16 tensors, and
    finetuned checkpoints are often saved in bfloat16;
  * reading one tensor with `readinto` into a buffer we own (no mmap) keeps
    the resident memory of an import at one converted tree plus one tensor,
    which is what lets a 52 GB Aya-101 import fit on a host with ~60 GB;
  * writing tensor by tensor means an export never materialises a second
    copy of the model either.
Nothing here unpickles: a header is JSON and a tensor is bytes. Data is
little-endian, as on every host jax runs on.
"""

import dataclasses
import json
import os
import struct
from typing import BinaryIO, Callable, Iterable, Iterator, Mapping

import ml_dtypes
import numpy as np

# safetensors dtype names -> numpy dtypes (only float types carry weights).
_DTYPES = {
    "F64": np.dtype(np.float64),
    "F32": np.dtype(np.float32),
    "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "I64": np.dtype(np.int64),
    "I32": np.dtype(np.int32),
}
_NAMES = {dtype: name for name, dtype in _DTYPES.items()}
_MAX_HEADER_BYTES = 100 * 2**20  # The reference implementation's limit.
_ALIGNMENT = 8  # Data start is padded so every tensor can be 8-byte aligned.
BLOCK_BYTES = 32 * 2**20  # Read granularity of `read_blocks`.


class SafetensorsError(ValueError):
  """A safetensors file is malformed or lacks what was asked for."""


@dataclasses.dataclass(frozen=True)
class TensorInfo:
  """Where one tensor's bytes live."""
  name: str  # Tensor name in the header.
  file: str  # Path of the .safetensors file.
  dtype: np.dtype  # Stored element type.
  shape: tuple[int, ...]  # Stored shape.
  offset: int  # Absolute byte offset of the data in `file`.
  nbytes: int  # Number of data bytes.


def _parse_entry(path: str, name: str, entry: Mapping, data_start: int,
                 file_size: int) -> TensorInfo:
  """Validates one header entry; errors name the file and the tensor."""
  try:
    dtype_name, shape = entry["dtype"], tuple(int(d) for d in entry["shape"])
    begin, end = (int(x) for x in entry["data_offsets"])
  except (KeyError, TypeError, ValueError) as e:
    raise SafetensorsError(f"{path}: header entry of tensor {name!r} is "
                           f"malformed ({e!r}).") from None
  if dtype_name not in _DTYPES:
    raise SafetensorsError(f"{path}: tensor {name!r} has dtype {dtype_name}; "
                           f"supported: {sorted(_DTYPES)}.")
  dtype = _DTYPES[dtype_name]
  expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
  if end - begin != expected or begin < 0:
    raise SafetensorsError(
        f"{path}: tensor {name!r} spans bytes [{begin}, {end}) but "
        f"{dtype_name}{list(shape)} needs {expected} bytes.")
  if data_start + end > file_size:
    raise SafetensorsError(
        f"{path}: tensor {name!r} ends at byte {data_start + end} but the "
        f"file has {file_size} bytes (truncated download?).")
  return TensorInfo(name, path, dtype, shape, data_start + begin, expected)


def read_header(path: str) -> dict[str, TensorInfo]:
  """Name -> TensorInfo for every tensor of one .safetensors file.

  Raises:
    SafetensorsError: the file is not a valid safetensors file, naming it.
  """
  file_size = os.path.getsize(path)
  with open(path, "rb") as f:
    prefix = f.read(8)
    if len(prefix) < 8:
      raise SafetensorsError(f"{path}: {file_size} bytes is too short for a "
                             "safetensors file.")
    (header_size,) = struct.unpack("<Q", prefix)
    if header_size > min(_MAX_HEADER_BYTES, file_size - 8):
      raise SafetensorsError(f"{path}: header length {header_size} is "
                             "impossible; not a safetensors file?")
    try:
      header = json.loads(f.read(header_size))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
      raise SafetensorsError(f"{path}: header is not JSON ({e}).") from None
  if not isinstance(header, dict):
    raise SafetensorsError(f"{path}: header is not a JSON object.")
  header.pop("__metadata__", None)
  data_start = 8 + header_size
  return {name: _parse_entry(path, name, entry, data_start, file_size)
          for name, entry in header.items()}


def _read_span(info: TensorInfo, shape: tuple[int, ...], offset: int
               ) -> np.ndarray:
  out = np.empty(shape, info.dtype)
  with open(info.file, "rb") as f:
    f.seek(info.offset + offset)
    if f.readinto(memoryview(out.reshape(-1).view(np.uint8))) != out.nbytes:
      raise SafetensorsError(f"{info.file}: short read of tensor "
                             f"{info.name!r}.")
  return out


def read_tensor(info: TensorInfo) -> np.ndarray:
  """Reads one whole tensor, in its stored dtype, into a fresh buffer."""
  return _read_span(info, info.shape, 0)


def read_blocks(info: TensorInfo, max_bytes: int | None = None
                ) -> Iterator[tuple[int, np.ndarray]]:
  """(first row, rows) blocks of a tensor along axis 0, in its stored dtype.

  Rows are contiguous on disk, so a caller can convert or transpose a
  multi-GB tensor through a buffer of `max_bytes` instead of a full copy.
  """
  if not info.shape:
    yield 0, read_tensor(info)
    return
  max_bytes = max_bytes or BLOCK_BYTES
  row_bytes = max(info.nbytes // max(info.shape[0], 1), 1)
  rows_per_block = max(max_bytes // row_bytes, 1)
  for start in range(0, info.shape[0], rows_per_block):
    rows = min(rows_per_block, info.shape[0] - start)
    yield start, _read_span(info, (rows,) + info.shape[1:], start * row_bytes)


@dataclasses.dataclass(frozen=True)
class TensorPlan:
  """One tensor to write: its header entry and how to produce its data."""
  name: str  # Tensor name.
  shape: tuple[int, ...]  # Shape it will have.
  dtype: np.dtype  # Element type it is written in.
  # Called once, just before writing; may return a view (e.g. transposed).
  produce: Callable[[], np.ndarray]


def dtype_of(name: str) -> np.dtype:
  """The numpy dtype of "float32", "bfloat16" or "float16" (export flags)."""
  dtypes = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16,
            "float16": np.float16}
  if name not in dtypes:
    raise SafetensorsError(f"dtype {name!r}: expected one of "
                           f"{sorted(dtypes)}.")
  return np.dtype(dtypes[name])


def dtype_name(dtype: np.dtype) -> str:
  """The safetensors name ("F32", "BF16", ...) of a numpy dtype."""
  dtype = np.dtype(dtype)
  if dtype not in _NAMES:
    raise SafetensorsError(f"Cannot write dtype {dtype} to safetensors; "
                           f"supported: {sorted(_NAMES.values())}.")
  return _NAMES[dtype]


def _header_bytes(plans: Iterable[TensorPlan],
                  metadata: Mapping[str, str]) -> bytes:
  header, offset = {"__metadata__": dict(metadata)}, 0
  for plan in plans:
    nbytes = int(np.prod(plan.shape, dtype=np.int64)) * plan.dtype.itemsize
    header[plan.name] = {"dtype": dtype_name(plan.dtype),
                         "shape": list(plan.shape),
                         "data_offsets": [offset, offset + nbytes]}
    offset += nbytes
  raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
  return raw + b" " * (-len(raw) % _ALIGNMENT)


def write_file(path: str, plans: list[TensorPlan],
               metadata: Mapping[str, str] | None = None) -> None:
  """Writes `plans` in order, producing each tensor only when it is written.

  Raises:
    SafetensorsError: a produced tensor's shape differs from its plan.
  """
  header = _header_bytes(plans, metadata or {})
  tmp = path + ".tmp"
  with open(tmp, "wb") as f:
    f.write(struct.pack("<Q", len(header)))
    f.write(header)
    for plan in plans:
      _write_tensor(f, plan, path)
  os.replace(tmp, path)


def _write_tensor(f: BinaryIO, plan: TensorPlan, path: str) -> None:
  """Writes one tensor in blocks of rows, converting (and making contiguous,
  e.g. a transposed view) one block at a time."""
  array = plan.produce()
  if np.shape(array) != tuple(plan.shape):
    raise SafetensorsError(f"Tensor {plan.name!r} for {path} has shape "
                           f"{np.shape(array)}, planned {plan.shape}.")
  if array.ndim == 0:
    array = array.reshape(1)
  row_bytes = max(array[:1].size * plan.dtype.itemsize, 1)
  rows = max(BLOCK_BYTES // row_bytes, 1)
  for start in range(0, array.shape[0], rows):
    block = np.ascontiguousarray(array[start:start + rows], dtype=plan.dtype)
    f.write(memoryview(block.reshape(-1).view(np.uint8)))

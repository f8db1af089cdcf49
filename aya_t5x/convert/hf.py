"""Hugging Face T5/mT5 checkpoints: config.json, safetensors, import, export.

Import reads `config.json` into a `network.T5Config`, refusing what our
network cannot represent (naming the field), and reads the weights tensor by
tensor from `model.safetensors` or from the shards listed in
`model.safetensors.index.json`. Pickled weights (`pytorch_model.bin`) are
refused: loading them would run arbitrary code from the download.

Export writes safetensors plus a `config.json` that transformers loads as an
untied `MT5ForConditionalGeneration` (checked with transformers 5.23.0):
`lm_head.weight` is written as its own tensor and `tie_word_embeddings` is
false. Models with a tied head (T5 v1.0, `logits_via_embedding=True`) are
exported as `T5ForConditionalGeneration`, whose tied head scales the decoder
output by d_model**-0.5 exactly as our tied head does.

What the output head means differs between transformers versions, and we
follow 5.x: an `mt5` model never rescales its decoder output (the head is
whatever `lm_head.weight` holds), a `t5` model rescales and ties unless its
config says `tie_word_embeddings: false` (T5 v1.1, Flan-T5).
"""

import dataclasses
import json
import os
import shutil
from typing import Any, Mapping

from absl import logging
import numpy as np

from aya_t5x import network
from aya_t5x.convert import layout
from aya_t5x.convert import safetensors_io
from aya_t5x.convert import tokenizer

CONFIG_FILE = "config.json"
SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
SPM_FILE = "spiece.model"  # Where T5Tokenizer looks for SentencePiece.
# Weight files we never read: unpickling (or TF/flax loading) a download runs
# or trusts code; transformers can re-save them as safetensors.
UNSAFE_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json",
                "tf_model.h5", "flax_model.msgpack")
CHECKED_TRANSFORMERS_VERSION = "5.23.0"  # Export verified to load with it.

# config.json `feed_forward_proj` -> our `T5Config.mlp_activations`.
# transformers runs "gated-gelu" with the tanh GELU ("gelu_new"), as T5X does.
FEED_FORWARD = {"gated-gelu": ("gelu", "linear"), "relu": ("relu",)}
_MODEL_TYPES = ("mt5", "t5")
_REQUIRED = ("vocab_size", "d_model", "d_kv", "d_ff", "num_layers",
             "num_heads")


class HfFormatError(ValueError):
  """A Hugging Face checkpoint we cannot read; names the file/field/tensor."""


# ------------------------------------------------------------------ config ---


def read_config(hf_dir: str) -> dict[str, Any]:
  """The parsed `config.json` of a Hugging Face model folder."""
  path = os.path.join(hf_dir, CONFIG_FILE)
  if not os.path.isfile(path):
    raise HfFormatError(f"{path} not found: a Hugging Face model folder needs "
                        "its config.json next to the weights.")
  with open(path, encoding="utf-8") as f:
    try:
      config = json.load(f)
    except json.JSONDecodeError as e:
      raise HfFormatError(f"{path} is not valid JSON: {e}.") from None
  if not isinstance(config, dict):
    raise HfFormatError(f"{path}: expected a JSON object of model settings, "
                        f"found a {type(config).__name__}.")
  return config


def head_is_tied(config: Mapping[str, Any]) -> bool:
  """Whether the output head is the scaled input embedding (transformers 5).

  `t5` models tie and rescale unless `tie_word_embeddings` is false; `mt5`
  models never rescale (their checkpoints always carry `lm_head.weight`).
  """
  return (config.get("model_type") == "t5" and
          config.get("tie_word_embeddings", True) is not False)


def _field(config: Mapping[str, Any], name: str, where: str, default=None):
  value = config.get(name, default)
  if value is None:
    raise HfFormatError(f"{where}: field '{name}' is missing.")
  return value


def t5_config_from_hf(config: Mapping[str, Any], where: str = CONFIG_FILE
                      ) -> network.T5Config:
  """The `network.T5Config` of a Hugging Face T5/mT5 config.json.

  Args:
    config: the parsed config.json.
    where: its path, for messages.

  Raises:
    HfFormatError: naming the field our network cannot represent.
  """
  model_type = config.get("model_type")
  if model_type not in _MODEL_TYPES:
    raise HfFormatError(
        f"{where}: field 'model_type' is {model_type!r}; supported: "
        f"{list(_MODEL_TYPES)} (umT5, LongT5 and others differ in layout).")
  if config.get("is_encoder_decoder", True) is not True:
    raise HfFormatError(f"{where}: field 'is_encoder_decoder' is "
                        f"{config['is_encoder_decoder']!r}; only "
                        "encoder-decoder models can be imported.")
  default_ff = "gated-gelu" if model_type == "mt5" else "relu"
  feed_forward = config.get("feed_forward_proj", default_ff)
  if feed_forward not in FEED_FORWARD:
    raise HfFormatError(
        f"{where}: field 'feed_forward_proj' is {feed_forward!r}; aya_t5x's "
        f"network implements {sorted(FEED_FORWARD)} (T5 v1.1/mT5 and T5 "
        "v1.0).")
  for name in _REQUIRED:
    _field(config, name, where)
  num_layers = int(config["num_layers"])
  return network.T5Config(
      vocab_size=int(config["vocab_size"]),
      emb_dim=int(config["d_model"]),
      num_heads=int(config["num_heads"]),
      num_encoder_layers=num_layers,
      num_decoder_layers=int(config.get("num_decoder_layers") or num_layers),
      head_dim=int(config["d_kv"]),
      mlp_dim=int(config["d_ff"]),
      mlp_activations=FEED_FORWARD[feed_forward],
      logits_via_embedding=head_is_tied(config),
      relative_attention_num_buckets=int(
          config.get("relative_attention_num_buckets", 32)),
      relative_attention_max_distance=int(
          config.get("relative_attention_max_distance", 128)),
      layer_norm_epsilon=float(config.get("layer_norm_epsilon", 1e-6)),
      dtype="float32")


def hf_config_from_t5(config: network.T5Config) -> dict[str, Any]:
  """A config.json that transformers 5 loads as this architecture."""
  feed_forward = {v: k for k, v in FEED_FORWARD.items()}[
      tuple(config.mlp_activations)]
  tied = config.logits_via_embedding
  return {
      "architectures": ["T5ForConditionalGeneration" if tied
                        else "MT5ForConditionalGeneration"],
      "model_type": "t5" if tied else "mt5",
      "vocab_size": config.vocab_size,
      "d_model": config.emb_dim,
      "d_kv": config.head_dim,
      "d_ff": config.mlp_dim,
      "num_layers": config.num_encoder_layers,
      "num_decoder_layers": config.num_decoder_layers,
      "num_heads": config.num_heads,
      "relative_attention_num_buckets": config.relative_attention_num_buckets,
      "relative_attention_max_distance":
          config.relative_attention_max_distance,
      "dropout_rate": config.dropout_rate,
      "layer_norm_epsilon": config.layer_norm_epsilon,
      "initializer_factor": 1.0,
      "feed_forward_proj": feed_forward,
      "dense_act_fn": "gelu_new" if feed_forward == "gated-gelu" else "relu",
      "is_gated_act": feed_forward.startswith("gated"),
      # Read by transformers 4.x (and by 5.x for `t5`): untied, unscaled head.
      "tie_word_embeddings": tied,
      "is_encoder_decoder": True,
      "use_cache": True,
      "pad_token_id": 0,
      "eos_token_id": 1,
      "decoder_start_token_id": 0,
      "dtype": "float32",
  }


# ------------------------------------------------------------- safetensors ---


def _weight_map(hf_dir: str) -> dict[str, str]:
  """{tensor: file}, from the index if sharded ({} for a single file)."""
  index_path = os.path.join(hf_dir, INDEX_FILE)
  if os.path.isfile(index_path):
    with open(index_path, encoding="utf-8") as f:
      try:
        return dict(json.load(f)["weight_map"])
      except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise HfFormatError(f"{index_path}: expected a JSON object with a "
                            f"'weight_map' ({e!r}).") from None
  if os.path.isfile(os.path.join(hf_dir, SINGLE_FILE)):
    return {}
  unsafe = [f for f in UNSAFE_FILES if os.path.exists(os.path.join(hf_dir, f))]
  hint = (f" It has {unsafe}: aya_t5x never unpickles weights; re-save them "
          "with `save_pretrained(dir, safe_serialization=True)` on a trusted "
          "machine." if unsafe else "")
  raise HfFormatError(f"No weights in {hf_dir}: expected {SINGLE_FILE} or "
                      f"{INDEX_FILE}.{hint}")


def read_tensor_index(hf_dir: str) -> dict[str, safetensors_io.TensorInfo]:
  """Every tensor of a model folder (all shards), by name; reads headers only.

  Raises:
    HfFormatError: no weights, a shard named in the index is missing, or a
      tensor the index lists is not in its shard (each names the file).
  """
  weight_map = _weight_map(hf_dir)
  tensors: dict[str, safetensors_io.TensorInfo] = {}
  for name in sorted(set(weight_map.values())) or [SINGLE_FILE]:
    path = os.path.join(hf_dir, name)
    if not os.path.isfile(path):
      raise HfFormatError(f"Shard {path} listed in {INDEX_FILE} is missing.")
    for tensor, info in safetensors_io.read_header(path).items():
      if tensor in tensors:
        raise HfFormatError(f"Tensor {tensor!r} is in both "
                            f"{tensors[tensor].file} and {path}.")
      tensors[tensor] = info
  for tensor, shard in weight_map.items():
    if tensor not in tensors or os.path.basename(tensors[tensor].file) != shard:
      raise HfFormatError(f"{INDEX_FILE} puts tensor {tensor!r} in {shard}, "
                          "but that shard does not hold it.")
  return tensors


def _read_float32(info: safetensors_io.TensorInfo) -> np.ndarray:
  return safetensors_io.read_tensor(info).astype(np.float32, copy=False)


# ------------------------------------------------------------------ import ---


class HfSource:
  """A Hugging Face model folder seen as T5X parameters (a `ParamSource`).

  Opening reads only config.json and the safetensors headers; each tensor is
  read from disk when `read_into` asks for it.
  """

  def __init__(self, hf_dir: str):
    self.where = hf_dir
    self.hf_config = read_config(hf_dir)
    self.t5_config = t5_config_from_hf(
        self.hf_config, os.path.join(hf_dir, CONFIG_FILE))
    tensors = read_tensor_index(hf_dir)
    if self.t5_config.logits_via_embedding:
      _check_tied_head(tensors, hf_dir)
    self._entries: dict[str, tuple[safetensors_io.TensorInfo, bool]] = {}
    unknown = []
    for name, info in tensors.items():
      target = layout.t5x_path(name)
      if target is not None and not (
          self.t5_config.logits_via_embedding and name == "lm_head.weight"):
        self._entries[target[0]] = (info, target[1])
      elif target is None and name not in layout.HF_REDUNDANT:
        unknown.append(name)
    if unknown:
      raise HfFormatError(
          f"{hf_dir}: tensors {sorted(unknown)[:5]} (of {len(unknown)} "
          "unknown) are not part of a T5/mT5 encoder-decoder; refusing to "
          "drop them silently.")

  def shapes(self) -> dict[str, tuple[int, ...]]:
    """{T5X path: shape in T5X orientation} of every tensor present."""
    return {path: info.shape[::-1] if transpose else info.shape
            for path, (info, transpose) in self._entries.items()}

  def read_into(self, path: str, out: np.ndarray) -> None:
    """Reads the tensor holding T5X parameter `path` into `out`, casting.

    Blocks of rows go straight into (a transposed view of) `out`, so no
    second full-size copy of even the largest tensor is ever made.
    """
    info, transpose = self._entries[path]
    target = out.T if transpose else out  # Hugging Face orientation.
    for start, block in safetensors_io.read_blocks(info):
      target[start:start + len(block)] = block

  def name_of(self, path: str) -> str:
    """How this checkpoint names a T5X parameter, for messages."""
    try:
      name = layout.hf_name(path)[0]
    except KeyError:
      return f"T5X parameter {path}"
    found = self._entries.get(path)
    where = os.path.basename(found[0].file) if found else self.where
    return f"tensor '{name}' ({where})"


def _check_tied_head(tensors: Mapping[str, safetensors_io.TensorInfo],
                     hf_dir: str) -> None:
  """A tied head may be saved too, but only as a copy of the embedding."""
  if "lm_head.weight" not in tensors:
    return
  head = _read_float32(tensors["lm_head.weight"])
  if "shared.weight" in tensors and np.array_equal(
      head, _read_float32(tensors["shared.weight"])):
    return
  raise HfFormatError(
      f"{hf_dir}: config.json field 'tie_word_embeddings' ties the head to "
      "'shared.weight' (t5 model_type), but tensor 'lm_head.weight' differs "
      "from it. Set tie_word_embeddings to false if the head is separate.")


# ------------------------------------------------------------------ export ---


def _shard(plans: list[safetensors_io.TensorPlan],
           max_shard_bytes: int) -> list[list[safetensors_io.TensorPlan]]:
  """Consecutive groups of at most `max_shard_bytes` (one tensor may exceed)."""
  shards, size = [[]], 0
  for plan in plans:
    nbytes = int(np.prod(plan.shape, dtype=np.int64)) * plan.dtype.itemsize
    if shards[-1] and size + nbytes > max_shard_bytes:
      shards.append([])
      size = 0
    shards[-1].append(plan)
    size += nbytes
  return shards


def _plans(flat_unrolled: Mapping[str, np.ndarray], dtype: np.dtype
           ) -> list[safetensors_io.TensorPlan]:
  plans = []
  for path, array in flat_unrolled.items():
    name, transpose = layout.hf_name(path)
    shape = tuple(np.shape(array))[::-1] if transpose else tuple(
        np.shape(array))
    produce = lambda a=array, t=transpose: np.asarray(a).T if t else a
    plans.append(safetensors_io.TensorPlan(name, shape, np.dtype(dtype),
                                           produce))
  return sorted(plans, key=lambda p: p.name)


def _check_output_dir(output_dir: str) -> None:
  if os.path.isdir(output_dir) and any(
      f.endswith((".safetensors", ".json")) for f in os.listdir(output_dir)):
    raise FileExistsError(
        f"--output_dir {output_dir} already holds a model (config or "
        "safetensors files); export into an empty folder so no stale shard "
        "is mixed in.")


def _write_json(path: str, value: Any) -> None:
  with open(path, "w", encoding="utf-8") as f:
    json.dump(value, f, indent=2, sort_keys=True)
    f.write("\n")


def _write_tokenizer(spm_model: str, output_dir: str) -> None:
  """spiece.model, and the tokenizer.json `AutoTokenizer` loads (it keeps
  byte fallback, so it gives our ids: `aya_t5x.convert.tokenizer`)."""
  tokenizer.write(spm_model, output_dir)
  shutil.copyfile(spm_model, os.path.join(output_dir, SPM_FILE))
  _write_json(os.path.join(output_dir, "tokenizer_config.json"), {
      "tokenizer_class": "PreTrainedTokenizerFast",
      **tokenizer.special_tokens(spm_model), "model_max_length": 1024})


@dataclasses.dataclass(frozen=True)
class ExportResult:
  """What `write_checkpoint` wrote."""
  files: list[str]  # The safetensors files, in order.
  num_tensors: int  # Tensors written.
  total_bytes: int  # Weight bytes written.


def write_checkpoint(flat_unrolled: Mapping[str, np.ndarray],
                     config: network.T5Config, output_dir: str, *,
                     dtype: str = "float32",
                     max_shard_bytes: int = 5 * 2**30,
                     spm_model: str | None = None) -> ExportResult:
  """Writes a transformers model folder, one tensor at a time.

  Args:
    flat_unrolled: {unrolled T5X path: array}, already checked to fit
      `config` (see `sources.check_fits`).
    config: the architecture, for config.json.
    output_dir: created if needed; must not already hold a model.
    dtype: "float32" or "bfloat16" for the written weights.
    max_shard_bytes: above this, weights are split into
      `model-0000i-of-0000N.safetensors` shards with an index, as
      transformers writes them.
    spm_model: a SentencePiece model to carry as `spiece.model`.

  Returns:
    The files written.
  """
  _check_output_dir(output_dir)
  os.makedirs(output_dir, exist_ok=True)
  plans = _plans(flat_unrolled, safetensors_io.dtype_of(dtype))
  shards = _shard(plans, max_shard_bytes)
  names = ([SINGLE_FILE] if len(shards) == 1 else
           [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
            for i in range(len(shards))])
  for name, shard in zip(names, shards):
    safetensors_io.write_file(os.path.join(output_dir, name), shard,
                              {"format": "pt"})
  total = sum(int(np.prod(p.shape, dtype=np.int64)) * p.dtype.itemsize
              for p in plans)
  if len(shards) > 1:
    _write_json(os.path.join(output_dir, INDEX_FILE), {
        "metadata": {"total_size": total},
        "weight_map": {p.name: n for n, s in zip(names, shards) for p in s}})
  _write_json(os.path.join(output_dir, CONFIG_FILE),
              {**hf_config_from_t5(config), "dtype": dtype})
  _write_json(os.path.join(output_dir, "generation_config.json"), {
      "decoder_start_token_id": 0, "eos_token_id": 1, "pad_token_id": 0})
  if spm_model:
    _write_tokenizer(spm_model, output_dir)
  logging.info("Wrote %d tensors (%d bytes) to %s.", len(plans), total,
               output_dir)
  return ExportResult([os.path.join(output_dir, n) for n in names],
                      len(plans), total)

"""The conversions `python -m aya_t5x.convert` offers, as plain functions.

  hf_to_aya   Hugging Face folder -> Orbax `OUT/checkpoint_0` + `OUT/model.gin`
  t5x_to_aya  legacy T5X checkpoint (local or gs://) -> Orbax `OUT/checkpoint_0`
  aya_to_hf   Orbax checkpoint (ours or upstream T5X's) or legacy T5X
              checkpoint -> Hugging Face folder (safetensors + config.json)

`INITIAL_CHECKPOINT_PATH` also reads Hugging Face folders and legacy T5X
checkpoints directly; converting first is for reuse (one read of a slow
bucket) or for inspecting the result.
"""

import dataclasses
import os
import re
from typing import Mapping, Sequence

import gin
import jax
import numpy as np

from aya_t5x import architecture
from aya_t5x import checkpoints
from aya_t5x import gcs_access
from aya_t5x import gin_utils
from aya_t5x import network
from aya_t5x.convert import hf
from aya_t5x.convert import layout
from aya_t5x.convert import sources
from aya_t5x.convert import t5x_legacy

MODEL_GIN = architecture.FILE_NAME  # Architecture beside checkpoint_0.


@dataclasses.dataclass(frozen=True)
class ImportResult:
  """What an import wrote."""
  checkpoint: str  # The `checkpoint_0` folder (INITIAL_CHECKPOINT_PATH).
  config: network.T5Config  # The architecture.
  gin_file: str | None  # `model.gin` with the architecture, if written.
  num_params: int  # Parameter values imported.
  source_bytes: int  # Size of the weights read (files on disk, or arrays).


# ------------------------------------------------------------ architecture ---


def model_gin(config: network.T5Config, origin: str) -> str:
  """Gin bindings of `config`'s architecture (`architecture.gin_text`)."""
  return architecture.gin_text(config, origin)


def _count_layers(shapes: Mapping[str, tuple], stack: str) -> int:
  pattern = re.compile(rf"^{stack}/layers_(\d+)/")
  return len({m.group(1) for p in shapes for m in [pattern.match(p)] if m})


def infer_config(shapes: Mapping[str, tuple], *,
                 relative_attention_max_distance: int,
                 layer_norm_epsilon: float) -> network.T5Config:
  """The architecture implied by unrolled parameter shapes.

  The relative-attention max distance and the norm epsilon leave no trace
  in shapes: the caller names them.

  Raises:
    checkpoints.CheckpointMismatchError: a parameter needed to infer it is
      absent (naming it).
  """
  def shape(path: str) -> tuple:
    if path not in shapes:
      raise checkpoints.CheckpointMismatchError(
          f"Cannot infer the architecture: parameter {path} is missing. Pass "
          "the model's gin file (--gin_file).")
    return tuple(shapes[path])
  gated = "encoder/layers_0/mlp/wi_0/kernel" in shapes
  vocab, emb = shape("token_embedder/embedding")
  heads, buckets = shape("encoder/relpos_bias/rel_embedding")
  joined = shape("encoder/layers_0/attention/query/kernel")[1]
  mlp = shape(f"encoder/layers_0/mlp/{'wi_0' if gated else 'wi'}/kernel")[1]
  return network.T5Config(
      vocab_size=vocab, emb_dim=emb, num_heads=heads,
      num_encoder_layers=_count_layers(shapes, "encoder"),
      num_decoder_layers=_count_layers(shapes, "decoder"),
      head_dim=joined // heads, mlp_dim=mlp,
      mlp_activations=("gelu", "linear") if gated else ("relu",),
      logits_via_embedding="decoder/logits_dense/kernel" not in shapes,
      relative_attention_num_buckets=buckets,
      relative_attention_max_distance=relative_attention_max_distance,
      layer_norm_epsilon=layer_norm_epsilon, dtype="float32")


def config_from_gin(gin_files: Sequence[str]) -> network.T5Config:
  """`network.T5Config` as the given gin files bind it (e.g. model.gin)."""
  gin_utils.parse_gin(list(gin_files), [])
  try:
    return gin.get_configurable(network.T5Config)()
  except TypeError as e:
    raise ValueError(f"--gin_file {list(gin_files)} does not bind "
                     f"network.T5Config completely: {e}") from None


# ------------------------------------------------------------------ import ---


def _import(source: sources.ParamSource, config: network.T5Config,
            output_dir: str) -> tuple[str, int]:
  """Checks, assembles on the host and writes `output_dir/checkpoint_0`."""
  if checkpoints.step_dir(output_dir, 0).exists():
    raise FileExistsError(f"{checkpoints.step_dir(output_dir, 0)} exists; "
                          "convert into a new --output_dir.")
  expected = sources.abstract_params(config)
  sources.check_fits(source, expected, strict=True)
  flat = sources.assemble(source, expected)
  num_params = sum(a.size for a in flat.values())
  target = sources.write_checkpoint(output_dir, layout.unflatten(flat))
  return str(target), num_params


def hf_to_aya(hf_dir: str, output_dir: str, *,
              scan_layers: bool = False) -> ImportResult:
  """Hugging Face folder -> `output_dir/checkpoint_0` and `model.gin`.

  Args:
    hf_dir: holds config.json and model.safetensors (or an index + shards).
    output_dir: created; must not hold a `checkpoint_0` yet.
    scan_layers: write the stacked layout of `T5Config.scan_layers=True`.
  """
  gcs_access.check_all({"--hf_dir": hf_dir, "--output_dir": output_dir})
  source = hf.HfSource(hf_dir)
  config = dataclasses.replace(source.t5_config, scan_layers=scan_layers)
  checkpoint, num_params = _import(source, config, output_dir)
  gin_file = os.path.join(output_dir, MODEL_GIN)
  with open(gin_file, "w", encoding="utf-8") as f:
    f.write(model_gin(config, os.path.join(hf_dir, hf.CONFIG_FILE)))
  size = sum(os.path.getsize(f) for f in
             {i.file for i in hf.read_tensor_index(hf_dir).values()})
  return ImportResult(checkpoint, config, gin_file, num_params, size)


def t5x_to_aya(checkpoint: str, output_dir: str, *,
               scan_layers: bool = False) -> ImportResult:
  """Legacy T5X checkpoint (local or gs://) -> `output_dir/checkpoint_0`."""
  gcs_access.check_all({"--checkpoint": checkpoint,
                        "--output_dir": output_dir})
  source = t5x_legacy.LegacyT5xSource(checkpoint)
  # Shape-less fields do not change what is imported; no model.gin is
  # written, so an export of it still asks for them.
  config = dataclasses.replace(
      infer_config(source.shapes(), relative_attention_max_distance=128,
                   layer_norm_epsilon=1e-6), scan_layers=scan_layers)
  target, num_params = _import(source, config, output_dir)
  return ImportResult(target, config, None, num_params, 4 * num_params)


# ------------------------------------------------------------------ export ---


def read_unrolled(checkpoint: str) -> dict[str, np.ndarray]:
  """{unrolled T5X path: host array} of an Orbax or legacy T5X checkpoint."""
  kind = sources.detect_format(checkpoint)
  if kind == sources.HF:
    raise ValueError(f"--checkpoint {checkpoint} is already a Hugging Face "
                     "model folder.")
  if kind == sources.T5X_LEGACY:
    source = t5x_legacy.LegacyT5xSource(checkpoint)
    return sources.assemble(source, {
        p: jax.ShapeDtypeStruct(s, np.float32)
        for p, s in source.shapes().items()})
  params = checkpoints.read_t5x_orbax_params(checkpoint)
  return dict(layout.unstack(layout.flatten(params)))


def aya_to_hf(checkpoint: str, output_dir: str, *,
              gin_files: Sequence[str] = (),
              spm_model: str | None = None,
              dtype: str = "float32",
              max_shard_bytes: int = 5 * 2**30,
              relative_attention_max_distance: int | None = None,
              layer_norm_epsilon: float | None = None) -> hf.ExportResult:
  """Checkpoint -> Hugging Face folder that transformers loads untied.

  Args:
    checkpoint: a `checkpoint_N` folder (ours or upstream T5X, Orbax or
      legacy).
    output_dir: the model folder to write; must not hold a model yet.
    gin_files: gin files binding `network.T5Config` (e.g.
      gin/models/mt5_xxl.gin); by default the `model.gin` beside the
      checkpoint (`aya_t5x.architecture`), else the architecture is read
      from the parameter shapes plus the two arguments below.
    spm_model: SentencePiece model to carry as spiece.model (with a
      tokenizer.json that keeps its byte fallback).
    dtype: "float32" or "bfloat16" weights.
    max_shard_bytes: shard size above which the weights are split.
    relative_attention_max_distance: overrides the gin's; required when
      there is no gin (shapes do not record it).
    layer_norm_epsilon: likewise.

  Raises:
    ValueError: no gin and a shape-less field not given (naming it).
    checkpoints.CheckpointMismatchError: the parameters do not fit the
      architecture (naming each parameter).
  """
  gcs_access.check_all({"--checkpoint": checkpoint, "--output_dir":
                        output_dir, "--spm_model": spm_model,
                        **{f"--gin_file #{i + 1}": f
                           for i, f in enumerate(gin_files)}})
  flat = read_unrolled(checkpoint)
  given = {"relative_attention_max_distance": relative_attention_max_distance,
           "layer_norm_epsilon": layer_norm_epsilon}
  given = {k: v for k, v in given.items() if v is not None}
  gin_files = list(gin_files) or [
      f for f in [architecture.find(str(checkpoint))] if f]
  if gin_files:
    config = dataclasses.replace(config_from_gin(gin_files), **given)
  else:
    missing = [f for f in architecture.SHAPELESS_FIELDS if f not in given]
    if missing:
      raise ValueError(
          f"{checkpoint} has no {architecture.FILE_NAME} beside it and its "
          f"shapes do not record {' or '.join(missing)}: pass --gin_file "
          f"(the model's gin) or {' '.join(f'--{f}=...' for f in missing)} "
          "(mT5: 128, 1e-06).")
    config = infer_config({p: a.shape for p, a in flat.items()}, **given)
  config = dataclasses.replace(config, scan_layers=False)
  sources.check_fits(sources.ArraySource(flat, checkpoint),
                     sources.abstract_params(config), strict=True)
  return hf.write_checkpoint(flat, config, output_dir, dtype=dtype,
                             max_shard_bytes=max_shard_bytes,
                             spm_model=spm_model)

"""A checkpoint carries its architecture: `model.gin` beside it.

T5X writes the run's gin config into the model directory; here training
and `convert hf_to_aya` write `MODEL_DIR/model.gin`, the `network.T5Config`
bindings of the model, next to its `checkpoint_N` folders. The readers
(`convert aya_to_hf`, `infer`, `eval`) include it by default, after the
model gin files given on the command line, so a model trained with another
`relative_attention_max_distance` or `layer_norm_epsilon` (fields no
parameter shape records) is exported and run as it was trained. Without a
`model.gin`, those two fields are never guessed: the caller must name them.
"""

import os
from typing import Any, Sequence

from etils import epath
import gin

from aya_t5x import gin_utils

FILE_NAME = "model.gin"
# The fields a model.gin binds: everything that shapes the computation.
FIELDS = ("vocab_size", "emb_dim", "num_heads", "num_encoder_layers",
          "num_decoder_layers", "head_dim", "mlp_dim", "mlp_activations",
          "logits_via_embedding", "relative_attention_num_buckets",
          "relative_attention_max_distance", "layer_norm_epsilon")
# Fields that leave no trace in parameter shapes.
SHAPELESS_FIELDS = ("relative_attention_max_distance", "layer_norm_epsilon")


def gin_text(config: Any, origin: str) -> str:
  """Gin bindings of `config`'s architecture, to include after a model gin."""
  lines = [
      f"# Architecture of {origin}, written by aya_t5x.",
      "# Include after a model gin, e.g. --gin_file=gin/models/mt5_xxl.gin "
      "--gin_file=THIS.",
      "from __gin__ import dynamic_registration", "",
      "from aya_t5x import network", "", "network.T5Config:"]
  lines += [f"  {name} = {getattr(config, name)!r}" for name in FIELDS]
  return "\n".join(lines) + "\n"


def write(model_dir: str, config: Any, origin: str) -> str:
  """Writes `model_dir/model.gin` (local or gs://); returns its path."""
  folder = epath.Path(model_dir)
  folder.mkdir(parents=True, exist_ok=True)
  path = folder / FILE_NAME
  path.write_text(gin_text(config, origin))
  return str(path)


def find(checkpoint_path: str) -> str | None:
  """The `model.gin` of a MODEL_DIR or of a `checkpoint_N` folder's run."""
  if not isinstance(checkpoint_path, str) or "://" in checkpoint_path:
    return None
  folder = os.path.abspath(checkpoint_path.rstrip("/"))
  for candidate in (folder, os.path.dirname(folder)):
    path = os.path.join(candidate, FILE_NAME)
    if os.path.isfile(path):
      return path
  return None


def parse_gin_with_checkpoint(command_line: gin_utils.CommandLine
                              ) -> str | None:
  """Parses the CLI's gin, then again with CHECKPOINT_PATH's `model.gin`.

  The found file goes after the given gin files and before the flags'
  bindings (so `--gin.` still overrides). Returns its path, or None.
  """
  files, bindings = command_line.gin_files, command_line.gin_bindings
  gin_utils.parse_gin(files, bindings, command_line.gin_search_paths)
  try:
    checkpoint_path = gin.query_parameter("%CHECKPOINT_PATH")
  except ValueError:
    return None
  found = find(checkpoint_path)
  if found and not _already_given(found, files):
    gin_utils.parse_gin(list(files) + [found], bindings,
                        command_line.gin_search_paths)
  return found


def _already_given(path: str, gin_files: Sequence[str]) -> bool:
  return any(os.path.abspath(f) == path for f in gin_files)

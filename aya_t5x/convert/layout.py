"""Parameter names and layouts: T5X's tree and Hugging Face's T5/mT5 tensors.

Our parameter tree is upstream T5X's, so T5X checkpoints need no renaming.
Hugging Face names the same tensors differently and stores every Linear
kernel as torch does, `[out, in]`; T5X stores `[in, out]`. One table of rules
below says, for every T5X parameter (in its unrolled `layers_<i>` form), which
Hugging Face tensor holds it and whether it is transposed. Import and export
both read this one table, so they cannot drift apart.

Neither side rescales anything: T5 folds 1/sqrt(d_kv) into the query weights
in T5X and in Hugging Face alike, and both use T5's RMS norm and unscaled
embeddings (the tests check the logits agree numerically).

`nn.scan`ned models (`T5Config.scan_layers=True`) keep each block's
parameters stacked under `encoder/layers/...` with a leading layer axis;
`unrolled_paths` and `unstack` translate between the two layouts.
"""

import dataclasses
import functools
import re
from typing import Any, Iterator, Mapping

import numpy as np

SEP = "/"  # Separator of T5X parameter paths: `encoder/encoder_norm/scale`.


@dataclasses.dataclass(frozen=True)
class Rule:
  """One T5X parameter <-> one Hugging Face tensor; `{i}` is a block index."""
  t5x: str  # T5X path template, e.g. `encoder/layers_{i}/mlp/wo/kernel`.
  hf: str  # Hugging Face name template, e.g. `encoder.block.{i}...wo.weight`.
  transpose: bool  # torch Linear [out, in] vs T5X [in, out] (or [h, b]).


def _attention(t5x_prefix: str, hf_prefix: str) -> list[Rule]:
  pairs = (("query", "q"), ("key", "k"), ("value", "v"), ("out", "o"))
  return [Rule(f"{t5x_prefix}/{ours}/kernel", f"{hf_prefix}.{theirs}.weight",
               True) for ours, theirs in pairs]


def _mlp(t5x_prefix: str, hf_prefix: str) -> list[Rule]:
  # `wi` is the ungated T5 v1.0 MLP; `wi_0`/`wi_1` the gated v1.1 one.
  return [Rule(f"{t5x_prefix}/{name}/kernel", f"{hf_prefix}.{name}.weight",
               True) for name in ("wi", "wi_0", "wi_1", "wo")]


def _norm(t5x: str, hf: str) -> Rule:
  return Rule(f"{t5x}/scale", f"{hf}.weight", False)


_ENC = "encoder/layers_{i}"
_DEC = "decoder/layers_{i}"
_HF_ENC = "encoder.block.{i}.layer"
_HF_DEC = "decoder.block.{i}.layer"
_RELPOS = "block.0.layer.0.SelfAttention.relative_attention_bias.weight"

RULES: tuple[Rule, ...] = (
    Rule("token_embedder/embedding", "shared.weight", False),
    # T5X keeps one [heads, buckets] table per stack; Hugging Face keeps the
    # same table, as [buckets, heads], in block 0 of the stack.
    Rule("encoder/relpos_bias/rel_embedding", f"encoder.{_RELPOS}", True),
    *_attention(f"{_ENC}/attention", f"{_HF_ENC}.0.SelfAttention"),
    _norm(f"{_ENC}/pre_attention_layer_norm", f"{_HF_ENC}.0.layer_norm"),
    *_mlp(f"{_ENC}/mlp", f"{_HF_ENC}.1.DenseReluDense"),
    _norm(f"{_ENC}/pre_mlp_layer_norm", f"{_HF_ENC}.1.layer_norm"),
    _norm("encoder/encoder_norm", "encoder.final_layer_norm"),
    Rule("decoder/relpos_bias/rel_embedding", f"decoder.{_RELPOS}", True),
    *_attention(f"{_DEC}/self_attention", f"{_HF_DEC}.0.SelfAttention"),
    _norm(f"{_DEC}/pre_self_attention_layer_norm", f"{_HF_DEC}.0.layer_norm"),
    *_attention(f"{_DEC}/encoder_decoder_attention",
                f"{_HF_DEC}.1.EncDecAttention"),
    _norm(f"{_DEC}/pre_cross_attention_layer_norm", f"{_HF_DEC}.1.layer_norm"),
    *_mlp(f"{_DEC}/mlp", f"{_HF_DEC}.2.DenseReluDense"),
    _norm(f"{_DEC}/pre_mlp_layer_norm", f"{_HF_DEC}.2.layer_norm"),
    _norm("decoder/decoder_norm", "decoder.final_layer_norm"),
    Rule("decoder/logits_dense/kernel", "lm_head.weight", True),
)

# Tensors some Hugging Face checkpoints carry that hold nothing of their own:
# per-stack copies of `shared.weight` (older exports), and a relative bias on
# cross-attention that transformers itself ignores on load.
HF_REDUNDANT = frozenset({
    "encoder.embed_tokens.weight",
    "decoder.embed_tokens.weight",
    "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight",
})


def _pattern(template: str) -> re.Pattern:
  return re.compile(re.escape(template).replace(r"\{i\}", r"(\d+)") + "$")


@functools.cache
def _compiled() -> list[tuple[re.Pattern, re.Pattern, Rule]]:
  return [(_pattern(r.t5x), _pattern(r.hf), r) for r in RULES]


def hf_name(t5x_path: str) -> tuple[str, bool]:
  """The Hugging Face tensor holding a T5X parameter, and if it is transposed.

  Raises:
    KeyError: no Hugging Face tensor corresponds to `t5x_path`.
  """
  for t5x_re, _, rule in _compiled():
    match = t5x_re.match(t5x_path)
    if match:
      return rule.hf.replace("{i}", "".join(match.groups())), rule.transpose
  raise KeyError(f"T5X parameter {t5x_path!r} has no Hugging Face T5 "
                 "counterpart.")


def t5x_path(hf_tensor: str) -> tuple[str, bool] | None:
  """The T5X parameter a Hugging Face tensor holds, or None if none does."""
  for _, hf_re, rule in _compiled():
    match = hf_re.match(hf_tensor)
    if match:
      return rule.t5x.replace("{i}", "".join(match.groups())), rule.transpose
  return None


def to_t5x(array: np.ndarray, transpose: bool) -> np.ndarray:
  """A Hugging Face tensor in T5X orientation (a view when transposed)."""
  return array.T if transpose else array


# ------------------------------------------------------------ tree layout ---


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
  """{"a/b/c": leaf} for a nested dict (any non-dict value is a leaf)."""
  flat = {}
  for key, value in tree.items():
    path = f"{prefix}{SEP}{key}" if prefix else str(key)
    if isinstance(value, Mapping):
      flat.update(flatten(value, path))
    else:
      flat[path] = value
  return flat


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
  """The nested dict of a `flatten`ed one."""
  tree: dict[str, Any] = {}
  for path, value in flat.items():
    node = tree
    *parents, leaf = path.split(SEP)
    for key in parents:
      node = node.setdefault(key, {})
    node[leaf] = value
  return tree


_SCANNED = re.compile(r"^(encoder|decoder)/layers/(.+)$")


def is_scanned(path: str) -> bool:
  """Whether `path` is a stacked (`nn.scan`) parameter with a layer axis."""
  return bool(_SCANNED.match(path))


def unrolled_paths(path: str, shape: tuple[int, ...]) -> list[str]:
  """The unrolled T5X paths whose arrays make up parameter `path`.

  A scanned `encoder/layers/mlp/wo/kernel` of shape [L, ...] is the stack of
  `encoder/layers_<i>/mlp/wo/kernel` for i < L; any other path is itself.
  """
  match = _SCANNED.match(path)
  if not match:
    return [path]
  stack, rest = match.groups()
  return [f"{stack}/layers_{i}/{rest}" for i in range(shape[0])]


def unstack(flat: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
  """(unrolled path, array) pairs; scanned arrays yield views per layer."""
  for path, array in flat.items():
    names = unrolled_paths(path, np.shape(array))
    if len(names) == 1 and names[0] == path:
      yield path, array
    else:
      yield from zip(names, array)


def stack(flat_unrolled: Mapping[str, Any],
          scanned_paths: Mapping[str, tuple[int, ...]]) -> dict[str, Any]:
  """The scanned layout of an unrolled flat tree.

  Args:
    flat_unrolled: {unrolled path: array}.
    scanned_paths: {path: shape} of the target tree (scanned or not).

  Returns:
    {path: array} with each scanned path's layers stacked on axis 0.
  """
  out = {}
  for path, shape in scanned_paths.items():
    names = unrolled_paths(path, shape)
    out[path] = (flat_unrolled[path] if names == [path] else
                 np.stack([flat_unrolled[n] for n in names]))
  return out

"""The exported tokenizer: our SentencePiece model as a `tokenizer.json`.

transformers' own conversion of a T5 `spiece.model` drops SentencePiece's
byte fallback: a character the vocabulary lacks becomes `<unk>` instead of
its UTF-8 byte pieces, so an exported model would read other ids than it
was trained on (6 of the 8 demo prompts differed). Here the same model is
rebuilt with the `tokenizers` library piece for piece: the Unigram pieces
and scores, byte fallback as the model says, its precompiled normalizer
(nmt_nfkc), whitespace handling and `</s>` appended, as seqio encodes
inputs. `PreTrainedTokenizerFast` (what `AutoTokenizer` then loads) gives
our ids; `tests/test_convert_tokenizer.py` checks it on unseen scripts.
"""

import os

from sentencepiece import sentencepiece_model_pb2

FILE_NAME = "tokenizer.json"
_META = "\u2581"  # SentencePiece's word-boundary mark.
# SentencePiece piece types (sentencepiece_model.proto).
_UNKNOWN, _CONTROL = 2, 3


def read_model(spm_path: str) -> sentencepiece_model_pb2.ModelProto:
  if not os.path.isfile(spm_path):
    raise FileNotFoundError(f"--spm_model {spm_path} not found.")
  proto = sentencepiece_model_pb2.ModelProto()
  with open(spm_path, "rb") as f:
    proto.ParseFromString(f.read())
  if proto.trainer_spec.model_type != proto.trainer_spec.UNIGRAM:
    raise ValueError(f"--spm_model {spm_path}: only Unigram SentencePiece "
                     "models are exported (mT5's and the demo's are).")
  return proto


def _normalizer(proto, normalizers, regex):
  spec = proto.normalizer_spec
  steps = []
  if spec.precompiled_charsmap:
    steps.append(normalizers.Precompiled(spec.precompiled_charsmap))
  if spec.remove_extra_whitespaces:
    steps += [normalizers.Strip(), normalizers.Replace(regex(" {2,}"), " ")]
  return normalizers.Sequence(steps)


def build(spm_path: str):
  """A `tokenizers.Tokenizer` that encodes and decodes as `spm_path`."""
  # Imported here: only exports with a tokenizer need `tokenizers`.
  import tokenizers  # pylint: disable=g-import-not-at-top
  from tokenizers import decoders, models, normalizers, pre_tokenizers, processors  # pylint: disable=g-import-not-at-top,g-multiple-import
  proto = read_model(spm_path)
  spec = proto.trainer_spec
  tokenizer = tokenizers.Tokenizer(models.Unigram(
      [(p.piece, p.score) for p in proto.pieces], unk_id=spec.unk_id,
      byte_fallback=spec.byte_fallback))
  tokenizer.normalizer = _normalizer(proto, normalizers, tokenizers.Regex)
  prepend = "always" if proto.normalizer_spec.add_dummy_prefix else "never"
  tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(
      replacement=_META, prepend_scheme=prepend, split=False)
  tokenizer.decoder = decoders.Sequence([
      decoders.Replace(_META, " "), decoders.ByteFallback(), decoders.Fuse(),
      decoders.Strip(" ", 1 if prepend == "always" else 0, 0)])
  eos = proto.pieces[spec.eos_id].piece
  tokenizer.post_processor = processors.TemplateProcessing(
      single=f"$A {eos}", pair=f"$A {eos} $B {eos}",
      special_tokens=[(eos, spec.eos_id)])
  tokenizer.add_special_tokens([
      tokenizers.AddedToken(p.piece, special=True, normalized=False)
      for p in proto.pieces if p.type in (_UNKNOWN, _CONTROL)])
  return tokenizer


def special_tokens(spm_path: str) -> dict[str, str]:
  """`eos_token`, `unk_token`, `pad_token` of the model, for the config."""
  proto = read_model(spm_path)
  spec, pieces = proto.trainer_spec, proto.pieces
  names = {"eos_token": spec.eos_id, "unk_token": spec.unk_id,
           "pad_token": spec.pad_id}
  return {k: pieces[i].piece for k, i in names.items() if 0 <= i < len(pieces)}


def write(spm_path: str, output_dir: str) -> str:
  """Writes `output_dir/tokenizer.json`; returns its path."""
  path = os.path.join(output_dir, FILE_NAME)
  build(spm_path).save(path)
  return path

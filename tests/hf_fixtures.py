"""Tiny random T5/mT5 models built and saved by transformers itself.

The conversion tests compare against what `transformers` computes, so the
reference models come from transformers' own classes and `save_pretrained`,
never from our writer. torch runs on the CPU in float32.
"""

import os

import numpy as np
import sentencepiece
import torch
import transformers

from aya_t5x import vocabularies

# An mT5 shaped to catch layout mistakes: heads * d_kv (32) != d_model (64),
# so a missing transpose cannot pass a shape check; more encoder than decoder
# layers; non-default relative-position buckets and max distance, short
# enough that the test sequences reach the logarithmic buckets. Its
# vocabulary is the shipped demo one (1,200 pieces padded to 1,280), so the
# same model can be finetuned by `gin/aya_tiny_cpu.gin`.
TINY_MT5 = dict(vocab_size=1280, d_model=64, d_kv=8, num_heads=4, d_ff=96,
                num_layers=3, num_decoder_layers=2,
                relative_attention_num_buckets=16,
                relative_attention_max_distance=20, dropout_rate=0.0,
                feed_forward_proj="gated-gelu", layer_norm_epsilon=1e-6)

SENTENCES = (
    ("translate to English: Кошка спит на тёплом коврике.",
     "The cat sleeps on the warm mat."),
    ("copy: القطة تنام على السجادة", "القطة تنام على السجادة"),
    ("reverse: बिल्ली गर्म चटाई पर सोती है।", "है। सोती पर चटाई गर्म बिल्ली"),
    ("copy: 猫は暖かいマットの上で寝ている。", "猫は暖かいマットの上で寝ている。"),
    ("translate to English: 小猫在温暖的垫子上睡觉。", "A kitten sleeps."),
    ("copy: Paka analala kwenye mkeka.", "Paka analala kwenye mkeka."),
)


def _randomize(model: torch.nn.Module) -> None:
  """Norm scales and position biases away from their flat initial values.

  transformers initialises norms to 1 and the bias tables small; random
  values make a swapped norm or a wrong bucket visible in the logits.
  """
  generator = torch.Generator().manual_seed(1)
  with torch.no_grad():
    for name, param in model.named_parameters():
      if name.endswith("layer_norm.weight"):
        param.copy_(0.5 + torch.rand(param.shape, generator=generator))
      elif "relative_attention_bias" in name:
        param.copy_(torch.randn(param.shape, generator=generator))


def build_mt5(seed: int = 0, **overrides) -> transformers.PreTrainedModel:
  """A random `MT5ForConditionalGeneration` with an untied output head.

  transformers 5 ties `lm_head` to the embedding when it builds a model from
  a config (it ignores tie_word_embeddings=False); mT5 and Aya checkpoints
  have a separate head, so the head gets a parameter of its own, and the
  config says what real mT5 configs say.
  """
  torch.manual_seed(seed)
  config = transformers.MT5Config(**{**TINY_MT5, **overrides})
  model = transformers.MT5ForConditionalGeneration(config)
  model.lm_head.weight = torch.nn.Parameter(
      0.25 * torch.randn_like(model.lm_head.weight))
  model.config.tie_word_embeddings = False
  _randomize(model)
  return model.eval()


def build_t5_v1_0(seed: int = 0) -> transformers.PreTrainedModel:
  """A random T5 v1.0: ReLU MLP, head tied to the (rescaled) embedding."""
  torch.manual_seed(seed)
  config = transformers.T5Config(**{**TINY_MT5, "feed_forward_proj": "relu"})
  model = transformers.T5ForConditionalGeneration(config)
  _randomize(model)
  return model.eval()


def save(model: transformers.PreTrainedModel, directory: str,
         max_shard_size: str | None = None) -> str:
  """`save_pretrained` as safetensors (sharded if `max_shard_size`)."""
  kwargs = {} if max_shard_size is None else {"max_shard_size": max_shard_size}
  model.save_pretrained(directory, safe_serialization=True, **kwargs)
  return directory


def _pad(rows: list[list[int]]) -> np.ndarray:
  out = np.zeros((len(rows), max(len(r) for r in rows)), np.int32)
  for i, row in enumerate(rows):
    out[i, :len(row)] = row
  return out


def multilingual_batch() -> dict[str, np.ndarray]:
  """T5X features of sentences in 6 scripts, of different lengths, padded."""
  sp = sentencepiece.SentencePieceProcessor(
      model_file=vocabularies.DEMO_SPM_PATH)
  encode = lambda text: sp.encode(text) + [1]  # EOS, as seqio appends it.
  inputs = _pad([encode(x) for x, _ in SENTENCES])
  targets = _pad([encode(y) for _, y in SENTENCES])
  decoder_inputs = np.concatenate(
      [np.zeros((len(targets), 1), np.int32), targets[:, :-1]], axis=1)
  return {"encoder_input_tokens": inputs,
          "decoder_input_tokens": decoder_inputs * (targets > 0),
          "decoder_target_tokens": targets,
          "decoder_loss_weights": (targets > 0).astype(np.int32)}


def _hf_inputs(batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
  """T5X features as transformers arguments; 0 is padding in both."""
  tensor = lambda key: torch.from_numpy(np.asarray(batch[key], np.int64))
  return {"input_ids": tensor("encoder_input_tokens"),
          "attention_mask": tensor("encoder_input_tokens") > 0,
          "decoder_input_ids": tensor("decoder_input_tokens"),
          "decoder_attention_mask": tensor("decoder_target_tokens") > 0}


def hf_logits(model: transformers.PreTrainedModel,
              batch: dict[str, np.ndarray]) -> np.ndarray:
  """transformers' teacher-forced logits [batch, length, vocab]."""
  with torch.no_grad():
    return model(**_hf_inputs(batch)).logits.numpy()


def hf_loss(model: transformers.PreTrainedModel,
            batch: dict[str, np.ndarray]) -> float:
  """transformers' loss: mean cross-entropy over the non-pad targets."""
  labels = torch.from_numpy(np.asarray(batch["decoder_target_tokens"],
                                       np.int64))
  labels = labels.masked_fill(labels == 0, -100)
  with torch.no_grad():
    return float(model(**_hf_inputs(batch), labels=labels).loss)


def load(directory: str) -> transformers.PreTrainedModel:
  """A saved model folder through transformers' own loader."""
  return transformers.AutoModelForSeq2SeqLM.from_pretrained(directory).eval()


def file_names(directory: str) -> list[str]:
  return sorted(os.listdir(directory))

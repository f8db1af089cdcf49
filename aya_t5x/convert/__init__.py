"""Weights in and out: Hugging Face and upstream T5X checkpoints.

  python -m aya_t5x.convert hf_to_aya --hf_dir=DIR --output_dir=OUT
  python -m aya_t5x.convert t5x_to_aya --checkpoint=T5X_CKPT --output_dir=OUT
  python -m aya_t5x.convert aya_to_hf --checkpoint=CKPT --output_dir=DIR

Modules: `layout` (the one name/orientation table both directions use, and
scanned <-> unrolled layers), `safetensors_io` (streaming reader/writer),
`hf` (config.json and Hugging Face folders), `t5x_legacy` (msgpack +
TensorStore checkpoints, local or gs://), `sources` (assembling a parameter
tree tensor by tensor; what `INITIAL_CHECKPOINT_PATH` uses for these
formats), `commands` (the conversions), `__main__` (the command line).
"""

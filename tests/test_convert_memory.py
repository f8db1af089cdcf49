"""Host memory of importing a multi-shard Hugging Face checkpoint.

Peak resident memory is read from /proc (Linux); the high-water mark is reset
through /proc/self/clear_refs so only the import is measured.
"""

import gc

import numpy as np
import pytest

from aya_t5x import network
from aya_t5x.convert import __main__ as cli
from aya_t5x.convert import hf
from aya_t5x.convert import safetensors_io
from aya_t5x.convert import sources

# About 100 MB of float32 weights in 4+ shards; the embedding and head
# (33 MB each) are the largest tensors, as in real mT5 checkpoints.
CONFIG = network.T5Config(vocab_size=32_000, emb_dim=256, num_heads=4,
                          num_encoder_layers=4, num_decoder_layers=4,
                          head_dim=64, mlp_dim=1024, dtype="float32")


def _random_hf_folder(directory: str) -> int:
  """A sharded Hugging Face folder of random weights; returns its size."""
  rng = np.random.default_rng(0)
  flat = {path: rng.standard_normal(struct.shape, np.float32)
          for path, struct in sources.abstract_params(CONFIG).items()}
  result = hf.write_checkpoint(flat, CONFIG, directory,
                               max_shard_bytes=30 * 10**6)
  assert len(result.files) >= 4
  return result.total_bytes


def test_sharded_import_holds_one_copy_of_the_weights_plus_one_block(
    tmp_path):
  size = _random_hf_folder(str(tmp_path / "hf"))
  gc.collect()
  source = hf.HfSource(str(tmp_path / "hf"))
  expected = sources.abstract_params(source.t5_config)
  memory = cli.PeakMemory()
  if not memory.start:
    pytest.skip("needs /proc/self/status (Linux)")

  params = sources.assemble(source, expected)

  growth = memory.read("VmHWM") - memory.start
  assert sum(a.nbytes for a in params.values()) == size
  print(f"assembling {size / 2**20:.0f} MiB grew the peak by "
        f"{growth / 2**20:.0f} MiB")
  # Two copies would need 2 * size; one copy plus a read block is the goal.
  assert growth < size + safetensors_io.BLOCK_BYTES + 16 * 2**20

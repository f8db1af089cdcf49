"""Hugging Face import/export against transformers' own models (CPU, fp32)."""

import dataclasses
import json
import os
import shutil
import types

import jax
import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

from aya_t5x import checkpoints
from aya_t5x import data
from aya_t5x import gin_utils
from aya_t5x import metrics_writer
from aya_t5x import model as model_lib
from aya_t5x import train
from aya_t5x import vocabularies
from aya_t5x.convert import __main__ as cli
from aya_t5x.convert import commands
from aya_t5x.convert import hf
from aya_t5x.convert import layout
from aya_t5x.convert import safetensors_io
from tests import hf_fixtures

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  """One random mT5, saved by transformers as one file and as shards."""
  root = tmp_path_factory.mktemp("tiny_mt5")
  model = hf_fixtures.build_mt5()
  single = hf_fixtures.save(model, str(root / "hf"))
  sharded = hf_fixtures.save(model, str(root / "hf_sharded"), "200KB")
  imported = commands.hf_to_aya(single, str(root / "aya"))
  return types.SimpleNamespace(root=root, model=model, hf_dir=single,
                               sharded_dir=sharded, imported=imported,
                               batch=hf_fixtures.multilingual_batch())


def _params(checkpoint: str) -> dict:
  return layout.flatten(checkpoints.read_t5x_orbax_params(checkpoint))


def _our_logits(config, params: dict, batch: dict) -> np.ndarray:
  model = model_lib.EncoderDecoderModel(
      dataclasses.replace(config, dtype="float32"))
  return np.asarray(model.logits(layout.unflatten(params), batch))


def _hf_tensors(directory: str) -> dict[str, np.ndarray]:
  tensors = {}
  for name in os.listdir(directory):
    if name.endswith(".safetensors"):
      with safe_open(os.path.join(directory, name), "np") as f:
        tensors.update({k: f.get_tensor(k) for k in f.keys()})
  return tensors


def _assert_same_tensors(actual: dict, expected: dict) -> None:
  assert sorted(actual) == sorted(expected)
  for key in expected:
    assert actual[key].dtype == expected[key].dtype, key
    np.testing.assert_array_equal(actual[key], expected[key], err_msg=key)


# -------------------------------------------------------------- parity ---


def test_imported_mt5_logits_match_transformers_on_padded_multilingual_batch(
    tiny):
  batch = tiny.batch
  lengths = (batch["encoder_input_tokens"] > 0).sum(1)
  assert len(set(lengths)) > 3 and lengths.min() < batch[
      "encoder_input_tokens"].shape[1]  # Padded rows of different lengths.
  config = tiny.imported.config
  assert (config.num_encoder_layers, config.num_decoder_layers) == (3, 2)
  assert (config.relative_attention_num_buckets,
          config.relative_attention_max_distance) == (16, 20)
  assert not config.logits_via_embedding

  ours = _our_logits(config, _params(tiny.imported.checkpoint), batch)
  theirs = hf_fixtures.hf_logits(tiny.model, batch)

  real = batch["decoder_target_tokens"] > 0
  max_diff = float(np.abs(ours - theirs)[real].max())
  print(f"max abs logit difference vs transformers: {max_diff:.3g}")
  assert max_diff < 1e-4
  assert float(np.abs(theirs[real]).max()) > 1.0  # Not a vacuous match.


def test_import_keeps_the_separate_head_that_transformers_saved(tiny):
  saved = _hf_tensors(tiny.hf_dir)
  params = _params(tiny.imported.checkpoint)

  assert not np.array_equal(saved["lm_head.weight"], saved["shared.weight"])
  np.testing.assert_array_equal(params["decoder/logits_dense/kernel"],
                                saved["lm_head.weight"].T)
  np.testing.assert_array_equal(params["token_embedder/embedding"],
                                saved["shared.weight"])


def test_export_loads_in_transformers_untied_with_the_same_logits(tiny):
  export = str(tiny.root / "export")
  commands.aya_to_hf(tiny.imported.checkpoint, export,
                     gin_files=[tiny.imported.gin_file],
                     spm_model=vocabularies.DEMO_SPM_PATH)

  with open(os.path.join(export, "config.json")) as f:
    config = json.load(f)
  assert config["architectures"] == ["MT5ForConditionalGeneration"]
  assert config["tie_word_embeddings"] is False
  loaded = hf_fixtures.load(export)
  assert type(loaded).__name__ == "MT5ForConditionalGeneration"
  assert loaded.lm_head.weight.data_ptr() != loaded.shared.weight.data_ptr()
  # Bit-identical tensors under transformers' own names, so equal logits.
  _assert_same_tensors(_hf_tensors(export), _hf_tensors(tiny.hf_dir))
  batch = tiny.batch
  np.testing.assert_array_equal(hf_fixtures.hf_logits(loaded, batch),
                                hf_fixtures.hf_logits(tiny.model, batch))


def test_export_carries_the_sentencepiece_model_for_t5_tokenizer(tiny):
  import transformers  # pylint: disable=g-import-not-at-top
  import sentencepiece  # pylint: disable=g-import-not-at-top
  export = str(tiny.root / "export_spm")
  commands.aya_to_hf(tiny.imported.checkpoint, export,
                     spm_model=vocabularies.DEMO_SPM_PATH)

  with open(os.path.join(export, hf.SPM_FILE), "rb") as a, open(
      vocabularies.DEMO_SPM_PATH, "rb") as b:
    assert a.read() == b.read()
  tokenizer = transformers.AutoTokenizer.from_pretrained(export)
  sp = sentencepiece.SentencePieceProcessor(
      model_file=vocabularies.DEMO_SPM_PATH)
  text = "The cat sleeps on the warm mat."
  assert tokenizer(text).input_ids == sp.encode(text) + [1]


def test_import_export_import_round_trips_every_tensor_exactly(tiny):
  export = str(tiny.root / "round_trip_hf")
  commands.aya_to_hf(tiny.imported.checkpoint, export,
                     gin_files=[tiny.imported.gin_file])
  again = commands.hf_to_aya(export, str(tiny.root / "round_trip_aya"))

  assert again.config == tiny.imported.config
  _assert_same_tensors(_params(again.checkpoint),
                       _params(tiny.imported.checkpoint))


def test_sharded_checkpoint_imports_identically_to_the_single_file(tiny):
  shards = [f for f in os.listdir(tiny.sharded_dir)
            if f.endswith(".safetensors")]
  assert len(shards) >= 3
  assert os.path.exists(os.path.join(tiny.sharded_dir, hf.INDEX_FILE))

  result = commands.hf_to_aya(tiny.sharded_dir, str(tiny.root / "sharded"))

  _assert_same_tensors(_params(result.checkpoint),
                       _params(tiny.imported.checkpoint))


def test_reading_and_writing_in_small_blocks_changes_no_tensor(
    tiny, tmp_path, monkeypatch):
  # Real checkpoints have multi-GB tensors, streamed in 32 MiB blocks; the
  # tiny model's tensors are split the same way with 1 KB blocks.
  monkeypatch.setattr(safetensors_io, "BLOCK_BYTES", 1000)
  result = commands.hf_to_aya(tiny.sharded_dir, str(tmp_path / "aya"))
  _assert_same_tensors(_params(result.checkpoint),
                       _params(tiny.imported.checkpoint))
  export = str(tmp_path / "hf")
  commands.aya_to_hf(result.checkpoint, export,
                     gin_files=[result.gin_file])
  _assert_same_tensors(_hf_tensors(export), _hf_tensors(tiny.hf_dir))


def test_scanned_layout_imports_and_exports_like_the_unrolled_one(tiny):
  result = commands.hf_to_aya(tiny.hf_dir, str(tiny.root / "scanned"),
                              scan_layers=True)
  params = _params(result.checkpoint)
  assert params["encoder/layers/attention/query/kernel"].shape == (3, 64, 32)

  logits = _our_logits(result.config, params, tiny.batch)
  np.testing.assert_allclose(
      logits, _our_logits(tiny.imported.config,
                          _params(tiny.imported.checkpoint), tiny.batch),
      atol=1e-5)
  export = str(tiny.root / "scanned_export")
  commands.aya_to_hf(result.checkpoint, export,
                     relative_attention_max_distance=20)
  _assert_same_tensors(_hf_tensors(export), _hf_tensors(tiny.hf_dir))


def test_bfloat16_export_imports_as_the_rounded_float32_values(tiny):
  export = str(tiny.root / "bf16")
  commands.aya_to_hf(tiny.imported.checkpoint, export, dtype="bfloat16",
                     relative_attention_max_distance=20)
  result = commands.hf_to_aya(export, str(tiny.root / "bf16_aya"))

  original = _params(tiny.imported.checkpoint)
  for path, value in _params(result.checkpoint).items():
    assert value.dtype == np.float32
    rounded = original[path].astype(jax.numpy.bfloat16).astype(np.float32)
    np.testing.assert_array_equal(value, rounded, err_msg=path)


def test_t5_v1_0_relu_model_with_tied_scaled_head_round_trips(tmp_path):
  model = hf_fixtures.build_t5_v1_0()
  hf_dir = hf_fixtures.save(model, str(tmp_path / "t5"))
  result = commands.hf_to_aya(hf_dir, str(tmp_path / "aya"))
  assert result.config.logits_via_embedding
  assert tuple(result.config.mlp_activations) == ("relu",)

  batch = hf_fixtures.multilingual_batch()
  real = batch["decoder_target_tokens"] > 0
  ours = _our_logits(result.config, _params(result.checkpoint), batch)
  assert np.abs(ours - hf_fixtures.hf_logits(model, batch))[real].max() < 1e-4
  export = str(tmp_path / "export")
  commands.aya_to_hf(result.checkpoint, export, gin_files=[result.gin_file])
  loaded = hf_fixtures.load(export)
  assert type(loaded).__name__ == "T5ForConditionalGeneration"
  np.testing.assert_array_equal(hf_fixtures.hf_logits(loaded, batch),
                                hf_fixtures.hf_logits(model, batch))


# ---------------------------------------------------------- finetuning ---


def _train(tmp_path, monkeypatch, initial_checkpoint: str,
           model_gin: str) -> tuple[float, dict]:
  """One step of the real CLI driver; returns its loss and its batch."""
  batches = []
  real_make_global_batch = data.make_global_batch

  def recording(host_batch, mesh, *args, **kwargs):
    batches.append({k: np.asarray(v) for k, v in host_batch.items()})
    return real_make_global_batch(host_batch, mesh, *args, **kwargs)

  monkeypatch.setattr(data, "make_global_batch", recording)
  monkeypatch.chdir(REPO)
  model_dir = str(tmp_path / "run")
  gin_utils.run(train.main, [
      "--gin_file=gin/aya_tiny_cpu.gin", f"--gin_file={model_gin}",
      f"--gin.MODEL_DIR='{model_dir}'",
      f"--gin.INITIAL_CHECKPOINT_PATH='{initial_checkpoint}'",
      "--gin.TRAIN_STEPS=1", "--gin.BATCH_SIZE=8", "--gin.EVAL_PERIOD=0",
      "--gin.Z_LOSS=0.0",
      "--gin.LOSS_NORMALIZING_FACTOR='NUM_REAL_TARGET_TOKENS'"])
  rows = metrics_writer.read_metrics(os.path.join(model_dir,
                                                  "train_metrics.jsonl"))
  return rows[0]["loss"], batches[0]


@pytest.mark.parametrize("start_from", [
    "hf_folder", pytest.param("converted", marks=pytest.mark.slow)])
def test_finetuning_from_hf_model_via_initial_checkpoint_path_starts_at_hf_loss(
    tiny, tmp_path, monkeypatch, start_from):
  initial = (tiny.hf_dir if start_from == "hf_folder"
             else tiny.imported.checkpoint)

  loss, batch = _train(tmp_path, monkeypatch, initial,
                       tiny.imported.gin_file)

  assert batch["decoder_target_tokens"].shape[0] == 8
  expected = hf_fixtures.hf_loss(tiny.model, batch)
  assert loss == pytest.approx(expected, abs=1e-4)


def test_initial_checkpoint_path_to_a_mismatched_hf_model_names_the_tensor(
    tiny, tmp_path, capsys):
  argv = ["--gin_file=gin/aya_tiny_cpu.gin",  # d_model 128, not 64.
          f"--gin.MODEL_DIR='{tmp_path}/run'",
          f"--gin.INITIAL_CHECKPOINT_PATH='{tiny.hf_dir}'"]
  cwd = os.getcwd()
  os.chdir(REPO)
  try:
    with pytest.raises(SystemExit) as exit_info:
      gin_utils.run(train.main, argv)
  finally:
    os.chdir(cwd)
  assert exit_info.value.code == 2
  error = capsys.readouterr().err
  assert "tensor 'shared.weight' (model.safetensors) has shape (1280, 64)" in (
      error)


# ---------------------------------------------------------- bad inputs ---


def _copy(tiny, tmp_path, name: str = "broken") -> str:
  target = str(tmp_path / name)
  shutil.copytree(tiny.hf_dir, target)
  return target


def _rewrite_weights(directory: str, edit) -> None:
  tensors = _hf_tensors(directory)
  edit(tensors)
  save_file(tensors, os.path.join(directory, hf.SINGLE_FILE),
            metadata={"format": "pt"})


def _edit_config(directory: str, **fields) -> None:
  path = os.path.join(directory, hf.CONFIG_FILE)
  with open(path) as f:
    config = json.load(f)
  config.update(fields)
  with open(path, "w") as f:
    json.dump(config, f)


def test_missing_tensor_is_named(tiny, tmp_path):
  broken = _copy(tiny, tmp_path)
  name = "encoder.block.1.layer.0.SelfAttention.k.weight"
  _rewrite_weights(broken, lambda t: t.pop(name))

  with pytest.raises(checkpoints.CheckpointMismatchError,
                     match=rf"missing: tensor '{name}'"):
    commands.hf_to_aya(broken, str(tmp_path / "out"))


def test_wrong_shape_is_named_with_both_shapes(tiny, tmp_path):
  broken = _copy(tiny, tmp_path)
  name = "decoder.block.0.layer.2.DenseReluDense.wo.weight"
  _rewrite_weights(broken, lambda t: t.update({name: t[name][:, :90]}))

  with pytest.raises(checkpoints.CheckpointMismatchError) as error:
    commands.hf_to_aya(broken, str(tmp_path / "out"))
  assert (f"tensor '{name}' (model.safetensors) has shape (90, 64) as T5X "
          "decoder/layers_0/mlp/wo/kernel, the model expects (96, 64)"
          ) in str(error.value)


def test_unknown_tensor_is_refused_not_dropped(tiny, tmp_path):
  broken = _copy(tiny, tmp_path)
  name = "encoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight"
  _rewrite_weights(broken, lambda t: t.update(
      {name: np.zeros((16, 4), np.float32)}))

  with pytest.raises(hf.HfFormatError, match=name.replace(".", r"\.")):
    commands.hf_to_aya(broken, str(tmp_path / "out"))


@pytest.mark.parametrize("fields,field", [
    ({"feed_forward_proj": "gated-silu"}, "feed_forward_proj"),
    ({"model_type": "umt5"}, "model_type"),
    ({"is_encoder_decoder": False}, "is_encoder_decoder"),
    ({"d_kv": None}, "d_kv"),
])
def test_unsupported_config_is_refused_naming_the_field(tiny, tmp_path, fields,
                                                        field):
  broken = _copy(tiny, tmp_path)
  _edit_config(broken, **fields)

  with pytest.raises(hf.HfFormatError, match=f"field '{field}'"):
    commands.hf_to_aya(broken, str(tmp_path / "out"))


def test_folder_without_weights_names_the_expected_files(tiny, tmp_path):
  empty = str(tmp_path / "no_weights")
  os.makedirs(empty)
  shutil.copy(os.path.join(tiny.hf_dir, hf.CONFIG_FILE), empty)
  with pytest.raises(hf.HfFormatError, match="model.safetensors"):
    commands.hf_to_aya(empty, str(tmp_path / "out"))

  with open(os.path.join(empty, "pytorch_model.bin"), "wb") as f:
    f.write(b"not unpickled")
  with pytest.raises(hf.HfFormatError, match="never unpickles"):
    commands.hf_to_aya(empty, str(tmp_path / "out"))


def test_missing_shard_is_named(tiny, tmp_path):
  broken = str(tmp_path / "sharded")
  shutil.copytree(tiny.sharded_dir, broken)
  shard = sorted(f for f in os.listdir(broken) if f.endswith(".safetensors"))[1]
  os.remove(os.path.join(broken, shard))

  with pytest.raises(hf.HfFormatError, match=f"Shard .*{shard}.* missing"):
    commands.hf_to_aya(broken, str(tmp_path / "out"))


def test_truncated_safetensors_file_is_named(tiny, tmp_path):
  broken = _copy(tiny, tmp_path)
  path = os.path.join(broken, hf.SINGLE_FILE)
  os.truncate(path, os.path.getsize(path) - 100)

  with pytest.raises(ValueError, match="truncated"):
    commands.hf_to_aya(broken, str(tmp_path / "out"))


def test_cli_prints_one_error_line_and_exits_2(tiny, tmp_path, capsys):
  broken = _copy(tiny, tmp_path)
  _edit_config(broken, feed_forward_proj="gelu")

  status = cli.main(["hf_to_aya", f"--hf_dir={broken}",
                     f"--output_dir={tmp_path}/out"])

  assert status == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith("error: ")
  assert "'feed_forward_proj' is 'gelu'" in err[0]


def test_cli_hf_to_aya_reports_checkpoint_and_memory(tiny, tmp_path, capsys):
  status = cli.main(["hf_to_aya", f"--hf_dir={tiny.sharded_dir}",
                     f"--output_dir={tmp_path}/out"])

  assert status == 0
  out = capsys.readouterr().out
  assert f"INITIAL_CHECKPOINT_PATH='{tmp_path}/out/checkpoint_0'" in out
  assert "peak host memory" in out and "ratio" in out
  assert os.path.exists(tmp_path / "out" / commands.MODEL_GIN)


# ------------------------------------------------------ architecture ---


def test_export_reads_the_architecture_beside_the_checkpoint(tiny):
  """No --gin_file: model.gin (max distance 20, not mT5's 128) is used."""
  export = str(tiny.root / "export_own_architecture")
  commands.aya_to_hf(tiny.imported.checkpoint, export)
  with open(os.path.join(export, "config.json")) as f:
    assert json.load(f)["relative_attention_max_distance"] == 20
  np.testing.assert_array_equal(
      hf_fixtures.hf_logits(hf_fixtures.load(export), tiny.batch),
      hf_fixtures.hf_logits(tiny.model, tiny.batch))


def test_export_without_architecture_asks_for_what_shapes_cannot_tell(
    tiny, tmp_path, capsys):
  bare = tmp_path / "bare" / "checkpoint_0"
  shutil.copytree(tiny.imported.checkpoint, bare)
  argv = ["aya_to_hf", f"--checkpoint={bare}",
          f"--output_dir={tmp_path / 'hf'}"]
  assert cli.main(argv) == 2
  error = capsys.readouterr().err.strip()
  assert len(error.splitlines()) == 1
  assert ("--relative_attention_max_distance=... --layer_norm_epsilon=..."
          in error), error
  assert not os.path.exists(tmp_path / "hf" / "config.json")
  assert cli.main(argv + ["--relative_attention_max_distance=20",
                          "--layer_norm_epsilon=1e-6"]) == 0
  np.testing.assert_array_equal(
      hf_fixtures.hf_logits(hf_fixtures.load(str(tmp_path / "hf")),
                            tiny.batch),
      hf_fixtures.hf_logits(tiny.model, tiny.batch))

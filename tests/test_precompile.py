"""AOT compilation of the train step: memory and FLOPs reports, refusals.

The TPU cases compile for an abstract v4-8 with libtpu (the `tpu` extra) on
this CPU machine; the XXL-on-v4-128 report is made by the command in
docs/scaling.md (minutes per compile, so not here).
"""

import dataclasses
import glob
import json
import os

import gin
import jax
import numpy as np
import pytest

from aya_t5x import flops
from aya_t5x import gin_utils
from aya_t5x import model as model_lib
from aya_t5x import network
from aya_t5x import partitioning
from aya_t5x import precompile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--gin_file=gin/models/mt5_tiny.gin", "--gin_file=gin/runs/finetune.gin",
        "--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 32}",
        "--gin.BATCH_SIZE=8"]
HARDWARE = {"v4_8": "v4-8", "v4_32": "v4-32", "v4_128": "v4-128",
            "v4_256": "v4-256", "v5e_256": "v5e-256", "v5p_128": "v5p-128",
            "cpu": "cpu", "gpu": None}


@pytest.fixture(autouse=True)
def _run_from_repo(monkeypatch):
  monkeypatch.chdir(REPO)
  yield
  gin.clear_config(clear_constants=False)


def _spec(argv):
  precompile.parse_gin_for_compile(gin_utils.parse_command_line(argv))
  return precompile.run_spec_from_gin()


def test_cli_compiles_for_a_v4_8_and_reports_memory_and_flops(tmp_path):
  out = tmp_path / "report.json"
  printed = precompile.main(TINY + ["--topology=v4-8", "--gin.NUM_PARTITIONS=2",
                                    f"--output={out}"])
  report = json.loads(out.read_text())
  assert report == json.loads(json.dumps(printed))
  assert (report["devices"], report["device_kind"]) == (4, "TPU v4")
  assert report["run"]["data_parallel"] == 2
  memory = report["memory_per_chip"]
  assert memory["fits"] and memory["capacity_gib"] == 32.0
  assert 0 < memory["peak_gib"] < 1 and memory["arguments_gib"] > 0
  # Per-device compiler FLOPs x 4 chips against the matmul-only formula:
  # no remat, so only elementwise work is on top.
  ratio = report["flops"]["compiler_over_analytic"]
  assert 1.0 < ratio < 1.15, ratio
  assert "next_knobs" not in report


def test_full_remat_shows_its_recompute_overhead_in_the_compiler_flops():
  devices = precompile.topology_devices("v4-8")  # TPU compiles are quicker.
  measured = {}
  for policy in ("full", "none"):
    spec = _spec(TINY + [f"--gin.REMAT_POLICY='{policy}'"])
    # The tiny model has 2+2 layers: this unrolled variant is the model.
    measured[policy] = precompile.compile_step(
        precompile.with_layers(spec, 2, 2), devices).flops
  analytic = precompile.analytic_flops(spec)
  layer_forward = analytic["full_remat_train_step"] - analytic["train_step"]
  # The extra FLOPs are most of the layers' forward pass, once more (not
  # all: XLA drops recomputed outputs the backward pass never reads, such as
  # each block's last projection).
  extra = (measured["full"] - measured["none"]) * len(devices)
  assert 0.6 * layer_forward < extra < layer_forward


def test_extrapolated_flops_match_a_deeper_unrolled_compile():
  devices = precompile.topology_devices("v4-8")[:2]  # TPU compiles are quicker.
  spec = precompile.with_layers(_spec(TINY), 2, 3)
  extrapolated = precompile.compiler_flops(spec, devices)
  assert set(extrapolated["variants"]) == {"1+1", "2+1", "1+2"}
  direct = precompile.compile_step(spec, devices).flops
  assert extrapolated["method"] == "sharded, per device x 2 devices"
  assert extrapolated["total"] / 2 == pytest.approx(direct, rel=1e-3)


@pytest.mark.slow
def test_a_scanned_stack_is_counted_once_by_the_compiler():
  """Why the report extrapolates from unrolled variants."""
  devices = precompile.topology_devices("cpu")[:1]
  spec = precompile.with_layers(_spec(TINY), 2, 3)
  unrolled = precompile.compile_step(spec, devices).flops
  scanned_cfg = dataclasses.replace(spec.model.config, scan_layers=True)
  scanned = dataclasses.replace(spec, model=model_lib.EncoderDecoderModel(
      scanned_cfg, spec.model.loss_config))
  assert precompile.compile_step(scanned, devices).flops < 0.7 * unrolled


@pytest.mark.parametrize("size", ["tiny", "small", "xxl"])
def test_parameter_count_formula_matches_the_network(size):
  spec = _spec([f"--gin_file=gin/models/mt5_{size}.gin",
                "--gin_file=gin/runs/finetune.gin",
                "--gin.TASK_FEATURE_LENGTHS={'inputs': 8, 'targets': 8}"])
  shapes = partitioning.abstract_boxed_params(spec.model)
  leaves = jax.tree.leaves(shapes, is_leaf=lambda x: hasattr(x, "unbox"))
  actual = sum(int(np.prod(getattr(x, "value", x).shape)) for x in leaves)
  assert flops.parameter_count(spec.model.config) == actual
  if size == "xxl":
    assert 12.9e9 < actual < 13.0e9


def test_analytic_flops_of_mt5_xxl_follow_the_6nd_rule_of_thumb():
  cfg = network.T5Config(vocab_size=250112, emb_dim=4096, num_heads=64,
                         num_encoder_layers=24, num_decoder_layers=24,
                         head_dim=64, mlp_dim=10240)
  step = flops.train_step_flops(cfg, batch=256, encoder_length=1024,
                                decoder_length=1024)
  # 6 x (non-embedding parameters) x tokens, plus attention and the head.
  n = flops.parameter_count(cfg) - 2 * 250112 * 4096
  lower = 6 * n * 256 * 1024
  assert lower < step.train_step < 1.6 * lower


def test_compiler_refusal_is_reported_with_the_needed_memory(tmp_path):
  huge = ["--gin_file=gin/models/mt5_tiny.gin",
          "--gin_file=gin/runs/finetune.gin",
          "--gin.TASK_FEATURE_LENGTHS={'inputs': 2048, 'targets': 2048}",
          "--gin.BATCH_SIZE=1024", "--topology=v4-8",
          "--no_flops_extrapolation", f"--output={tmp_path / 'r.json'}"]
  report = precompile.main(huge)
  memory = report["memory_per_chip"]
  assert not memory["fits"]
  assert memory["needed_gib"] > memory["compiler_limit_gib"] > 25
  assert memory["peak_gib"] is None
  knobs = " ".join(report["next_knobs"])
  assert "PARAMETER_PARTITIONING_DIMS=2" in knobs
  assert "NUM_MICROBATCHES=2" in knobs and "REMAT_POLICY='minimal'" in knobs


def test_refusal_message_parsing():
  message = ("RESOURCE_EXHAUSTED: XLA:TPU compile permanent error. Ran out of "
             "memory in memory space hbm. Used 38.71G of 30.75G hbm. Exceeded "
             "hbm capacity by 7.96G.")
  needed, limit = precompile.parse_refusal(message)
  assert needed == int(38.71 * 2**30) and limit == int(30.75 * 2**30)
  other = ("RESOURCE_EXHAUSTED: Ran out of memory on HBM, the total memory "
           "required for HLO temporaries (62.64G) exceeds available HBM "
           "(30.75G).")
  assert precompile.parse_refusal(other) == (int(62.64 * 2**30),
                                             int(30.75 * 2**30))
  assert precompile.parse_refusal("INTERNAL: something else") is None


@pytest.mark.parametrize("argv,needle", [
    (TINY + ["--topology=v9-1"], "--topology='v9-1'"),
    (TINY + ["--topology=cpu", "--gin.NUM_PARTITIONS=3"],
     "NUM_PARTITIONS=3 must divide"),
    (["--gin_file=gin/models/mt5_tiny.gin", "--gin_file=gin/runs/finetune.gin",
      "--topology=cpu"], "--gin.TASK_FEATURE_LENGTHS"),
    (["--gin_file=gin/models/mt5_small.gin", "--gin_file=gin/runs/finetune.gin",
      "--gin.TASK_FEATURE_LENGTHS={'inputs': 8, 'targets': 8}",
      "--gin.BATCH_SIZE=8", "--gin.NUM_PARTITIONS=4", "--topology=v4-8",
      "--no_flops_extrapolation"], "num_heads=6"),
])
def test_bad_input_is_a_usage_error_naming_the_flag(argv, needle, capsys,
                                                    monkeypatch):
  monkeypatch.setattr("sys.argv", ["precompile"] + argv)
  with pytest.raises(SystemExit) as exit_info:
    precompile.console_main()
  assert exit_info.value.code == 2
  assert needle in capsys.readouterr().err


def test_every_hardware_file_exists_and_is_documented():
  files = sorted(os.path.basename(p)[:-4]
                 for p in glob.glob(os.path.join(REPO, "gin/hardware/*.gin")))
  assert files == sorted(HARDWARE)
  for name in files:
    text = open(os.path.join(REPO, "gin/hardware", f"{name}.gin")).read()
    assert text.startswith("#") and "NUM_PARTITIONS" in text, name


@pytest.mark.parametrize("name", [n for n, t in HARDWARE.items() if t])
def test_xxl_plus_a_hardware_file_is_a_complete_mesh_for_its_slice(name):
  """The Aya batch (256 rows) splits over the slice's mesh and microbatches."""
  spec = _spec(["--gin_file=gin/models/mt5_xxl.gin",
                "--gin_file=gin/runs/finetune.gin",
                "--gin.TASK_FEATURE_LENGTHS={'inputs': 1024, 'targets': 1024}",
                "--gin.BATCH_SIZE=256", f"--gin_file=gin/hardware/{name}.gin"])
  devices = precompile.topology_devices(HARDWARE[name])
  if name == "cpu":
    devices = devices[:1]
  trainer = precompile.build_trainer(spec, devices)
  data = trainer.partitioner.data_parallel_size
  microbatches = spec.trainer_config.num_microbatches
  assert spec.batch_size % (data * microbatches) == 0
  assert spec.model.config.num_heads % trainer.partitioner.mesh.shape[
      "model"] == 0

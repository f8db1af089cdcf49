"""Evaluation tasks on the sample data, and rank classification on a model."""

import importlib.util
import json
import os
import subprocess
import sys

import flax.linen as nn
import jax
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aya_t5x import inference
from aya_t5x import model as model_lib
from aya_t5x import network
from aya_t5x import partitioning
from aya_t5x import rank_classification
from aya_t5x import sources
from aya_t5x import vocabularies
from aya_t5x.tasks.eval import benchmark
from aya_t5x.tasks.eval import example as example_lib
from aya_t5x.tasks.eval import prompts

SAMPLE = benchmark.SAMPLE_DIR


def _builder():
  path = os.path.join(SAMPLE, "build_eval_sample.py")
  spec = importlib.util.spec_from_file_location("build_eval_sample", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


BUILDER = _builder()


@pytest.mark.parametrize("name", sorted(BUILDER.EXPECTED))
def test_each_benchmark_reads_its_hub_schema_into_the_expected_examples(
    eval_sample_mirror, name):
  bench = benchmark.get(name)
  expected = BUILDER.EXPECTED[name]
  counts, skipped = {}, {}
  languages = ([benchmark.ALL_LANGUAGES] if benchmark.ALL_LANGUAGES in
               bench.tasks else sorted(expected))
  for language in languages:
    source = benchmark.eval_source(bench.tasks[language])
    files = source.spec.files  # The real loader (FLORES: plus, fallback).
    assert isinstance(getattr(files, "primary", files), sources.HubFiles)
    source.skipped.clear()
    for example in source.examples():
      counts[example.language] = counts.get(example.language, 0) + 1
      if bench.kind == benchmark.RANK:
        assert example.targets == (example.options[example.label],)
    for (reason, _), n in source.skipped.items():
      skipped[(name, language)] = reason
      assert n == 1
  assert counts == expected
  assert skipped == {k: v for k, v in BUILDER.EXPECTED_SKIPPED.items()
                     if k[0] == name}


def test_heldout_tasks_have_five_templates_with_one_option_per_label():
  for templates, num_options in ((prompts.XCOPA, 2), (prompts.XNLI, 3),
                                 (prompts.XSTORYCLOZE, 2),
                                 (prompts.XWINOGRAD, 2)):
    assert len({t.name for t in templates}) == 5
    assert all(len(t.options) == num_options for t in templates)


def test_heldout_examples_come_once_per_template_and_median_is_possible(
    eval_sample_mirror):
  examples = benchmark.eval_source("aya_eval_xnli_fra").examples()
  by_template = {}
  for e in examples:
    by_template.setdefault(e.template, []).append(e.label)
  assert sorted(by_template) == sorted(t.name for t in prompts.XNLI)
  assert all(labels == [0, 1, 2] for labels in by_template.values())


def test_mmlu_prompt_has_five_solved_shots_then_the_open_question(
    eval_sample_mirror):
  example = benchmark.eval_source("aya_eval_mmlu_hin").examples()[0]
  assert example.inputs.count("Answer:") == 6
  assert example.inputs.endswith("Answer:")
  assert example.options == ("A", "B", "C", "D") and example.label == 0
  # The subject comes from the id (Okapi's files have no subject column).
  assert example.inputs.startswith(prompts.MMLU_HEADER.format(
      subject="elementary mathematics"))


def test_okapi_mmlu_reads_json_lines_and_the_derived_copies_columns(
    tmp_path, hub_mirror):
  data = tmp_path / "jon-tow" / "okapi_mmlu" / "data"
  data.mkdir(parents=True)
  rows = [{"id": f"r{i}", "question": f"Frage {i}?", "subject": "astronomy",
           "choices": ["w", "x", "y", "z"], "answer": i % 4}
          for i in range(6)]
  rows[1]["answer"] = 7  # An index out of range: skipped and counted.
  lines = "\n".join(json.dumps(r) for r in rows) + "\n"
  (data / "de_test.json").write_text(lines, encoding="utf-8")
  (data / "de_dev.json").write_text(lines, encoding="utf-8")
  hub_mirror(tmp_path)
  source = benchmark.eval_source("aya_eval_mmlu_deu")
  source.skipped.clear()
  examples = source.examples()
  assert [e.label for e in examples] == [0, 2, 3, 0, 1]
  assert examples[0].inputs.count("Answer:") == 6
  assert "about astronomy" in examples[0].inputs
  assert dict(source.skipped) == {("answer 7 is not 0-3", "answer"): 1}


def test_a_file_without_a_schema_column_is_refused_naming_it(
    tmp_path, hub_mirror):
  folder = tmp_path / "cambridgeltl" / "xcopa" / "sw" / "validation"
  folder.mkdir(parents=True)
  pq.write_table(pa.table({"premise": ["x"], "choice1": ["a"],
                           "choice2": ["b"], "question": ["cause"],
                           "idx": [0]}), folder / "0000.parquet")
  hub_mirror(tmp_path)
  with pytest.raises(ValueError, match=r"no column\(s\) \['label'\]"):
    benchmark.eval_source("aya_eval_xcopa_swa").examples()


def test_rank_picks_the_highest_total_and_keeps_example_order():
  def fake_score(inputs, targets):  # Total = sum of the target ids.
    return np.array([float(sum(t)) for t in targets])
  ranked = rank_classification.rank(
      fake_score, [[5, 1], [7, 8, 9, 1], [3, 1]],
      [[[2, 1], [9, 1]], [[4, 1], [4, 1], [1]], [[6, 6, 1], [20, 1]]])
  assert [r.choice for r in ranked] == [1, 0, 1]  # Ties: the first.
  assert ranked[0].scores == (3.0, 10.0)
  assert ranked[2].scores == (13.0, 21.0)
  with pytest.raises(ValueError, match="example 0 has no options"):
    rank_classification.rank(fake_score, [[1]], [[]])


def _log_likelihood(logits_fn, params, prompt, target) -> float:
  """log p(target | prompt) from the model's logits, one unpadded row."""
  target = np.array([target], np.int32)
  batch = {"encoder_input_tokens": np.array([prompt], np.int32),
           "decoder_input_tokens": np.concatenate(
               [np.zeros((1, 1), np.int32), target[:, :-1]], axis=1),
           "decoder_target_tokens": target,
           "decoder_loss_weights": np.ones_like(target)}
  logits = np.asarray(logits_fn(params, batch), np.float64)[0]
  logits = logits - logits.max(-1, keepdims=True)
  log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  return float(sum(log_probs[i, t] for i, t in enumerate(target[0])))


def test_rank_classification_matches_log_likelihoods_from_logits(
    eval_sample_mirror):
  config = network.T5Config(vocab_size=1280, emb_dim=32, num_heads=2,
                            num_encoder_layers=1, num_decoder_layers=1,
                            head_dim=16, mlp_dim=64, dtype="float32")
  model = model_lib.EncoderDecoderModel(config)
  params = nn.meta.unbox(partitioning.init_boxed_params(
      model, jax.random.PRNGKey(7)))
  vocabulary = vocabularies.demo_vocabulary()
  predictor = inference.Predictor(
      model, params, vocabulary, batch_size=4,
      partitioner=partitioning.Partitioner(devices=jax.devices()[:1]))
  examples = (benchmark.eval_source("aya_eval_xnli_hin").examples()[:3] +
              benchmark.eval_source("aya_eval_xcopa_zho").examples()[:3])
  prompts_ids = [predictor.encode_input(e.inputs) for e in examples]
  options_ids = [[predictor.encode_target(o) for o in e.options]
                 for e in examples]
  ranked = rank_classification.rank(predictor.score_ids, prompts_ids,
                                    options_ids)
  logits_fn = jax.jit(model.logits)  # One unpadded row per call.
  for prompt, options, r in zip(prompts_ids, options_ids, ranked):
    expected = [_log_likelihood(logits_fn, params, prompt, o)
                for o in options]
    np.testing.assert_allclose(r.scores, expected, rtol=1e-4, atol=1e-3)
    assert r.choice == int(np.argmax(expected))
  # The scores differ between options, so the choice is a real decision.
  assert all(len(set(np.round(r.scores, 3))) > 1 for r in ranked)


def test_bad_rows_raise_bad_row_with_the_field():
  with pytest.raises(example_lib.BadRow) as info:
    example_lib.text(None, "premise")
  assert info.value.field == "premise"
  assert example_lib.integer("2", "answer") == 2
  with pytest.raises(example_lib.BadRow):
    example_lib.integer("two", "answer")


def test_tasks_serve_the_same_examples_as_tf_data_for_seqio(eval_sample_mirror):
  source = benchmark.eval_source("aya_eval_xcopa_zho")
  rows = list(source.get_dataset("validation").as_numpy_iterator())
  examples = source.examples()
  assert len(rows) == len(examples) == 15
  assert [r["inputs"].decode() for r in rows] == [e.inputs for e in examples]
  assert all(len(r["options"]) == 2 and r["label"] in (0, 1) for r in rows)
  assert rows[0]["targets"].decode() == examples[0].targets[0]


def test_global_mmlu_reads_its_hub_schema_five_shot_and_split_by_culture(
    eval_sample_mirror):
  import aya_t5x.tasks.eval  # pylint: disable=g-import-not-at-top,unused-import
  source = benchmark.eval_source("aya_eval_global_mmlu_swa")
  examples = source.examples()
  assert [e.label for e in examples] == [2, 3]
  assert source.skipped == {("answer 'E' is not A-D", "answer"): 1}
  first = examples[0]
  assert first.inputs.count("Answer:") == 3  # Two dev shots + the question.
  assert first.inputs.rstrip().endswith("Answer:")
  assert "Mji mkuu wa Kenya" in first.inputs and "Nairobi" in first.inputs
  assert first.options == prompts.MMLU_LETTERS
  assert first.id == "geography/test/0"
  sensitive = benchmark.eval_source("aya_eval_global_mmlu_cs_swa").examples()
  agnostic = benchmark.eval_source("aya_eval_global_mmlu_ca_swa").examples()
  assert [e.id for e in sensitive] == ["geography/test/0"]
  assert [e.id for e in agnostic] == ["elementary_mathematics/test/1"]
  assert len(benchmark.get("global_mmlu").tasks) == 42


def test_m_arenahard_reads_its_hub_schema_as_open_ended_prompts(
    eval_sample_mirror):
  import aya_t5x.tasks.eval  # pylint: disable=g-import-not-at-top,unused-import
  bench = benchmark.get("m_arenahard")
  assert bench.kind == benchmark.OPEN_ENDED and len(bench.tasks) == 23
  source = benchmark.eval_source(bench.tasks["hin"])
  examples = source.examples()
  assert [(e.id, e.language) for e in examples] == [("a1b2", "hin")]
  assert examples[0].inputs.startswith("एक पायथन")
  assert source.skipped and list(source.skipped)[0][1] == "prompt"


def test_flores_reads_flores_plus_under_its_own_names(eval_sample_mirror):
  import aya_t5x.tasks.eval  # pylint: disable=g-import-not-at-top,unused-import
  swahili = benchmark.eval_source("aya_eval_flores_en_x_swa")
  assert [f.key for f in swahili.spec.files.resolve("devtest")] == [
      "devtest/swh_Latn.parquet"]  # flores_plus: `text`, int64 ids.
  assert [e.targets[0] for e in swahili.examples()] == [
      "Mto ni mrefu.", "Ninapenda kusoma vitabu.", "Tunakunywa chai asubuhi."]
  chinese = benchmark.eval_source("aya_eval_flores_en_x_zho")
  assert [f.key for f in chinese.spec.files.resolve("devtest")] == [
      "devtest/cmn_Hans.parquet"]  # FLORES-200's zho_Hans.
  assert chinese.examples()[0].targets == ("这条河很长。",)


def test_flores_falls_back_to_facebook_flores_with_one_warning(
    tmp_path, hub_mirror, caplog):
  import shutil  # pylint: disable=g-import-not-at-top
  import aya_t5x.tasks.eval  # pylint: disable=g-import-not-at-top,unused-import
  mirror = tmp_path / "mirror"
  shutil.copytree(benchmark.SAMPLE_DIR, mirror)
  (mirror / "openlanguagedata/flores_plus/devtest/hin_Deva.parquet").unlink()
  hub_mirror(str(mirror))
  sources._FALLBACKS_LOGGED.clear()  # pylint: disable=protected-access
  caplog.set_level("WARNING")
  # A language in neither repository: not found, and no word of a fallback.
  with pytest.raises(FileNotFoundError):
    benchmark.eval_source("aya_eval_flores_x_en_afr").spec.files.resolve(
        "devtest")
  assert "instead" not in caplog.text
  hindi = benchmark.eval_source("aya_eval_flores_x_en_hin")
  assert hindi.spec.files.resolve("devtest")[0].key == (
      "hin_Deva/devtest/0000.parquet")  # facebook/flores: `sentence`.
  assert hindi.examples()[0].targets == ("The river is long.",)
  warnings = [r.getMessage() for r in caplog.records
              if "reading facebook/flores instead" in r.getMessage()]
  assert len(warnings) == 1 and "hin_Deva" in warnings[0], warnings


def test_a_refused_flores_plus_falls_back_and_an_unreachable_hub_does_not():
  from aya_t5x import hub_access  # pylint: disable=g-import-not-at-top
  class Refusing:
    repo_id, splits = "openlanguagedata/flores_plus", ("devtest",)
    def __init__(self, refused):
      self.refused = refused
    def resolve(self, split):
      raise hub_access.HubUnreachable("no", refused=self.refused)
  class Fallback:
    repo_id, splits = "facebook/flores", ("devtest",)
    def resolve(self, split):
      return ["fallback"]
  assert sources.FallbackFiles(Refusing(True), Fallback()).resolve(
      "devtest") == ["fallback"]
  with pytest.raises(hub_access.HubUnreachable):
    sources.FallbackFiles(Refusing(False), Fallback()).resolve("devtest")


def test_benchmarks_import_after_a_run_locks_its_gin_config():
  """The benchmark eval imports the eval tasks lazily, after gin is locked:
  nothing they import may register a gin configurable."""
  script = ("import gin; gin.finalize(); import aya_t5x.tasks.eval; "
            "print('imported')")
  result = subprocess.run([sys.executable, "-c", script], capture_output=True,
                          text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "imported" in result.stdout

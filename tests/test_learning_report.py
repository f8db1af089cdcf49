"""What a run learned, per language: the eval hook, the table and the PNG."""

import json

import jax
import pytest

from aya_t5x import language_eval
from aya_t5x import learning_report
from aya_t5x import model as model_lib
from aya_t5x import network
from aya_t5x import vocabularies

TINY = network.T5Config(vocab_size=1280, emb_dim=32, num_heads=2,
                        num_encoder_layers=1, num_decoder_layers=1,
                        head_dim=16, mlp_dim=64, dtype="float32")


def test_per_language_eval_scores_every_demo_language():
  model = model_lib.EncoderDecoderModel(TINY)
  params = model.init_params(jax.random.PRNGKey(0), {
      k: (2, 8) for k in ("encoder_input_tokens", "decoder_input_tokens",
                          "decoder_target_tokens")})
  evaluate = language_eval.PerLanguageEval(
      vocabularies.demo_vocabulary(), "aya_demo", max_per_language=3)
  metrics = evaluate(model, params, None, 0, "unused")
  by_language = learning_report.per_language(metrics)
  assert len(by_language) == 12 and "hin" in by_language
  for values in by_language.values():
    assert values["examples"] == 3
    # A random model: about log(1280) nats per token, few tokens right.
    assert 5 < values["loss"] < 10
    assert 0 <= values["accuracy"] < 0.2
  # Padding rows weigh nothing: the same language alone scores the same.
  batch, = evaluate.batches()["hin"]
  nll, _, tokens = language_eval._token_sums(model, params, {  # pylint: disable=protected-access
      k: v[:3] for k, v in batch.items()})
  assert float(nll / tokens) == pytest.approx(by_language["hin"]["loss"],
                                              rel=1e-5)
  # In chunks of 2 rows (3 examples: two passes), the same figures.
  chunked = language_eval.PerLanguageEval(
      vocabularies.demo_vocabulary(), "aya_demo", max_per_language=3,
      batch_size=2)
  assert len(chunked.batches()["hin"]) == 2
  for key, value in chunked(model, params, None, 0, "unused").items():
    assert value == pytest.approx(metrics[key], rel=1e-5), key


def _write_run(model_dir, evals):
  train = [{"step": s, "loss": 8.0 - s / 100} for s in range(1, 401)]
  (model_dir / "train_metrics.jsonl").write_text(
      "\n".join(json.dumps(r) for r in train) + "\n")
  rows = [{"step": step, "validation/loss": loss,
           **{f"languages/{l}/{m}": v for l, metrics in languages.items()
              for m, v in metrics.items()}}
          for step, loss, languages in evals]
  (model_dir / "eval_metrics.jsonl").write_text(
      "\n".join(json.dumps(r) for r in rows) + "\n")


def test_report_tabulates_first_and_last_eval_and_writes_the_png(tmp_path):
  before = {"loss": 7.5, "accuracy": 0.0, "examples": 24}
  _write_run(tmp_path, [
      (0, 7.6, {"hin": before, "swa": before}),
      (200, 2.0, {"hin": {**before, "loss": 2.5}, "swa": before}),
      (400, 1.3, {"hin": {"loss": 1.25, "accuracy": 0.75, "examples": 24},
                  "swa": {"loss": 1.75, "accuracy": 0.5, "examples": 24}})])
  text = learning_report.report(str(tmp_path))
  assert "| hin | 24 | 7.50 | 1.25 | 0.000 | 0.750 |" in text
  assert "| **all** | 48 | 7.50 | 1.50 | 0.000 | 0.625 |" in text
  png = tmp_path / learning_report.PNG_NAME
  assert png.read_bytes()[:4] == b"\x89PNG"


def test_a_run_without_per_language_evals_is_one_line_error(tmp_path,
                                                            capsys):
  _write_run(tmp_path, [(0, 7.6, {}), (400, 1.3, {})])
  assert learning_report.main([f"--model_dir={tmp_path}"]) == 2
  error = capsys.readouterr().err
  assert "PerLanguageEval" in error and len(error.splitlines()) == 1

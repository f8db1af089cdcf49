"""Decoding: cached generation against transformers and against recompute."""

import dataclasses
import re
import types

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from aya_t5x import decoding
from aya_t5x import inference
from aya_t5x import model as model_lib
from aya_t5x import network
from aya_t5x import partitioning
from aya_t5x import vocabularies
from aya_t5x.convert import commands
from tests import hf_fixtures

MAX_NEW = 12


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  """A random transformers mT5 whose EOS is likely enough to end rows early.

  The EOS row of the head is scaled up so that, over the batch, some rows
  end after a few tokens and others run to the length limit: both paths of
  every algorithm are exercised.
  """
  root = tmp_path_factory.mktemp("decode")
  hf_model = hf_fixtures.build_mt5()
  with torch.no_grad():
    hf_model.lm_head.weight[decoding.EOS_ID] *= 2.0
  hf_dir = hf_fixtures.save(hf_model, str(root / "hf"))
  imported = commands.hf_to_aya(hf_dir, str(root / "aya"))
  config = dataclasses.replace(imported.config, dtype="float32")
  model = model_lib.EncoderDecoderModel(config)
  predictor = inference.Predictor.from_checkpoint(
      model, imported.checkpoint, vocabularies.demo_vocabulary(),
      batch_size=8,
      partitioner=partitioning.Partitioner(devices=jax.devices()[:1]))
  inputs = hf_fixtures.multilingual_batch()["encoder_input_tokens"]
  return types.SimpleNamespace(hf=hf_model, model=model, predictor=predictor,
                               inputs=inputs, checkpoint=imported.checkpoint,
                               hf_dir=hf_dir, root=root)


def _rows(inputs: np.ndarray) -> list[list[int]]:
  return [list(row[row > 0]) for row in inputs]


def _hf_generate(tiny, **kwargs) -> list[list[int]]:
  ids = torch.from_numpy(tiny.inputs.astype(np.int64))
  with torch.no_grad():
    out = tiny.hf.generate(input_ids=ids, attention_mask=ids > 0,
                           max_new_tokens=MAX_NEW, **kwargs).numpy()
  return [inference.strip_eos(row[1:]) for row in out]  # Drop the start id.


def _ours(tiny, **kwargs) -> list[list[int]]:
  config = decoding.DecodingConfig(max_new_tokens=MAX_NEW, **kwargs)
  return [g.tokens for g in tiny.predictor.generate_ids(_rows(tiny.inputs),
                                                        config)]


def test_greedy_equals_transformers_generate(tiny):
  theirs = _hf_generate(tiny, do_sample=False, num_beams=1)
  ours = _ours(tiny, method="greedy")
  assert ours == theirs
  lengths = sorted(len(t) for t in ours)
  assert lengths[0] < MAX_NEW - 1 and lengths[-1] == MAX_NEW  # Both endings.


def test_beam_search_returns_transformers_best_sequence(tiny):
  theirs = _hf_generate(tiny, do_sample=False, num_beams=4,
                        length_penalty=1.0)
  ours = _ours(tiny, method="beam", num_beams=4, length_penalty=1.0)
  assert ours == theirs
  assert ours != _ours(tiny, method="greedy")  # Beams found something else.


def test_beam_search_with_scanned_layers_returns_transformers_best_sequence(
    tiny):
  """Scanned decoder caches carry a leading layer axis; beams still share
  each input's cache row through the decoder's ancestry."""
  imported = commands.hf_to_aya(tiny.hf_dir, str(tiny.root / "scanned"),
                                scan_layers=True)
  model = model_lib.EncoderDecoderModel(dataclasses.replace(
      imported.config, dtype="float32"))
  predictor = inference.Predictor.from_checkpoint(
      model, imported.checkpoint, vocabularies.demo_vocabulary(),
      batch_size=8,
      partitioner=partitioning.Partitioner(devices=jax.devices()[:1]))
  config = decoding.DecodingConfig(method="beam", max_new_tokens=MAX_NEW)
  ours = [g.tokens for g in predictor.generate_ids(_rows(tiny.inputs), config)]
  assert ours == _hf_generate(tiny, do_sample=False, num_beams=4,
                              length_penalty=1.0)


def test_min_new_tokens_matches_transformers(tiny):
  theirs = _hf_generate(tiny, do_sample=False, num_beams=4, min_new_tokens=5)
  ours = _ours(tiny, method="beam", num_beams=4, min_new_tokens=5)
  assert ours == theirs
  assert min(len(t) for t in ours) >= 4  # EOS, not kept, is the 5th or later.
  assert min(len(t) for t in _ours(tiny, method="greedy")) < 4


def _recompute_greedy(model, params, inputs: np.ndarray) -> np.ndarray:
  """Greedy decoding by re-running the whole decoder at every step."""
  rows = inputs.shape[0]
  decoder_inputs = np.zeros((rows, MAX_NEW), np.int32)
  out = np.zeros((rows, MAX_NEW), np.int32)
  logits_fn = jax.jit(model.logits)
  for step in range(MAX_NEW):
    logits = logits_fn(params, {
        "encoder_input_tokens": inputs,
        "decoder_input_tokens": decoder_inputs,
        "decoder_target_tokens": np.ones((rows, MAX_NEW), np.int32)})
    out[:, step] = np.argmax(np.asarray(logits[:, step]), axis=-1)
    if step + 1 < MAX_NEW:
      decoder_inputs[:, step + 1] = out[:, step]
  return out


def _until_eos(row) -> list[int]:
  return inference.strip_eos(list(row))


@pytest.mark.parametrize("scan_layers", [False, True])
def test_cached_decoding_equals_full_recompute(tiny, scan_layers):
  model = model_lib.EncoderDecoderModel(dataclasses.replace(
      tiny.model.config, scan_layers=scan_layers,
      num_encoder_layers=2, num_decoder_layers=2, vocab_size=64))
  params = nn.meta.unbox(partitioning.init_boxed_params(
      model, jax.random.PRNGKey(3)))
  inputs = np.minimum(tiny.inputs, 63)
  tokens, _ = jax.jit(lambda p, x: model.predict_batch(
      p, x, decoding.DecodingConfig(max_new_tokens=MAX_NEW)))(params, inputs)
  expected = _recompute_greedy(model, params, inputs)
  for ours, theirs in zip(np.asarray(tokens), expected):
    assert _until_eos(ours) == _until_eos(theirs)


def test_sampling_is_reproducible_and_degenerate_settings_are_greedy(tiny):
  sample = dict(method="sample", temperature=1.0, top_p=0.95)
  first = _ours(tiny, seed=7, **sample)
  assert _ours(tiny, seed=7, **sample) == first
  assert _ours(tiny, seed=8, **sample) != first
  greedy = _ours(tiny, method="greedy")
  assert first != greedy
  assert _ours(tiny, method="sample", temperature=0.0, seed=7) == greedy
  assert _ours(tiny, method="sample", top_p=0.0, seed=7) == greedy


def test_top_p_keeps_the_smallest_set_reaching_the_mass():
  probs = np.array([[0.5, 0.3, 0.15, 0.05]], np.float32)
  logits = jnp.log(jnp.asarray(probs))
  kept = lambda p: np.asarray(decoding.filter_logits(
      logits, decoding.DecodingConfig(method="sample", top_p=p)) > -1e8)
  np.testing.assert_array_equal(kept(0.5), [[True, False, False, False]])
  np.testing.assert_array_equal(kept(0.6), [[True, True, False, False]])
  np.testing.assert_array_equal(kept(0.9), [[True, True, True, False]])
  top2 = decoding.filter_logits(
      logits, decoding.DecodingConfig(method="sample", top_k=2))
  assert np.asarray(top2 > -1e8).sum() == 2


def _nucleus_by_sorting(logits: np.ndarray, top_p: float) -> np.ndarray:
  """The definition: rank (ties to the lower id), keep while mass above < p."""
  keep = np.zeros(logits.shape, bool)
  for row, values in enumerate(logits.astype(np.float64)):
    order = np.argsort(-values, kind="stable")
    probs = np.exp(values - values.max())
    probs = probs[order] / probs.sum()
    keep[row, order] = np.cumsum(probs) - probs < top_p
  return keep


@pytest.mark.parametrize("top_p", [0.05, 0.3, 0.5, 0.8, 0.95])
def test_nucleus_equals_the_sorted_definition_ties_included(top_p):
  rng = np.random.default_rng(2)
  logits = np.concatenate([rng.normal(scale=3.0, size=(6, 200)),
                           rng.integers(-3, 4, size=(6, 200))])  # Ties.
  logits = logits.astype(np.float32)
  ours = np.asarray(decoding.nucleus(jnp.asarray(logits), top_p))
  np.testing.assert_array_equal(ours, _nucleus_by_sorting(logits, top_p))
  assert ours.sum(axis=1).min() >= 1


@pytest.mark.parametrize("k", [1, 7, 50, 200])
def test_top_k_filter_keeps_the_k_largest_and_their_ties(k):
  rng = np.random.default_rng(3)
  logits = np.concatenate([rng.normal(scale=3.0, size=(4, 200)),
                           rng.integers(-3, 4, size=(4, 200))])  # Ties.
  logits = logits.astype(np.float32)
  kept = np.asarray(decoding.filter_logits(
      jnp.asarray(logits), decoding.DecodingConfig(method="sample", top_k=k))
      > decoding.NEG_INF / 2)
  kth = np.sort(logits, axis=1)[:, -k][:, None]
  np.testing.assert_array_equal(kept, logits >= kth)


def test_decoding_on_a_4x2_mesh_equals_one_device(tiny):
  assert jax.device_count() == 8
  meshed = inference.Predictor.from_checkpoint(
      tiny.model, tiny.checkpoint, vocabularies.demo_vocabulary(),
      batch_size=8, partitioner=partitioning.Partitioner(
          partitioning.PartitioningConfig(num_partitions=2)))
  assert dict(meshed.partitioner.mesh.shape) == {"data": 4, "model": 2}
  rows = _rows(tiny.inputs)
  for config in (decoding.DecodingConfig(max_new_tokens=MAX_NEW),
                 decoding.DecodingConfig(method="sample", top_k=20,
                                         top_p=0.9, max_new_tokens=MAX_NEW),
                 decoding.DecodingConfig(method="beam",
                                         max_new_tokens=MAX_NEW)):
    ours = [g.tokens for g in meshed.generate_ids(rows, config)]
    single = [g.tokens for g in tiny.predictor.generate_ids(rows, config)]
    assert ours == single


def _compiled_generate(predictor, rows, config) -> str:
  """The optimised HLO of `predictor`'s generation program for `config`."""
  length = inference.bucket_length(max(len(r) for r in rows),
                                   predictor.max_input_length)
  tokens = predictor._put_batch(inference.pad_rows(rows, 8, length))  # pylint: disable=protected-access
  with predictor.partitioner.activate():
    generate = predictor._generate_fn(config)  # pylint: disable=protected-access
    return generate.lower(predictor.params, tokens,
                          jax.random.PRNGKey(0)).compile().as_text()


@pytest.mark.parametrize("config", [
    decoding.DecodingConfig(max_new_tokens=MAX_NEW),
    decoding.DecodingConfig(method="sample", top_k=5, top_p=0.9,
                            max_new_tokens=MAX_NEW),
    decoding.DecodingConfig(method="beam", max_new_tokens=MAX_NEW)],
    ids=["greedy", "sample", "beam"])
def test_data_parallel_decoding_moves_no_rows_between_devices(tiny, config):
  """Every device decodes its own rows: no all-gather in the program.

  Beam search used to gather caches by flat row index and rank candidates
  with a TopK that XLA does not split along the batch: both all-gathered
  the whole batch's tensors (caches; beams x vocabulary scores) onto every
  device at every step. So did top-p sampling's scatter.
  """
  data_parallel = inference.Predictor.from_checkpoint(
      tiny.model, tiny.checkpoint, vocabularies.demo_vocabulary(),
      batch_size=8, partitioner=partitioning.Partitioner())
  assert dict(data_parallel.partitioner.mesh.shape) == {"data": 8,
                                                       "model": 1}
  hlo = _compiled_generate(data_parallel, _rows(tiny.inputs), config)
  gathers = [line for line in hlo.splitlines()
             if re.search(r" all-gather(-start)?\(", line)]
  assert not gathers, gathers[0]


@pytest.mark.parametrize("rows", [8, 4])
def test_top_k_on_a_data_mesh_equals_lax_top_k(rows):
  """Sharded rows (8 over 8 devices) and an undividable batch (4) alike."""
  partitioner = partitioning.Partitioner()
  x = jnp.asarray(np.random.default_rng(0).normal(size=(rows, 50)),
                  jnp.float32)
  with partitioner.activate():
    values, ids = jax.jit(lambda v: decoding.top_k(v, 3))(x)
  expected_values, expected_ids = jax.lax.top_k(x, 3)
  np.testing.assert_array_equal(values, expected_values)
  np.testing.assert_array_equal(ids, expected_ids)


def test_reorder_cache_moves_ancestry_within_each_input_not_the_caches():
  batch, beams, length = 2, 3, 4
  ancestry = np.arange(batch * beams * length, dtype=np.int32).reshape(
      batch, beams, length)
  keys = np.arange(batch * 2 * beams * length * 5, dtype=np.float32).reshape(
      batch, 2, beams * length, 5)
  cache = {"decoder": {"ancestry": ancestry, "position": np.int32(2),
                       "layers_0": {"self_attention": {"cached_key": keys}}}}
  indices = np.array([[2, 2, 0], [1, 0, 1]], np.int32)
  out = model_lib.reorder_cache(cache, jnp.asarray(indices))
  np.testing.assert_array_equal(
      out["decoder"]["ancestry"],
      ancestry[np.arange(batch)[:, None], indices])
  np.testing.assert_array_equal(
      out["decoder"]["layers_0"]["self_attention"]["cached_key"], keys)
  assert out["decoder"]["position"] == 2


def test_score_equals_log_likelihood_from_logits(tiny):
  texts = ["copy: Paka analala.", "reverse: a b c"]
  targets = ["Paka analala.", "c b a"]
  scores = tiny.predictor.score(texts, targets)
  logits_fn = jax.jit(tiny.model.logits)
  for text, target, score in zip(texts, targets, scores):
    x = np.array([tiny.predictor.encode_input(text)], np.int32)
    y = np.array([tiny.predictor.encode_target(target)], np.int32)
    logits = logits_fn(tiny.predictor.params, {
        "encoder_input_tokens": x,
        "decoder_input_tokens": np.concatenate([[[0]], y[:, :-1]], axis=1),
        "decoder_target_tokens": y})
    log_probs = jax.nn.log_softmax(np.asarray(logits[0], np.float64))
    expected = float(sum(log_probs[i, t] for i, t in enumerate(y[0])))
    assert score == pytest.approx(expected, rel=1e-5)


def test_score_ids_batches_by_length_but_answers_in_the_callers_order(tiny):
  rows = _rows(tiny.inputs)
  rows = sorted(rows, key=len, reverse=True)[:3]  # Longest first.
  targets = [[5, 6, 7, decoding.EOS_ID], [8, decoding.EOS_ID],
             [9, 10, decoding.EOS_ID]]
  together = tiny.predictor.score_ids(rows, targets)
  alone = [tiny.predictor.score_ids([r], [t])[0]
           for r, t in zip(rows, targets)]
  np.testing.assert_allclose(together, alone, rtol=1e-5)


def test_a_target_longer_than_max_target_length_is_refused_naming_it(tiny):
  predictor = inference.Predictor(
      tiny.model, tiny.predictor.params, vocabularies.demo_vocabulary(),
      max_target_length=4, partitioner=tiny.predictor.partitioner)
  with pytest.raises(ValueError, match=r"target 1 has 5 tokens .* "
                     r"max_target_length=4"):
    predictor.score_ids([[5, 1], [6, 1]], [[7, 1], [7, 8, 9, 10, 1]])


def test_generation_score_is_the_sum_of_token_log_likelihoods(tiny):
  generation = tiny.predictor.generate_ids(_rows(tiny.inputs[:1]),
                                           decoding.DecodingConfig(
                                               max_new_tokens=MAX_NEW))[0]
  target = generation.tokens + ([decoding.EOS_ID]
                                if len(generation.tokens) < MAX_NEW else [])
  rescored = tiny.predictor.score_ids(_rows(tiny.inputs[:1]), [target])[0]
  assert generation.score == pytest.approx(float(rescored), rel=1e-4)


def test_max_and_first_argmax_are_max_and_argmax_with_ties_to_the_lowest_id():
  logits = np.random.default_rng(0).normal(size=(6, 50)).astype(np.float32)
  logits[1, [3, 7, 40]] = 9.0  # A three-way tie: the lowest id wins.
  logits[2, :] = 0.0
  best, chosen = map(np.asarray,
                     decoding.max_and_first_argmax(jnp.asarray(logits)))
  np.testing.assert_array_equal(chosen, np.argmax(logits, axis=-1))
  np.testing.assert_array_equal(best, np.max(logits, axis=-1))
  assert chosen[1] == 3 and chosen[2] == 0


def test_greedy_score_is_the_unrestricted_log_likelihood_when_eos_is_forbidden():
  """EOS is the likeliest token but forbidden: the runner-up is emitted and
  scored under the model's full distribution (EOS's mass included)."""
  logits = jnp.asarray([[0.5, 30.0, 2.0, 1.0], [0.0, 1.0, 3.0, -2.0]])
  step_fn = lambda previous, cache: (logits, cache)
  tokens, scores = decoding.sample_or_greedy(
      step_fn, {}, 2, decoding.DecodingConfig(max_new_tokens=2,
                                              min_new_tokens=2))
  np.testing.assert_array_equal(tokens, [[2, 2], [2, 2]])
  log_probs = np.asarray(jax.nn.log_softmax(logits))
  np.testing.assert_allclose(scores, 2 * log_probs[:, 2], rtol=1e-6)


def test_token_log_likelihood_is_the_log_softmax_entry():
  rng = np.random.default_rng(1)
  logits = rng.normal(scale=4.0, size=(5, 30)).astype(np.float32)
  tokens = rng.integers(0, 30, 5).astype(np.int32)
  expected = torch.log_softmax(torch.from_numpy(logits).double(), -1)[
      torch.arange(5), torch.from_numpy(tokens).long()].numpy()
  np.testing.assert_allclose(
      decoding.token_log_likelihood(jnp.asarray(logits), jnp.asarray(tokens)),
      expected, rtol=1e-5, atol=1e-6)


def test_a_vocabulary_larger_than_the_embedding_is_refused(tiny):
  small = model_lib.EncoderDecoderModel(
      dataclasses.replace(tiny.model.config, vocab_size=64))
  with pytest.raises(ValueError, match=r"Predictor vocabulary: the "
                     r"vocabulary has \d+ ids but the model embeds only 64"):
    inference.Predictor(small, tiny.predictor.params,
                        vocabularies.demo_vocabulary())

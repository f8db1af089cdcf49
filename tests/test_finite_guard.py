"""The non-finite guard: NaN never trained on silently, never checkpointed."""

import math

import jax
import numpy as np
import pytest

from aya_t5x import checkpoints
from aya_t5x import finite_guard
from aya_t5x import gin_utils
from tests import tiny_run


def _all_finite(tree) -> bool:
  return all(np.all(np.isfinite(x)) for x in jax.tree.leaves(tree))


def test_stop_policy_exits_1_naming_step_and_metric_and_keeps_last_good(
    tmp_path, capsys):
  model_dir = tmp_path / "run"
  status = gin_utils.exit_status(lambda: tiny_run.run(
      model_dir, 8, period=2, keep=1, poisoned=(5,)))
  assert status == 1
  errors = [l for l in capsys.readouterr().err.splitlines()
            if l.startswith("error: ")]
  assert len(errors) == 1, errors
  assert errors[0].startswith("error: non-finite loss=nan at step 5"), errors
  # keep=1: the newest finite checkpoint (4) survives; nothing after it.
  assert checkpoints.committed_steps(model_dir) == [4]
  assert _all_finite(tiny_run.params(model_dir, 4))


def test_skip_policy_drops_updates_counts_them_and_finishes(tmp_path):
  model_dir = tmp_path / "run"
  summary = tiny_run.run(model_dir, 8, period=2, poisoned=(3, 4),
                         policy="skip", max_skips=3)
  assert summary["status"] == "finished"
  assert summary["skipped_nonfinite"] == 2
  assert checkpoints.committed_steps(model_dir) == [2, 4, 6, 8]
  for step in (2, 4, 6, 8):
    assert _all_finite(tiny_run.params(model_dir, step)), step
  # Steps 3 and 4 applied nothing: the parameters are those of step 2.
  for a, b in zip(jax.tree.leaves(tiny_run.params(model_dir, 2)),
                  jax.tree.leaves(tiny_run.params(model_dir, 4))):
    np.testing.assert_array_equal(a, b)
  losses = tiny_run.losses(model_dir)
  assert math.isnan(losses[3]) and math.isfinite(losses[5])


def test_skip_policy_stops_after_max_consecutive_skips(tmp_path, capsys):
  model_dir = tmp_path / "run"
  status = gin_utils.exit_status(lambda: tiny_run.run(
      model_dir, 8, period=2, poisoned=(3, 4, 5), policy="skip",
      max_skips=3))
  assert status == 1
  (error,) = [l for l in capsys.readouterr().err.splitlines()
              if l.startswith("error: ")]
  assert "at step 5: 3 non-finite steps in a row" in error, error
  assert checkpoints.committed_steps(model_dir) == [2, 4]


def test_a_state_with_inf_is_never_saved():
  monitor = finite_guard.Monitor(finite_guard.NonFiniteConfig())
  state = {"params": {"a": np.ones(3, np.float32),
                      "b": np.array([1.0, np.inf], np.float32)},
           "step": np.int32(4)}
  with pytest.raises(finite_guard.NonFiniteError, match=r"\['params'\]\['b'\]"):
    monitor.check_state(4, state)


@pytest.mark.parametrize("kwargs,needle", [
    ({"policy": "ignore"}, "NONFINITE_POLICY must be one of"),
    ({"max_consecutive_skips": 0}, "MAX_CONSECUTIVE_SKIPS must be an integer"),
])
def test_config_names_the_bad_macro(kwargs, needle):
  with pytest.raises(ValueError, match=needle):
    finite_guard.NonFiniteConfig(**kwargs)

"""The train state as upstream T5X stores it, so checkpoints move both ways.

In memory a train state is `{"step", "params", "opt_state"}` (the trainer's
pytree). On disk it is T5X's `FlaxOptimTrainState.state_dict()` tree:

  {"target": params,
   "state": {"step": step,
             "param_states": {<param path>: {"m", "v", "v_row", "v_col"}}}}

T5X's Adafactor keeps all four slots for every parameter and fills the ones
it does not use (`m` without momentum, `v` of a factored tensor, `v_row` and
`v_col` of an unfactored one) with float32 zeros of shape [1]. Our Adafactor
keeps only the slots a tensor uses (the unused ones would cost nothing, but
would have to be threaded through every update), so saving adds the
placeholders and restoring asks Orbax for the used slots only (a partial
restore). Renaming alone cannot do it on T5X's side: its `assignment_map`
does not reach inside an Orbax checkpoint, so the names on disk must be its.

Checkpoints written before this layout (`{"step", "params", "opt_state"}` on
disk) keep restoring: `is_t5x_layout` tells the two apart.
"""

from typing import Any, Mapping

import jax
import numpy as np

PyTree = Any

PARAMS = "target"  # T5X's name of the parameter tree.
OPTIMIZER = "state"  # T5X's optimizer state: step and per-parameter states.
STEP = "step"
PARAM_STATES = "param_states"
# Adafactor's per-parameter slots, in T5X's `_AdafactorParamState` names.
ADAFACTOR_SLOTS = ("m", "v", "v_row", "v_col")
UNUSED_SLOT_SHAPE = (1,)  # What T5X stores for a slot a tensor does not use.


def is_t5x_layout(tree: PyTree) -> bool:
  """Whether a checkpoint's tree (or its metadata) is in T5X's layout."""
  return isinstance(tree, Mapping) and PARAMS in tree


def to_t5x_names(state: Mapping[str, PyTree]) -> dict[str, PyTree]:
  """`{"step", "params", "opt_state"}` under T5X's names; leaves untouched.

  Works on concrete states and on abstract ones (ShapeDtypeStructs), so a
  restore can ask for exactly the leaves it needs. Other top-level entries
  (none today; T5X puts `flax_mutables` there) are kept as they are.
  """
  rest = {k: v for k, v in state.items()
          if k not in ("step", "params", "opt_state")}
  optimizer = {STEP: state["step"]}
  if "opt_state" in state:
    optimizer[PARAM_STATES] = state["opt_state"]
  return {PARAMS: state["params"], OPTIMIZER: optimizer, **rest}


def from_t5x_names(tree: Mapping[str, PyTree]) -> dict[str, PyTree]:
  """The inverse of `to_t5x_names`."""
  optimizer = tree[OPTIMIZER]
  state = {"step": optimizer[STEP], "params": tree[PARAMS]}
  if PARAM_STATES in optimizer:
    state["opt_state"] = optimizer[PARAM_STATES]
  state.update({k: v for k, v in tree.items() if k not in (PARAMS, OPTIMIZER)})
  return state


def _is_adafactor_slots(node: Any) -> bool:
  """A dict of Adafactor slots (the state of one parameter)."""
  return (isinstance(node, Mapping) and bool(node) and
          set(node) <= set(ADAFACTOR_SLOTS) and
          not any(isinstance(v, Mapping) for v in node.values()))


def _with_unused_slots(param_states: PyTree, placeholder: Any) -> PyTree:
  """Every Adafactor slot dict completed with `placeholder` for the others.

  Anything that is not Adafactor state (another optimizer's) is left as is.
  """
  if _is_adafactor_slots(param_states):
    return {slot: param_states.get(slot, placeholder)
            for slot in ADAFACTOR_SLOTS}
  if isinstance(param_states, Mapping):
    return {k: _with_unused_slots(v, placeholder)
            for k, v in param_states.items()}
  return param_states


def _placeholder_like(step: Any) -> Any:
  """Float32 zeros [1], placed like the (replicated) step."""
  zeros = np.zeros(UNUSED_SLOT_SHAPE, np.float32)
  if isinstance(step, jax.Array):
    return jax.device_put(zeros, step.sharding)
  return zeros


def to_t5x(state: Mapping[str, PyTree]) -> dict[str, PyTree]:
  """The tree to save: T5X's names and all four Adafactor slots per tensor."""
  tree = to_t5x_names(state)
  optimizer = tree[OPTIMIZER]
  if PARAM_STATES in optimizer:
    placeholder = _placeholder_like(optimizer[STEP])
    optimizer[PARAM_STATES] = _with_unused_slots(optimizer[PARAM_STATES],
                                                 placeholder)
  return tree

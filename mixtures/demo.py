"""`aya_demo_mixture`: the 12 single-language demo tasks at equal rates.

Equal rates, not rates by size, so the demo shows per-language sampling the
way the Aya weighting schemes will use it, and each language gets the same
share however many rows it has.
"""

import seqio

from aya_t5x.tasks import demo as demo_tasks

MIXTURE_NAME = "aya_demo_mixture"


def register_mixture() -> None:
  """Registers the mixture once; re-importing this module is a no-op."""
  if MIXTURE_NAME in seqio.MixtureRegistry.names():
    return
  seqio.MixtureRegistry.add(
      MIXTURE_NAME,
      [demo_tasks.language_task_name(code) for code in demo_tasks.LANGUAGES],
      default_rate=1.0)


register_mixture()

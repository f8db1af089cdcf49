"""The Aya weighting schemes (paper Table 3) and Aya Safe as SeqIO mixtures.

    aya_human_anno_heavy        aya_template_heavy
    aya_translation_heavy       (the released Aya)
    aya_translation_heavy_safe  (translation-heavy at 97% + 3% safety
                                 distillation, the paper's "Aya Safe")

Each mixes every registered task of the six training sources
(`aya_t5x.tasks`) at the source percents below; inside a source, tasks are
weighted by their counted size (`aya_t5x.mixing`), times `DatasetWeights`
for the two datasets the paper raised. Registering reads no data: sizes are
counted (once, then cached) when a mixture's rates are first needed.

Your own scheme, in Python:

    from aya_t5x import mixing
    from aya_t5x.mixtures import aya
    aya.register_scheme(mixing.Scheme(
        "my_mix", {"aya_dataset": 40, "aya_translated": 40, "xp3x": 20}))

or in gin, where the mixture is registered when the run reads its name:

    from aya_t5x.mixtures import aya
    MIXTURE_OR_TASK_NAME = @aya.scheme_mixture()
    aya.scheme_mixture:
      name = 'my_mix'
      source_percent = {'aya_dataset': 40, 'aya_translated': 40, 'xp3x': 20}
"""

import dataclasses
import math
from collections.abc import Mapping, Sequence

import gin
import seqio

from aya_t5x import mixing
from aya_t5x.tasks import aya_collection
from aya_t5x.tasks import aya_dataset
from aya_t5x.tasks import catalog
from aya_t5x.tasks import data_provenance
from aya_t5x.tasks import safety
from aya_t5x.tasks import sharegpt_command
from aya_t5x.tasks import xp3x

# Table 3: percent of the sampled budget per source.
HUMAN_ANNO_HEAVY = mixing.Scheme("aya_human_anno_heavy", {
    catalog.AYA_DATASET: 25, catalog.AYA_TEMPLATED: 4, catalog.XP3X: 20,
    catalog.DATA_PROVENANCE: 6, catalog.AYA_TRANSLATED: 30,
    catalog.SHAREGPT_COMMAND: 15})
TRANSLATION_HEAVY = mixing.Scheme("aya_translation_heavy", {
    catalog.AYA_DATASET: 10, catalog.AYA_TEMPLATED: 1.5, catalog.XP3X: 15,
    catalog.DATA_PROVENANCE: 3.5, catalog.AYA_TRANSLATED: 47.5,
    catalog.SHAREGPT_COMMAND: 22.5})
TEMPLATE_HEAVY = mixing.Scheme("aya_template_heavy", {
    catalog.AYA_DATASET: 20, catalog.AYA_TEMPLATED: 10, catalog.XP3X: 30,
    catalog.DATA_PROVENANCE: 10, catalog.AYA_TRANSLATED: 20,
    catalog.SHAREGPT_COMMAND: 10})
# Aya Safe (paper section 6): 3% safety distillation (0.5% was also tried).
SAFETY_PERCENT = 3.0
TRANSLATION_HEAVY_SAFE = TRANSLATION_HEAVY.with_source(
    "aya_translation_heavy_safe", catalog.SAFETY_DISTILLATION, SAFETY_PERCENT)
SCHEMES = (HUMAN_ANNO_HEAVY, TEMPLATE_HEAVY, TRANSLATION_HEAVY,
           TRANSLATION_HEAVY_SAFE)

# The task-name prefix of each source's production tasks: tests and sample
# versions register more tasks under the same sources.
TASK_PREFIXES = {
    catalog.XP3X: xp3x.TASK_PREFIX + "_",
    catalog.AYA_DATASET: aya_dataset.TASK_PREFIX + "_",
    catalog.AYA_TEMPLATED: aya_collection.TEMPLATED_PREFIX + "_",
    catalog.AYA_TRANSLATED: aya_collection.TRANSLATED_PREFIX + "_",
    catalog.DATA_PROVENANCE: data_provenance.TASK_NAME,
    catalog.SHAREGPT_COMMAND: sharegpt_command.TASK_NAME,
    catalog.SAFETY_DISTILLATION: safety.TASK_NAME,
}
DOLLY = "translated_dolly"
SHAREGPT_COMMAND = "sharegpt_command"


@dataclasses.dataclass(frozen=True)
class DatasetWeights:
  """Explicit in-source weights (gin: `aya.DatasetWeights.dolly = 2.0`).

  A weight multiplies the dataset's size inside its source: 2.0 samples its
  examples twice as often as the source's others. The paper gave Dolly-15k
  and ShareGPT-Command "higher weight" without the values, so both default
  to 1.0 (plain size weighting). ShareGPT-Command is alone in its source in
  Table 3, where its weight changes nothing; it matters in a scheme that
  puts it beside other datasets.
  """

  # The translated Dolly v2 tasks, inside `aya_translated`.
  dolly: float = 1.0
  # The ShareGPT-Command task, inside `sharegpt_command`.
  sharegpt_command: float = 1.0

  def __post_init__(self):
    for field in dataclasses.fields(self):
      value = getattr(self, field.name)
      if not (isinstance(value, (int, float)) and math.isfinite(value)
              and value > 0):
        raise ValueError(f"DatasetWeights.{field.name} = {value!r}: use a "
                         "number > 0 (1.0 = weight by size).")

  def as_mapping(self) -> dict[str, float]:
    return {DOLLY: float(self.dolly),
            SHAREGPT_COMMAND: float(self.sharegpt_command)}


def gin_dataset_weights() -> dict[str, float]:
  """The weights as gin binds them now (read when rates are computed).

  Gin files configure `aya.DatasetWeights` with dynamic registration, so
  nothing is registered at import (this module may be imported after gin
  has locked its config); without a binding the defaults apply.
  """
  try:
    configured = gin.get_configurable(DatasetWeights)
  except ValueError:  # No gin file mentions DatasetWeights.
    configured = DatasetWeights
  return configured().as_mapping()


def catalog_members(source_names: Sequence[str],
                    prefixes: Mapping[str, str] | None = None
                    ) -> list[mixing.Member]:
  """Every catalog task of each source (with its production prefix, if
  `prefixes` names one)."""
  prefixes = TASK_PREFIXES if prefixes is None else prefixes
  members = []
  for source in source_names:
    prefix = prefixes.get(source, "")
    members.extend(mixing.Member(e.task, source, e.dataset)
                   for e in catalog.entries(source=source)
                   if e.task.startswith(prefix))
  return members


def register_scheme(scheme: mixing.Scheme,
                    members: Sequence[mixing.Member] | None = None,
                    sizes: mixing.TaskSizes | None = None
                    ) -> mixing.WeightedMixture:
  """Registers `scheme` as a mixture named `scheme.name`.

  Args:
    scheme: the source percents.
    members: the tasks; default every catalog task of the scheme's sources.
    sizes: the size cache; default $AYA_TASK_SIZES.

  Returns:
    The mixture. Registering the same scheme again returns it.

  Raises:
    ValueError: another mixture already has the name.
  """
  if scheme.name in seqio.MixtureRegistry.names():
    existing = seqio.MixtureRegistry.get(scheme.name)
    if getattr(existing, "scheme", None) == scheme:
      return existing
    raise ValueError(f"A mixture named {scheme.name!r} is already registered"
                     " with other rates; pick another name.")
  members = catalog_members(scheme.sources) if members is None else members
  return seqio.MixtureRegistry.add(
      scheme.name, [], mixture_cls=mixing.WeightedMixture, scheme=scheme,
      members=members, weights_fn=gin_dataset_weights, sizes=sizes)


def scheme_mixture(name: str, source_percent: Mapping[str, float]) -> str:
  """Registers a scheme from gin and returns its name (module docstring)."""
  return register_scheme(mixing.Scheme(name, dict(source_percent))).name


def register() -> None:
  for scheme in SCHEMES:
    register_scheme(scheme)


register()

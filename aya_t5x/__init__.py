"""aya_t5x: a T5X-style JAX runtime for multilingual instruction finetuning.

Modules, one concept each (as in T5X): `network` (Flax mT5), `model` (losses
and scoring), `partitioning` (mesh and logical axis rules), `optim` (Adafactor
and schedules), `trainer` (the jitted step), `checkpoints` (orbax), `data`
(SeqIO -> feature converter -> per-host shards), and thin CLI drivers such as
`train`.
"""

__version__ = "0.1.0"

"""Evaluation tasks of the Aya suite, imported as `aya_t5x.tasks.eval`.

Importing registers every benchmark (`benchmark.names()`) and its SeqIO
tasks `aya_eval_<benchmark>_<language>`; nothing is read until a task's
examples are asked for. Modules: `example` (what a task yields), `source`
(rows from Hub files -> examples), `prompts` (our templates), `heldout`
(XCOPA, XNLI, XStoryCloze, XWinograd), `mmlu`, `generative` (FLORES-200,
XLSum, TyDiQA), `open_ended` (the aya_evaluation_suite sets),
`harmfulness` (held-out adversarial prompts for a harm judge).
"""

# pylint: disable=g-import-not-at-top
from aya_t5x.tasks.eval import arena_hard
from aya_t5x.tasks.eval import benchmark
from aya_t5x.tasks.eval import generative
from aya_t5x.tasks.eval import global_mmlu
from aya_t5x.tasks.eval import harmfulness
from aya_t5x.tasks.eval import heldout
from aya_t5x.tasks.eval import mmlu
from aya_t5x.tasks.eval import open_ended

heldout.register()
mmlu.register()
global_mmlu.register()
generative.register()
open_ended.register()
arena_hard.register()
harmfulness.register()

"""Safety context distillation data (paper section 6, App. J; spec section 5).

The teacher (the model with the safety preamble, sampling top-p 0.8,
temperature 0.9) answers the harmful prompts of AdvBench and XSafety in
each language; the student learns prompt (without preamble) -> answer. The
task reads the generated files: rows of `prompt`, `response`, `language`
(JSONL, parquet or TFRecord named `train*` in the directory named by
`AYA_SAFETY_DISTILLATION_DIR`, or `register(patterns=...)`).

The paper's filter drops answers under 20 or over 1,000 characters and
repetitive ones: the longest repeated substring longer than length / 2.1
(about 3% of the data). "Aya Safe" mixes this task in at 3%.
"""

from collections.abc import Mapping

import seqio

from aya_t5x import preprocessors
from aya_t5x import sources
from aya_t5x.tasks import catalog
from aya_t5x.tasks import registry_helpers

TASK_NAME = "aya_safety_distillation"
ENV_DIR = "AYA_SAFETY_DISTILLATION_DIR"
MIN_RESPONSE_CHARS = 20
MAX_RESPONSE_CHARS = 1_000
REPETITION_RATIO = 2.1
SPLIT_PATTERNS = {"train": ("{dir}/train*.jsonl", "{dir}/train*.jsonl.gz",
                            "{dir}/train*.parquet", "{dir}/train*.tfrecord")}
FIELDS = sources.Fields(inputs="prompt", targets="response",
                        language="language")
HINT = ("Generate the distillation data first (teacher answers to the "
        "AdvBench/XSafety prompts: rows of prompt, response, language).")


def filters() -> tuple[preprocessors.RowFilter, ...]:
  return (preprocessors.LengthBetween("targets", MIN_RESPONSE_CHARS,
                                      MAX_RESPONSE_CHARS),
          preprocessors.NotRepetitive("targets", REPETITION_RATIO))


def spec(patterns: Mapping[str, tuple[str, ...]] | None = None,
         fields: sources.Fields = FIELDS) -> sources.SourceSpec:
  return registry_helpers.user_files_spec(
      source=catalog.SAFETY_DISTILLATION, dataset="safety_distillation",
      split_patterns=SPLIT_PATTERNS,
      env_var=ENV_DIR, hint=HINT, filters=filters, fields=fields,
      patterns=patterns)


def register(vocabulary: seqio.Vocabulary | None = None,
             name: str = TASK_NAME,
             patterns: Mapping[str, tuple[str, ...]] | None = None
             ) -> list[str]:
  registry_helpers.register_source_task(
      name, spec(patterns), language=None, dataset="safety_distillation",
      vocabulary=vocabulary)
  return [name]


register()

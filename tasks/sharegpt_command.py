"""ShareGPT-Command: synthetic conversations, translated (Table 1, row 6).

The data was not released, so the task reads files you make: JSONL, parquet
or TFRecord rows with `inputs`, `targets` and `language`, named
`train*.jsonl` (or `.jsonl.gz`, `.parquet`, `.tfrecord`) in the directory
named by `AYA_SHAREGPT_COMMAND_DIR`; `register(patterns=...)` takes explicit
paths instead. One task, `aya_sharegpt_command`, over every language.

The paper kept English ShareGPT prompts without URLs and of at most 10,000
characters (61,872), had Command answer them, and translated both into 93
languages. The English-only selection belongs to building the data; the task
applies the other two rules to the prompts it reads (`filters`), plus the
common hygiene.
"""

from collections.abc import Mapping

import seqio

from aya_t5x import preprocessors
from aya_t5x import sources
from aya_t5x.tasks import catalog
from aya_t5x.tasks import registry_helpers

TASK_NAME = "aya_sharegpt_command"
ENV_DIR = "AYA_SHAREGPT_COMMAND_DIR"
MAX_PROMPT_CHARS = 10_000
SPLIT_PATTERNS = {"train": ("{dir}/train*.jsonl", "{dir}/train*.jsonl.gz",
                            "{dir}/train*.parquet", "{dir}/train*.tfrecord")}
HINT = ("ShareGPT-Command was not released: translate your own ShareGPT-style "
        "prompts and answers into rows of inputs, targets, language "
        "(tasks/sharegpt_command.py).")


def filters() -> tuple[preprocessors.RowFilter, ...]:
  return (preprocessors.NoUrls("inputs"),
          preprocessors.LengthBetween("inputs", max_chars=MAX_PROMPT_CHARS))


def spec(patterns: Mapping[str, tuple[str, ...]] | None = None,
         fields: sources.Fields = sources.Fields()) -> sources.SourceSpec:
  """The task's rows: from `patterns`, or from $AYA_SHAREGPT_COMMAND_DIR."""
  return registry_helpers.user_files_spec(
      source=catalog.SHAREGPT_COMMAND, dataset="sharegpt_command",
      split_patterns=SPLIT_PATTERNS,
      env_var=ENV_DIR, hint=HINT, filters=filters, fields=fields,
      patterns=patterns)


def register(vocabulary: seqio.Vocabulary | None = None,
             name: str = TASK_NAME,
             patterns: Mapping[str, tuple[str, ...]] | None = None
             ) -> list[str]:
  registry_helpers.register_source_task(
      name, spec(patterns), language=None, dataset="sharegpt_command",
      vocabulary=vocabulary)
  return [name]


register()

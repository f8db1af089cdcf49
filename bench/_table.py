"""How the benchmark scripts print: one environment line, then the table.

Shared so every bench/ script states what it was measured with in the same
words, and Markdown rows read the same wherever they are pasted.
"""

from typing import Sequence

import jax
import torch
import transformers


def environment(details: str) -> str:
  """The versions and platform behind the numbers, then the run's details."""
  return (f"jax {jax.__version__} ({jax.devices()[0].platform}), torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads), "
          f"transformers {transformers.__version__}; {details}")


def markdown_row(cells: Sequence[str]) -> str:
  """One row of a Markdown table (the header and `---` rows too)."""
  return "| " + " | ".join(cells) + " |"

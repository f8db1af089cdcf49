"""`python -m aya_t5x.serve`: see `aya_t5x.serve.cli`."""

import importlib
import sys

# Hide native start-up noise before the heavy imports (aya_t5x.startup;
# --verbose shows it).
from aya_t5x import startup  # pylint: disable=g-bad-import-order

if __name__ == "__main__":
  startup.begin(sys.argv)
  # Through the package module, so gin binds the same `served_model`.
  importlib.import_module("aya_t5x.serve.cli").console_main()

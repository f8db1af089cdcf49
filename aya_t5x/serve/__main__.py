"""`python -m aya_t5x.serve`: see `aya_t5x.serve.cli`."""

import importlib

if __name__ == "__main__":
  # Through the package module, so gin binds the same `served_model`.
  importlib.import_module("aya_t5x.serve.cli").console_main()

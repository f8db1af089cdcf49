# The few targets a newcomer needs. Every target builds the pinned venv in
# .venv first (Python 3.11), so `make demo` and `make test` work on a fresh
# clone with nothing else installed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
DEMO_DIR ?= $(CURDIR)/demo_run
PYTEST_WORKERS ?= 2

.PHONY: install demo test test-fast bench clean

install: $(INSTALLED)

# PYTHONWARNINGS: setuptools prints a "BuildBackendWarning" banner for every
# editable install, not news to someone installing this checkout on purpose.

$(INSTALLED): setup.py requirements/lock.txt requirements/core.txt requirements/test.txt
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "aya_t5x needs Python 3.11, found " + sys.version'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==26.3
	$(BIN)/python -m pip install --quiet -r requirements/lock.txt
	PYTHONWARNINGS=ignore::UserWarning \
	  $(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# Finetune the tiny mT5 on the shipped multilingual demo data, show what it
# learned per language, then run every benchmark on its sample (a pipeline
# check).
# On the CPU unless JAX_PLATFORMS says otherwise (`make demo
# JAX_PLATFORMS=tpu`): with libtpu installed, JAX's TPU probe would print
# harmless but alarming errors ("unexpected worker hostname ...").
demo: export JAX_PLATFORMS ?= cpu
# The commands are not echoed (the README shows them): each step's own output
# says what it is, and the whole demo stays under 60 lines.
demo: $(INSTALLED)
	@rm -rf $(DEMO_DIR)
	@$(BIN)/python -m aya_t5x.train --gin_file=gin/aya_tiny_cpu.gin \
	  --gin.MODEL_DIR="'$(DEMO_DIR)'"
	@$(BIN)/python -m aya_t5x.learning_report --model_dir=$(DEMO_DIR)
	@$(BIN)/python -m aya_t5x.eval --gin_file=gin/eval/demo.gin \
	  --gin.CHECKPOINT_PATH="'$(DEMO_DIR)'" \
	  --gin.EVAL_OUTPUT_DIR="'$(DEMO_DIR)/eval'"

test: $(INSTALLED)
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) tests

# Everything but the tests marked slow.
test-fast: $(INSTALLED)
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) -m "not slow" tests

bench: $(INSTALLED)
	$(BIN)/python bench/train_step.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) *.egg-info

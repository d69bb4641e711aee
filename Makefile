# Calibration gallery — every target creates or reuses .venv from requirements.txt.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed
BUILD := _build
SPHINXBUILD := $(BIN)/sphinx-build -b html -c . -W --keep-going -n
PATTERN ?= plot_adam_projection
# Fixed hash seed, so that two builds print the same output.
export PYTHONHASHSEED := 0

.DEFAULT_GOAL := help
.PHONY: help venv html html-offline html-noplot html-pattern bench suite sync-helpers lint test test-fast test-site clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

venv: $(STAMP)  ## create .venv and install requirements.txt

html: $(STAMP)  ## build the site, executing every example (strict: warnings fail)
	$(SPHINXBUILD) docs $(BUILD)/html

html-offline: $(STAMP)  ## the same build with no network (a network namespace; see README)
	@if unshare -rn true 2>/dev/null; then offline="unshare -rn"; \
	elif unshare -n true 2>/dev/null; then offline="unshare -n"; \
	elif [ "$$CI" = "true" ]; then echo "no network namespace (unshare -rn/-n): CI must build offline" >&2; exit 1; \
	else offline=""; echo "NOTE: no network namespace here (unshare -rn failed): building with the network;" \
	  "the site checks scan every built page for remote loads instead" >&2; fi; \
	echo "$$offline $(SPHINXBUILD) docs $(BUILD)/html"; $$offline $(SPHINXBUILD) docs $(BUILD)/html

html-noplot: $(STAMP)  ## build the pages without executing the examples (for writers)
	$(SPHINXBUILD) -D plot_gallery=0 docs $(BUILD)/html-noplot

html-pattern: $(STAMP)  ## execute only the examples matching PATTERN=... (others render without output)
	$(SPHINXBUILD) -D sphinx_gallery_conf.filename_pattern='$(PATTERN)' docs $(BUILD)/html-pattern

bench: $(STAMP)  ## the benchmark page at full size outside Sphinx, then how the costs grow with size
	cd examples/calibration && PYTHONPATH=.. MPLBACKEND=agg TQDM_DISABLE=1 ../../$(BIN)/python plot_comparison.py
	$(BIN)/python tests/bench_scaling.py

suite: $(STAMP)  ## every recipe on every problem of the suite, at full size: two tables (free-form, parametric)
	status=0; \
	PYTHONPATH=examples MPLBACKEND=agg TQDM_DISABLE=1 $(BIN)/python tests/run_suite.py || status=1; \
	PYTHONPATH=examples MPLBACKEND=agg TQDM_DISABLE=1 $(BIN)/python tests/run_parametric_suite.py || status=1; \
	exit $$status

lint: $(STAMP)  ## ruff: lint and formatting of examples/, tests/, docs/ and conf.py
	$(BIN)/ruff check examples tests docs conf.py
	$(BIN)/ruff format --check examples tests docs conf.py

sync-helpers: $(STAMP)  ## copy calibration_helpers.py's text into the pages that teach a helper
	$(BIN)/python tests/test_one_text.py

test-fast: $(STAMP)  ## unit tests and fast-mode runs of every example (no site build)
	$(BIN)/python -m pytest tests --ignore-glob='tests/test_site*.py' --durations=10

test-site: $(STAMP)  ## checks of the built site in _build/html (build it first)
	$(BIN)/python -m pytest tests/test_site*.py --durations=10

test: $(STAMP)  ## everything CI runs: lint, test-fast, a clean offline build, the site checks
	$(MAKE) lint
	$(MAKE) test-fast
	rm -rf $(BUILD)/html docs/auto_examples docs/sg_execution_times.rst
	$(MAKE) html-offline
	$(MAKE) test-site

clean:  ## remove the build and everything the gallery generates
	rm -rf $(BUILD) docs/auto_examples docs/sg_execution_times.rst

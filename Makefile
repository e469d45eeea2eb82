# make run   set everything up and start the whole service (Ctrl-C stops it)
# make test  set everything up and run the test suite
# make lint  ruff, mypy and the import layers; make bench  the benchmarks

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# make run needs the runtime dependencies only; the test and lint tools
# (the dev extra) are installed by the targets that use them. Both install
# exactly what the lock files under requirements/ name, checked by hash:
# a fresh machine gets the versions CI passed with, not today's releases.
# `make lock` rewrites the locks; `make latest` tries the newest releases.
RUNTIME := $(VENV)/.installed-runtime
STAMP := $(VENV)/.installed-dev
RUNTIME_LOCK := requirements/runtime.lock
DEV_LOCK := requirements/dev.lock
LOCK_FLAGS := --quiet --universal --python-version 3.11 --generate-hashes
LATEST := .venv-latest

.PHONY: run test test-production lint bench container-check clean lock latest

define install_lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(1)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
endef

$(RUNTIME): pyproject.toml $(RUNTIME_LOCK)
	$(call install_lock,$(RUNTIME_LOCK))
	@touch $(RUNTIME)

$(STAMP): $(RUNTIME) $(DEV_LOCK)
	$(call install_lock,$(DEV_LOCK))
	@touch $(STAMP)

# Rewrites both lock files from pyproject.toml (and requirements/build.in) at
# today's releases. Commit them after `make test lint` passes on them.
lock: $(STAMP)
	$(BIN)/uv pip compile $(LOCK_FLAGS) pyproject.toml requirements/build.in -o $(RUNTIME_LOCK)
	$(BIN)/uv pip compile $(LOCK_FLAGS) --extra dev pyproject.toml requirements/build.in -o $(DEV_LOCK)

# The newest releases pyproject.toml allows, in a venv of their own
# ($(LATEST)), through lint and the tests: how an upgrade is tried before
# `make lock` makes it the default.
latest:
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST)/bin/python -m pip install --quiet -e '.[dev]'
	$(LATEST)/bin/python -m pip freeze --exclude-editable > $(LATEST)/freeze.txt
	@echo "== newest releases (diff against $(DEV_LOCK)'s pins) =="
	@diff <(grep -E '^[A-Za-z0-9_.-]+==' $(DEV_LOCK) | sed 's/ .*//' | tr A-Z a-z | sort) \
	      <(tr A-Z a-z < $(LATEST)/freeze.txt | sort) || true
	$(LATEST)/bin/ruff check .
	$(LINT_ENV) $(LATEST)/bin/mypy .
	$(LATEST)/bin/python -m pytest $(PYTEST_ARGS)

run: $(RUNTIME)
	$(BIN)/python scripts/run_stack.py

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The production configuration: PostgreSQL and a separate Valkey/Redis server.
test-production: $(STAMP)
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test} \
	TEST_VALKEY_URL=$${TEST_VALKEY_URL:-redis://127.0.0.1:6379/15} \
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The image built and run as containers where an engine can start here
# (scripts/container_check.sh), else the compose file checked statically.
container-check: $(STAMP)
	bash scripts/container_check.sh

# mypy's Django plugin imports the settings, which need the two secrets:
# stand-ins here, so linting a fresh clone writes nothing to var/.
LINT_ENV := DJANGO_SECRET_KEY=lint-only WEBHOOK_SECRET=lint-only

lint: $(STAMP)
	$(BIN)/ruff check .
	$(LINT_ENV) $(BIN)/mypy .
	$(BIN)/lint-imports

# Every benchmark runs even if one before it fails (e.g. its data set is
# absent); the target fails if any did. BENCH_ARGS go to bench/throughput.py
# (e.g. BENCH_ARGS="--quick --only hits"), STREAMS_ARGS to bench/streams.py
# (200 open event streams vs the API; e.g. STREAMS_ARGS="--compare-sync").
# bench/idle_memory.py: the idle stack's PSS/RSS per process (goal <= 400 MiB PSS).
# bench/documents.py: PDF/DOCX parsing speed and peak memory per MB, candidate by candidate.
# bench/cost.py: AI cost per 1,000 documents vs an exact-match response cache (goal <= 0.45x).
bench: $(STAMP)
	@status=0; \
	$(BIN)/python bench/extraction.py || status=1; \
	$(BIN)/python bench/language.py || status=1; \
	$(BIN)/python bench/neardup.py || status=1; \
	$(BIN)/python bench/cost.py || status=1; \
	$(BIN)/python bench/summaries_quality.py || status=1; \
	$(BIN)/python bench/throughput.py $(BENCH_ARGS) || status=1; \
	$(BIN)/python bench/streams.py $(STREAMS_ARGS) || status=1; \
	$(BIN)/python bench/idle_memory.py || status=1; \
	$(BIN)/python bench/documents.py || status=1; \
	exit $$status

clean:
	rm -rf $(VENV) $(LATEST) var

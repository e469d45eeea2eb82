# make run   set everything up and start the whole service (Ctrl-C stops it)
# make test  set everything up and run the test suite
# make lint  ruff and mypy; make bench  the benchmarks

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# make run needs the runtime dependencies only; the test and lint tools
# (the dev extra) are installed by the targets that use them.
RUNTIME := $(VENV)/.installed-runtime
STAMP := $(VENV)/.installed-dev

.PHONY: run test test-production lint bench container-check clean

$(RUNTIME): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	@touch $(RUNTIME)

$(STAMP): $(RUNTIME)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

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

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy .

# Every benchmark runs even if one before it fails (e.g. its data set is
# absent); the target fails if any did. BENCH_ARGS go to bench/throughput.py
# (e.g. BENCH_ARGS="--quick --only hits"), STREAMS_ARGS to bench/streams.py
# (200 open event streams vs the API; e.g. STREAMS_ARGS="--compare-sync").
bench: $(STAMP)
	@status=0; \
	$(BIN)/python bench/extraction.py || status=1; \
	$(BIN)/python bench/language.py || status=1; \
	$(BIN)/python bench/summaries_quality.py || status=1; \
	$(BIN)/python bench/throughput.py $(BENCH_ARGS) || status=1; \
	$(BIN)/python bench/streams.py $(STREAMS_ARGS) || status=1; \
	exit $$status

clean:
	rm -rf $(VENV) var

# casty: two commands on a fresh machine.
#   make demo   sets up .venv and runs the sensor pipeline demo on loopback
#   make test   sets up .venv and runs lint, type check, the suite (compiled and pure) and the benchmark gate
#   make test-fast  the inner loop: unit + integration tiers without `slow` tests, compiled build (under a minute)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.casty-installed
PYTEST := $(BIN)/python -m pytest -p no:cacheprovider

.PHONY: demo test test-fast lint typecheck test-compiled test-pure bench bench-gate clean soak

$(STAMP): pyproject.toml setup.py $(wildcard casty/_fastpath/*.pyx)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip "setuptools>=77"
	CASTY_REQUIRE_EXTENSIONS=1 $(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/17_stream_pipeline/run_local.py

lint: $(STAMP)
	$(BIN)/ruff check casty tests benchmarks examples setup.py

typecheck: $(STAMP)
	$(BIN)/mypy

test-compiled: $(STAMP)
	CASTY_EXPECT_COMPILED=1 $(PYTEST) -q

test-pure: $(STAMP)
	CASTY_NO_EXTENSIONS=1 $(PYTEST) -q

test-fast: $(STAMP)
	CASTY_EXPECT_COMPILED=1 $(PYTEST) -q -m "not slow" tests/unit tests/integration

bench-gate: $(STAMP)
	$(BIN)/python -m benchmarks --gate

test: lint typecheck test-compiled test-pure bench-gate

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info casty/_fastpath/*.so casty/_fastpath/*.c

# a bounded soak run (minutes, not part of `make test`): 3 nodes + a client under random cuts
soak: $(STAMP)
	$(BIN)/python -m tests.soak --seconds 180

# casty: two commands on a fresh machine.
#   make demo   sets up .venv and runs the sensor pipeline demo on loopback
#   make test   sets up .venv and runs lint, type check, the suite (compiled and pure) and the benchmark gate
#   make test-fast  the inner loop: unit + integration tiers without `slow` tests, compiled build (under a minute)
#   make test-matrix  on python3.12 and 3.13 when installed (one .venv-3.X each), compiled: the fast selection
#                     (less two interpreter-independent files) plus the multi-process client and stream tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.casty-installed
PYTEST := $(BIN)/python -m pytest -p no:cacheprovider
# Test files run in parallel (pytest-xdist), each file whole on one worker: most tests wait on
# sockets, timers and child processes, so on two cores two workers nearly halve the wall time
# and a third fills what they leave idle (compiled suite here: 3m39s on two, 3m01s on three).
# JOBS=0 runs everything in this process.
JOBS ?= 3
XDIST := $(if $(filter 0,$(JOBS)),,-n $(JOBS) --dist loadfile)
# Bytecode for the tree, written before each run: the suite starts a few hundred Python
# processes, and where PYTHONDONTWRITEBYTECODE is set each of them would compile casty's
# sources again (0.45 s against 0.2 s for `import casty`; the compiled suite ran 186 s against
# 176 s). Stale files are never used: Python checks each one against its source.
BYTECODE = -m compileall -q -j 0 casty tests benchmarks examples >/dev/null

.PHONY: demo test test-fast test-matrix matrix-venvs test-matrix-one lint typecheck test-compiled test-pure bench bench-gate clean soak

# The Pythons `make test-matrix` adds to the default interpreter's full run (both builds).
MATRIX_PYTHONS ?= 3.12 3.13
FAST_SELECTION := -m "not slow" tests/unit tests/integration
# The matrix runs, compiled, in one pytest run per interpreter: the fast selection plus the
# multi-process client and stream tests. To keep `make test` near 10 minutes it skips two files
# of the fast selection that do not depend on the interpreter: the membership property tests
# (pure logic, the slowest unit file) and the README checks.
MATRIX_SELECTION := -m "not slow or multiprocess" tests/unit tests/integration \
	tests/multiprocess/test_client.py tests/multiprocess/test_streams_remote.py \
	--ignore=tests/unit/test_membership.py --ignore=tests/unit/test_readme.py
# the test extra's runners only (its lint, type and build tools run on the default interpreter)
MATRIX_DEPS := "pytest>=8" "pytest-timeout>=2.3" "pytest-xdist>=3.5" "hypothesis>=6.100" "prometheus-client>=0.17"
# Shell: the interpreter for version $$v: python$$v on PATH if it runs, else pyenv's newest 3.X.
FIND_PYTHON = if python$$v -c "" >/dev/null 2>&1; then command -v python$$v; \
	elif command -v pyenv >/dev/null 2>&1; then \
	  n=$$(pyenv versions --bare 2>/dev/null | grep -E "^$$v(\.[0-9]+)?$$" | sort -V | tail -n 1); \
	  p="$$(pyenv root)/versions/$$n/bin/python$$v"; \
	  if [ -n "$$n" ] && [ -x "$$p" ]; then echo "$$p"; fi; \
	fi

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
	$(BIN)/python $(BYTECODE)
	CASTY_EXPECT_COMPILED=1 $(PYTEST) -q $(XDIST)

test-pure: $(STAMP)
	$(BIN)/python $(BYTECODE)
	CASTY_NO_EXTENSIONS=1 $(PYTEST) -q $(XDIST)

test-fast: $(STAMP)
	$(BIN)/python $(BYTECODE)
	CASTY_EXPECT_COMPILED=1 $(PYTEST) -q $(XDIST) $(FAST_SELECTION)

# Each interpreter's tests in turn, once its venv is set up (matrix-venvs: side by side, mostly
# pip and the C compiler, which leave a core idle).
test-matrix: matrix-venvs
	@for v in $(MATRIX_PYTHONS); do \
	  py=$$($(FIND_PYTHON)); \
	  if [ -z "$$py" ]; then continue; fi; \
	  echo "test-matrix: python$$v ($$py)"; \
	  $(MAKE) --no-print-directory test-matrix-one PYV=$$v MATRIX_PYTHON="$$py" || exit 1; \
	done

matrix-venvs:
	@pids=""; for v in $(MATRIX_PYTHONS); do \
	  py=$$($(FIND_PYTHON)); \
	  if [ -z "$$py" ]; then echo "test-matrix: skipped: python$$v not found"; continue; fi; \
	  $(MAKE) --no-print-directory .venv-$$v/.casty-installed MATRIX_PYTHON="$$py" & pids="$$pids $$!"; \
	done; \
	for p in $$pids; do wait $$p || exit 1; done

# one interpreter of the matrix (run through test-matrix, which finds it): compiled build only
test-matrix-one: .venv-$(PYV)/.casty-installed
	.venv-$(PYV)/bin/python $(BYTECODE)
	CASTY_EXPECT_COMPILED=1 .venv-$(PYV)/bin/python -m pytest -p no:cacheprovider -q $(XDIST) $(MATRIX_SELECTION)

# Each matrix venv builds its own compiled modules in place (their file names carry the Python
# version, so they sit beside the default interpreter's).
.venv-%/.casty-installed: pyproject.toml setup.py $(wildcard casty/_fastpath/*.pyx)
	@test -n "$(MATRIX_PYTHON)" || { echo "$@: run it through make test-matrix"; exit 1; }
	$(MATRIX_PYTHON) -m venv .venv-$*
	.venv-$*/bin/python -m pip install --quiet --upgrade pip "setuptools>=77"
	CASTY_REQUIRE_EXTENSIONS=1 .venv-$*/bin/python -m pip install --quiet -e . $(MATRIX_DEPS)
	touch $@

bench-gate: $(STAMP)
	$(BIN)/python -m benchmarks --gate

# `make test`: while the 3.11 suites run, the matrix venvs are set up in the background at the
# lowest priority (about a minute of pip and C compiler that would otherwise run alone; the
# suites leave a fifth of two cores idle and `nice` keeps the build out of their way). The
# packaging test builds from a copy of the checkout, so the editable installs writing
# casty.egg-info here meanwhile do not touch it. The set-up's output goes to .matrix-venvs.log,
# shown if it fails. The gate runs last, on a quiet machine.
test: $(STAMP)
	$(MAKE) --no-print-directory lint typecheck
	@nice -n 19 $(MAKE) --no-print-directory matrix-venvs >.matrix-venvs.log 2>&1 & bg=$$!; \
	$(MAKE) --no-print-directory test-compiled test-pure; rc=$$?; \
	if [ $$rc -ne 0 ]; then kill $$bg 2>/dev/null; wait $$bg; exit $$rc; fi; \
	wait $$bg || { echo "matrix venvs: set-up failed:"; cat .matrix-venvs.log; exit 1; }
	$(MAKE) --no-print-directory test-matrix bench-gate

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .venv-3.* .matrix-venvs.log build dist *.egg-info casty/_fastpath/*.so casty/_fastpath/*.c

# a bounded soak run (minutes, not part of `make test`): 3 nodes + a client under random cuts
soak: $(STAMP)
	$(BIN)/python -m tests.soak --seconds 180

# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8501
# Loopback only by default: a laptop's studio is not reachable from the network. Serving others
# (HOST=0.0.0.0 or VLMRM_BIND=0.0.0.0) needs sign-in: see README "Sharing a studio".
HOST ?= $(or $(VLMRM_BIND),127.0.0.1)

.PHONY: install run test test-fast lint typecheck format bench screenshots clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/streamlit run vlmrm_studio/streamlit_app.py --server.address $(HOST) --server.port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

# The suite runs in TEST_WORKERS processes (pytest-xdist; a file's tests stay in one process, in
# order, so its server starts once and its browser tests can build on each other); then the
# tests that assert a time limit run alone. The type check is one of the suite's tests
# (tests/test_types.py), run beside the others instead of before them.
# Bytecode is cached even where the environment turns it off (PYTHONDONTWRITEBYTECODE): every
# pytest process and every subprocess a test starts would otherwise compile the project and
# rewrite the tests' asserts again (__pycache__ is git-ignored).
TEST_WORKERS ?= 2
PYTEST = env -u PYTHONDONTWRITEBYTECODE $(BIN)/python -m pytest
PYTEST_PARALLEL = $(PYTEST) -n $(TEST_WORKERS) --dist loadfile
# Only the files that hold serial tests are collected for the serial pass.
SERIAL_TEST_FILES = $(shell grep -rl --include='test_*.py' 'mark.serial' tests)

test: lint
	$(PYTEST_PARALLEL) -m "not serial"
	$(PYTEST) -m serial $(SERIAL_TEST_FILES)

# The inner loop: skips tests marked slow (model loads, training runs, Ray) and the browser test.
test-fast: lint typecheck
	$(PYTEST_PARALLEL) -m "not slow and not browser"

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

screenshots: install
	$(BIN)/python -m pytest tests/studio/test_browser_e2e.py --screenshots-to docs/screenshots

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

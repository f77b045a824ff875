# The two set-up commands of the README: `make demo` and `make test`.
# Both create .venv on first use and install what they need into it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test test-long lint typecheck pytest bench simulator audit lock clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "balance-manager needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files: reinstall when pyproject.toml changes.
$(VENV)/.installed-runtime: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed-runtime

demo: $(VENV)/.installed-runtime
	$(BIN)/balance-manager demo

simulator: $(VENV)/.installed-runtime
	$(BIN)/balance-manager simulator

lint: $(VENV)/.installed-dev
	$(BIN)/ruff format --check src tests bench fuzz examples
	$(BIN)/ruff check src tests bench fuzz examples
	$(BIN)/lint-imports

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy --strict src tests/typing fuzz examples

# One worker per core (pytest-xdist): the suite is mostly waiting on loopback I/O.
pytest: $(VENV)/.installed-dev
	$(BIN)/pytest -n auto

test: lint typecheck pytest

# The long runs left out of `make test`: a 2-minute soak, 200 churn rounds, real-time runs.
test-long: $(VENV)/.installed-dev
	BALANCE_MANAGER_SOAK_SECONDS=120 $(BIN)/pytest -n auto -m "long or slow" -q

bench: $(VENV)/.installed-dev
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/run_all.py

# Known vulnerabilities in the locked runtime dependencies. Needs network access to
# PyPI's JSON API (or OSV); --strict fails rather than pass when it cannot audit.
audit: $(VENV)/.installed-dev
	$(BIN)/pip-audit --strict --progress-spinner off -r requirements.lock

# Re-resolve requirements.lock from a fresh runtime install.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv && .lock-venv/bin/pip install --quiet .
	(echo "# Runtime dependencies as resolved by 'make lock' (pip freeze of 'pip install .')."; \
	 echo "# Audited by 'make audit' (pip-audit)."; \
	 .lock-venv/bin/pip freeze --exclude balance-manager) > requirements.lock.new
	rm -rf .lock-venv && mv requirements.lock.new requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info

# The two set-up commands of the README: `make demo` and `make test`.
# Both create .venv on first use and install what they need into it.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test test-long lint typecheck pytest docs docs-check package-check bench simulator \
	audit lock clean

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
	$(BIN)/ruff format --check src tests bench fuzz examples tools
	$(BIN)/ruff check src tests bench fuzz examples tools
	$(BIN)/lint-imports

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy --strict src tests/typing fuzz examples tools

# One worker per core (pytest-xdist): the suite is mostly waiting on loopback I/O.
pytest: $(VENV)/.installed-dev
	$(BIN)/pytest -n auto

# The documentation site (mkdocs.yml): `make docs` serves it on http://127.0.0.1:8000 and
# rebuilds it on change; `make docs-check` builds it with --strict (a broken link or anchor,
# an unknown API reference or a page left out of the nav fails), as make test does.
docs: $(VENV)/.installed-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

docs-check: $(VENV)/.installed-dev
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# Wheels of the runtime dependencies at the versions of requirements.lock, downloaded once
# (from pip's cache when it has them), so the package check installs offline.
WHEELHOUSE := $(VENV)/wheelhouse
$(WHEELHOUSE)/.complete: requirements.lock | $(BIN)/python
	rm -rf $(WHEELHOUSE)
	$(BIN)/python -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
		--no-deps --dest $(WHEELHOUSE) -r requirements.lock
	@touch $@

# Build the sdist and the wheel, check them, install the wheel in a fresh venv (offline, from
# the wheelhouse) and run `balance-manager --version` there (tools/check_package.py).
package-check: $(VENV)/.installed-dev $(WHEELHOUSE)/.complete
	$(BIN)/python tools/check_package.py --wheelhouse $(WHEELHOUSE)

test: lint typecheck docs-check package-check pytest

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

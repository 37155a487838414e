PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# uv installs exactly what uv.lock says (see README, "Dependencies"); uv itself is pinned here and
# lives in a virtual environment of its own.
UV_VERSION := 0.13.9
UV_HOME := .uv
UV := $(UV_HOME)/bin/uv
# The Python that runs connbot is the machine's $(PYTHON): uv never downloads one.
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)

.PHONY: run test test-slow lint lock lock-upgrade bench clean

GET_UV := test -x $(UV) || { $(PYTHON) -m venv $(UV_HOME) && $(UV_HOME)/bin/python -m pip install --quiet uv==$(UV_VERSION); }

# A pyproject.toml that uv.lock does not match (a dependency added or changed without `make lock`,
# a merge that brought one) stops here: nothing untested is installed.
$(STAMP): pyproject.toml uv.lock
	@$(GET_UV)
	@$(UV) lock --check --quiet || { \
	  echo >&2 "connbot: uv.lock does not match pyproject.toml. Run 'make lock', review the change to uv.lock, commit it."; \
	  exit 1; }
	$(UV) sync --locked --extra test --quiet
	touch $(STAMP)

# With Slack settings (environment or .env) the real app; without, the console: a local
# stand-in for Slack in this terminal, with the demo workspace.
run: $(STAMP)
	mkdir -p data
	@if $(BIN)/python -c 'import sys; from core.settings import load_settings; sys.exit(not load_settings().has_slack)' 2>/dev/null; \
	then $(BIN)/connbot run; else $(BIN)/connbot console; fi

# The suite in one process per core (pytest-xdist): each has its own databases and fakes.
test: $(STAMP)
	$(BIN)/python -m pytest -n auto

# Lint (pyflakes, isort, pycodestyle, bugbear, pyupgrade), the formatter's check and the types
# (pyproject.toml's [tool.mypy]: strict below the Slack surface, basic on it).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Slow suites (multi-process, large data); CI runs them after `make test`.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

# uv.lock after a change to pyproject.toml: what is still allowed keeps its version, what is new
# gets the newest allowed. `make lock-upgrade` moves everything to the newest allowed.
lock:
	@$(GET_UV)
	$(UV) lock

lock-upgrade:
	@$(GET_UV)
	$(UV) lock --upgrade

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(UV_HOME) build *.egg-info

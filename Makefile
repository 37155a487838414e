PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-slow lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# With Slack settings (environment or .env) the real app; without, the console: a local
# stand-in for Slack in this terminal, with the demo workspace.
run: $(STAMP)
	mkdir -p data
	@if $(BIN)/python -c 'import sys; from core.settings import load_settings; sys.exit(not load_settings().has_slack)' 2>/dev/null; \
	then $(BIN)/connbot run; else $(BIN)/connbot console; fi

test: $(STAMP)
	$(BIN)/python -m pytest

# Lint (pyflakes, isort, pycodestyle, bugbear, pyupgrade) and the formatter's check.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Slow suites (multi-process, large data); CI runs them after `make test`.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info

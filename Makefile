# Two commands on a fresh machine: `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# One OpenClaw install per machine, shared by `make run`, `make test` and fresh clones.
export CLAWFLEET_RUNTIME_DIR ?= $(HOME)/.cache/clawfleet/runtime

.PHONY: run test install install-dev services runtime clean

run: install runtime
	$(BIN)/clawfleet migrate
	exec $(BIN)/clawfleet serve

test: install-dev services runtime
	$(BIN)/pytest $(PYTEST_ARGS)

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "ClawFleet needs Python 3.11 or newer (found $$($(PYTHON) --version)); set PYTHON=..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

# Node.js 24 and the pinned OpenClaw for the process runtime (skipped when present).
runtime: install
	$(BIN)/clawfleet runtime install

# The services the tests talk to: PostgreSQL (installed and started when missing, as root).
services:
	scripts/ensure-postgres.sh

clean:
	rm -rf $(VENV) .pytest_cache

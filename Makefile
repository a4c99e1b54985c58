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
	$(if $(docker_url),CLAWFLEET_DOCKER_URL=$(docker_url) DOCKER_HOST=$(docker_url)) $(BIN)/pytest $(PYTEST_ARGS)

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

# The services the tests talk to, installed and started when missing (as root): PostgreSQL, Debian's
# Chromium for the browser tests (missing: they skip, except under CI=true, where it stops here), and a
# Docker engine with the OpenClaw image built offline (no registry needed). The engine's URL is
# kept in $(DOCKER_URL_FILE) for pytest (empty: none; its tests skip, or fail under CI=true).
# A failed image build stops the run under CI=true (the build says why); elsewhere its tests skip.
DOCKER_URL_FILE := $(VENV)/.docker-url
docker_url = $(shell cat $(DOCKER_URL_FILE) 2>/dev/null)# read when `test` runs, after services
services: install
	scripts/ensure-postgres.sh
	scripts/ensure-chromium.sh || [ "$${CI,,}" != true ]
	@url=$$(DOCKER_HOST=$${CLAWFLEET_DOCKER_URL:-$${DOCKER_HOST:-}} scripts/ensure-docker.sh) || url=""; \
	echo "$$url" > $(DOCKER_URL_FILE); \
	if [ -n "$$url" ] && ! CLAWFLEET_DOCKER_URL=$$url $(BIN)/clawfleet image build --offline; then \
		if [ "$${CI,,}" = true ]; then \
			echo "the OpenClaw image was not built (the reason is above): CI=true, so the run stops here" >&2; \
			exit 1; \
		fi; \
		echo "the OpenClaw image was not built (the reason is above): its tests will skip"; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache

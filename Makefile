# nettlege: `make run` starts the embedded demo, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.stamp-install
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: run test test-busy lint install system-deps web-client bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e ".[test,load]"
	touch $(STAMP)

install: $(STAMP) web-client

web-client:
	@if [ -f web_client/package.json ]; then \
	  command -v npm >/dev/null || { echo "npm is needed for the web client"; exit 1; }; \
	  [ -d web_client/node_modules ] && [ web_client/node_modules -nt web_client/package-lock.json ] || \
	    (cd web_client && npm ci --no-audit --no-fund --loglevel=error); \
	  if grep -q '"build"' web_client/package.json; then (cd web_client && npm run --silent build); fi; \
	fi

# Debian packages the tests drive for real: redis-server, chromium (headless), coturn (TURN), firefox-esr.
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v redis-cli >/dev/null || missing="$$missing redis-tools"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v turnserver >/dev/null || missing="$$missing coturn"; \
	command -v firefox-esr >/dev/null || missing="$$missing firefox-esr"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

run: install
	$(VENV)/bin/nettlege serve

test: system-deps install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Steadiness (issue 11): the whole suite BUSY_RUNS times in a row while another process keeps one core busy
# (a Python spinner); stops at the first failing run and always ends the spinner.
BUSY_RUNS ?= 3
test-busy: system-deps install
	@$(PYTHON) -c 'while True: pass' & spin=$$!; trap 'kill $$spin 2>/dev/null' EXIT; \
	for i in $$(seq 1 $(BUSY_RUNS)); do \
	  echo "== make test, run $$i of $(BUSY_RUNS), one core kept busy by pid $$spin =="; \
	  $(MAKE) --no-print-directory test || { echo "run $$i failed"; exit 1; }; \
	done; echo "$(BUSY_RUNS) runs passed under a busy core"

# Media benchmark: nettlege serve beside aiortc's transcoding relay and Janus VideoRoom (Debian `janus`), medians
# of 3 runs at K = 1, 4, 8 consultations; results appended to load_tests/results/media_bench.jsonl.
BENCH_ARGS ?= --consultations 1,4,8 --runs 3
bench: system-deps install
	@command -v janus >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq janus >/dev/null; }
	$(PY) -m load_tests.media_bench $(BENCH_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) web_client/node_modules

# supportchat build/test entry points (GNU make).
#
#   make install       runtime deps into .venv and the web UI build (idempotent, stamp-based)
#   make install-test  + test extra, PostgreSQL, Redis, nginx, Chromium, tests/js node modules
#   make run           migrate the default SQLite database and serve on 127.0.0.1:8000
#   make test          ruff + mypy + pytest (extra pytest args: make test PYTEST_ARGS='-k foo -x')
#   make lint          ruff + mypy only
#   make bench         the load benchmark (docs/performance.md); BENCH_ARGS='...'
#   make lock          regenerate constraints.txt from a fresh, unpinned resolve
#   make clean         caches and test artifacts;  make distclean  also .venv, node_modules, the web build

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Prefer the exact interpreter the project targets; fall back to whatever python3 is.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# Stamps live inside the venv so deleting .venv also forgets them.
STAMP := $(VENV)/.stamp-install
TEST_STAMP := $(VENV)/.stamp-install-test
# The JS client test's node modules (socket.io-client, pinned by package-lock.json); the
# stamp lives inside node_modules so deleting node_modules also forgets it.
JS_DIR := tests/js
JS_STAMP := $(JS_DIR)/node_modules/.stamp-npm-ci
# The web UI (web/: React + TypeScript + Vite), built into the package's webui/ directory,
# which the server serves. Rebuilt when anything under web/ changes.
WEB_DIR := web
WEB_OUT := src/supportchat/webui
WEB_NPM_STAMP := $(WEB_DIR)/node_modules/.stamp-npm-ci
WEB_BUILD_STAMP := $(WEB_OUT)/.stamp-build
WEB_SOURCES := $(shell find $(WEB_DIR) -path $(WEB_DIR)/node_modules -prune -o -type f -print 2>/dev/null)
PIP := $(BIN)/python -m pip
PIP_FLAGS := --disable-pip-version-check --quiet
PYTEST_ARGS ?=
SERVE_ARGS ?=

.PHONY: help install web install-test postgres-bin redis-bin nginx-bin chromium-bin js-deps run test lint bench lock clean distclean

help:
	@sed -n '3,11s/^# \{0,1\}//p' $(firstword $(MAKEFILE_LIST))

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) $(PIP_FLAGS) install --upgrade pip

# Re-run pip only when the dependency declarations change; the package itself is an
# editable install, so edits under src/ never need a reinstall.
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) $(PIP_FLAGS) install -c constraints.txt -e .
	@touch $@

$(TEST_STAMP): $(STAMP)
	$(PIP) $(PIP_FLAGS) install -c constraints.txt -e '.[test]'
	@touch $@

install: $(STAMP) web

web: $(WEB_BUILD_STAMP)

$(WEB_NPM_STAMP): $(WEB_DIR)/package.json $(WEB_DIR)/package-lock.json
	$(call npm-ci,$(WEB_DIR),the web UI is not built (the server says so at /) and the browser tests)

$(WEB_BUILD_STAMP): $(WEB_NPM_STAMP) $(WEB_SOURCES)
	@if [ -f $(WEB_NPM_STAMP) ]; then \
	  (cd $(WEB_DIR) && npm run build) && touch $@; \
	fi

install-test: $(TEST_STAMP) web postgres-bin redis-bin nginx-bin chromium-bin js-deps

# $(call apt-install,CHECK,PACKAGE,TESTS): install Debian's PACKAGE when the shell test
# CHECK fails. Only root can; anyone else is warned that TESTS will be skipped (and
# fail when CI=true, where every test must run).
define apt-install
	@if ! ( $(1) ); then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "$(2) missing: installing the $(2) package"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -q && apt-get install -y -q --no-install-recommends $(2) </dev/null; \
	  else \
	    echo "warning: $(2) missing and not root;" \
	         "$(3) will be skipped (or fail when CI=true)" >&2; \
	  fi; \
	fi
endef

# $(call npm-ci,DIR,WHAT): `npm ci` in DIR (exactly what its package-lock.json says), then
# the target's stamp; without npm, a warning that WHAT will be skipped (and fail when
# CI=true, where every test must run).
define npm-ci
	@if command -v npm >/dev/null 2>&1; then \
	  (cd $(1) && npm ci --no-audit --no-fund) && touch $@; \
	else \
	  echo "warning: npm not found; $(2) will be skipped (or fail when CI=true)" >&2; \
	fi
endef

# The test suite starts a throwaway PostgreSQL cluster, so it needs the server
# binaries (initdb, pg_ctl, postgres), not just a client library.
postgres-bin:
	$(call apt-install,ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1,postgresql,postgres-backed tests)

# The shared rate-limit tests (tests/test_rate_limits.py) and the cluster tests start a
# throwaway redis-server so that several server processes share one.
redis-bin:
	$(call apt-install,command -v redis-server >/dev/null 2>&1,redis-server,Redis-backed tests)

# The cluster tests (tests/test_cluster.py) run Debian's nginx with the documented
# deploy/nginx/supportchat.conf in front of three server processes. /usr/sbin is not on
# every PATH, so the binary is looked for there too.
nginx-bin:
	$(call apt-install,[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1,nginx,the cluster tests)

# The web UI's browser tests drive Debian's Chromium through Playwright (never a
# browser that Playwright downloads).
chromium-bin:
	$(call apt-install,[ -x /usr/bin/chromium ],chromium,the browser tests)

# tests/test_js_client.py drives the server with the official socket.io-client, and
# tests/test_web_ui.py audits the web UI with axe-core, both from tests/js. npm ci
# installs exactly what package-lock.json says, and runs again only when the lock (or
# package.json) is newer than the stamp or node_modules is gone.
js-deps: $(JS_STAMP)

$(JS_STAMP): $(JS_DIR)/package.json $(JS_DIR)/package-lock.json
	$(call npm-ci,$(JS_DIR),the JS client test and the accessibility audit)

# The first-run demo is on unless SUPPORTCHAT_DEMO says otherwise; the server turns it
# off by itself when bound to anything but this machine.
run: install
	$(BIN)/supportchat migrate
	SUPPORTCHAT_DEMO=$${SUPPORTCHAT_DEMO:-true} exec $(BIN)/supportchat serve $(SERVE_ARGS)

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/mypy --strict bench

# The load benchmark (docs/performance.md): make bench BENCH_ARGS='--chats 1000 --agents 20'
BENCH_ARGS ?= --chats 200 --agents 10 --duration 30
bench: $(TEST_STAMP)
	$(BIN)/python -m bench floor $(BENCH_ARGS)

test: install-test lint
	$(BIN)/pytest -q $(PYTEST_ARGS)

# Lock: resolve the newest versions allowed by pyproject.toml in a scratch venv
# (no constraints, so nothing stale is carried over), then pin every installed
# third-party distribution exactly. The project itself is excluded because it is
# installed editable. Commit the resulting constraints.txt.
LOCK_VENV := $(VENV)-lock
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip $(PIP_FLAGS) install --upgrade pip
	$(LOCK_VENV)/bin/python -m pip $(PIP_FLAGS) install -e '.[test]'
	@{ \
	  echo "# Exact pins for every third-party package of supportchat, including the"; \
	  echo "# [test] extra. Used as \`pip install -c constraints.txt ...\` by the Makefile so"; \
	  echo "# that developers and CI resolve the same versions."; \
	  echo "#"; \
	  echo "# Do not edit by hand: regenerate with \`make lock\` (fresh venv, unpinned"; \
	  echo "# \`pip install -e '.[test]'\`, then \`pip freeze --exclude-editable\`)."; \
	  $(LOCK_VENV)/bin/python -m pip freeze --exclude-editable; \
	} > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf $(LOCK_VENV)
	@echo "constraints.txt regenerated; run 'make install-test' to sync .venv"

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache test-artifacts build dist src/*.egg-info
	find src tests -name __pycache__ -type d -prune -exec rm -rf {} +

# data/ (the developer's local SQLite database) is deliberately never removed.
distclean: clean
	rm -rf $(VENV) $(LOCK_VENV) $(JS_DIR)/node_modules $(WEB_DIR)/node_modules $(WEB_OUT)

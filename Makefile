# jlabel developer commands. `make demo` and `make test` work on a fresh clone.
#
# The environment is pinned: torch + torchvision first (pins below), then the project with
# every other package pinned by constraints.txt (a full `pip freeze` of a working env).
# Stamp files make a second `make env` a no-op unless pyproject.toml, constraints.txt,
# package-lock.json or the JS sources changed.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
DEMO_DIR := demo-data
DEMO_NOTEBOOK := notebooks/01-quickstart.ipynb
PORT ?= 8888
BUNDLE := jlabel/widget/static/widget.js
JS_SOURCES := $(shell find js -type f \( -name '*.js' -o -name '*.css' \) -not -path 'js/test/*' 2>/dev/null)
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: help env chromium lint format test demo bench constraints wheel clean

help:
	@echo "make demo        environment + sample data + JupyterLab on $(DEMO_NOTEBOOK)"
	@echo "make test        environment + chromium + lint + JS tests + pytest (what .ci/run does)"
	@echo "make env         create/update $(VENV), node_modules and the widget bundle"
	@echo "make chromium    apt-get install chromium if /usr/bin/chromium is missing (root)"
	@echo "make lint        ruff check + ruff format --check"
	@echo "make bench       python -m bench"
	@echo "make wheel       build the wheel into dist/ and check the bundle is inside"
	@echo "make constraints regenerate constraints.txt from $(VENV)"

env: $(VENV)/.stamp-project node_modules/.stamp-npm $(BUNDLE)

$(VENV)/.stamp-torch:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(TORCH_PINS) -c constraints.txt
	touch $@

$(VENV)/.stamp-project: $(VENV)/.stamp-torch pyproject.toml constraints.txt
	$(PY) -m pip install -e ".[test,demo]" -c constraints.txt
	@$(PY) -c "import torch, torchvision; print('torch', torch.__version__, '/ torchvision', torchvision.__version__)" \
	  || { echo "ERROR: 'import torch, torchvision' fails in $(VENV): the install went wrong." >&2; \
	       echo "       Remove $(VENV) and run 'make env' again." >&2; exit 1; }
	touch $@

node_modules/.stamp-npm: package.json package-lock.json
	@command -v npm >/dev/null || { echo "ERROR: npm not found: install Node.js 20+ and npm." >&2; exit 1; }
	npm ci --no-audit --no-fund
	touch $@

$(BUNDLE): node_modules/.stamp-npm $(JS_SOURCES)
	npm run build

chromium:
	@if [ -x /usr/bin/chromium ]; then \
	  echo "chromium: $$(/usr/bin/chromium --version 2>/dev/null | head -1)"; \
	else \
	  SUDO=""; if [ "$$(id -u)" != 0 ]; then SUDO="sudo"; fi; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium </dev/null; \
	  test -x /usr/bin/chromium; \
	fi

lint: $(VENV)/.stamp-project
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.stamp-project
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Runs all three checks even when one fails (CI then shows every failure), fails if any did.
test: env chromium
	@failed=""; \
	$(MAKE) --no-print-directory lint || failed="$$failed lint"; \
	npm test || failed="$$failed npm-test"; \
	$(PY) -m pytest --durations=20 || failed="$$failed pytest"; \
	if [ -n "$$failed" ]; then echo "make test FAILED:$$failed" >&2; exit 1; fi; \
	echo "make test: all checks passed"

demo: env
	@if ls $(DEMO_DIR)/*.png >/dev/null 2>&1; then \
	  echo "sample data already in $(DEMO_DIR)/ (not rewritten)"; \
	else \
	  $(PY) -m jlabel.demo $(DEMO_DIR); \
	fi
	@token=$$($(PY) -c "import secrets; print(secrets.token_hex(16))"); \
	echo ""; \
	echo "JupyterLab on $(DEMO_NOTEBOOK) (Ctrl+C stops it):"; \
	echo "    http://127.0.0.1:$(PORT)/lab/tree/$(DEMO_NOTEBOOK)?token=$$token"; \
	echo ""; \
	export JLABEL_DEMO_DATA="$(abspath $(DEMO_DIR))"; \
	exec $(VENV)/bin/jupyter lab $(DEMO_NOTEBOOK) --ServerApp.root_dir="$(CURDIR)" \
	  --ServerApp.ip=127.0.0.1 --ServerApp.port=$(PORT) --ServerApp.port_retries=0 \
	  --IdentityProvider.token=$$token $(ALLOW_ROOT) $(JUPYTER_ARGS)

bench: env
	$(PY) -m bench

constraints: $(VENV)/.stamp-project
	$(PY) -m pip freeze --all --exclude-editable | grep -viE '^(jlabel|-e |pip==)' > constraints.txt
	@grep -qx 'torch==2.14.1' constraints.txt && grep -qx 'torchvision==0.29.1' constraints.txt \
	  || { echo "ERROR: constraints.txt lacks the torch pins" >&2; exit 1; }

wheel: env
	rm -rf dist
	$(PY) -m pip wheel --no-deps -w dist .
	$(PY) -c "import glob, zipfile; n = zipfile.ZipFile(glob.glob('dist/jlabel-*.whl')[0]).namelist(); \
	  assert 'jlabel/widget/static/widget.js' in n, 'widget bundle missing from the wheel'; \
	  print('wheel ok:', len(n), 'files, bundle included')"

clean:
	rm -rf dist build node_modules/.stamp-npm $(VENV)/.stamp-* tests/output

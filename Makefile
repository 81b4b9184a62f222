# The two set-up commands: `make demo` and `make test`. Each creates .venv and installs first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/margin-engine demo

test: $(STAMP) browser
	$(BIN)/ruff check src tests bench studies
	$(BIN)/mypy
	$(BIN)/pytest -n logical

# Debian's chromium for the dashboard's browser tests (tests/browser), installed with apt-get when
# missing and possible (root or password-less sudo); where it cannot be, those tests skip.
browser:
	@if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then :; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
	  echo "note: no chromium and no apt-get: the browser tests will skip"; \
	else \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	  else echo "note: no chromium and no root to install it: the browser tests will skip"; exit 0; fi; \
	  echo "installing Debian's chromium for the browser tests (apt-get)"; \
	  ( $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium \
	    || ( $$SUDO apt-get update -q && \
	         $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium ) ) \
	    >/dev/null 2>&1 || echo "note: chromium could not be installed: the browser tests will skip"; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check src tests bench studies
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache

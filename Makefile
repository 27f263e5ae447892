# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast venv system-deps bench typecheck docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e ".[jupyter,test]"
	$(PY) -m ipykernel install --sys-prefix --name cgmem-nb --display-name "Python (cgmem_nb)" >/dev/null
	touch $(STAMP)

venv: $(STAMP)

# Debian's Chromium for the browser tests (never `playwright install`: it cannot download here),
# and libjemalloc2 for the test that runs the native hooks under a preloaded allocator.
system-deps:
	@if [ ! -x /usr/bin/chromium ] || ! ls /usr/lib/*/libjemalloc.so.2 >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium libjemalloc2 >/dev/null; \
		else sudo apt-get update -qq && sudo apt-get install -y -qq chromium libjemalloc2 >/dev/null; fi; \
	fi

demo: $(STAMP)
	$(PY) -m cgmem_nb.demo

test: $(STAMP) system-deps
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not integration and not notebook and not browser"

# The guide, with warnings as errors (the suite checks the same build: tests/test_docs_build.py).
docs: $(STAMP)
	$(PY) -m sphinx -W -b html docs build/docs

typecheck: $(STAMP)
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) build dist *.egg-info test-artifacts

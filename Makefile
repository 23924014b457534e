# Two entry points for a fresh machine: `make demo` (install + a what-if on the default) and
# `make test` (install + lint + type check + tests). Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint typecheck clean

$(BIN)/roofline: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,calibrate,dask,ui,ui-test]' 'torch==2.13.0'
	@# the web page's browser tests drive the system's Chromium; install it where we can (root + apt-get), never fatal
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
		((apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 || echo "note: apt-get install chromium failed; the browser tests will skip"); } || true
	touch $@

install: $(BIN)/roofline

demo: install
	$(BIN)/roofline estimate --model llama-3.1-70b --hardware h100-sxm --tp 8 --batch 16 --isl 2048 --osl 256

lint: install
	$(BIN)/ruff check src tests benchmarks

typecheck: install
	$(BIN)/mypy
	$(BIN)/mypy --strict tests/typing/api_user.py

test: lint typecheck
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info

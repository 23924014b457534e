# Two entry points for a fresh machine: `make demo` (install + a what-if on the default) and
# `make test` (install + lint + type check + tests). Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint typecheck clean

$(BIN)/roofline: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,calibrate,dask]' 'torch==2.13.0'
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

# medssl: one-command set-up. `make demo` and `make test` each create .venv and install first.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU machines pin the CPU build of torch (the unpinned resolver pulls a several-GB CUDA build).
CONSTRAINTS ?= $(shell command -v nvidia-smi >/dev/null 2>&1 && echo constraints-gpu.txt || echo constraints-cpu.txt)

.PHONY: install demo test lint format clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints-cpu.txt constraints-gpu.txt
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) -e '.[test]'
	touch $@

demo: install
	$(BIN)/medssl demo --out demo_out --force

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

format: install
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

clean:
	rm -rf $(VENV) demo_out bench_out .pytest_cache

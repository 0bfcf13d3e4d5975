# compactstore: `make demo` runs the benchmark, `make test` runs every check. Both set themselves up.
.DEFAULT_GOAL := help
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(abspath $(VENV))/bin:$(PATH)
CARGO_TARGET_DIR ?= target
# In CI the property tests draw the same cases every run (proptest seed; hypothesis's "ci" profile in
# tests/conftest.py), so a landing never hinges on a lucky draw. Developers' runs stay random.
ifdef CI
export PROPTEST_RNG_SEED ?= 20261125
endif
SOURCES := $(shell find crates -name '*.rs' -o -name Cargo.toml) Cargo.toml pyproject.toml

.PHONY: help
help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.deps: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "maturin>=1.7,<2" "numpy>=1.24" "pytest>=8" "hypothesis>=6.100" "mypy>=1.10"
	touch $@

$(VENV)/.bench-deps: $(VENV)/.deps
	$(PY) -m pip install -q "pandas>=2" "pyarrow>=15" "matplotlib>=3.8" "tqdm>=4.66"
	touch $@

$(VENV)/.docs-deps: $(VENV)/.deps
	$(PY) -m pip install -q "mkdocs>=1.6,<2" "mkdocs-material>=9.6,<10" "mkdocstrings-python>=1.16,<3"
	touch $@

$(VENV)/.built: $(VENV)/.deps $(SOURCES) $(shell find python -type f)
	$(VENV)/bin/maturin develop --release -q
	touch $@

.PHONY: build
build: $(VENV)/.built  ## build the extension into the virtual environment (release)

.PHONY: lint
lint: $(VENV)/.built  ## rustfmt, clippy and stubtest
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(PY) -m mypy.stubtest compactstore._native --allowlist tests/stubtest-allowlist.txt

.PHONY: test-rust
test-rust:  ## cargo test (the engine needs no Python)
	cargo test --workspace --exclude compactstore-py
	cargo test -p compactstore-py --lib

.PHONY: test-python
test-python: $(VENV)/.built  ## pytest
	$(PY) -m pytest

.PHONY: docs
docs: $(VENV)/.built $(VENV)/.docs-deps  ## build the documentation site into site/ (mkdocs --strict)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

.PHONY: test
test: lint test-rust test-python docs  ## every check: fmt, clippy, stubtest, cargo test, pytest, docs build

.PHONY: demo
demo: $(VENV)/.built $(VENV)/.bench-deps  ## the benchmark: what compactstore saves, measured
	$(PY) -m compactstore.bench --plot bench/results.png

.PHONY: bench-rust
bench-rust:  ## criterion benches of the engine
	cargo bench -p compactstore

.PHONY: clean
clean:  ## remove build products and the virtual environment
	rm -rf $(VENV) target

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
	# The Arrow tests read stores with real consumers (tests/test_arrow*.py).
	$(PY) -m pip install -q "pyarrow>=15" "polars>=1" "duckdb>=1.1" "pandas>=2"
	touch $@

$(VENV)/.bench-deps: $(VENV)/.deps
	$(PY) -m pip install -q "pandas>=2" "pyarrow>=15" "matplotlib>=3.8" "tqdm>=4.66"
	touch $@

# Ray and Dask carry stores past one process in tests/test_distributed.py: heavy (~300 MB), so installed
# once per venv, in a stamp of their own.
$(VENV)/.dist-deps: $(VENV)/.deps
	$(PY) -m pip install -q "ray>=2.9" "dask[dataframe,distributed]>=2024.1"
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
	cargo test --workspace --exclude compactstore-py --features compactstore/arrow
	cargo test -p compactstore-py --lib

.PHONY: test-python
test-python: $(VENV)/.built $(VENV)/.dist-deps  ## pytest
	$(PY) -m pytest

.PHONY: docs
docs: $(VENV)/.built $(VENV)/.docs-deps  ## build the documentation site into site/ (mkdocs --strict)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

.PHONY: test
test: lint test-rust test-python docs  ## every check: fmt, clippy, stubtest, cargo test, pytest, docs build

# `make test-versions`: the build and pytest on each CPython 3.10-3.13 this machine has (the newest patch
# release of each under pyenv's versions folder, else python3.X on PATH), each in a venv of its own
# (.venv-3.X) so .venv is left alone. A version that is missing is skipped with a line saying so; none found
# fails. The Rust checks (fmt, clippy, cargo test) do not depend on the Python version and are not repeated.
# The versions share target/: switching version rebuilds only pyo3, numpy and the bindings, not the engine.
# CI runs it after `make test` wherever pyenv has one of these versions (.ci/run): on a fresh clone, on the
# 2-core machine shared with other builds, `make test` took 7.5 min, then `make test-versions` 6.5 min
# (3.10: 146 s, 3.11: 98 s, 3.12: 84 s, 3.13: 60 s; the first also builds) and `make wheel` 0.5 min,
# ~15 min in all; the whole of .ci/run on a fresh clone, the machine less busy, 9.8 min. Far inside CI's 90.
TEST_VERSIONS ?= 3.10 3.11 3.12 3.13
PYENV_ROOT ?= $(HOME)/.pyenv

.PHONY: test-versions
test-versions:  ## build + pytest on every CPython 3.10-3.13 found (pyenv), each in .venv-3.X
	@found=0; failed=""; summary=""; \
	for v in $(TEST_VERSIONS); do \
	  py=""; \
	  for cand in $$(ls -d "$(PYENV_ROOT)"/versions/$$v.* 2>/dev/null | grep -E "/$$v\.[0-9]+$$" | sort -rV) \
	              $$(command -v python$$v); do \
	    case "$$cand" in "$(abspath $(VENV))"/*) continue;; esac; \
	    [ -d "$$cand" ] && cand="$$cand/bin/python$$v"; \
	    if "$$cand" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$$v'.split('.'))))" \
	        2>/dev/null; then py="$$cand"; break; fi; \
	  done; \
	  if [ -z "$$py" ]; then echo "test-versions: no CPython $$v found, skipped"; continue; fi; \
	  found=$$((found + 1)); start=$$SECONDS; \
	  echo "test-versions: CPython $$v: $$py ($$("$$py" -c 'import platform; print(platform.python_version())'))"; \
	  if $(MAKE) --no-print-directory test-python VENV=.venv-$$v PYTHON="$$py"; then r=passed; \
	  else r=FAILED; failed="$$failed $$v"; fi; \
	  summary="$$summary  $$v $$r in $$((SECONDS - start)) s\n"; \
	done; \
	if [ $$found -eq 0 ]; then echo "test-versions: no CPython of $(TEST_VERSIONS) found"; exit 1; fi; \
	printf "test-versions:\n$$summary"; \
	if [ -n "$$failed" ]; then echo "test-versions: failed on$$failed"; exit 1; fi

# `make wheel`: a wheel in dist/ for the venv's CPython that installs on other Linux machines. maturin links
# it with zig (the ziglang package from PyPI) against glibc 2.17, so it is tagged manylinux2014 and needs no
# newer glibc or any shared library; `make wheel WHEEL_FLAGS=` builds without zig, tagged for the glibc of
# the build machine (manylinux_2_34 here). It is checked by installing it into a fresh venv in a temporary
# folder and running tests/wheel_smoke.py there (import, then a store of each kind). It compiles everything
# again for its own target folder (target/x86_64-unknown-linux-gnu: 0.5 min from a fresh clone on a quiet
# machine, a few minutes when the machine is busy) and installs numpy into the new venv, so `make test`,
# run over and over while developing, does not depend on it; CI runs it (.ci/run).
WHEEL_FLAGS ?= --zig

$(VENV)/.wheel-deps: $(VENV)/.deps
	$(PY) -m pip install -q "ziglang>=0.13,<0.18"
	touch $@

.PHONY: wheel
wheel: $(VENV)/.wheel-deps  ## a manylinux wheel in dist/, installed and tried in a fresh venv
	rm -f dist/compactstore-*.whl
	$(VENV)/bin/maturin build --release $(WHEEL_FLAGS) -i $(PY) -o dist
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(PY) -m venv "$$tmp/venv" && \
	"$$tmp/venv/bin/python" -m pip install -q dist/compactstore-*.whl && \
	cd "$$tmp" && "$$tmp/venv/bin/python" $(abspath tests/wheel_smoke.py)

.PHONY: demo
demo: $(VENV)/.built $(VENV)/.bench-deps  ## the benchmark: what compactstore saves, measured
	$(PY) -m compactstore.bench --plot bench/results.png

.PHONY: bench-rust
bench-rust:  ## criterion benches of the engine
	cargo bench -p compactstore

.PHONY: clean
clean:  ## remove build products and the virtual environment
	rm -rf $(VENV) target

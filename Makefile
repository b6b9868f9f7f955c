# The one entry point for dev tasks. `make serve` and `make test` set everything up first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.deps-stamp
NATIVE_STAMP := $(VENV)/.native-stamp
RUST_SRC := $(shell find rust -name '*.rs') Cargo.toml Cargo.lock

export ANOMALYD_HOST ?= 127.0.0.1
export ANOMALYD_PORT ?= 9200
export ANOMALYD_DATA_DIR ?= ./data

.PHONY: FORCE setup serve test test-rust test-python bench-core bench-http bench-analysis eval-nab clean

setup: $(NATIVE_STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb")); \
	  print("\n".join(p["build-system"]["requires"] + p["project"]["dependencies"] + \
	  [d for ds in p["project"]["optional-dependencies"].values() for d in ds]))' > $(VENV)/requirements.txt
	$(PY) -m pip install -q -r $(VENV)/requirements.txt
	touch $@

# The extension, built in release mode into the package, profile-guided (bench/pgo/build.sh:
# about 2-25% less CPU per byte, for two builds and a training run). Where that cannot run
# (no llvm-tools to be had), the plain release build; `PGO=0` asks for it (a quicker dev loop).
# Changing PGO rebuilds. The install is editable, so Python changes need no rebuild.
PGO ?= 1
PGO_STAMP := $(VENV)/.native-pgo
$(NATIVE_STAMP): $(STAMP) $(RUST_SRC) $(PGO_STAMP) bench/pgo/build.sh bench/pgo/train.py
	@if [ "$(PGO)" = 1 ] && VENV=$(VENV) bash bench/pgo/build.sh; then echo "native: profile-guided build"; \
	else [ "$(PGO)" != 1 ] || echo "native: the profile-guided build failed (above); building the plain one"; \
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(VENV)/bin/maturin develop --release -q && echo "native: plain release build"; fi
	touch $@

# Holds the PGO setting of the last build, rewritten only when it changes.
$(PGO_STAMP): FORCE
	@mkdir -p $(VENV); echo "$(PGO)" | cmp -s - $@ || echo "$(PGO)" > $@

serve: setup
	$(VENV)/bin/anomalyd serve

test: setup test-rust test-python

test-rust:
	cargo test --release -q

test-python: setup
	$(PY) -m pytest -q

bench-core: setup
	$(PY) bench/core/run.py

bench-http: setup
	$(PY) bench/http/run.py

bench-analysis: setup
	$(PY) bench/analysis/run.py

# NAB through the real HTTP API (data: ../shared/data/nab, or NAB_DIR).
eval-nab: setup
	$(PY) eval/nab/run.py

clean:
	rm -rf $(VENV) target

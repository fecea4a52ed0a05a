# Developer entry points. `make help` lists them.
# Everything installs into .venv, created on first use; nothing is needed beyond Python 3.11+ and
# a Rust toolchain.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.deps-installed
export VIRTUAL_ENV := $(abspath $(VENV))

.PHONY: help demo test test-rust test-python stubtest build wheel run bench bench-data bench-rust fmt lint clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# pip and maturin print their progress (downloads, compilation): a first build takes minutes.
$(STAMP): pyproject.toml
	@echo "== creating $(VENV) and installing the build and test dependencies"
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --progress-bar on --upgrade pip
	$(PIP) install --progress-bar on "maturin>=1.7,<2" "numpy>=1.24" "click>=8.1" "pytest>=8" "scikit-learn>=1.3" "mypy>=1.18" "typing_extensions>=4.15" "mlxtend>=0.23" \
		"keras>=3.5" "jax[cpu]>=0.4.30" "onnx>=1.16" "onnxruntime>=1.18" "skl2onnx>=1.17" \
		"tqdm>=4.60" "matplotlib>=3.7" "dask[distributed]>=2024.1" "hypothesis>=6.100"
	touch $(STAMP)

build: $(STAMP) ## Build the extension (release) into .venv
	@echo "== building the extension (cargo shows each crate as it compiles)"
	$(VENV)/bin/maturin develop --release

wheel: $(STAMP) ## Build the abi3 wheel (one wheel for CPython >= 3.11) into dist/
	$(VENV)/bin/maturin build --release --out dist

run: build ## Run a script with the built package: make run SCRIPT=path/to/script.py
	@test -n "$(SCRIPT)" || (echo "usage: make run SCRIPT=path/to/script.py" >&2; exit 2)
	$(PY) $(SCRIPT)

demo: build ## Set up, build and run the demo on scikit-learn's digits
	$(PY) examples/demo_digits.py
	$(PY) examples/cnn2snn_deep_flow.py

test-rust: ## Run the Rust tests (core property tests and unit tests)
	cargo test --workspace --exclude akida-py

stubtest: build ## Check the type stubs against the compiled module
	$(PY) -m mypy.stubtest akida._akida --allowlist .ci/stubtest-allowlist.txt

test-python: build ## Run the Python test suite
	$(PY) -m pytest

test: test-rust build stubtest test-python ## Set up and run every test (cargo test, stubtest, pytest)

bench: build ## Python benchmarks: forward vs numpy, learning accuracy, model files, packetizer
	$(PY) benches/bench_forward.py
	$(PY) benches/bench_learning.py
	$(PY) benches/bench_model_files.py
	$(PY) benches/bench_packetizer.py
	$(PY) benches/bench_cnn2snn.py

bench-rust: ## Criterion benches of the kernels
	cargo bench -p akida-engine --bench kernels

fmt: ## Format the Rust code
	cargo fmt --all

lint: ## Clippy on the whole workspace
	cargo clippy --workspace --all-targets -- -D warnings

clean: ## Remove build products and the virtual environment
	cargo clean
	rm -rf $(VENV) .pytest_cache

bench-data: ## Install the optional benchmark data (Fashion-MNIST, Debian's dataset-fashion-mnist; needs root)
	sh benches/setup_bench_data.sh

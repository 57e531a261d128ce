# ganstyle tasks. `make help` lists them. Every target that runs code sets up .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# On a CPU machine the constraints pin torch/torchvision so pip never pulls CUDA wheels.
# GPU users with their own CUDA torch already installed: `make setup CONSTRAINTS=`.
CONSTRAINTS ?= constraints.txt
PIP_C := $(if $(CONSTRAINTS),-c $(CONSTRAINTS),)

.DEFAULT_GOAL := help
.PHONY: help setup train test test-all lint format bench clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-10s %s\n", $$1, $$2}'

setup: $(VENV)/.installed ## create .venv and install ganstyle with its dev tools

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install $(PIP_C) -e ".[dev]"
	touch $@

train: setup ## train the default experiment (CycleGAN, embedded dataset, CPU); ARGS="..." adds overrides
	$(BIN)/python train.py $(ARGS)

# One pytest worker per core (pytest-xdist); a test file stays on one worker, so the runs a file's tests
# share are trained once. TEST_WORKERS=0 runs in this process (e.g. for a debugger).
TEST_WORKERS ?= auto
test: setup ## run the default test suite (about 7.5 minutes on 2 idle CPU cores)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(ARGS)

test-all: setup ## run every test, the slow ones included
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m "slow or not slow" $(ARGS)

lint: setup ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: setup ## run the benchmarks in benchmarks/ on this machine
	for b in bench_perceptual bench_models_pix2pix_dcgan bench_models_style bench_inference bench_scaling; do $(BIN)/python -m benchmarks.$$b || exit 1; done

clean: ## remove caches (keeps .venv and outputs/)
	rm -rf .pytest_cache .ruff_cache build src/*.egg-info

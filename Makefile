# One Makefile for a fresh machine: `make test` and `make run` create the virtual environment and install first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch 2.13.0 is pinned and installed first. Where pip does not already serve its CPU build (our machines do),
# pass PyTorch's CPU package index, `make install TORCH_INDEX=<index url>`, to avoid several GB of CUDA packages.
TORCH_INDEX ?=

.PHONY: install test test-all test-packaging run lint bench ci clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	# torch is pinned here, first, so no dependency can pull a newer (CUDA) build.
	$(PY) -m pip install torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	# the package with every extra (experiments, sweeps, wandb) and the dev tools
	$(PY) -m pip install -e ".[dev]"
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest -n 2 tests

test-all: install
	$(PY) -m pytest -n 2 -m "" tests

# The wheel installed into fresh virtual environments: core only, then with the experiments extra (from a folder
# outside the repository), and the core with the oldest supported SB3 / sb3-contrib / gymnasium (CI runs this).
test-packaging: install
	$(PY) -m pytest -n 2 -m packaging tests/test_packaging.py

# The main job on a small budget (about 5 minutes on 2 cores): Lattice-SAC on Ant with the paper's settings,
# 4 envs, 30k steps (a replay buffer of 50k holds them all, instead of the paper's 300k); leaves a complete run
# folder in logs/sac/Ant-v5_<N>/ (curves, checkpoints, video).
RUN_ARGS ?= --algo sac --noise lattice --env ant -n 30000 --n-envs 4 --eval-freq 5000 --eval-episodes 5 \
	--save-freq 10000 --video --hyperparams buffer_size=50000
run: install
	$(PY) experiments/run.py $(RUN_ARGS)

lint: install
	$(PY) -m ruff check lattice benchmarks tests experiments
	$(PY) -m ruff format --check lattice benchmarks tests experiments
	$(PY) -m mypy

ci: lint test

bench: install
	$(PY) benchmarks/distribution_speed.py
	$(PY) benchmarks/training_speed.py
	$(PY) benchmarks/env_speed.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache

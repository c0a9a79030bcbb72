# One Makefile for a fresh machine: `make test` and `make run` create the virtual environment and install first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch 2.13.0 is pinned and installed first. Where pip does not already serve its CPU build (our machines do),
# pass PyTorch's CPU package index, `make install TORCH_INDEX=<index url>`, to avoid several GB of CUDA packages.
TORCH_INDEX ?=

.PHONY: install test test-fast test-slow test-all test-cluster test-sb3 test-packaging run run-ant videos reports lint docs bench ci cluster clean

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

# The edit-test loop (46 s on 2 cores, 453 tests): the tests marked `fast`, the core's (linear algebra, distributions,
# colored noise, the policies' noise parameters, configs, the layers' import rules) and the command lines' validation
# (bad input exits 2 with one line, before anything is written).
test-fast: install
	$(PY) -m pytest -n 2 -m fast tests

# The long tests that `make test` leaves out (marked `slow`, 3 minutes on 2 cores): sweeps and tunings killed or
# stopped and resumed, a sweep on a Dask cluster started from the command line, a changed sweep file, damaged
# checkpoints, the rest of the algorithm x noise grid of run folders. CI runs them after `make ci`.
test-slow: install
	$(PY) -m pytest -n 2 -m slow tests

test-all: install
	$(PY) -m pytest -n 2 -m "" tests

# The tests that need the services of `make cluster` (about 8 minutes): sweeps and tunings through real sbatch jobs
# on its one-node SLURM (lost jobs, walltimes, a killed driver) and tunings on a real PostgreSQL server. One test at a
# time: the SLURM tests share the cluster's two CPUs and time its jobs.
test-cluster: install
	$(PY) -m pytest -n 0 -m "slurm or postgres" tests

# The drop-in claim checked by SB3's own tests: test_sde.py, test_save_load.py and the gSDE tests of
# test_distributions.py of the installed SB3 version (fetched once from its sdist into .sb3-tests/, git-ignored),
# run with this package's policies and distributions, once per noise (tests/sb3/; results and the declared
# differences in docs/sb3_compatibility.md). About 15 minutes on 2 cores (2 pytest-xdist workers); SB3_ARGS go to
# pytest.
SB3_ARGS ?= -n 2
test-sb3: install
	$(PY) tests/sb3/run.py -- $(SB3_ARGS)

# The wheel installed into fresh virtual environments: core only, then with the experiments extra (from a folder
# outside the repository), and the core with the oldest supported SB3 / sb3-contrib / gymnasium (CI runs this).
test-packaging: install
	$(PY) -m pytest -n 2 -m packaging tests/test_packaging.py

# The main job on a small budget (about 5 minutes on 2 cores): Lattice-PPO with the paper's MyoSuite settings on the
# 6-muscle elbow (configs/elbow.yaml: 4 envs), 50k steps, an evaluation every 5k steps: the success rate climbs
# while the progress lines scroll. Leaves a complete run folder in logs/ppo/myoElbowPose1D6MRandom-v0_<N>/ (curves,
# energy, checkpoints, videos/best.mp4).
RUN_ARGS ?= --algo ppo --noise lattice --env elbow -n 50000 --eval-freq 5000 --eval-episodes 10 --save-freq 10000 \
	--video
run: install
	$(PY) experiments/run.py $(RUN_ARGS)

# Lattice-SAC on Ant with the paper's settings, 4 envs, 30k steps (a replay buffer of 50k holds them all, instead of
# the paper's 300k), about 5 minutes on 2 cores. At this budget the return falls from the first evaluation (the
# initial policy stands still and collects the healthy reward) as the policy starts to move; the paper trained 10M.
ANT_ARGS ?= --algo sac --noise lattice --env ant -n 30000 --n-envs 4 --eval-freq 5000 --eval-episodes 5 \
	--save-freq 10000 --video --hyperparams buffer_size=50000
run-ant: install
	$(PY) experiments/run.py $(ANT_ARGS)

# videos/: early and best Lattice-PPO policies on the hand tasks, from the hand sweeps' runs
# (configs/sweeps/hand_reorient.yaml and hand_pen.yaml; a run not there yet is trained first, into its sweep's folder).
videos: install
	$(PY) experiments/videos.py

# results/: every committed report again from its own evaluations.csv (the run folders are gone), with today's
# statistics and chance baselines; the same data give byte-identical files (the tuned comparisons too: docs/tuned.md).
PLOT := $(VENV)/bin/lattice-plot
reports: install
	$(PLOT) results/repro/evaluations.csv --out results/repro
	$(PLOT) results/repro_target_kl/evaluations.csv --out results/repro_target_kl
	$(PLOT) results/hand/evaluations.csv --out results/hand
	$(PLOT) results/hand_reorient/evaluations.csv --out results/hand_reorient --windows 2
	$(PLOT) results/hand_pen/evaluations.csv --out results/hand_pen --windows 2
	for t in hand hand_reorient hand_pen; do \
	  $(PLOT) results/$$t/evaluations.csv --out results/$$t/vs_gsde/report --baseline gsde --no-chance && \
	  mv results/$$t/vs_gsde/report/final.md results/$$t/vs_gsde/report/comparison.csv results/$$t/vs_gsde/ && \
	  rm -r results/$$t/vs_gsde/report; done
	$(PLOT) results/tuned/elbow/evaluations.csv --out results/tuned/elbow --windows 2
	$(PLOT) results/tuned/elbow/at_20480/evaluations.csv --out results/tuned/elbow/at_20480 --steps 20480
	$(PLOT) results/tuned/overactuated16/evaluations.csv --out results/tuned/overactuated16 --windows 2
	$(PLOT) results/tuned/overactuated16/at_100352/evaluations.csv --out results/tuned/overactuated16/at_100352 --steps 100352
	$(PLOT) results/tuned/overactuated64/evaluations.csv --out results/tuned/overactuated64 --windows 2
	$(PLOT) results/tuned/overactuated64/at_100352/evaluations.csv --out results/tuned/overactuated64/at_100352 --steps 100352
	$(PLOT) results/tuned/kl_overactuated16/evaluations.csv --out results/tuned/kl_overactuated16
	$(PLOT) results/tuned/kl_overactuated16/evaluations.csv --out results/tuned/kl_overactuated16/vs_lattice/report \
	  --baseline "lattice learning_rate=0.0001 std_clip=[0.001, 10.0] target_kl=None" --no-chance && \
	  mv results/tuned/kl_overactuated16/vs_lattice/report/final.md results/tuned/kl_overactuated16/vs_lattice/report/comparison.csv \
	  results/tuned/kl_overactuated16/vs_lattice/ && rm -r results/tuned/kl_overactuated16/vs_lattice/report

lint: install
	$(PY) -m ruff check lattice benchmarks tests experiments docs
	$(PY) -m ruff format --check lattice benchmarks tests experiments docs
	$(PY) -m mypy

# The documentation site (docs/, MyST Markdown pages; the API and CLI references generated from the code) into
# docs/_build/html, not committed. Warnings are errors (-W, --keep-going to list them all; -n: every reference must
# resolve), so a broken link, a missing page or a docstring that does not render fails CI.
docs: install
	$(PY) -m sphinx -W --keep-going -n -q -b html docs docs/_build/html

ci: lint test docs

# A real one-node SLURM cluster on this machine (loopback only) for the tests marked `slurm`: needs root and apt-get
# (Debian 12); installs slurm-wlm, munge and postgresql if missing, starts munged, slurmctld and slurmd. Idempotent.
cluster:
	.ci/slurm.sh

bench: install
	$(PY) benchmarks/distribution_speed.py
	$(PY) benchmarks/training_speed.py
	$(PY) benchmarks/env_speed.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache docs/_build

"""The package as users install it: a wheel, built from this checkout and installed into fresh virtual
environments (marker ``packaging``: several minutes; ``make test-packaging``, which CI runs).

- the core alone: ``import lattice`` imports nothing of the experiment layer, Lattice-SAC and -PPO train on
  Pendulum-v1 and load in a fresh process with identical predictions (``tests/packaging/core_smoke.py``);
- then the ``experiments`` extra into the same environment, and from a folder outside the repository: a tiny
  training run through the console script, its report, and ``versions.yml`` naming this package's version;
- the core as a fresh install resolves it, the newest releases its dependency bounds allow (and, for SB3,
  sb3-contrib and gymnasium, within the tested range): the core test files;
- the core with the oldest supported Stable-Baselines3, sb3-contrib and gymnasium, without numba (so the
  likelihood falls back to torch's factorisation): the same smoke test, then the core test files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from filelock import FileLock

from tests.conftest import session_folder

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parent.parent
# torch first and pinned (a range would pull the newest, CUDA build); see the Makefile.
TORCH = "torch==2.13.0"
# The releases the core is tested with, [oldest, first untested): pyproject's bounds on the APIs it plugs into.
TESTED = {"stable-baselines3": ("2.0.0", "2.10"), "sb3-contrib": ("2.0.0", "2.10"), "gymnasium": ("0.28.1", "1.3")}
# The oldest releases the core supports; numpy 2 needs gymnasium >= 1.0.
OLDEST = [*(f"{name}=={oldest}" for name, (oldest, _) in TESTED.items()), "numpy<2"]
CORE_TESTS = ["test_distributions.py", "test_linalg.py", "test_policies.py", "test_spd.py"]
EXPERIMENT_DISTRIBUTIONS = {"myosuite", "matplotlib", "dask", "distributed", "wandb", "pandas", "mujoco", "pyyaml"}


def sh(args: list[str | Path], cwd: Path, timeout: int = 1200, env: dict[str, str] | None = None) -> str:
    """Run a command, fail the test with its output if it fails, return its stdout."""
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**clean, **(env or {})}
    )
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def venv(path: Path) -> Path:
    """A fresh virtual environment with the pinned torch; returns its python."""
    sh([sys.executable, "-m", "venv", path], cwd=path.parent)
    python = path / "bin" / "python"
    sh([python, "-m", "pip", "install", "--quiet", TORCH], cwd=path.parent)
    return python


def installed(python: Path) -> set[str]:
    return set(versions(python))


def versions(python: Path) -> dict[str, str]:
    """Distribution name (lower case, ``-`` for ``_``) → version, of what is installed for ``python``."""
    listing = json.loads(sh([python, "-m", "pip", "list", "--format", "json"], cwd=python.parent))
    return {entry["name"].lower().replace("_", "-"): entry["version"] for entry in listing}


def run_core_tests(python: Path, where: Path) -> str:
    """Copy the core test files (with ``conftest.py``, the smoke test and the test data) to ``where``, outside the
    repository, and run them with ``python``: the smoke test, then pytest. Returns pytest's output."""
    tests = where / "tests"
    tests.mkdir()
    shared = [name for name in ("conftest.py", "helpers.py") if (ROOT / "tests" / name).exists()]
    for name in [*shared, *CORE_TESTS]:
        shutil.copy(ROOT / "tests" / name, tests)
    if (ROOT / "tests" / "data").is_dir():  # e.g. the models saved by earlier versions, which must still load
        shutil.copytree(ROOT / "tests" / "data", tests / "data")
    shutil.copy(ROOT / "tests" / "packaging" / "core_smoke.py", tests)
    sh([python, "core_smoke.py"], cwd=tests)
    # from `where`, as in the repository: `python -m pytest` puts it on sys.path, so `tests.helpers` imports
    paths = [f"tests/{name}" for name in CORE_TESTS]
    output = sh([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *paths], cwd=where, timeout=1800)
    assert " passed" in output and " failed" not in output
    return output


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built once per session: setuptools builds in the checkout's build/, so two builds at once would collide.
    out = session_folder(tmp_path_factory, "wheel")
    with FileLock(str(out / "build.lock")):
        if not list(out.glob("sb3_lattice-*.whl")):
            sh([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", out, ROOT], cwd=out)
    (path,) = out.glob("sb3_lattice-*.whl")
    return path


def test_wheel_contents(wheel: Path) -> None:
    """The wheel carries the configs (task, sweep and tuning files), py.typed and the console scripts."""
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    for name in ("ant.yaml", "sweeps/tiny.yaml", "tune/elbow_ppo.yaml"):
        assert f"lattice/experiments/configs/{name}" in names
    assert "lattice/experiments/configs/shared/paper_sac.yaml" in names and "lattice/py.typed" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    for command in (
        "lattice-train",
        "lattice-sweep",
        "lattice-tune",
        "lattice-plot",
        "lattice-render",
        "lattice-enjoy",
    ):
        assert f"{command} = lattice.experiments.cli:" in text


def test_core_then_experiments_install(wheel: Path, tmp_path: Path) -> None:
    python = venv(tmp_path / "venv")
    sh([python, "-m", "pip", "install", "--quiet", wheel], cwd=tmp_path)
    assert not EXPERIMENT_DISTRIBUTIONS & installed(python), "the core install pulled experiment packages"
    outside = tmp_path / "elsewhere"  # not the repository: `import lattice` must find the installed package
    outside.mkdir()
    strict = "import lattice, sys; assert not {'myosuite', 'matplotlib', 'dask', 'optuna', 'pandas'} & set(sys.modules)"
    sh([python, "-c", strict], cwd=outside)
    shutil.copy(ROOT / "tests" / "packaging" / "core_smoke.py", outside)
    smoke = json.loads(sh([python, "core_smoke.py"], cwd=outside).strip().splitlines()[-1])
    assert "site-packages" in smoke["file"] and len(smoke["sac"]) == len(smoke["ppo"]) == 5

    # the console scripts exist in a core install; they say what to install instead of a traceback
    bare = subprocess.run([python.parent / "lattice-train", "--help"], cwd=outside, capture_output=True, text=True)
    assert bare.returncode == 1 and "pip install 'sb3-lattice[experiments]'" in bare.stderr, bare.stderr[-2000:]
    assert len(bare.stderr.strip().splitlines()) == 1

    sh([python, "-m", "pip", "install", "--quiet", f"{wheel}[experiments]"], cwd=tmp_path)
    bin_dir = python.parent
    sh(
        [
            bin_dir / "lattice-train",
            *("--algo", "ppo", "--noise", "lattice", "--env", "elbow", "-n", "256", "--n-envs", "1"),
            *("--eval-freq", "128", "--eval-episodes", "2", "--no-progress-bar"),
            *("--hyperparams", "n_steps=64", "batch_size=32"),
        ],
        cwd=outside,
    )
    run_dir = outside / "logs" / "ppo" / "myoElbowPose1D6MRandom-v0_1"
    assert yaml.safe_load((run_dir / "summary.yml").read_text())["status"] == "finished"
    versions = yaml.safe_load((run_dir / "versions.yml").read_text())
    import lattice

    assert versions["sb3-lattice"] == lattice.__version__ and versions["git_commit"] is None
    sh([bin_dir / "lattice-plot", "logs", "--out", "report"], cwd=outside)
    assert (outside / "report" / "final.md").read_text().count("myoElbowPose1D6MRandom-v0") >= 1
    assert (outside / "report" / "myoElbowPose1D6MRandom-v0.png").stat().st_size > 0
    assert "lattice-sweep" in sh([bin_dir / "lattice-sweep", "--help"], cwd=outside)


def test_oldest_supported_versions_without_numba(wheel: Path, tmp_path: Path) -> None:
    python = venv(tmp_path / "venv")
    sh([python, "-m", "pip", "install", "--quiet", "--no-deps", wheel], cwd=tmp_path)
    sh([python, "-m", "pip", "install", "--quiet", *OLDEST, "pytest"], cwd=tmp_path)
    resolved = versions(python)
    assert {name: resolved[name] for name in TESTED} == {name: oldest for name, (oldest, _) in TESTED.items()}
    assert "numba" not in resolved
    fallback = "from lattice import spd; assert not spd.available(), 'numba is importable'"
    sh([python, "-c", fallback], cwd=tmp_path)
    run_core_tests(python, tmp_path)


def test_newest_versions_a_fresh_core_install_resolves(wheel: Path, tmp_path: Path) -> None:
    """What `pip install sb3-lattice` gives a new user today: the newest releases the bounds allow, which CI tests
    here (the development environment holds the versions the experiment layer needs, e.g. gymnasium for myosuite)."""
    from packaging.version import Version

    python = venv(tmp_path / "venv")
    sh([python, "-m", "pip", "install", "--quiet", wheel], cwd=tmp_path)
    core = [*TESTED, "numpy", "numba", "torch"]
    resolved = {name: versions(python)[name] for name in core}
    for name, (oldest, untested) in TESTED.items():
        assert Version(oldest) <= Version(resolved[name]) < Version(untested), f"a fresh core install got {resolved}"
    sh([python, "-m", "pip", "install", "--quiet", "pytest"], cwd=tmp_path)
    assert {name: versions(python)[name] for name in core} == resolved, "installing pytest changed the core's versions"
    print(f"the core tests on what a fresh core install resolved: {resolved}")
    run_core_tests(python, tmp_path)

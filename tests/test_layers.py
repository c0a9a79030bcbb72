"""The library / experiments split: the core never imports the experiment layer or its dependencies, importing
either changes no process-wide state, and numba is loaded only when the CPU kernel first runs (with a fallback
to torch's factorisation when it is missing). Fresh interpreters, so that nothing imported by other tests counts.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch as th

from lattice.experiments import rundir

ROOT = Path(__file__).resolve().parent.parent
CORE = sorted(p for p in (ROOT / "lattice").rglob("*.py") if "experiments" not in p.relative_to(ROOT).parts)
# (tqdm and rich are left out: SB3 itself imports them when they are installed)
EXPERIMENT_DEPENDENCIES = {"yaml", "matplotlib", "pandas", "scipy", "dask", "distributed", "wandb", "imageio"}


def python(code: str, env: dict[str, str] | None = None) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "MPLBACKEND")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env={**clean, **(env or {})}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


def imports(path: Path) -> set[str]:
    """Modules a file imports (at any level)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.fast
def test_core_files_import_nothing_of_the_experiment_layer() -> None:
    assert len(CORE) >= 8  # distributions, linalg, spd, noise, policies, envs, ...
    for path in CORE:
        for name in imports(path):
            assert not name.startswith("lattice.experiments"), f"{path.name} imports {name}"
            assert name.split(".")[0] not in EXPERIMENT_DEPENDENCIES, f"{path.name} imports {name}"


def test_import_lattice_loads_no_experiment_module_and_no_numba() -> None:
    loaded = json.loads(
        python(
            "import json, sys, lattice; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & "
            f"set({sorted(EXPERIMENT_DEPENDENCIES | {'myosuite', 'numba', 'mujoco'})!r}))))"
        )
    )
    assert loaded == []


def test_numba_is_imported_when_the_kernel_first_runs() -> None:
    code = """
import sys, torch as th
from lattice.linalg import lowrank_terms
before = "numba" in sys.modules
g = th.Generator().manual_seed(0)
W, r = th.randn(5, 8, generator=g), th.randn(16, 5, generator=g)
lowrank_terms(r, W, th.rand(16, 8, generator=g), th.rand(16, 5, generator=g) + 0.1, 1.0)
print(before, "numba" in sys.modules)
"""
    assert python(code) == "False True"


def test_without_numba_the_likelihood_falls_back_to_torch() -> None:
    """``sys.modules["numba"] = None`` makes ``import numba`` fail, as on a machine without it: the same values
    as the kernel's, through torch's factorisation."""
    code = """
import json, sys
{block}
import torch as th
from lattice import spd
from lattice.linalg import lowrank_terms
g = th.Generator().manual_seed(0)
W, r = th.randn(7, 12, generator=g, dtype=th.float64), th.randn(40, 7, generator=g, dtype=th.float64)
u, v = th.rand(40, 12, generator=g, dtype=th.float64), th.rand(40, 7, generator=g, dtype=th.float64) + 0.1
logdet, quad = lowrank_terms(r, W, u, v, 0.8)
print(json.dumps([spd.available(), logdet.tolist(), quad.tolist()]))
"""
    without = json.loads(python(code.format(block="sys.modules['numba'] = None")))
    kernel = json.loads(python(code.format(block="")))
    assert without[0] is False and kernel[0] is True
    assert th.allclose(th.tensor(without[1]), th.tensor(kernel[1]), rtol=1e-10, atol=1e-10)
    assert th.allclose(th.tensor(without[2]), th.tensor(kernel[2]), rtol=1e-10, atol=1e-10)


def test_importing_the_experiment_layer_changes_no_process_state() -> None:
    """No rendering backend, no matplotlib backend (no pyplot), no torch thread count, no environment variable."""
    code = """
import json, os, sys, torch
threads, environ = torch.get_num_threads(), dict(os.environ)
import matplotlib
backend = matplotlib.rcParams._get_backend_or_none()
import lattice
from lattice.experiments import callbacks, cli, config, playback, process, report, rundir, sweep, training, video
from lattice.experiments import algorithms, build, errors, keywords, load, settings, validate
from lattice.experiments import checkpoints, dotted, lock, plots, stats, studies, tables, tune, tune_file, zoo
print(json.dumps({
    "threads": torch.get_num_threads() == threads,
    "environ": dict(os.environ) == environ,
    "backend": matplotlib.rcParams._get_backend_or_none() == backend,
    "pyplot": "matplotlib.pyplot" in sys.modules,
    "mujoco": "mujoco" in sys.modules,
}))
"""
    state = json.loads(python(code))
    assert state == {"threads": True, "environ": True, "backend": True, "pyplot": False, "mujoco": False}


def test_the_commands_decide_the_rendering_backend() -> None:
    """One place decides MUJOCO_GL: the process settings the commands apply (EGL without a display, unless the
    user chose), and one torch thread."""
    code = (
        "import os, torch; from lattice.experiments.process import configure_process; configure_process(); "
        "print(os.environ.get('MUJOCO_GL'), torch.get_num_threads())"
    )
    assert python(code, {"DISPLAY": ""}) == "egl 1"
    assert python(code, {"MUJOCO_GL": "osmesa"}) == "osmesa 1"


@pytest.mark.fast
def test_versions_record_this_checkout_only() -> None:
    """From this source checkout, versions.yml has its commit; installed elsewhere it has none
    (tests/test_packaging.py checks the wheel)."""
    versions = rundir.package_versions()
    import lattice

    assert versions["sb3-lattice"] == lattice.__version__
    if (ROOT / ".git").exists():
        assert versions["git_commit"] and len(versions["git_commit"].removesuffix("-dirty")) == 40


EXPERIMENTS = ROOT / "lattice" / "experiments"
# The config modules, each with one job, and the modules each may import (of the experiment layer): declarations
# below loading, loading below validation, validation below building (build reads what validation made).
CONFIG_LAYERS = {
    "errors": set(),
    "algorithms": {"errors"},
    "settings": {"errors", "algorithms"},
    "load": {"errors", "algorithms", "settings"},
    "keywords": {"errors", "settings"},
    "validate": {"errors", "algorithms", "settings", "load", "keywords"},
    "build": {"errors", "keywords", "validate"},
}
# The report, the run folder and the tuning, likewise: statistics apart from tables and plots (plots is the one
# module that draws, through matplotlib's object API), the run-folder layout apart from its writer lock and the
# choice of a checkpoint, the tuning file and the studies' storage apart from the driver. The report reaches the
# envs only through chance (its baselines run policies on a run's evaluation env, as training builds it).
OTHER_LAYERS = {
    "dotted": set(),
    "stats": set(),
    "tables": {"stats"},
    "plots": {"stats"},
    "rundir": {"errors", "load"},
    "lock": {"errors", "rundir"},
    "zoo": {"rundir"},
    "checkpoints": {"errors", "rundir", "zoo"},
    "report": {"errors", "dotted", "rundir", "stats", "tables", "plots", "chance"},
    "chance": {"callbacks", "dotted", "load", "settings", "stats", "training", "validate"},
    "studies": {"errors"},
    "tune_file": {"config", "errors", "load", "dotted", "sweep"},
    "tune": {"cluster", "errors", "load", "lock", "plots", "rundir", "studies", "sweep", "tune_file", "validate"},
}


def experiment_imports(path: Path) -> set[str]:
    """The experiment-layer modules a file imports, in either form (``from lattice.experiments import x`` or
    ``from lattice.experiments.x import y``)."""
    used: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "lattice.experiments":
            used.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lattice.experiments."):
            used.add(node.module.split(".")[2])  # type: ignore[union-attr]
        elif isinstance(node, ast.Import):
            used.update(a.name.split(".")[2] for a in node.names if a.name.startswith("lattice.experiments."))
    return used


@pytest.mark.fast
@pytest.mark.parametrize("name,allowed", [*CONFIG_LAYERS.items(), *OTHER_LAYERS.items()])
def test_modules_import_only_the_layers_below_them(name: str, allowed: set[str]) -> None:
    used = experiment_imports(EXPERIMENTS / f"{name}.py")
    assert used <= allowed, f"{name}.py imports {sorted(used - allowed)}"
    assert len((EXPERIMENTS / f"{name}.py").read_text().splitlines()) <= 400, f"{name}.py is over 400 lines"


@pytest.mark.fast
def test_only_the_plots_module_draws() -> None:
    """matplotlib in one module, and there only its object API (no pyplot state, no backend switch)."""
    for path in EXPERIMENTS.glob("*.py"):
        used = {m for m in imports(path) if m.split(".")[0] == "matplotlib"}
        if path.stem == "plots":
            assert used and all(m.startswith("matplotlib.figure") or m == "matplotlib.ticker" for m in used), used
        else:
            assert not used, f"{path.name} imports {sorted(used)}"
        assert "matplotlib.use(" not in path.read_text(), path.name


def private_imports(path: Path) -> list[str]:
    """``from lattice.experiments.x import _name`` in a file: private names of another module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lattice"):
            found += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
    return found


@pytest.mark.fast
def test_no_private_name_is_imported_across_modules() -> None:
    files = [*EXPERIMENTS.glob("*.py"), *(ROOT / "experiments").glob("*.py")]
    assert len(files) >= 10
    for path in files:
        assert private_imports(path) == [], f"{path.relative_to(ROOT)} imports {private_imports(path)}"

"""Where a run's envs run (the ``vec_env`` setting): in worker processes (``subproc``) or in the training process
(``dummy``), with the same seeds, episodes and results either way; ``auto`` chooses by the cores the run has (its
CPU affinity, and a sweep trial's ``resources.cpus``) and the run says what it chose. Real runs, real processes."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch as th
import yaml

from lattice.experiments import cli, rundir
from lattice.experiments.config import ConfigError, dump_config, resolve_run_config, validate
from lattice.experiments.load import load_yaml
from lattice.experiments.process import available_cores, configure_process
from lattice.experiments.sweep import expand
from tests.helpers import ROOT, only_run_dir, tiny_run_args

SWEEP = str(ROOT / "experiments" / "sweep.py")
CHOICES = "choose one of: auto, dummy, subproc"


def run(
    log_dir: Path,
    algo: str,
    noise: str,
    env: str,
    steps: int,
    *hyperparams: str,
    vec_env: str,
    cores: int | None = None,
) -> tuple[Path, str]:
    """A tiny run of experiments/run.py with ``--vec-env vec_env`` (on the first ``cores`` cores this process may
    use, where given); returns its folder and printed output."""
    args = tiny_run_args(algo, noise, log_dir, env=env, steps=steps)
    at = args.index("--hyperparams")
    args = [*args[:at], "--vec-env", vec_env, *args[at:], *hyperparams]
    result = subprocess.run(
        [sys.executable, *args],
        cwd=log_dir.parent,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=None if cores is None else _pinned(cores),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return only_run_dir(log_dir), result.stdout


def _pinned(cores: int) -> Callable[[], None]:
    """A child's ``preexec_fn`` that pins it to the first ``cores`` of the cores this process may run on."""
    allowed = sorted(os.sched_getaffinity(0))[:cores]
    return lambda: os.sched_setaffinity(0, allowed)


def episodes(run_dir: Path) -> dict[str, pd.DataFrame]:
    """Each training env's Monitor CSV (episode return, length, energy, ...), without its wall-clock column."""
    return {
        path.name: pd.read_csv(path, skiprows=1).drop(columns="t") for path in sorted(run_dir.glob("*.monitor.csv"))
    }


def parameters(run_dir: Path) -> dict[str, th.Tensor]:
    """The final model's policy parameters (``policy.pth`` of its zip)."""
    with zipfile.ZipFile(run_dir / rundir.FINAL_MODEL) as archive:
        return th.load(io.BytesIO(archive.read("policy.pth")), map_location="cpu", weights_only=True)


# (algo, noise, env, steps, more --hyperparams): PPO-Lattice on the elbow task with its paper settings (VecNormalize
# of observations and rewards, state-dependent noise redrawn every 4 steps; 15-19 s: MyoSuite in each worker) and
# SAC-gSDE on Pendulum, normalised too (12 s). Either tells SB3's DummyVecEnv apart: it rounds rewards to float32.
IDENTICAL = [
    pytest.param(("ppo", "lattice", "elbow", 384, "n_envs=3"), id="ppo_lattice_elbow", marks=pytest.mark.slow),
    pytest.param(("sac", "gsde", "Pendulum-v1", 192, "n_envs=2", "normalize=true"), id="sac_gsde_pendulum"),
]


@pytest.mark.parametrize("run_args", IDENTICAL)
def test_envs_in_this_process_train_exactly_as_envs_in_worker_processes(run_args, tmp_path):
    algo, noise, env, steps, *hyperparams = run_args
    n_envs = int(hyperparams[0].split("=")[1])
    folders = {}
    for vec_env in ("dummy", "subproc"):
        (tmp_path / vec_env).mkdir()
        folders[vec_env], out = run(tmp_path / vec_env / "logs", algo, noise, env, steps, *hyperparams, vec_env=vec_env)
        where = "this process" if vec_env == "dummy" else f"{n_envs} worker processes"
        assert f"{n_envs} envs in {where} (vec_env {vec_env})\n" in out, out
        assert load_yaml(folders[vec_env] / rundir.CONFIG)["vec_env"] == vec_env
    dummy, subproc = folders["dummy"], folders["subproc"]

    # the same episodes in every env: seeds, actions, returns, lengths, energy
    assert list(episodes(dummy)) == [f"{i}.monitor.csv" for i in range(n_envs)]
    for (file, a), b in zip(episodes(dummy).items(), episodes(subproc).values(), strict=True):
        assert len(a) > 0, file
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=file)
    # the same evaluations and the same final model, bit for bit
    ran, other = np.load(dummy / rundir.EVALUATIONS), np.load(subproc / rundir.EVALUATIONS)
    assert sorted(ran.files) == sorted(other.files) and len(ran["timesteps"]) >= 2
    for key in ran.files:
        np.testing.assert_array_equal(ran[key], other[key], err_msg=key)
    a, b = parameters(dummy), parameters(subproc)
    assert list(a) == list(b)
    for key in a:
        assert th.equal(a[key], b[key]), key
    # and the same normalisation statistics (VecNormalize's running returns take the rewards as the envs give them)
    with open(dummy / rundir.VECNORMALIZE, "rb") as f, open(subproc / rundir.VECNORMALIZE, "rb") as g:
        norm_a, norm_b = pickle.load(f), pickle.load(g)
    for stats in ("obs_rms", "ret_rms"):
        for moment in ("mean", "var"):
            np.testing.assert_array_equal(
                getattr(getattr(norm_a, stats), moment), getattr(getattr(norm_b, stats), moment)
            )


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="this OS cannot pin a process to cores")
@pytest.mark.parametrize("cores", [1, 2])
def test_auto_runs_the_envs_in_this_process_on_one_core_and_in_worker_processes_on_more(cores, tmp_path):
    if len(os.sched_getaffinity(0)) < cores:
        pytest.skip(f"this machine lets the tests run on {len(os.sched_getaffinity(0))} core(s), not {cores}")
    log_dir = tmp_path / "logs"
    run_dir, out = run(log_dir, "ppo", "isotropic", "Pendulum-v1", 128, "n_envs=2", vec_env="auto", cores=cores)
    where = "this process (vec_env auto: 1 core)" if cores == 1 else "2 worker processes (vec_env auto: 2 cores)"
    assert f"2 envs in {where}\n" in out, out
    assert load_yaml(run_dir / rundir.CONFIG)["vec_env"] == "auto"  # what the user chose: results are the same


def test_one_env_runs_in_this_process_whatever_vec_env_says(tmp_path):
    _, out = run(tmp_path / "logs", "ppo", "isotropic", "Pendulum-v1", 64, vec_env="subproc")
    assert "1 env in this process\n" in out, out


def test_the_cores_of_a_process_are_its_affinity_and_at_most_what_it_was_given():
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        assert available_cores() == allowed  # the CLI's: every core it may run on
        configure_process(cores=1)  # a sweep trial's resources: {cpus: 1}
        assert available_cores() == 1
        configure_process(cores=64)
        assert available_cores() == allowed
    finally:
        configure_process()  # as conftest.py set it


def test_a_sweep_trial_given_one_cpu_runs_its_envs_in_its_worker_process(tmp_path):
    """The trial's ``resources.cpus`` limits it, not only the worker's affinity (which allows every core where the
    tests run on more than one)."""
    tiny = load_yaml(ROOT / "configs" / "sweeps" / "tiny.yaml")
    grid = {"algo": ["ppo"], "noise": ["isotropic"], "env": ["elbow"], "seed": [0]}
    spec = {**tiny, "name": "one_cpu", "grid": grid, "settings": {**tiny["settings"], "n_envs": 2}}
    spec["resources"] = {"cpus": 1}
    path = tmp_path / "one_cpu.yaml"
    path.write_text(yaml.safe_dump(spec))
    command = [sys.executable, SWEEP, "--config", str(path), "--log-dir", str(tmp_path / "sweeps")]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (trial,) = expand(spec)
    log = (tmp_path / "sweeps" / "one_cpu" / "output" / f"{trial}.log").read_text()
    assert "2 envs in this process (vec_env auto: 1 core)\n" in log, log


@pytest.mark.fast
@pytest.mark.parametrize(
    "given",
    [["--vec-env", "threads"], ["--hyperparams", "vec_env=threads"], ["--config", "task.yaml"]],
    ids=["flag", "hyperparams", "yaml"],
)
def test_a_vec_env_that_is_no_choice_exits_2_with_one_line(given, tmp_path, capsys):
    (tmp_path / "task.yaml").write_text("env: Pendulum-v1\nvec_env: threads\n")
    given = [str(tmp_path / arg) if arg == "task.yaml" else arg for arg in given]
    argv = ["--algo", "ppo", "--noise", "isotropic", "--env", "Pendulum-v1", "--log-dir", str(tmp_path / "logs")]
    assert cli.train_main([*argv, *given]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"error: Unknown vec_env 'threads'; {CHOICES}"]
    assert not (tmp_path / "logs").exists()


@pytest.mark.fast
def test_a_sweep_file_with_a_vec_env_that_is_no_choice_is_refused():
    tiny = load_yaml(ROOT / "configs" / "sweeps" / "tiny.yaml")
    trials = expand({**tiny, "settings": {**tiny["settings"], "vec_env": "dummy"}})
    assert {config["vec_env"] for config in trials.values()} == {"dummy"}
    with pytest.raises(ConfigError, match=f"Unknown vec_env 'x'; {CHOICES}"):
        expand({**tiny, "settings": {**tiny["settings"], "vec_env": "x"}})


@pytest.mark.fast
def test_a_config_recorded_before_vec_env_existed_reads_as_auto(tmp_path):
    """config.yml of a run (and the config saved in its models) from before the setting: read as a resume and a
    sweep read it (``validate``), and with --config, it equals the config of this version (no 'vec_env: (unset) →
    auto' change to refuse)."""
    config = resolve_run_config("ppo", "lattice", "Pendulum-v1", overrides={"n_envs": 2})
    old = config.as_dict()
    del old["vec_env"]
    dump_config(old, tmp_path / "config.yml")
    assert validate(old) == config.as_dict()
    assert resolve_run_config(config=tmp_path / "config.yml") == config

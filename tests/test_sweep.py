"""Sweeps on real Dask clusters (embedded, and started from the command line on loopback) with real runs."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch as th
import yaml

from lattice.experiments.config import ConfigError, algo_kwargs, dump_config, load_yaml, resolve_config
from lattice.experiments.sweep import check_unchanged, expand, folder_name, trial_resources
from tests.helpers import ROOT

SWEEP = str(ROOT / "experiments" / "sweep.py")
TINY = load_yaml(ROOT / "configs" / "sweeps" / "tiny.yaml")
ENV = dict(os.environ)


def sweep(tmp_path: Path, spec: dict, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    path = tmp_path / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec))
    command = [sys.executable, SWEEP, "--config", str(path), "--log-dir", str(tmp_path / "sweeps"), *args]
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=timeout, env=ENV)


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "sweeps").glob("*.yaml")), ids=lambda p: p.stem)
@pytest.mark.fast
def test_every_shipped_sweep_file_expands(path):
    """The sweep files in configs/sweeps resolve to valid trial configs: the whole grid, with its settings."""
    spec = load_yaml(path)
    trials = expand(spec)
    assert len(trials) == np.prod([len(values) for values in spec["grid"].values()])
    for config in trials.values():
        assert config["timesteps"] == spec["settings"]["timesteps"]


@pytest.mark.fast
def test_a_joint_axis_sets_its_settings_together():
    """The hand sweep's four settings: a joint axis of mappings, each a noise with (or without) its own T."""
    setting = [{"noise": "isotropic"}, {"noise": "lattice", "noise_period": 1}, {"noise": "lattice", "noise_period": 4}]
    grid = {"algo": ["ppo"], "env": ["elbow"], "seed": [0, 1], "setting": setting}
    trials = expand({**TINY, "grid": grid})
    assert sorted(trials) == [
        "ppo_isotropic_elbow_seed0",
        "ppo_isotropic_elbow_seed1",
        "ppo_lattice_elbow_seed0_noise_period=1",
        "ppo_lattice_elbow_seed0_noise_period=4",
        "ppo_lattice_elbow_seed1_noise_period=1",
        "ppo_lattice_elbow_seed1_noise_period=4",
    ]
    config = trials["ppo_lattice_elbow_seed1_noise_period=1"]
    assert (config["noise"], config["noise_period"], config["seed"]) == ("lattice", 1, 1)
    assert algo_kwargs(config)["sde_sample_freq"] == 1
    assert "sde_sample_freq" not in algo_kwargs(trials["ppo_isotropic_elbow_seed0"])
    with pytest.raises(ConfigError, match="axis 'setting' mixes settings and plain values"):
        expand({**TINY, "grid": {**grid, "setting": [{"noise": "lattice"}, "isotropic"]}})
    with pytest.raises(ConfigError, match="sets noise in more than one axis"):
        expand({**TINY, "grid": {**grid, "noise": ["gsde"]}})
    with pytest.raises(ConfigError, match="A point of the sweep's grid has no noise"):
        expand({**TINY, "grid": {**grid, "setting": [{"noise": "lattice"}, {"noise_period": 4}]}})


@pytest.mark.fast
def test_expand_validates_every_trial_first():
    trials = expand(TINY)
    assert sorted(trials) == [
        "ppo_isotropic_elbow_seed0",
        "ppo_isotropic_elbow_seed1",
        "ppo_lattice_elbow_seed0",
        "ppo_lattice_elbow_seed1",
    ]
    config = trials["ppo_lattice_elbow_seed1"]
    assert (config["seed"], config["timesteps"], config["hyperparams"]["n_steps"]) == (1, 128, 64)
    lattice_only = {**TINY["grid"], "noise": ["lattice"]}
    with_axis = expand({**TINY, "grid": {**lattice_only, "policy_kwargs.alpha": [0.5, 1.0]}})
    assert with_axis["ppo_lattice_elbow_seed0_policy_kwargs.alpha=0.5"]["hyperparams"]["policy_kwargs"]["alpha"] == 0.5
    # An axis that the grid's other noise does not use would train that noise twice, identical in effect: refused.
    with pytest.raises(ConfigError, match=r"noise 'isotropic' has no parameter 'alpha' .*isotropic's parameters: none"):
        expand({**TINY, "grid": {**TINY["grid"], "policy_kwargs.alpha": [0.5, 1.0]}})
    with pytest.raises(ConfigError, match=r"noise_period=1 has no effect with noise .isotropic."):
        expand({**TINY, "grid": {**TINY["grid"], "noise_period": [1, 8]}})
    with pytest.raises(ConfigError, match="Unknown noise 'brown'"):
        expand({**TINY, "grid": {**TINY["grid"], "noise": ["lattice", "brown"]}})
    with pytest.raises(ConfigError, match="gae_lambda must be a number, got 'bad'"):  # any trial's, before any runs
        expand({**TINY, "grid": {**TINY["grid"], "gae_lambda": [0.9, "bad"]}})
    with pytest.raises(ConfigError, match="needs a non-empty list for 'seed'"):
        expand({**TINY, "grid": {k: v for k, v in TINY["grid"].items() if k != "seed"}})
    assert trial_resources(TINY) == trial_resources({**TINY, "resources": {"gpus": 0}}) == {"cpus": 1}
    assert trial_resources({**TINY, "resources": {"cpus": 4, "gpus": 1}}) == {"cpus": 4, "gpus": 1}
    with pytest.raises(ConfigError, match=r"resources.cpus must be an integer >= 1, got 0"):
        expand({**TINY, "resources": {"cpus": 0}})
    with pytest.raises(ConfigError, match=r"Unknown resource\(s\) \['memory'\].*valid: cpus, gpus"):
        expand({**TINY, "resources": {"memory": 4}})


def test_embedded_sweep_runs_and_a_second_call_skips_finished_trials(tmp_path):
    result = sweep(tmp_path, TINY, "--max-concurrent", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    trials = tmp_path / "sweeps" / "tiny" / "trials"
    assert sorted(p.name for p in trials.iterdir()) == sorted(expand(TINY))
    for run_dir in trials.iterdir():
        assert load_yaml(run_dir / "summary.yml")["status"] == "finished"
        assert (run_dir / "evaluations.npz").is_file() and (run_dir / "config.yml").is_file()
    assert "[4 done, 0 running, 0 queued, 0 failed]" in result.stdout
    assert "(2 workers)" in result.stdout
    # Trials are handed out as workers free up, seed by seed: both workers work, seed 0 of each noise goes first.
    first = load_yaml(tmp_path / "sweeps" / "tiny" / "results.yml")
    assert len({r["worker"] for r in first.values()}) == 2
    started = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("starting: ")]
    assert sorted(started[:2]) == ["ppo_isotropic_elbow_seed0", "ppo_lattice_elbow_seed0"]
    # Each trial's own lines (one per evaluation) are in its log file, not in the sweep's output.
    assert "eval " not in result.stdout
    for trial in expand(TINY):
        log = (tmp_path / "sweeps" / "tiny" / "output" / f"{trial}.log").read_text()
        # at steps 0, 64 and 128
        assert log.count("eval ") == len(np.load(trials / trial / "evaluations.npz")["timesteps"]) == 3
    stamps = {p: p.stat().st_mtime_ns for p in trials.glob("*/final_model.zip")}

    again = sweep(tmp_path, TINY, "--max-concurrent", "2")
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("skipped: ") == 4
    assert {p: p.stat().st_mtime_ns for p in trials.glob("*/final_model.zip")} == stamps  # nothing re-run
    results = load_yaml(tmp_path / "sweeps" / "tiny" / "results.yml")
    assert {r["status"] for r in results.values()} == {"skipped"}


@pytest.mark.slow
def test_interrupted_sweep_resumes_unfinished_trials(tmp_path):
    spec = {**TINY, "name": "long", "settings": {**TINY["settings"], "timesteps": 1024, "save_freq": 128}}
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(spec))
    command = [
        sys.executable,
        SWEEP,
        "--config",
        str(path),
        "--log-dir",
        str(tmp_path / "sweeps"),
        "--max-concurrent",
        "2",
    ]
    proc = subprocess.Popen(
        command, cwd=tmp_path, env=ENV, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    trials = tmp_path / "sweeps" / "long" / "trials"
    deadline = time.time() + 240
    while time.time() < deadline and not list(trials.glob("*/checkpoints/rl_model_256_steps.zip")):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its Dask workers
    proc.wait()
    unfinished = [p for p in trials.iterdir() if not (p / "summary.yml").exists()]
    assert unfinished, "every trial finished before the kill: raise the budget"

    result = sweep(tmp_path, spec, "--max-concurrent", "2", "--progress-every", "0.5")
    assert result.returncode == 0, result.stderr[-3000:]
    for run_dir in trials.iterdir():
        assert load_yaml(run_dir / "summary.yml")["timesteps"] == 1024
    resumed = [p for p in unfinished if (p / "checkpoints").is_dir()]
    for run_dir in resumed:
        assert len((run_dir / "command.txt").read_text().splitlines()) == 2  # started, then resumed
        assert f"resuming: {run_dir.name} on worker" in result.stdout
    assert resumed
    # Counts add up, and no more trials run than workers.
    counts = [
        tuple(map(int, c))
        for c in re.findall(r"\[(\d+) done, (\d+) running, (\d+) queued, (\d+) failed\]", result.stdout)
    ]
    assert counts and all(sum(c) == 4 and c[1] <= 2 for c in counts), counts
    # Progress lines name the running trials with their latest evaluation (resumed trials have one at once).
    running = re.findall(r"\[\d+ done, [12] running, \d+ queued, 0 failed\] running: (.*)", result.stdout)
    latest = [m for line in running for m in re.findall(r"(\w+) \(step ([\d,]+): return (-?[\d.]+)\)", line)]
    assert latest, result.stdout[-3000:]
    for trial, step, _ in latest:
        assert int(step.replace(",", "")) % 64 == 0 and trial in {p.name for p in trials.iterdir()}


def test_a_second_copy_of_a_running_sweep_and_a_resume_of_its_trial_are_refused(tmp_path):
    """One process per sweep folder, one per run folder: a second copy of the sweep command exits 2 naming the
    first (before it starts a cluster), and a resume of the trial a Dask worker is training exits 2 naming that
    worker's process; the folders are untouched."""
    spec = {**TINY, "name": "busy", "grid": {**TINY["grid"], "noise": ["lattice"], "seed": [0]}}
    spec["settings"] = {**TINY["settings"], "timesteps": 1_000_000, "eval_freq": 1024, "save_freq": 1024}
    path = tmp_path / "busy.yaml"
    path.write_text(yaml.safe_dump(spec))
    command = [sys.executable, SWEEP, "--config", str(path), "--log-dir", str(tmp_path / "sweeps")]
    first = subprocess.Popen(command, cwd=tmp_path, env=ENV, start_new_session=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        trial = tmp_path / "sweeps" / "busy" / "trials" / "ppo_lattice_elbow_seed0"
        deadline = time.time() + 240
        while time.time() < deadline and not (trial / "command.txt").is_file():
            time.sleep(0.2)
        second = sweep(tmp_path, spec)
        assert second.returncode == 2, second.stderr[-3000:]
        line = second.stderr.strip().splitlines()[-1]
        assert f"{tmp_path / 'sweeps' / 'busy'} is in use by pid {first.pid} on " in line and "--config" in line
        resume = subprocess.run(
            [sys.executable, str(ROOT / "experiments" / "run.py"), "--resume", str(trial)],
            cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert resume.returncode == 2, resume.stderr[-3000:]
        holder = re.search(re.escape(f"{trial} is in use by pid ") + r"(\d+) on ", resume.stderr)
        assert holder and int(holder.group(1)) != first.pid  # the Dask worker running the trial
        assert first.poll() is None and not (trial / "summary.yml").exists()
        assert len((trial / "command.txt").read_text().splitlines()) == 1
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()


def test_trials_take_their_resources_on_the_embedded_cluster(tmp_path):
    cores = os.cpu_count() or 1
    spec = {**TINY, "name": "big", "grid": {**TINY["grid"], "seed": [0]}, "resources": {"cpus": cores}}
    result = sweep(tmp_path, spec)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "(1 workers)" in result.stdout  # a trial takes every core: one at a time
    results = load_yaml(tmp_path / "sweeps" / "big" / "results.yml")
    assert len(results) == 2 and len({r["worker"] for r in results.values()}) == 1


@pytest.mark.skipif(th.cuda.is_available(), reason="checks the error on a machine without a GPU")
@pytest.mark.fast
def test_a_gpu_trial_on_a_machine_without_one_exits_2(tmp_path):
    result = sweep(tmp_path, {**TINY, "name": "gpu", "resources": {"gpus": 1}}, timeout=120)
    assert result.returncode == 2
    assert "resources.gpus=1 per trial, but this machine has 0 CUDA GPU(s)" in result.stderr
    assert not (tmp_path / "sweeps").exists()


def test_a_failing_trial_is_retried_and_reported_and_does_not_stop_the_others(tmp_path):
    """A learning rate of 1e6 passes validation and makes the policy non-finite at the first update."""
    grid = {"algo": ["ppo"], "noise": ["lattice"], "env": ["elbow"], "seed": [0], "learning_rate": [3e-4, 1e6]}
    spec = {**TINY, "name": "failing", "grid": grid, "retries": 1}
    good, bad = sorted(expand(spec), key=lambda name: float(name.rsplit("=", 1)[1]))
    result = sweep(tmp_path, spec, "--max-concurrent", "2")
    assert result.returncode == 1, result.stderr[-3000:]
    results = load_yaml(tmp_path / "sweeps" / "failing" / "results.yml")
    assert results[good]["status"] == "finished"
    assert results[bad]["status"] == "failed" and "ValueError" in results[bad]["error"]
    assert f"FAILED after 2 tries: {bad}" in result.stdout
    command = tmp_path / "sweeps" / "failing" / "trials" / bad / "command.txt"
    assert len(command.read_text().splitlines()) == 2  # the retry continued the same run folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_sweep_on_a_cluster_started_from_the_command_line(tmp_path):
    dask = str(Path(sys.executable).parent / "dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**ENV, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    scheduler = subprocess.Popen(
        [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = [dask, "worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--no-dashboard", "--name"]
    workers = [  # w1 declares a CPU for trials that ask for resources; w2 declares none
        subprocess.Popen(
            [*worker, name, *extra], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for name, extra in (("w1", ["--resources", "cpus=1"]), ("w2", []))
    ]
    try:
        result = sweep(tmp_path, TINY, "--scheduler", address)
        assert result.returncode == 0, result.stderr[-3000:]
        results = load_yaml(tmp_path / "sweeps" / "tiny" / "results.yml")
        assert {r["status"] for r in results.values()} == {"finished"}
        assert {r["worker"] for r in results.values()} == {"w1", "w2"}  # trials ran on both workers

        needs_cpu = {**TINY, "name": "needs_cpu", "resources": {"cpus": 1}}
        result = sweep(tmp_path, needs_cpu, "--scheduler", address)
        assert result.returncode == 0, result.stderr[-3000:]
        results = load_yaml(tmp_path / "sweeps" / "needs_cpu" / "results.yml")
        assert {r["worker"] for r in results.values()} == {"w1"}  # only w1 has what the trials ask for

        result = sweep(tmp_path, {**TINY, "name": "needs_two", "resources": {"cpus": 2}}, "--scheduler", address)
        assert result.returncode == 2
        assert 'dask worker ADDRESS --nthreads 1 --resources "cpus=2"' in result.stderr
        assert not (tmp_path / "sweeps" / "needs_two").exists()
    finally:
        for proc in [*workers, scheduler]:
            proc.terminate()
        for proc in [*workers, scheduler]:
            proc.wait(timeout=30)


@pytest.mark.fast
def test_bad_sweep_file_exits_2(tmp_path):
    result = sweep(tmp_path, {**TINY, "name": "bad", "grid": {**TINY["grid"], "algo": ["ddpg"]}}, timeout=120)
    assert result.returncode == 2 and "Unknown algo 'ddpg'" in result.stderr
    assert not (tmp_path / "sweeps").exists()


def test_a_grid_of_config_files_sweeps_them_over_seeds(tmp_path):
    """Config files (a run's config.yml, a tuned config) instead of algo × noise × env, relative to the sweep file."""
    (tmp_path / "best").mkdir()
    tuned = resolve_config(
        "ppo", "pink", "elbow", hyperparams=["learning_rate=1e-4", "policy_kwargs.noise_exponent=1.5"]
    )
    dump_config(tuned, tmp_path / "best" / "pink.yml")
    spec = {"name": "seeds", "grid": {"config": ["best/pink.yml"], "seed": [1, 2]}, "settings": {"timesteps": 64}}
    trials = expand(spec, tmp_path)
    assert sorted(trials) == ["pink_seed1", "pink_seed2"]
    for seed, config in zip([1, 2], trials.values(), strict=True):
        assert (config["seed"], config["timesteps"], config["hyperparams"]["learning_rate"]) == (seed, 64, 1e-4)
        assert config["hyperparams"]["policy_kwargs"]["noise_exponent"] == 1.5
    with pytest.raises(ConfigError, match="has config files and noise: the config files set those"):
        expand({**spec, "grid": {**spec["grid"], "noise": ["lattice"]}}, tmp_path)
    with pytest.raises(ConfigError, match="Cannot read config"):
        expand({**spec, "grid": {**spec["grid"], "config": ["best/missing.yml"]}}, tmp_path)
    (tmp_path / "other").mkdir()
    dump_config(tuned, tmp_path / "other" / "pink.yml")
    with pytest.raises(ConfigError, match="make the trial 'pink_seed1': give the config files other names"):
        expand({**spec, "grid": {**spec["grid"], "config": ["best/pink.yml", "other/pink.yml"]}}, tmp_path)


def _files(folder: Path) -> dict[Path, tuple[int, bytes]]:
    """Every file under ``folder``: its modification time and its bytes."""
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_a_changed_sweep_file_is_refused_for_trials_that_ran_and_a_grown_grid_runs_its_new_trials(tmp_path):
    """The sweep file is the truth: a rerun whose file gives a finished trial another budget exits 2 with one line
    naming the trial and the change, and changes no file (sweep.yml keeps what the trial ran with); a grid that
    grew runs its new trial and skips the finished one, and retries (not a trial setting) may change."""
    one = {**TINY, "name": "edited", "grid": {**TINY["grid"], "noise": ["lattice"], "seed": [0]}}
    first = sweep(tmp_path, one)
    assert first.returncode == 0, first.stderr[-3000:]
    folder = tmp_path / "sweeps" / "edited"
    recorded, before = (folder / "sweep.yml").read_bytes(), _files(folder)
    assert load_yaml(folder / "sweep.yml")["settings"]["timesteps"] == 128

    refused = sweep(tmp_path, {**one, "settings": {**one["settings"], "timesteps": 256}}, timeout=120)
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert refused.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'edited.yaml'} changes the settings of 1 trial(s) that already ran in {folder}: "
        "ppo_lattice_elbow_seed0 (timesteps: 128 → 256); a trial keeps the settings it ran with: restore the file, "
        "or give the sweep a new name: to run it in a new folder"
    ]
    assert (folder / "sweep.yml").read_bytes() == recorded and _files(folder) == before

    grown = {**one, "grid": {**one["grid"], "seed": [0, 1]}, "retries": 0}
    result = sweep(tmp_path, grown)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "skipped: ppo_lattice_elbow_seed0 " in result.stdout
    assert "starting: ppo_lattice_elbow_seed1 " in result.stdout
    assert "starting: ppo_lattice_elbow_seed0" not in result.stdout
    old = folder / "trials" / "ppo_lattice_elbow_seed0"
    assert {p: v for p, v in _files(folder).items() if old in p.parents} == {
        p: v for p, v in before.items() if old in p.parents
    }
    assert load_yaml(folder / "sweep.yml") == {**grown, "trials": sorted(expand(grown))}


_VALID = {
    "name": "one folder name of letters, digits and . _ = + - (not starting with '.')",
    "retries": "an integer >= 0 (Dask retries of a failed trial)",
}


@pytest.mark.parametrize(
    "bad",
    [{"name": "../../x"}, {"name": ""}, {"retries": -1}, {"retries": "abc"}, {"retries": True}],
    ids=["name-up", "name-empty", "retries-negative", "retries-text", "retries-bool"],
)
def test_a_bad_sweep_name_or_retries_exits_2_before_any_folder_exists(tmp_path, bad):
    spec = {**TINY, **bad}
    path = tmp_path / "deep" / "er" / "bad.yaml"  # ../../x from the log dir would land in tmp_path
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(spec))
    log_dir = path.parent / "sweeps"
    command = [sys.executable, SWEEP, "--config", str(path), "--log-dir", str(log_dir)]
    result = subprocess.run(command, cwd=path.parent, capture_output=True, text=True, timeout=120, env=ENV)
    assert result.returncode == 2, result.stderr[-3000:]
    key, value = next(iter(bad.items()))
    assert result.stderr.strip().splitlines() == [f"error: {key} must be {_VALID[key]}, got {value!r}"]
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == [
        Path("deep"), Path("deep/er"), Path("deep/er/bad.yaml")
    ]  # fmt: skip


@pytest.mark.fast
def test_sweep_and_tuning_names_are_one_folder_and_retries_a_count(tmp_path):
    for name in ("../../x", "", ".", "..", ".hidden", "a/b", "a\\b", "a b", "/abs", True, [1], 1.5):
        with pytest.raises(ConfigError, match=re.escape(f"name must be {_VALID['name']}, got {name!r}")):
            expand({**TINY, "name": name})
    assert folder_name("tiny_v2.1+lr=3e-4", Path("x.yaml")) == "tiny_v2.1+lr=3e-4"
    assert folder_name(2024, Path("x.yaml")) == "2024"
    assert folder_name(None, Path("configs/tiny.yaml")) == "tiny"  # no name: the file's
    with pytest.raises(ConfigError, match=r"has no name:, and its file name 'my sweep' is not a folder name"):
        folder_name(None, Path("my sweep.yaml"))
    for retries in (-1, "abc", True, None, 1.5):
        with pytest.raises(ConfigError, match=re.escape(f"retries must be {_VALID['retries']}, got {retries!r}")):
            expand({**TINY, "retries": retries})
    assert len(expand({**TINY, "retries": 0})) == len(expand({k: v for k, v in TINY.items() if k != "retries"})) == 4

    from lattice.experiments.tune_file import load_tuning

    tuning = load_yaml(ROOT / "configs" / "tune" / "elbow_ppo.yaml")
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({**tuning, "name": "../x"}))
    with pytest.raises(ConfigError, match=re.escape(f"name must be {_VALID['name']}, got '../x'")):
        load_tuning(tmp_path / "t.yaml")


def test_trials_that_ran_are_compared_with_the_sweep_file(tmp_path):
    """Every trial with a recorded start (config.yml and command.txt; finished or not) against the file's config:
    every setting counts, retries, resources and slurm do not; changes are named per group of trials."""
    trials = expand(TINY)
    names = sorted(trials)
    for name in names:
        run = tmp_path / "trials" / name
        run.mkdir(parents=True)
        dump_config(trials[name], run / "config.yml")
        (run / "command.txt").write_text("lattice-sweep\n")
    path = Path("tiny.yaml")
    check_unchanged(trials, tmp_path, path)
    check_unchanged(expand({**TINY, "retries": 0, "resources": {"cpus": 2}, "slurm": {"jobs": 2}}), tmp_path, path)
    grown = expand({**TINY, "grid": {**TINY["grid"], "seed": [0, 1, 2]}})
    check_unchanged(grown, tmp_path, path)  # new trials have no folder yet
    check_unchanged({name: trials[name] for name in names[:1]}, tmp_path, path)  # trials the file no longer names

    longer = expand({**TINY, "settings": {**TINY["settings"], "timesteps": 256}})
    with pytest.raises(ConfigError) as refused:
        check_unchanged(longer, tmp_path, path)
    assert str(refused.value) == (
        f"tiny.yaml changes the settings of 4 trial(s) that already ran in {tmp_path}: ppo_isotropic_elbow_seed0, "
        "ppo_isotropic_elbow_seed1, ppo_lattice_elbow_seed0 and 1 more (timesteps: 128 → 256); a trial keeps the "
        "settings it ran with: restore the file, or give the sweep a new name: to run it in a new folder"
    )
    with pytest.raises(ConfigError, match=r"4 trial.*device: 'auto' → 'cpu'"):
        check_unchanged(expand({**TINY, "settings": {**TINY["settings"], "device": "cpu"}}), tmp_path, path)

    mixed = dict(trials)
    mixed[names[0]] = {**trials[names[0]], "timesteps": 256}
    mixed[names[1]] = {**trials[names[1]], "eval_freq": 32, "save_freq": 32, "n_envs": 2, "max_episode_steps": 10}
    hyperparams = trials[names[2]]["hyperparams"]
    mixed[names[2]] = {**trials[names[2]], "hyperparams": {**hyperparams, "gamma": 0.9}}
    (tmp_path / "trials" / names[3] / "command.txt").unlink()  # killed before it recorded its start: no run yet
    mixed[names[3]] = {**trials[names[3]], "timesteps": 512}
    with pytest.raises(ConfigError) as refused:
        check_unchanged(mixed, tmp_path, path)
    assert (
        f"3 trial(s) that already ran in {tmp_path}: {names[0]} (timesteps: 128 → 256); {names[1]} (eval_freq: 64 → 32;"
        " max_episode_steps: 20 → 10; n_envs: 1 → 2; save_freq: 64 → 32); and 1 more trial(s) with other changes; "
    ) in str(refused.value)
    mixed[names[1]]["seed"] = 9
    with pytest.raises(ConfigError, match=re.escape("save_freq: 64 → 32; and 1 more); ")):
        check_unchanged(mixed, tmp_path, path)

"""Where trials run (lattice.experiments.cluster): the embedded cluster stopped with Ctrl-C, and sweeps through real
sbatch jobs on the one-node SLURM cluster of .ci/slurm.sh (`make cluster`): the same results as the embedded
cluster, a lost job replaced, a trial longer than three walltimes, a killed driver continued, no worker at all.

The `slurm` tests run one at a time (`make test-cluster`): they share the cluster's CPUs and time its jobs.
"""

from __future__ import annotations

import getpass
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lattice.experiments.cluster import DEADLINE_ENV, job_name, slurm_cluster, slurm_plan, walltime_seconds
from lattice.experiments.config import ConfigError

ROOT = Path(__file__).resolve().parent.parent
SWEEP = str(ROOT / "experiments" / "sweep.py")
# PPO-Lattice on the 6-muscle elbow, one env, rollouts of 64 steps: a few hundred steps per second per trial.
SETTINGS = {
    "n_envs": 1,
    "eval_freq": 1000,
    "eval_episodes": 2,
    "save_freq": 1000,
    "max_episode_steps": 20,
    "n_steps": 64,
    "batch_size": 32,
}
LOOPBACK = {"interface": "lo"}  # the scheduler, the workers and their HTTP endpoints on 127.0.0.1


def spec(name: str, timesteps: int, seeds: list[int], slurm: dict | None = None, retries: int = 1) -> dict:
    grid = {"algo": ["ppo"], "noise": ["lattice"], "env": ["elbow"], "seed": seeds}
    out = {"name": name, "grid": grid, "settings": {**SETTINGS, "timesteps": timesteps}, "retries": retries}
    if slurm is not None:
        out["slurm"] = {"cores": 1, "memory": "2GB", "jobs": 1, **LOOPBACK, **slurm}
    return out


def start(tmp_path: Path, sweep: dict, *args: str) -> subprocess.Popen:
    """``lattice-sweep`` on ``sweep`` in its own process group (so that a test can Ctrl-C it as a terminal would)."""
    path = tmp_path / f"{sweep['name']}.yaml"
    path.write_text(yaml.safe_dump(sweep))
    command = [sys.executable, SWEEP, "--config", str(path), "--log-dir", str(tmp_path / "sweeps"), *args]
    command += ["--progress-every", "2"]
    return subprocess.Popen(
        command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def finish(process: subprocess.Popen, timeout: float = 600) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def checkpoints(trial: Path) -> list[int]:
    return sorted(int(p.stem.split("_")[-2]) for p in (trial / "checkpoints").glob("rl_model_[0-9]*_steps.zip"))


def squeue(name: str) -> list[str]:
    out = subprocess.run(
        ["squeue", "--noheader", "--name", name, "--user", getpass.getuser(), "--format", "%i"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()


def evaluation_steps(trial: Path) -> list[int]:
    return np.load(trial / "evaluations.npz")["timesteps"].tolist()


def uninterrupted_grid(timesteps: int) -> list[int]:
    """The evaluation steps of an uninterrupted run: the untrained policy at step 0, every eval_freq before the
    budget, then the final one, once, at the last rollout's end."""
    final = math.ceil(timesteps / SETTINGS["n_steps"]) * SETTINGS["n_steps"]
    return [*range(0, timesteps, SETTINGS["eval_freq"]), final]


# -- the slurm: block, checked before anything exists ------------------------------------------------------------


@pytest.mark.fast
def test_walltimes_in_every_format_sbatch_takes():
    assert [walltime_seconds(t) for t in ("30", "1:30", "01:00:00", "2-0", "2-1:30", "1-00:00:01")] == [
        1800,
        90,
        3600,
        172800,
        178200,
        86401,
    ]
    for bad in ("a", "1:2:3:4", "-5", "1--2", "1:-1"):
        with pytest.raises(ValueError):
            walltime_seconds(bad)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"cores": 1, "memory": "2GB", "walltime": 120}, "slurm.walltime must be a positive time in quotes"),
        ({"cores": 1, "memory": "2GB", "walltime": "two hours"}, "got 'two hours'"),
        ({"cores": 1, "memory": "2GB", "wall_time": "1:00:00"}, "Unknown slurm setting(s) ['wall_time']"),
        ({"cores": 1, "memory": "2GB", "jobs": 0}, "slurm.jobs must be an integer >= 1, got 0"),
        ({"cores": 1, "memory": "2GB", "walltime": "2", "margin": 60}, "slurm.margin (60 s) must be less than half"),
        ({"cores": 1, "memory": "2GB", "worker_wait": -1}, "slurm.worker_wait must be a positive number"),
        ({"cores": 1}, "slurm.memory is needed"),
    ],
    ids=["unquoted", "words", "unknown", "no-jobs", "margin", "wait", "memory"],
)
def test_a_bad_slurm_block_exits_2_before_any_folder_exists(tmp_path, block, message):
    with pytest.raises(ConfigError, match=None) as refused:
        slurm_plan(block)
    assert message in str(refused.value)
    sweep = {**spec("bad", 128, [0]), "slurm": block}
    code, out, err = finish(start(tmp_path, sweep, "--slurm"), timeout=120)
    assert code == 2, (out, err)
    assert err.strip().splitlines() == [f"error: {refused.value}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]  # no sweep folder, no job log


def test_the_job_script_plans_the_walltime_logs_into_the_sweep_folder_and_binds_loopback(tmp_path):
    """What each job runs: trials hand over at walltime - margin, Dask retires the worker a quarter to three quarters
    of a margin before the walltime, logs go to <sweep>/jobs, every address is loopback's."""
    block = {"queue": "cpu", "account": "lab", "walltime": "1:00:00", "cores": 16, "memory": "32GB"}
    plan = slurm_plan({**block, **LOOPBACK})
    assert (plan.walltime, plan.margin, plan.jobs) == (3600, 360, 1)
    folder = tmp_path / "sweeps" / "mine"
    cluster = slurm_cluster(plan, {"cpus": 4}, folder)
    try:
        script, address = cluster.job_script(), cluster.scheduler_address
    finally:
        cluster.close()
    assert address.startswith("tcp://127.0.0.1:")
    assert f"#SBATCH -J {job_name(folder)}" in script and job_name(folder).startswith("lattice-mine-")
    assert f"#SBATCH -o {folder.resolve()}/jobs/" in script
    assert "#SBATCH -p cpu" in script and "#SBATCH -A lab" in script
    assert "--nworkers 4" in script and "--nthreads 4" in script and "--resources cpus=4" in script
    assert f"export {DEADLINE_ENV}=$(( $(date +%s) + 3240 ))" in script  # 3600 - 360
    assert "--lifetime 3420s --lifetime-stagger 90s" in script  # retires between 3330 s and 3510 s
    assert "--interface lo" in script and "--dashboard-address ${LATTICE_WORKER_IP}:0" in script
    assert "export DASK_DISTRIBUTED__WORKER__DAEMON=False" in script and "--gres" not in script

    gpu = slurm_plan({"queue": "gpu", "cores": 8, "memory": "32GB", **LOOPBACK})
    cluster = slurm_cluster(gpu, {"cpus": 4, "gpus": 1}, folder)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH --gres=gpu:1" in script and "--resources cpus=4,gpus=1" in script and "--nworkers" not in script
    assert DEADLINE_ENV not in script and "--lifetime" not in script  # no walltime given: the partition's limit


# -- the embedded cluster, stopped --------------------------------------------------------------------------------


@pytest.mark.slow
def test_ctrl_c_checkpoints_the_running_trials_and_says_how_to_continue(tmp_path):
    """Ctrl-C reaches the driver and its worker processes (one process group, as in a terminal): each running trial
    saves a checkpoint and error.txt, the sweep prints one line with the command to continue, and that command
    resumes both trials from their checkpoints to the end."""
    sweep = spec("stopped", 3000, [0, 1])
    process = start(tmp_path, sweep)
    trials = [tmp_path / "sweeps" / "stopped" / "trials" / f"ppo_lattice_elbow_seed{s}" for s in (0, 1)]
    wait_for(lambda: all(checkpoints(t) for t in trials), 240, "a checkpoint in both trials")
    os.killpg(process.pid, signal.SIGINT)
    code, out, err = finish(process, timeout=180)
    assert code == 130, (out, err)
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sweep stopped (interrupted (Ctrl-C)); 2 running trial(s) saved"), (
        err
    )
    assert "run the same command to continue:" in lines[0] and "--config" in lines[0]
    stopped_at = {}
    for trial in trials:
        error = (trial / "error.txt").read_text()
        assert error.startswith("stopped at ") and "interrupted (Ctrl-C); a checkpoint was saved at" in error
        stopped_at[trial.name] = checkpoints(trial)[-1]
    code, out, err = finish(start(tmp_path, sweep), timeout=300)
    assert code == 0, (out, err)
    for trial in trials:
        log = (tmp_path / "sweeps" / "stopped" / "output" / f"{trial.name}.log").read_text()
        assert f"from checkpoint at {stopped_at[trial.name]:,} steps" in log
        assert not (trial / "error.txt").exists() and evaluation_steps(trial) == uninterrupted_grid(3000)


# -- real sbatch jobs ---------------------------------------------------------------------------------------------


@pytest.mark.slurm
def test_a_sweep_through_sbatch_gives_the_embedded_clusters_results_and_folders(tmp_path):
    embedded = spec("embedded", 256, [0, 1])
    code, out, err = finish(start(tmp_path, embedded), timeout=300)
    assert code == 0, (out, err)
    jobs = spec("jobs", 256, [0, 1], slurm={"jobs": 2})
    code, out, err = finish(start(tmp_path, jobs, "--slurm"), timeout=300)
    assert code == 0, (out, err)
    assert "submitting 2 SLURM job(s)" in out
    results = {n: yaml.safe_load((tmp_path / "sweeps" / n / "results.yml").read_text()) for n in ("embedded", "jobs")}
    assert sorted(results["jobs"]) == sorted(results["embedded"])
    assert sorted(results["jobs"]) == ["ppo_lattice_elbow_seed0", "ppo_lattice_elbow_seed1"]
    for trial, result in results["jobs"].items():
        assert result["status"] == "finished" and result["worker"].startswith("SLURMCluster-")
        assert result["final_eval"] == results["embedded"][trial]["final_eval"]  # same seeds, same training
        files = {n: sorted(p.name for p in (tmp_path / "sweeps" / n / "trials" / trial).iterdir()) for n in results}
        assert files["jobs"] == files["embedded"]
    logs = sorted(p.name for p in (tmp_path / "sweeps" / "jobs" / "jobs").iterdir())
    assert logs and all(name.startswith(job_name(tmp_path / "sweeps" / "jobs")) for name in logs)
    assert not list(tmp_path.glob("slurm-*.out"))  # nothing in the folder the sweep was started from
    assert squeue(job_name(tmp_path / "sweeps" / "jobs")) == []  # every job ended with the sweep


@pytest.mark.slurm
def test_a_cancelled_job_is_replaced_and_its_trial_resumes_from_its_last_checkpoint(tmp_path):
    """scancel (what preemption or a dead node do) the job whose worker trains the trial: a new job is submitted,
    the trial resumes there from its newest checkpoint (at most one checkpoint interval lost) and finishes."""
    sweep = spec("lost", 5000, [0], slurm={})
    process = start(tmp_path, sweep, "--slurm")
    trial = tmp_path / "sweeps" / "lost" / "trials" / "ppo_lattice_elbow_seed0"
    name = job_name(tmp_path / "sweeps" / "lost")
    wait_for(lambda: len(checkpoints(trial)) >= 2, 240, "two checkpoints")
    (job,) = squeue(name)
    subprocess.run(["scancel", job], check=True)
    newest = checkpoints(trial)[-1]
    code, out, err = finish(process, timeout=400)
    assert code == 0, (out, err)
    assert f"job {job} ended" in out and out.count("submitting 1 SLURM job(s)") == 2
    log = (tmp_path / "sweeps" / "lost" / "output" / f"{trial.name}.log").read_text()
    resumed = int(log.split("from checkpoint at ")[1].split(" steps")[0].replace(",", ""))
    assert resumed >= newest  # the newest checkpoint when the job was lost, or a later one
    assert evaluation_steps(trial) == uninterrupted_grid(5000)
    assert yaml.safe_load((trial / "summary.yml").read_text())["timesteps"] == uninterrupted_grid(5000)[-1]
    assert len(list((tmp_path / "sweeps" / "lost" / "jobs").glob("*.out"))) == 2 and squeue(name) == []


def training_speed(tmp_path: Path) -> float:
    """Steps per second of this file's trial on this machine: a 3,000-step trial through the embedded cluster."""
    code, out, err = finish(start(tmp_path, spec("speed", 3000, [0])), timeout=300)
    assert code == 0, (out, err)
    summary = tmp_path / "sweeps" / "speed" / "trials" / "ppo_lattice_elbow_seed0" / "summary.yml"
    return float(yaml.safe_load(summary.read_text())["steps_per_second"])


@pytest.mark.slurm
def test_a_trial_of_three_walltimes_hands_over_between_jobs_and_ends_as_one_run(tmp_path):
    """Jobs of one minute; the trials hand over 25 s before it, so no job trains for more than 35 s. A trial of at
    least 2.5 jobs' work at this machine's speed checkpoints at each handover, goes on in the next job, and ends with
    the evaluation grid and step count of an uninterrupted run."""
    walltime, margin = 60, 25
    most_per_job = (walltime - margin) * training_speed(tmp_path)
    timesteps = math.ceil(2.5 * most_per_job / 1000) * 1000
    sweep = spec("walltime", timesteps, [0], slurm={"walltime": "1", "margin": margin})
    code, out, err = finish(start(tmp_path, sweep, "--slurm"), timeout=600)
    assert code == 0, (out, err)
    trial = tmp_path / "sweeps" / "walltime" / "trials" / "ppo_lattice_elbow_seed0"
    log = (tmp_path / "sweeps" / "walltime" / "output" / f"{trial.name}.log").read_text()
    handovers = log.count("resuming ")
    assert handovers >= 2, log  # three jobs at least
    assert len(list((tmp_path / "sweeps" / "walltime" / "jobs").glob("*.out"))) == handovers + 1
    assert evaluation_steps(trial) == uninterrupted_grid(timesteps)
    assert yaml.safe_load((trial / "summary.yml").read_text())["timesteps"] == uninterrupted_grid(timesteps)[-1]
    for job_log in (tmp_path / "sweeps" / "walltime" / "jobs").glob("*.err"):
        assert "DUE TO TIME LIMIT" not in job_log.read_text()  # every worker retired before SLURM's kill
    result = yaml.safe_load((tmp_path / "sweeps" / "walltime" / "results.yml").read_text())[trial.name]
    assert result["status"] == "finished"


@pytest.mark.slurm
def test_a_killed_driver_is_continued_and_the_jobs_it_left_are_cancelled(tmp_path):
    """SIGKILL the driver (a lost login session): its job goes on training; the same command cancels that job, waits
    for it to end (it holds the trial's run folder), resumes the trial and finishes."""
    sweep = spec("driver", 4000, [0], slurm={})
    name = job_name(tmp_path / "sweeps" / "driver")
    process = start(tmp_path, sweep, "--slurm")
    trial = tmp_path / "sweeps" / "driver" / "trials" / "ppo_lattice_elbow_seed0"
    wait_for(lambda: bool(checkpoints(trial)), 240, "a checkpoint")
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)
    (left,) = squeue(name)  # the job lives on without its driver
    code, out, err = finish(start(tmp_path, sweep, "--slurm"), timeout=400)
    assert code == 0, (out, err)
    assert f"cancelled 1 job(s) of an earlier driver of this folder: {left}" in out
    assert "from checkpoint at" in (tmp_path / "sweeps" / "driver" / "output" / f"{trial.name}.log").read_text()
    assert evaluation_steps(trial) == uninterrupted_grid(4000) and squeue(name) == []


@pytest.mark.slurm
def test_sigterm_on_the_driver_checkpoints_its_trials_and_cancels_its_jobs(tmp_path):
    sweep = spec("term", 20000, [0], slurm={})
    name = job_name(tmp_path / "sweeps" / "term")
    process = start(tmp_path, sweep, "--slurm")
    trial = tmp_path / "sweeps" / "term" / "trials" / "ppo_lattice_elbow_seed0"
    wait_for(lambda: bool(checkpoints(trial)), 240, "a checkpoint")
    process.send_signal(signal.SIGTERM)
    code, out, err = finish(process, timeout=200)
    assert code == 143, (out, err)
    assert "Traceback" not in out + err
    assert err.strip().splitlines()[-1].startswith("sweep stopped (terminated by SIGTERM); 1 running trial(s) saved")
    assert "terminated by SIGTERM; a checkpoint was saved at" in (trial / "error.txt").read_text()
    assert squeue(name) == []


@pytest.mark.slurm
def test_a_sweep_without_any_worker_gives_up_after_worker_wait(tmp_path):
    """Jobs that cannot start (here: held until tomorrow): the sweep says so after worker_wait, exits 3, cancels the
    jobs and keeps its folder for the same command."""
    sweep = spec("starved", 128, [0], slurm={"worker_wait": 10, "job_extra_directives": ["--begin=now+1day"]})
    code, out, err = finish(start(tmp_path, sweep, "--slurm"), timeout=180)
    assert code == 3, (out, err)
    name = job_name(tmp_path / "sweeps" / "starved")
    (line,) = err.strip().splitlines()
    assert line.startswith(f"error: the sweep stopped: no worker joined for 10 s (SLURM jobs {name}")
    assert "run the same command to continue" in line
    assert squeue(name) == [] and (tmp_path / "sweeps" / "starved" / "sweep.yml").is_file()


@pytest.mark.slurm
@pytest.mark.postgres
def test_lattice_tune_through_sbatch_jobs_on_postgresql(tmp_path, postgres_url):
    """A tiny tuning (2 noises x 2 trials) whose trials run in SLURM jobs and report into a real PostgreSQL: every
    trial ends complete or pruned, the outputs are written, the job logs are in the study folder, no job is left."""
    tuning = {
        "name": "tuned",
        "algo": "ppo",
        "env": "elbow",
        "noises": ["isotropic", "lattice"],
        "trials": 2,
        "settings": {**SETTINGS, "timesteps": 256, "eval_freq": 64, "save_freq": 64},
        "objective": {"last": 2},
        "search": {"learning_rate": {"low": 1.0e-5, "high": 1.0e-2, "log": True}},
        "retries": 1,
        "slurm": {"cores": 1, "memory": "2GB", "jobs": 2, **LOOPBACK},
    }
    path = tmp_path / "tuned.yaml"
    path.write_text(yaml.safe_dump(tuning))
    command = [sys.executable, str(ROOT / "experiments" / "tune.py"), "--config", str(path)]
    command += ["--log-dir", str(tmp_path / "tune"), "--slurm", "--storage", postgres_url]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (result.stdout, result.stderr)
    folder = tmp_path / "tune" / "tuned"
    table = pd.read_csv(folder / "trials.csv")
    assert len(table) == 4 and set(table["state"]) <= {"complete", "pruned"}, table
    assert sorted(p.name for p in (folder / "best").iterdir()) == [
        "ppo_isotropic_myoElbowPose1D6MRandom-v0.yml",
        "ppo_lattice_myoElbowPose1D6MRandom-v0.yml",
    ]
    assert "submitting" in result.stdout and list((folder / "jobs").glob("*.out"))
    assert squeue(job_name(folder)) == []

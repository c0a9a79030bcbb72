"""Tuning per noise (``lattice-tune``): real Optuna studies in SQLite, real Dask workers, real runs on the elbow;
killed and resumed; bad tuning files refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml

from lattice.experiments.config import ConfigError, load_yaml, resolve_config
from lattice.experiments.sweep import expand
from lattice.experiments.tune import distributions, load_tuning
from tests.test_cli import ROOT

TUNE = str(ROOT / "experiments" / "tune.py")
ENV = dict(os.environ)
TINY = {
    "name": "tiny_tune",
    "algo": "ppo",
    "env": "elbow",
    "noises": ["isotropic", "pink"],
    "trials": 3,
    "seed": 0,
    "settings": {
        "timesteps": 320,
        "n_envs": 1,
        "eval_freq": 64,
        "eval_episodes": 2,
        "save_freq": 64,
        "max_episode_steps": 20,
        "n_steps": 64,
        "batch_size": 32,
    },
    "objective": {"last": 2},
    "pruner": {"startup_trials": 1, "warmup_evaluations": 0},
    "search": {
        "learning_rate": {"low": 1.0e-5, "high": 1.0e-2, "log": True},
        "policy_kwargs.noise_exponent": {"low": 0.0, "high": 2.0, "noises": ["pink"]},
    },
    "retries": 0,
}


def tune_command(tmp_path: Path, spec: dict, *args: str) -> list[str]:
    path = tmp_path / f"{spec['name']}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return [sys.executable, TUNE, "--config", str(path), "--log-dir", str(tmp_path / "tune"), *args]


def studies(folder: Path) -> dict[str, list[optuna.trial.FrozenTrial]]:
    """Study name → its trials, read from the study folder's SQLite file."""
    storage = f"sqlite:///{folder / 'study.db'}"
    names = optuna.study.get_all_study_names(storage)
    return {name: optuna.load_study(study_name=name, storage=storage).trials for name in names}


def test_a_killed_tuning_resumes_without_repeating_trials_prunes_and_writes_the_best_configs(tmp_path):
    """One trial at a time: kill the tuning and its workers while a trial trains, after some finished; the same
    command completes each study to its 3 trials."""
    command = tune_command(tmp_path, TINY, "--max-concurrent", "1")
    folder = tmp_path / "tune" / "tiny_tune"
    proc = subprocess.Popen(
        command, cwd=tmp_path, env=ENV, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline, before = time.time() + 240, {}
    while time.time() < deadline:
        time.sleep(0.5)
        if not (folder / "study.db").exists():
            continue
        try:
            before = studies(folder)
        except Exception:  # the database is being created
            continue
        trials = [t for ts in before.values() for t in ts]
        finished = [t for t in trials if t.state.is_finished()]
        running = [t for t in trials if t.state.name == "RUNNING" and t.intermediate_values]
        if len(finished) >= 2 and running:
            break
    os.killpg(proc.pid, signal.SIGKILL)  # the tuning and its Dask workers
    proc.wait()
    before = studies(folder)
    done_before = {
        (name, t.number): (t.state, t.value) for name, ts in before.items() for t in ts if t.state.is_finished()
    }
    interrupted = [(name, t.number) for name, ts in before.items() for t in ts if t.state.name == "RUNNING"]
    assert len(done_before) >= 2 and interrupted, "nothing was running or finished at the kill: change the budget"

    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600, env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    after = studies(folder)
    assert sorted(after) == [
        "tiny_tune/ppo_isotropic_myoElbowPose1D6MRandom-v0",
        "tiny_tune/ppo_pink_myoElbowPose1D6MRandom-v0",
    ]
    for name, trials in after.items():
        assert len(trials) == 3, (name, [t.state for t in trials])  # the budget, not one trial more
        assert all(t.state.is_finished() for t in trials)
    for (name, number), (state, value) in done_before.items():  # finished trials were not run again
        assert (after[name][number].state, after[name][number].value) == (state, value)
    for name, number in interrupted:  # the interrupted trial continued from its run folder's checkpoint
        noise = name.split("/")[1].split("_")[1]
        run = folder / "trials" / noise / f"{number:03d}"
        assert len((run / "command.txt").read_text().splitlines()) == 2, "started, then resumed"
    states = {t.state.name for ts in after.values() for t in ts}
    assert "COMPLETE" in states and states <= {"COMPLETE", "PRUNED"}, states
    # Resumed draws are new points: a sampler seeded once would repeat its first draws after the restart.
    for name, trials in after.items():
        points = [tuple(sorted(t.params.items())) for t in trials]
        assert len(set(points)) == len(points), (name, points)

    table = pd.read_csv(folder / "trials.csv")
    assert len(table) == 6 and set(table["state"]) == {s.lower() for s in states}
    assert "policy_kwargs.noise_exponent" in table.columns
    assert table.loc[table["noise"] == "isotropic", "policy_kwargs.noise_exponent"].isna().all()
    for noise in ("isotropic", "pink"):
        complete = table[(table["noise"] == noise) & (table["state"] == "complete")]
        best = complete.loc[complete["objective"].idxmax()]
        config = resolve_config(config=folder / "best" / f"ppo_{noise}_myoElbowPose1D6MRandom-v0.yml")
        assert config["noise"] == noise
        assert config["hyperparams"]["learning_rate"] == pytest.approx(best["learning_rate"])
        if noise == "pink":
            exponent = config["hyperparams"]["policy_kwargs"]["noise_exponent"]
            assert exponent == pytest.approx(best["policy_kwargs.noise_exponent"])
    seeds = load_yaml(folder / "seeds.yaml")
    trials = expand(seeds, folder)  # the tuned configs over seeds the tuning did not use
    assert sorted({c["seed"] for c in trials.values()}) == [1, 2, 3, 4, 5]
    assert {c["noise"] for c in trials.values()} == {"isotropic", "pink"}
    for name in ("history.png", "importance.png", "best.md"):
        assert (folder / name).stat().st_size > 0, name

    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=ENV)
    assert again.returncode == 0 and "all 3 trials per noise are done" in again.stdout


def test_trials_below_the_median_are_pruned_after_the_warm_up(tmp_path):
    """The study already holds a trial that did far better than these tiny runs can: each new trial is below the
    median at its first evaluation after the warm-up (128 steps) and stops there."""
    spec = {**TINY, "name": "pruning", "noises": ["isotropic"], "trials": 3}
    spec["search"] = {"learning_rate": TINY["search"]["learning_rate"]}
    spec["pruner"] = {"startup_trials": 1, "warmup_evaluations": 1}
    folder = tmp_path / "tune" / "pruning"
    folder.mkdir(parents=True)
    name = "pruning/ppo_isotropic_myoElbowPose1D6MRandom-v0"
    study = optuna.create_study(study_name=name, storage=f"sqlite:///{folder / 'study.db'}", direction="maximize")
    space = {"learning_rate": optuna.distributions.FloatDistribution(1e-5, 1e-2, log=True)}
    excellent = {step: 1e6 for step in range(64, 321, 64)}
    study.add_trial(optuna.trial.create_trial(params={"learning_rate": 1e-3}, distributions=space, value=1e6,
                                              intermediate_values=excellent))  # fmt: skip

    result = subprocess.run(
        tune_command(tmp_path, spec, "--max-concurrent", "1"), capture_output=True, text=True, timeout=300, env=ENV
    )
    assert result.returncode == 0, result.stderr[-3000:]
    trials = studies(folder)[name]
    assert [t.state.name for t in trials] == ["COMPLETE", "PRUNED", "PRUNED"]
    for trial in trials[1:]:
        assert sorted(trial.intermediate_values) == [64, 128]  # not pruned during the warm-up
        run = folder / "trials" / "isotropic" / f"{trial.number:03d}"
        error = (run / "error.txt").read_text()
        assert "TrialPruned" in error and "pruned at 128 steps" in error
        assert not (run / "summary.yml").exists()
        assert f"pruned: {name} trial {trial.number} | pruned at 128 steps" in result.stdout
    table = pd.read_csv(folder / "trials.csv")
    assert table["state"].tolist() == ["complete", "pruned", "pruned"] and table["steps"].tolist() == [320, 128, 128]


BAD_FILES = [
    ({"noises": ["lattice", "brown"]}, "noises must be a list of: isotropic, gsde, lattice, lattice_iid, pink"),
    ({"search": {"learning_rate": {"low": 1e-3, "high": 1e-5}}}, "search.learning_rate needs numbers low < high"),
    ({"search": {"learning_rate": {"low": 0.0, "high": 1e-3, "log": True}}}, "a log range needs low > 0"),
    ({"search": {"learnin_rate": {"low": 1e-5, "high": 1e-3}}}, "did you mean 'learning_rate'"),
    ({"search": {"gamma": {"low": 0.9, "high": 1.5}}}, "gamma=1.5 is out of range"),
    (
        {"search": {"policy_kwargs.alpha": {"low": 0.1, "high": 1.0, "noises": ["lattice"]}}},
        "search.policy_kwargs.alpha.noises must be a list of the tuned noises",
    ),
    ({"search": {"noise_period": {"choices": []}}}, "search.noise_period.choices must be a non-empty list"),
    ({"trials": 0}, "trials must be an integer >= 1, got 0"),
    (
        {"search": {"learning_rate": {"low": 1e-5, "high": 1e-3, "log": True, "step": 1e-5}}},
        "search.learning_rate: give step or log, not both",
    ),
    ({"search": {"n_steps": {"low": 64, "high": 256, "step": -64}}}, "search.n_steps.step must be a positive number"),
    ({"objective": {"startup_trials": 3}}, "Unknown objective setting 'startup_trials'; valid: last"),
    ({"pruner": {"patience": 3}}, "Unknown pruner setting 'patience'"),
    ({"sampler": "tpe"}, "Unknown tuning key(s) ['sampler']"),
]


@pytest.mark.parametrize(("change", "message"), BAD_FILES, ids=[m[:30] for _, m in BAD_FILES])
def test_a_bad_tuning_file_is_refused_naming_the_setting(tmp_path, change, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**TINY, **change}))
    with pytest.raises(ConfigError) as e:
        load_tuning(path)
    assert message in str(e.value)


def test_lattice_tune_exits_2_on_a_bad_tuning_file_before_anything_is_written(tmp_path):
    change, message = BAD_FILES[4]  # found only by resolving a trial's config at the end of a range
    result = subprocess.run(
        tune_command(tmp_path, {**TINY, **change}), cwd=tmp_path, capture_output=True, text=True, timeout=120, env=ENV
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr and result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "tune").exists()


def test_the_packaged_tuning_file_gives_every_noise_the_shared_space_and_its_own_settings():
    tuning = load_tuning(ROOT / "configs" / "tune" / "elbow_ppo.yaml")
    spaces = {noise: set(distributions(tuning["search"], noise)) for noise in tuning["noises"]}
    shared = {"learning_rate", "policy_kwargs.log_std_init"}
    assert spaces["isotropic"] == shared
    assert spaces["gsde"] == shared | {"noise_period"}
    assert spaces["lattice"] == shared | {"noise_period", "policy_kwargs.alpha", "policy_kwargs.std_clip"}
    assert spaces["pink"] == shared | {"policy_kwargs.noise_exponent"}


def test_integer_ranges_sample_integers(tmp_path):
    path = tmp_path / "steps.yaml"
    path.write_text(yaml.safe_dump({**TINY, "search": {"n_steps": {"low": 64, "high": 256, "step": 64}}}))
    space = distributions(load_tuning(path)["search"], "pink")["n_steps"]
    assert isinstance(space, optuna.distributions.IntDistribution) and (space.low, space.high, space.step) == (
        64,
        256,
        64,
    )

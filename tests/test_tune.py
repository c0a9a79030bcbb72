"""Tuning per noise (``lattice-tune``): real Optuna studies in SQLite, real Dask workers, real runs on the elbow;
killed and resumed; bad tuning files refused."""

from __future__ import annotations

import itertools
import json
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
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.env_util import make_vec_env

from lattice.experiments.config import ConfigError, load_yaml, resolve_config
from lattice.experiments.studies import database_url
from lattice.experiments.sweep import expand
from lattice.experiments.tune import ReportToOptuna, TrialLost, run_tuning_trial
from lattice.experiments.tune_file import distributions, load_tuning, trial_config
from tests.helpers import ROOT, stop_when

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
    "fresh_seeds": {"count": 5, "settings": {"timesteps": 640}},  # the seeds.yaml runs: twice the trials' budget
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


@pytest.mark.slow
def test_a_killed_tuning_resumes_without_repeating_trials_prunes_and_writes_the_best_configs(tmp_path):
    """One trial at a time: kill the tuning and its workers while a trial trains, after some finished; the same
    command completes each study to its 3 trials."""
    command = tune_command(tmp_path, TINY, "--max-concurrent", "1")
    folder = tmp_path / "tune" / "tiny_tune"
    proc = subprocess.Popen(
        command, cwd=tmp_path, env=ENV, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )

    def some_finished_and_one_training() -> bool:
        """Read while the tuning and its workers are paused, so the kill finds the studies as read: a trial seen
        running cannot finish (or be pruned) between this look and the kill."""
        if not (folder / "study.db").exists():
            return False
        try:
            trials = [t for ts in studies(folder).values() for t in ts]
        except Exception:  # the database is being created, or a paused writer holds its lock
            return False
        finished = [t for t in trials if t.state.is_finished()]
        running = [t for t in trials if t.state.name == "RUNNING" and t.intermediate_values]
        return len(finished) >= 2 and bool(running)

    stop_when(proc, some_finished_and_one_training, group=True, every=0.5)
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
    assert {c["timesteps"] for c in trials.values()} == {640}  # fresh_seeds.settings over the tuning's
    assert {c["noise"] for c in trials.values()} == {"isotropic", "pink"}
    for name in ("history.png", "importance.png", "best.md"):
        assert (folder / name).stat().st_size > 0, name

    written = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.parent == folder}
    again = subprocess.run(
        [*command, "--out", str(tmp_path / "results")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=ENV,
    )
    assert again.returncode == 0 and "all 3 trials per noise are done" in again.stdout
    # The same studies give the same outputs, byte for byte, in the study folder and in --out (a results folder).
    outputs = ["trials.csv", "seeds.yaml", "history.png", "importance.png", "best.md"]
    for name in outputs:
        assert (folder / name).read_bytes() == written[Path(name)], name
        if name != "best.md":  # which names where the best configs are
            assert (tmp_path / "results" / name).read_bytes() == written[Path(name)], name
    assert sorted(p.name for p in (tmp_path / "results" / "best").iterdir()) == sorted(
        p.name for p in (folder / "best").iterdir()
    )


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
        assert sorted(trial.intermediate_values) == [0, 64, 128]  # not pruned during the warm-up
        run = folder / "trials" / "isotropic" / f"{trial.number:03d}"
        error = (run / "error.txt").read_text()
        assert "TrialPruned" in error and "pruned at 128 steps" in error
        assert not (run / "summary.yml").exists()
        assert f"pruned: {name} trial {trial.number} | pruned at 128 steps" in result.stdout
    table = pd.read_csv(folder / "trials.csv")
    assert table["state"].tolist() == ["complete", "pruned", "pruned"] and table["steps"].tolist() == [320, 128, 128]


PLOTS = """
import json, sys
from pathlib import Path
import matplotlib
backend = matplotlib.rcParams._get_backend_or_none()
import optuna
from lattice.experiments.plots import plot_history, plot_importance
from lattice.experiments.studies import importances, trials_table

# Two studies of real Optuna trials (6 complete, 1 pruned each), drawn as write_outputs draws a tuning's.
optuna.logging.set_verbosity(optuna.logging.WARNING)
space = {
    "learning_rate": optuna.distributions.FloatDistribution(1e-5, 1e-2, log=True),
    "policy_kwargs.alpha": optuna.distributions.FloatDistribution(0.1, 2.0),
}
studies = {}
for noise, offset in (("isotropic", 0.0), ("lattice", 1.0)):
    study = optuna.create_study(direction="maximize")
    for i in range(6):
        params = {"learning_rate": 1e-4 * (i + 1), "policy_kwargs.alpha": 0.1 + 0.3 * (i % 3)}
        value = offset + i + params["policy_kwargs.alpha"]
        study.add_trial(optuna.trial.create_trial(params=params, distributions=space, value=value,
                                                  intermediate_values={64: value}))
    study.add_trial(optuna.trial.create_trial(params=params, distributions=space,
                                              state=optuna.trial.TrialState.PRUNED, intermediate_values={64: -1.0}))
    studies[noise] = study
folder = Path(sys.argv[1])
table = trials_table(studies)
found = importances(studies)
plot_history(table, folder / "history.png")
plot_importance(found, folder / "importance.png")
plot_importance({}, folder / "no_importance.png")
print(json.dumps({
    "importances": {noise: sorted(values) for noise, values in found.items()},
    "states": table.groupby("noise")["state"].apply(list).to_dict(),
    "pyplot": "matplotlib.pyplot" in sys.modules,
    "backend": matplotlib.rcParams._get_backend_or_none() == backend,
}))
"""


def test_the_tuning_plots_draw_every_noise_without_pyplot_or_a_backend_switch(tmp_path):
    """history.png and importance.png from real studies, through matplotlib's object API: drawing them loads no
    pyplot and leaves the process's backend as it was (a fresh interpreter, so other tests' imports do not count)."""
    env = {k: v for k, v in ENV.items() if k != "MPLBACKEND"}
    result = subprocess.run(
        [sys.executable, "-c", PLOTS, str(tmp_path)], capture_output=True, text=True, timeout=300, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    state = json.loads(result.stdout.strip().splitlines()[-1])
    states = ["complete"] * 6 + ["pruned"]
    assert state == {
        "importances": {noise: ["learning_rate", "policy_kwargs.alpha"] for noise in ("isotropic", "lattice")},
        "states": {"isotropic": states, "lattice": states},
        "pyplot": False,
        "backend": True,
    }
    for name in ("history.png", "importance.png", "no_importance.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


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
    ({"heartbeat": {"interval": 5, "grace": 5}}, "heartbeat.grace must be longer than heartbeat.interval"),
    ({"heartbeat": {"interval": 0}}, "heartbeat.interval must be an integer >= 1, got 0"),
    ({"heartbeat": {"beat": 1}}, "Unknown heartbeat setting 'beat'; valid: interval, grace"),
    ({"fresh_seeds": {"count": 0}}, "fresh_seeds.count must be an integer >= 1, got 0"),
    ({"fresh_seeds": [1, 2]}, "fresh_seeds must be a mapping with count and settings"),
    ({"fresh_seeds": {"settings": {"timesteps": -5}}}, "timesteps"),
]


@pytest.mark.parametrize(("change", "message"), BAD_FILES, ids=[m[:30] for _, m in BAD_FILES])
@pytest.mark.fast
def test_a_bad_tuning_file_is_refused_naming_the_setting(tmp_path, change, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**TINY, **change}))
    with pytest.raises(ConfigError) as e:
        load_tuning(path)
    assert message in str(e.value)


@pytest.mark.fast
def test_lattice_tune_exits_2_on_a_bad_tuning_file_before_anything_is_written(tmp_path):
    change, message = BAD_FILES[4]  # found only by resolving a trial's config at the end of a range
    result = subprocess.run(
        tune_command(tmp_path, {**TINY, **change}), cwd=tmp_path, capture_output=True, text=True, timeout=120, env=ENV
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert message in result.stderr and result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "tune").exists()


@pytest.mark.fast
def test_a_namespaced_env_gives_best_config_files_and_a_seeds_sweep_that_runs_them(tmp_path):
    """The overactuated benchmark's id has a namespace (lattice/OveractuatedReach-v0): its studies keep it in their
    names, its best config files join it with '-' (not a folder under best/), and seeds.yaml expands to every
    noise's tuned config over 5 new seeds with fresh_seeds.settings."""
    from lattice.experiments.tune import open_studies, write_outputs

    tuning = load_tuning(ROOT / "configs" / "tune" / "overactuated16_ppo.yaml")
    url = f"sqlite:///{tmp_path / 'study.db'}"
    for noise, study in open_studies(tuning, url).items():
        assert study.study_name == f"overactuated16_ppo/ppo_{noise}_lattice/OveractuatedReach-v0"
        trial = study.ask(distributions(tuning["search"], noise))
        study.tell(trial, -40.0)
    write_outputs(tuning, tmp_path, url)
    names = {f"ppo_{noise}_lattice-OveractuatedReach-v0.yml" for noise in tuning["noises"]}
    assert {p.name for p in (tmp_path / "best").iterdir()} == names
    trials = expand(load_yaml(tmp_path / "seeds.yaml"), tmp_path)
    assert len(trials) == 4 * 5 and {c["timesteps"] for c in trials.values()} == {200_000}
    assert all(c["env_kwargs"] == {"n_actuators": 16} for c in trials.values())


def test_the_library_leaves_optunas_logging_as_its_caller_set_it(tmp_path):
    """Only lattice-tune quiets Optuna (in its own process): opening studies and writing outputs from the library
    keeps the caller's verbosity."""
    import optuna

    from lattice.experiments.tune import open_studies, write_outputs

    tuning = load_tuning(ROOT / "configs" / "tune" / "elbow_ppo.yaml")
    url = f"sqlite:///{tmp_path / 'study.db'}"
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.DEBUG)
    try:
        for study in open_studies(tuning, url).values():
            study.tell(study.ask(distributions(tuning["search"], "isotropic")), -1.0)
        write_outputs(tuning, tmp_path, url)
        assert optuna.logging.get_verbosity() == optuna.logging.DEBUG
    finally:
        optuna.logging.set_verbosity(before)


@pytest.mark.fast
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


# --- Lost trials (heartbeats) and a shared PostgreSQL database --------------------------------------------------------

HOLDER = """
import sys
from pathlib import Path
from lattice.experiments.tune import ask, open_studies, run_tuning_trial
from lattice.experiments.tune_file import load_tuning, trial_config

# A process outside the tuning's driver that holds a trial of its study, as a worker does: asks it, then trains it
# in the study folder's layout with heartbeats and reports (the package's code path), until it is killed.
tuning, url, folder = load_tuning(Path(sys.argv[1])), sys.argv[2], Path(sys.argv[3])
studies = open_studies(tuning, url)
noise, trial = ask(studies, 10**6, tuning)
print(trial.number, flush=True)
run = folder / "trials" / noise / f"{trial.number:03d}"
log = folder / "output" / f"{noise}_{trial.number:03d}.log"
config = trial_config(tuning, noise, trial.params)
run_tuning_trial(config, str(run), str(log), url, studies[noise].study_name, trial._trial_id, tuning)
"""

ASK_AND_TELL = """
import sys
import optuna
from lattice.experiments.studies import Heartbeat, open_storage

# One of several processes asking, reporting to and telling trials of one study at once.
url, process = sys.argv[1], int(sys.argv[2])
storage = open_storage(url, {"interval": 1, "grace": 30}, 0)
study = optuna.load_study(study_name="shared", storage=storage)
for _ in range(5):
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0.0, 1.0)})
    trial.set_user_attr("process", process)
    with Heartbeat(storage, 1, [trial._trial_id]):
        for step in range(4):
            trial.report(trial.params["x"] * step, step)
    study.tell(trial, trial.params["x"])
"""


def all_studies(url: str) -> dict[str, list[optuna.trial.FrozenTrial]]:
    """Study name → its trials, from a storage URL as lattice-tune takes it."""
    url = database_url(url)
    names = optuna.study.get_all_study_names(url)
    return {name: optuna.load_study(study_name=name, storage=url).trials for name in names}


def wait_for(condition, timeout: float, what: str, proc: subprocess.Popen | None = None):
    """Poll ``condition()`` (exceptions: not yet) until it returns something true; fail after ``timeout`` s."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the tuning ended (exit {proc.returncode}) before {what}")
        try:
            found = condition()
        except Exception:  # the database or a file is being created
            found = None
        if found:
            return found
        time.sleep(0.3)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def holder_pid(run: Path) -> int:
    """The process writing a run folder, from its writer lock file (``pid N on HOST since ...``)."""
    return int((run / "writer.lock").read_text().split()[1])


@pytest.mark.postgres
def test_lattice_tune_on_postgresql_two_workers_report_at_once_and_a_killed_worker_resumes(tmp_path, postgres_url):
    """The embedded cluster's 2 workers train and report into PostgreSQL at once; the worker process of one trial is
    SIGKILLed mid-trial: Dask runs the task again (a lost worker counts against `retries`; the driver beats for the
    trial meanwhile) and it resumes from its checkpoint. Every trial ends complete or pruned, the outputs are
    written."""
    spec = {**TINY, "name": "pg_tune", "retries": 1}
    command = tune_command(tmp_path, spec, "--max-concurrent", "2", "--storage", postgres_url)
    folder = tmp_path / "tune" / "pg_tune"
    with open(tmp_path / "out.txt", "w") as out:
        proc = subprocess.Popen(command, cwd=tmp_path, env=ENV, start_new_session=True, stdout=out, stderr=out)
    try:
        name = "pg_tune/ppo_isotropic_myoElbowPose1D6MRandom-v0"
        # The first trial of a study is never pruned: kill its worker after 3 reports, at steps 0, 64 and 128 (a
        # checkpoint at 64 steps).
        wait_for(lambda: len(all_studies(postgres_url)[name][0].intermediate_values) >= 3, 180, "3 reports", proc)
        run = folder / "trials" / "isotropic" / "000"
        pid = holder_pid(run)
        assert pid != proc.pid
        os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    output = (tmp_path / "out.txt").read_text()
    assert proc.returncode == 0, output[-3000:]
    after = all_studies(postgres_url)
    assert sorted(after) == [name, "pg_tune/ppo_pink_myoElbowPose1D6MRandom-v0"]
    trials = [t for ts in after.values() for t in ts]
    assert len(trials) == 6 and {t.state.name for t in trials} <= {"COMPLETE", "PRUNED"}, [t.state for t in trials]
    assert len((run / "command.txt").read_text().splitlines()) == 2, "started, then resumed after the kill"
    # Two workers wrote at once: trials whose runs overlap in time.
    spans = sorted((t.datetime_start, t.datetime_complete) for t in trials)
    assert any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans)), spans
    table = pd.read_csv(folder / "trials.csv")
    assert len(table) == 6 and set(table["state"]) <= {"complete", "pruned"}
    assert sorted(p.name for p in (folder / "best").iterdir()) == [
        "ppo_isotropic_myoElbowPose1D6MRandom-v0.yml",
        "ppo_pink_myoElbowPose1D6MRandom-v0.yml",
    ]
    assert str(postgres_url.rsplit(":", 1)[1]) not in (folder / "tuning.yml").read_text()  # the URL is not recorded


@pytest.mark.postgres
def test_four_processes_ask_report_and_tell_one_study_at_once_on_postgresql(tmp_path, postgres_url):
    url = database_url(postgres_url)
    optuna.create_study(study_name="shared", storage=url, direction="maximize")
    script = tmp_path / "ask_and_tell.py"
    script.write_text(ASK_AND_TELL)
    procs = [
        subprocess.Popen([sys.executable, str(script), postgres_url, str(i)], cwd=ROOT, env=ENV, stderr=subprocess.PIPE)
        for i in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()[-2000:]
    trials = optuna.load_study(study_name="shared", storage=url).trials
    assert sorted(t.number for t in trials) == list(range(20))
    assert all(t.state.name == "COMPLETE" and sorted(t.intermediate_values) == [0, 1, 2, 3] for t in trials)
    processes = [t.user_attrs["process"] for t in sorted(trials, key=lambda t: t.number)]
    assert sorted(processes) == sorted(list(range(4)) * 5)
    switches = sum(a != b for a, b in itertools.pairwise(processes))
    assert switches > 3, processes  # more than one run of trials per process: they wrote at once


@pytest.mark.postgres
def test_a_trial_whose_holder_is_killed_is_failed_after_the_grace_period_and_retried_by_the_running_tuning(
    tmp_path, postgres_url
):
    """While lattice-tune runs, another process holds a trial of its study (asks it, trains it with heartbeats, as a
    worker elsewhere would) and is SIGKILLed: after the grace period the driver fails it and retries it as a new
    trial with the same settings, which resumes the lost trial's run from its checkpoint; nothing stays running."""
    spec = {**TINY, "name": "pg_lost", "noises": ["isotropic"], "trials": 5, "retries": 1}
    # 15 reports per trial: on a loaded machine the holder must still be training when it is killed after 2
    spec["settings"] = {**TINY["settings"], "timesteps": 960}
    spec["search"] = {"learning_rate": TINY["search"]["learning_rate"]}
    spec["heartbeat"] = {"interval": 1, "grace": 4}
    command = tune_command(tmp_path, spec, "--max-concurrent", "1", "--storage", postgres_url)
    folder = tmp_path / "tune" / "pg_lost"
    name = "pg_lost/ppo_isotropic_myoElbowPose1D6MRandom-v0"
    (tmp_path / "holder.py").write_text(HOLDER)
    holder_command = [sys.executable, str(tmp_path / "holder.py"), str(tmp_path / "pg_lost.yaml"), postgres_url]
    holder_command.append(str(folder))
    with open(tmp_path / "out.txt", "w") as out:
        proc = subprocess.Popen(command, cwd=tmp_path, env=ENV, start_new_session=True, stdout=out, stderr=out)
    holder = None
    try:
        # The driver runs its first trial (it took over the trials running when it started): the holder starts.
        wait_for(lambda: any(t.state.name == "RUNNING" for t in all_studies(postgres_url)[name]), 120, "a trial", proc)
        holder = subprocess.Popen(
            holder_command, cwd=ROOT, env=ENV, start_new_session=True, stdout=subprocess.PIPE, text=True
        )
        assert holder.stdout is not None
        lost = int(holder.stdout.readline())
        wait_for(lambda: len(all_studies(postgres_url)[name][lost].intermediate_values) >= 3, 120, "3 reports", proc)
        os.killpg(holder.pid, signal.SIGKILL)
        killed = time.time()
        holder.wait()
        proc.wait(timeout=300)
    finally:
        for p in (proc, holder):
            if p is not None and p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
    output = (tmp_path / "out.txt").read_text()
    assert proc.returncode == 0, output[-3000:]  # a lost trial that was retried is not a failure
    trials = all_studies(postgres_url)[name]
    lost_trial = trials[lost]
    assert lost_trial.state.name == "FAIL"
    after_kill = lost_trial.datetime_complete.timestamp() - killed
    print(f"failed {after_kill:.1f} s after the kill (grace 4 s, interval 1 s)")
    assert 2 <= after_kill <= 4 + 1 + 3, after_kill  # the last beat came up to 1 s before the kill
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == lost]
    assert len(retries) == 1
    retry = retries[0]
    assert f"lost: {name} trial {lost} | no heartbeat for 4 s: retried as trial {retry.number}" in output
    assert retry.params == lost_trial.params and retry.state.name in ("COMPLETE", "PRUNED")
    assert retry.intermediate_values.items() >= lost_trial.intermediate_values.items()  # inherited, then its own
    assert max(retry.intermediate_values) > max(lost_trial.intermediate_values)
    run = folder / "trials" / "isotropic" / f"{lost:03d}"
    assert len((run / "command.txt").read_text().splitlines()) == 2, "started by the holder, resumed by the retry"
    assert not (folder / "trials" / "isotropic" / f"{retry.number:03d}").exists()
    assert {t.state.name for t in trials if t.number != lost} <= {"COMPLETE", "PRUNED"}
    table = pd.read_csv(folder / "trials.csv").set_index("trial")
    assert table.loc[lost, "state"] == "lost" and table.loc[retry.number, "run"] == str(run.relative_to(folder))


@pytest.mark.slow
def test_a_killed_tuning_restarted_after_the_grace_period_retries_its_lost_trial_in_its_run_folder(tmp_path):
    """SQLite (the default storage) has the heartbeats too: a tuning killed mid-trial and started again after the
    grace period fails the trial that was running and retries it as a new trial that resumes its run; the lost
    trial does not count against the number of trials."""
    spec = {**TINY, "name": "lost_restart", "noises": ["isotropic"], "trials": 2, "retries": 1}
    spec["search"] = {"learning_rate": TINY["search"]["learning_rate"]}
    spec["heartbeat"] = {"interval": 1, "grace": 3}
    command = tune_command(tmp_path, spec, "--max-concurrent", "1")
    folder = tmp_path / "tune" / "lost_restart"
    name = "lost_restart/ppo_isotropic_myoElbowPose1D6MRandom-v0"
    with open(tmp_path / "out.txt", "w") as out:
        proc = subprocess.Popen(command, cwd=tmp_path, env=ENV, start_new_session=True, stdout=out, stderr=out)
    try:
        # The test reads the study only once the tuning has created it: two processes creating one SQLite schema at
        # once fail ("table ... already exists").
        wait_for(lambda: "tuning lost_restart:" in (tmp_path / "out.txt").read_text(), 180, "the studies", proc)
        wait_for(lambda: len(studies(folder)[name][0].intermediate_values) >= 3, 180, "3 reports", proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the tuning and its Dask workers
        proc.wait()
    killed = time.time()
    assert studies(folder)[name][0].state.name == "RUNNING"
    time.sleep(3 + 1)
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    trials = studies(folder)[name]
    assert [t.state.name for t in trials][:2] == ["FAIL", "COMPLETE"] and len(trials) == 3, trials
    retry = trials[1]
    assert retry.system_attrs["failed_trial"] == 0 and retry.params == trials[0].params
    assert f"lost: {name} trial 0 | no heartbeat for 3 s: retried as trial 1" in result.stdout
    assert trials[0].datetime_complete.timestamp() - killed >= 3
    assert retry.intermediate_values.items() >= trials[0].intermediate_values.items()
    assert sorted(retry.intermediate_values) == [0, 64, 128, 192, 256, 320]
    assert len((folder / "trials" / "isotropic" / "000" / "command.txt").read_text().splitlines()) == 2
    assert not (folder / "trials" / "isotropic" / "001").exists()
    assert trials[2].state.name in ("COMPLETE", "PRUNED") and "failed_trial" not in trials[2].system_attrs
    table = pd.read_csv(folder / "trials.csv")
    assert table["state"].tolist()[:2] == ["lost", "complete"]
    assert table["run"].tolist()[:2] == [str(Path("trials") / "isotropic" / "000")] * 2


@pytest.mark.fast
def test_an_unreachable_database_exits_2_with_one_line_and_no_password(tmp_path):
    url = "postgresql://lattice:s3cret@127.0.0.1:1/lattice"  # nothing listens on port 1
    result = subprocess.run(
        tune_command(tmp_path, TINY, "--storage", url), cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.startswith("error: Cannot open the studies' database postgresql+psycopg2://lattice:***@")
    assert len(result.stderr.splitlines()) == 1 and "s3cret" not in result.stderr


def test_a_worker_neither_trains_nor_reports_a_trial_failed_as_lost_meanwhile(tmp_path):
    """Dask may run the task of a trial again after it was failed as lost (its retry trains instead): the worker does
    not train it. A worker whose trial is failed while it trains stops at its next report."""
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    tuning = load_tuning(path)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="lost", storage=url, direction="maximize")
    trial = study.ask({"learning_rate": optuna.distributions.FloatDistribution(1e-5, 1e-2, log=True)})
    study.tell(trial, state=optuna.trial.TrialState.FAIL)  # as fail_stale_trials does
    config = trial_config(tuning, "isotropic", trial.params)
    run = tmp_path / "run"
    result = run_tuning_trial(config, str(run), str(tmp_path / "log"), url, "lost", trial._trial_id, tuning)
    assert result == {"state": "lost", "error": "the trial is FAIL in the study: not run"}
    assert not run.exists()

    report = ReportToOptuna(trial, total_steps=320)
    evaluation = EvalCallback(make_vec_env("CartPole-v1"), callback_after_eval=report)
    evaluation.num_timesteps, evaluation.last_mean_reward = 64, 1.0
    with pytest.raises(TrialLost, match="trial 0 was failed at 64 steps by another process"):
        report._on_step()

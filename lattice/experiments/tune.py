"""Hyperparameter search per exploration noise: an Optuna study per (algorithm, noise, task), the same search space
and the same number of trials for every noise, on the sweeps' Dask engine.

A tuning file (``configs/tune/*.yaml``)::

    name: elbow_ppo                   # the study folder: <log_dir>/<name>/
    algo: ppo
    env: elbow
    noises: [isotropic, gsde, lattice, pink]
    trials: 20                        # per noise
    seed: 0                           # the training seed of every trial, and the sampler's
    settings: {timesteps: 20000, eval_freq: 2000, eval_episodes: 5}   # for every trial (as in sweeps)
    objective: {last: 3}              # mean evaluation return over the last 3 evaluations
    pruner: {startup_trials: 5, warmup_evaluations: 2}   # Optuna's median pruner
    storage: null                     # null: SQLite in the study folder; or an RDB URL (a cluster's workers)
    heartbeat: {interval: 10, grace: 60}   # seconds: a trial is lost when no one beats for it for `grace`
    search:                           # key (as in --hyperparams) → a range or choices; `noises:` limits an entry
      learning_rate: {low: 1.0e-5, high: 1.0e-3, log: true}
      policy_kwargs.log_std_init: {low: -2.0, high: 0.5}
      noise_period: {choices: [1, 4, 16], noises: [gsde, lattice]}
      policy_kwargs.alpha: {low: 0.1, high: 2.0, noises: [lattice]}
      policy_kwargs.noise_exponent: {low: 0.0, high: 2.0, noises: [pink]}
    resources: {cpus: 1}              # as in sweeps, and so are retries: and slurm:

Every trial is a training run (``lattice.experiments.training``) in ``<study>/trials/<noise>/<number>/``; after each
evaluation it reports the mean return to its study, and the median pruner stops it (``error.txt`` says so) when its
best report so far is below the median of the complete trials' reports at that step. The objective is the mean
return of the last ``objective.last`` evaluations. A killed tuning resumes with the same command: finished trials
stay, trials that were running continue from their run folders' checkpoints, and the studies go on to their number
of trials.

The studies are in ``storage``: by default SQLite in the study folder (one machine); for workers on other machines,
a database server's URL (``--storage postgresql://user:password@host/db``; a bare ``postgresql://`` means the
psycopg2 driver of the ``sweeps`` extra). One ``lattice-tune`` drives a study folder (its lock); its Dask workers
write the intermediate values of their trials into the studies at once.

Heartbeats (Optuna's, in every storage): whoever holds a trial records a heartbeat for it every ``heartbeat.interval``
seconds (default 10) from a thread: the driver for every trial it has asked and not told yet (queued for a worker or
running), and the worker process while it trains the trial. A trial with no heartbeat for ``heartbeat.grace``
seconds (default 60: six missed beats, which a database restart or a busy SQLite file survives) was lost with its
holder, e.g. the job that ran the driver and its workers. Every driver of the study fails such trials when it
starts and then every ``interval`` seconds (Optuna's ``fail_stale_trials``), and Optuna's
``RetryHeartbeatStaleTrialCallback`` (``max_retry``: the tuning's ``retries``, intermediate values inherited) queues
a copy with the same settings as a new trial (its ``failed_trial`` system attribute names the lost one). The driver
runs queued copies before it draws new points; a copy trains in the run folder of the trial it replaces, so it
resumes from that run's last checkpoint, and the lost trial does not count against the number of trials. While the
driver lives, a worker that dies is Dask's to handle: the trial's task is rescheduled and resumes from its
checkpoint (the driver keeps beating for it). A restarted driver continues the trials that are still running and
not yet stale (those of the tuning that was killed: the folder's lock says nobody else drives the study), fails and
retries the stale ones, and before it ends waits up to ``grace + interval`` seconds for trials that run elsewhere,
so that a lost one is retried rather than left running. A worker whose trial was failed meanwhile (its heartbeat
stopped for longer than the grace, e.g. the machine was suspended) stops it at its next report.

Written into the study folder: ``study.db`` (the studies), ``trials.csv``, ``best.md``,
``best/<algo>_<noise>_<env>.yml`` (the best settings per noise, as a config ``lattice-train --config`` takes),
``seeds.yaml`` (a sweep of the tuned configs over 5 seeds other than the tuning seed), ``history.png`` and
``importance.png``.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback

from lattice.experiments import rundir
from lattice.experiments.cluster import connect, slurm_plan
from lattice.experiments.config import ConfigError, dump_config, load_yaml, resolve_config
from lattice.experiments.sweep import (
    _as_text,
    folder_name,
    run_trial,
    stop_running_trials,
    sweep_retries,
    trial_resources,
)
from lattice.noise import NOISES

TUNE_KEYS = (
    "name",
    "algo",
    "env",
    "noises",
    "trials",
    "seed",
    "settings",
    "objective",
    "pruner",
    "storage",
    "heartbeat",
    "search",
    "resources",
    "retries",
    "slurm",
)
SPACE_KEYS = ("low", "high", "log", "step", "choices", "noises")
SEEDS_AFTER_TUNING = 5  # seeds of the generated sweep of the tuned configs
HEARTBEAT = {"interval": 10, "grace": 60}  # seconds (see the module's docstring)


def load_tuning(path: Path) -> dict[str, Any]:
    """The tuning file, checked: its keys, its noises, its search space, and every trial's config at both ends of
    every range and at every choice (so that a bad key or value fails before anything runs)."""
    tuning = load_yaml(path)
    tuning["name"] = folder_name(tuning.get("name"), path)  # one folder under the log dir
    tuning["retries"] = sweep_retries(tuning)  # an integer >= 0, as in sweeps
    unknown = set(tuning) - set(TUNE_KEYS)
    if unknown:
        raise ConfigError(f"Unknown tuning key(s) {sorted(unknown)} in {path}; valid: {', '.join(TUNE_KEYS)}")
    for key in ("algo", "env", "noises", "search"):
        if not tuning.get(key):
            raise ConfigError(f"The tuning file {path} needs {key!r}")
    noises = tuning["noises"]
    if not isinstance(noises, list) or not all(n in NOISES for n in noises):
        raise ConfigError(f"noises must be a list of: {', '.join(NOISES)}; got {noises!r}")
    for key, minimum in (("trials", 1), ("seed", 0)):
        value = tuning.setdefault(key, 20 if key == "trials" else 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ConfigError(f"{key} must be an integer >= {minimum}, got {value!r}")
    defaults = {
        "objective": {"last": 3},
        "pruner": {"startup_trials": 5, "warmup_evaluations": 2},
        "heartbeat": HEARTBEAT,
    }
    for name, block_defaults in defaults.items():
        given = tuning.get(name) or {}
        if not isinstance(given, dict):
            raise ConfigError(f"{name} must be a mapping ({', '.join(block_defaults)}), got {given!r}")
        for key, value in given.items():
            if key not in block_defaults:
                raise ConfigError(f"Unknown {name} setting {key!r}; valid: {', '.join(block_defaults)}")
            minimum = 0 if name == "pruner" else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ConfigError(f"{name}.{key} must be an integer >= {minimum}, got {value!r}")
        tuning[name] = {**block_defaults, **given}
    if tuning["heartbeat"]["grace"] <= tuning["heartbeat"]["interval"]:
        beats = tuning["heartbeat"]
        raise ConfigError(
            f"heartbeat.grace must be longer than heartbeat.interval (a trial is lost after missed beats), got "
            f"interval={beats['interval']!r}, grace={beats['grace']!r}"
        )
    trial_resources(tuning)
    if not isinstance(tuning["search"], dict):
        raise ConfigError(f"search must be a mapping of setting -> range or choices, got {tuning['search']!r}")
    tuning["search"] = {key: _check_space(key, entry, noises) for key, entry in tuning["search"].items()}
    for noise in noises:
        try:
            distributions(tuning["search"], noise)
        except ValueError as e:  # Optuna's own checks of a range (e.g. log with step)
            raise ConfigError(f"search: {e}") from None
        for point in _corners(tuning["search"], noise):
            trial_config(tuning, noise, point)  # raises ConfigError naming the bad setting
    return tuning


def _check_space(key: str, entry: Any, noises: list[str]) -> dict[str, Any]:
    """One search-space entry: ``{low, high[, log, step]}`` or ``{choices}``, and optionally ``noises``."""
    where = f"search.{key}"
    if not isinstance(entry, dict) or set(entry) - set(SPACE_KEYS):
        raise ConfigError(
            f"{where} must be a mapping with low and high (and log, step) or choices, and optionally noises; "
            f"got {entry!r}"
        )
    only = entry.get("noises", noises)
    if not isinstance(only, list) or not set(only) <= set(noises):
        raise ConfigError(f"{where}.noises must be a list of the tuned noises ({', '.join(noises)}), got {only!r}")
    if "choices" in entry:
        if set(entry) & {"low", "high", "log", "step"}:
            raise ConfigError(f"{where}: give either choices or low/high, not both")
        if not isinstance(entry["choices"], list) or not entry["choices"]:
            raise ConfigError(f"{where}.choices must be a non-empty list, got {entry['choices']!r}")
        return {"choices": entry["choices"], "noises": only}
    low, high = entry.get("low"), entry.get("high")
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (low, high))
    if not numbers or not low < high:  # type: ignore[operator]
        raise ConfigError(f"{where} needs numbers low < high, got low={low!r}, high={high!r}")
    log = entry.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}.log must be true or false, got {log!r}")
    if log and low <= 0:  # type: ignore[operator]
        raise ConfigError(f"{where}: a log range needs low > 0, got {low!r}")
    step = entry.get("step")
    if step is not None and (not isinstance(step, (int, float)) or isinstance(step, bool) or not 0 < step < math.inf):
        raise ConfigError(f"{where}.step must be a positive number, got {step!r}")
    if step is not None and log:
        raise ConfigError(f"{where}: give step or log, not both (Optuna samples a log range continuously)")
    return {"low": low, "high": high, "log": log, "step": step, "noises": only}


def _corners(search: dict[str, dict[str, Any]], noise: str) -> list[dict[str, Any]]:
    """Points that together take every entry's lowest and highest value and every choice."""
    entries = {k: v for k, v in search.items() if noise in v["noises"]}
    width = max([len(v["choices"]) for v in entries.values() if "choices" in v] + [2])
    points = []
    for i in range(width):
        point = {}
        for key, entry in entries.items():
            values = entry["choices"] if "choices" in entry else [entry["low"], entry["high"]]
            point[key] = values[i % len(values)]
        points.append(point)
    return points


def distributions(search: dict[str, dict[str, Any]], noise: str) -> dict[str, Any]:
    """The Optuna distributions of the entries that apply to ``noise`` (choices are stored as their YAML text)."""
    import optuna

    out: dict[str, Any] = {}
    for key, entry in search.items():
        if noise not in entry["noises"]:
            continue
        if "choices" in entry:
            out[key] = optuna.distributions.CategoricalDistribution([_as_text(c) for c in entry["choices"]])
        elif all(isinstance(entry[k], int) for k in ("low", "high", "step") if entry[k] is not None):
            out[key] = optuna.distributions.IntDistribution(
                entry["low"], entry["high"], log=entry["log"], step=entry["step"] or 1
            )
        else:
            out[key] = optuna.distributions.FloatDistribution(
                float(entry["low"]), float(entry["high"]), log=entry["log"], step=entry["step"]
            )
    return out


def trial_config(tuning: dict[str, Any], noise: str, params: dict[str, Any]) -> dict[str, Any]:
    """The resolved config of a trial: the tuning's settings, then the trial's sampled values."""
    settings = [f"{k}={_as_text(v)}" for k, v in (tuning.get("settings") or {}).items()]
    sampled = [f"{k}={v if isinstance(v, str) else _as_text(v)}" for k, v in params.items()]
    return resolve_config(
        tuning["algo"], noise, tuning["env"], overrides={"seed": tuning["seed"]}, hyperparams=settings + sampled
    )


def config_name(config: dict[str, Any]) -> str:
    """``<algo>_<noise>_<env>``: a trial config's name (its best config file's)."""
    return f"{config['algo']}_{config['noise']}_{config['env']}"


def study_name(tuning: dict[str, Any], config: dict[str, Any]) -> str:
    """The study of a noise: named by the tuning too, so that tunings can share one database."""
    return f"{tuning['name']}/{config_name(config)}"


class TrialLost(Exception):
    """The trial being trained was failed meanwhile as lost (no heartbeat for the grace period), and is retried."""


class ReportToOptuna(BaseCallback):
    """After each evaluation (SB3's ``callback_after_eval``): report the mean return to the trial, and raise
    ``optuna.TrialPruned`` when the pruner says so (before the last step: a finished run is not pruned)."""

    def __init__(self, trial: Any, total_steps: int):
        super().__init__()
        self.trial = trial
        self.total_steps = total_steps

    def _on_step(self) -> bool:
        import optuna

        evaluation = self.parent
        assert isinstance(evaluation, EvalCallback)
        step, value = evaluation.num_timesteps, float(evaluation.last_mean_reward)
        try:
            self.trial.report(value, step)
        except optuna.exceptions.UpdateFinishedTrialError:
            raise TrialLost(
                f"trial {self.trial.number} was failed at {step:,} steps by another process (its heartbeat had "
                "stopped for the grace period) and is retried as a new trial"
            ) from None
        if step < self.total_steps and self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at {step:,} steps: return {value:.2f}")
        return True


def objective(run_dir: Path, last: int) -> float:
    """Mean evaluation return over the last ``last`` evaluations of a run."""
    data = rundir.RunDir(run_dir).evaluations()
    return float(np.mean(np.asarray(data["results"])[-last:]))


def run_tuning_trial(
    config: dict[str, Any],
    run_dir: str,
    log_file: str,
    storage: str,
    name: str,
    trial_id: int,
    tuning: dict[str, Any],
) -> dict[str, Any]:
    """One trial in a Dask worker: train (or resume, or skip a finished run) with reports to the study, recording
    the trial's heartbeat while it trains.

    :return: ``{"state": "complete", "value": ...}``, ``{"state": "pruned", "error": ...}``, or ``{"state": "lost",
        "error": ...}`` when the trial was failed as lost before or while it ran here (its retry runs instead).
    """
    import optuna

    pruner = median_pruner(tuning["pruner"], config["eval_freq"])
    rdb = _storage(storage)
    state = rdb.get_trial(trial_id).state
    if state != optuna.trial.TrialState.RUNNING:  # e.g. Dask reran the task of a trial failed as lost meanwhile
        return {"state": "lost", "error": f"the trial is {state.name} in the study: not run"}
    study = optuna.load_study(study_name=name, storage=rdb, pruner=pruner)
    report = ReportToOptuna(optuna.trial.Trial(study, trial_id), config["timesteps"])
    with Heartbeat(rdb, tuning["heartbeat"]["interval"], [trial_id]):
        try:
            run_trial(config, run_dir, log_file, after_eval=report)
        except optuna.TrialPruned as e:
            return {"state": "pruned", "error": str(e)}
        except TrialLost as e:
            return {"state": "lost", "error": str(e)}
    return {"state": "complete", "value": objective(Path(run_dir), tuning["objective"]["last"])}


def database_url(url: str) -> str:
    """``url`` with PostgreSQL's driver named: a bare ``postgresql://`` (or ``postgres://``) URL means psycopg2, the
    driver that the ``sweeps`` extra installs (SQLAlchemy 2.1 would pick psycopg 3)."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql+psycopg2://{rest}" if sep and scheme in ("postgresql", "postgres") else url


def _shown(url: str) -> str:
    """``url`` without its password, for messages."""
    import sqlalchemy

    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can read: say so without echoing it
        return "the storage URL"


def _storage(url: str, heartbeat: dict[str, int] | None = None, retries: int = 0) -> Any:
    """An RDB storage. SQLite waits up to a minute for a lock held by another process (workers report at once); a
    server's pooled connections are tested before use (the server may have restarted), and PostgreSQL gives up
    connecting after 20 s. With ``heartbeat`` (the
    driver's studies): Optuna's heartbeat interval and grace period, and the retry of a lost trial, up to
    ``retries`` times, as a new trial that inherits the lost one's intermediate values.

    :raises ConfigError: no driver for the URL is installed, or the database cannot be opened.
    """
    import warnings

    import optuna
    import sqlalchemy

    url = database_url(url)
    kwargs: dict[str, Any] = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    if url.startswith("postgresql+psycopg2"):
        kwargs["connect_args"] = {"connect_timeout": 20}  # a server that does not answer: an error, not a hang
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # the heartbeat's API is experimental
        beats: dict[str, Any] = {}
        if heartbeat is not None:
            beats = {"heartbeat_interval": heartbeat["interval"], "grace_period": heartbeat["grace"]}
            retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
            if retry is None:  # Optuna < 4.9: the same callback under its former names
                retry, key = optuna.storages.RetryFailedTrialCallback, "failed_trial_callback"
            else:
                key = "heartbeat_stale_trial_callback"
            beats[key] = retry(max_retry=retries, inherit_intermediate_values=True)
        try:
            return _open_storage(url, kwargs, beats)
        except ImportError as e:  # e.g. postgresql+psycopg2:// without psycopg2
            raise ConfigError(
                f"No database driver for {_shown(url)} ({e.__cause__ or e}): pip install 'sb3-lattice[sweeps]' "
                "(it installs psycopg2, PostgreSQL's)"
            ) from None
        except sqlalchemy.exc.SQLAlchemyError as e:  # the server does not answer, refuses the login, ...
            why = (str(getattr(e, "orig", None) or e).strip().splitlines() or [type(e).__name__])[0]
            raise ConfigError(f"Cannot open the studies' database {_shown(url)}: {why}") from None


def _open_storage(url: str, engine_kwargs: dict[str, Any], beats: dict[str, Any], tries: int = 3) -> Any:
    """``RDBStorage``, tried again after a second when it fails: processes that open a new database at once (the
    driver, its workers, a second tuning on the same server) race to create its tables, and the loser's error
    ("table ... already exists") is gone on a second try."""
    import optuna
    import sqlalchemy

    for _ in range(tries - 1):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **beats)
        except sqlalchemy.exc.SQLAlchemyError:
            time.sleep(1.0)
    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **beats)  # its error is the caller's to say


def run_number(trial: Any) -> int:
    """The number of the trial whose run folder a (frozen) trial trains in: a retry's lost trial, else its own."""
    return int(trial.system_attrs.get("failed_trial", trial.number))


def _retried(trials: list[Any]) -> set[int]:
    """The numbers of the lost trials that a retry replaced (each retry names the trial it replaces last)."""
    return {t.system_attrs["retry_history"][-1] for t in trials if t.system_attrs.get("retry_history")}


def _counted(trials: list[Any]) -> int:
    """The trials that count against a study's budget: all but the lost ones that a retry replaced."""
    return len(trials) - len(_retried(trials))


def _to_run(study: Any, budget: int) -> int:
    """Trials of a study still to run: new ones up to its budget, and the queued retries of lost ones."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    queued = sum(t.state == optuna.trial.TrialState.WAITING for t in trials)
    return max(0, budget - _counted(trials)) + queued


def fail_stale(studies: dict[str, Any], grace: int) -> None:
    """Fail the trials that no one has recorded a heartbeat for in ``grace`` seconds (Optuna's ``fail_stale_trials``,
    which also runs the studies' retry callback), saying which and their retries."""
    import warnings

    import optuna

    running = optuna.trial.TrialState.RUNNING
    for study in studies.values():
        before = {t._trial_id for t in study.get_trials(deepcopy=False, states=(running,))}
        if not before:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        trials = study.get_trials(deepcopy=False)
        for t in trials:
            if t._trial_id in before and t.state == optuna.trial.TrialState.FAIL:
                retries = [r.number for r in trials if r.system_attrs.get("retry_history", [None])[-1] == t.number]
                then = f"retried as trial {retries[0]}" if retries else "not retried (its retries are used up)"
                print(f"lost: {study.study_name} trial {t.number} | no heartbeat for {grace} s: {then}", flush=True)


class Heartbeat:
    """Optuna heartbeats (``record_heartbeat``) of the trials this process holds, from a thread: at ``start``, then
    every ``interval`` seconds until ``close``. A beat that fails (the database unreachable for a moment) is tried
    again at the next one: the thread goes on (Optuna's own heartbeat thread ends at the first error)."""

    def __init__(self, storage: Any, interval: float, trial_ids: Iterable[int] = ()):
        self.storage, self.interval = storage, interval
        self._held = set(trial_ids)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned = False

    def __enter__(self) -> Heartbeat:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def held(self) -> set[int]:
        with self._lock:
            return set(self._held)

    def hold(self, trial_id: int) -> None:
        """Beat for ``trial_id`` from now on (and now: a trial gets its first heartbeat when it is held)."""
        with self._lock:
            self._held.add(trial_id)
        self._beat([trial_id])

    def release(self, trial_id: int) -> None:
        with self._lock:
            self._held.discard(trial_id)

    def start(self) -> None:
        self._beat(self.held())
        self._thread = threading.Thread(target=self._run, name="lattice-heartbeat", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._beat(self.held())

    def _beat(self, trial_ids: Iterable[int]) -> None:
        for trial_id in trial_ids:
            try:
                self.storage.record_heartbeat(trial_id)
            except Exception as e:  # the next beat tries again
                if not self._warned:
                    self._warned = True
                    print(
                        f"warning: a trial's heartbeat was not recorded ({repr(e)[:200]}); trying every "
                        f"{self.interval} s",
                        file=sys.stderr,
                        flush=True,
                    )


class TrialWatch(Heartbeat):
    """The driver's heartbeats and watch: it beats for the trials it holds (asked, or continued after a restart,
    and not told yet), and every ``interval`` seconds fails the studies' trials that no one has beaten for
    ``grace`` seconds (``fail_stale``), whose retries ``_ask`` hands out first."""

    def __init__(self, studies: dict[str, Any], storage: Any, heartbeat: dict[str, int], trial_ids: Iterable[int]):
        super().__init__(storage, heartbeat["interval"], trial_ids)
        self.studies, self.grace = studies, heartbeat["grace"]
        self._checked = self._looked = time.monotonic()
        self._idle_since: float | None = None

    def hold(self, trial_id: int) -> None:
        super().hold(trial_id)
        self._idle_since = None

    def check(self) -> None:
        """Fail (and retry) the studies' lost trials, once per ``interval`` seconds."""
        if time.monotonic() - self._checked >= self.interval:
            self._checked = time.monotonic()
            fail_stale(self.studies, self.grace)

    def wait_for_others(self) -> bool:
        """With nothing else to do: whether to wait on for trials of the studies that run elsewhere (not held here).
        Up to ``grace + interval`` seconds: a trial whose holder is dead is failed by then, and its retry runs here;
        one whose holder beats on is left to it. The studies are read once per ``interval`` seconds."""
        now = time.monotonic()
        if self._idle_since is not None and now - self._looked < self.interval:
            return True
        self._looked = now
        held, running = self.held(), []
        for study in self.studies.values():
            trials = study.get_trials(deepcopy=False)
            running += [
                f"{study.study_name} trial {t.number}"
                for t in trials
                if t.state.name == "RUNNING" and t._trial_id not in held
            ]
        if not running:
            return False
        wait = self.grace + self.interval
        if self._idle_since is None:
            self._idle_since = now
            print(f"waiting up to {wait} s for trials running elsewhere: {', '.join(running)}", flush=True)
        if now - self._idle_since <= wait:
            return True
        print(f"not waiting longer for {', '.join(running)}: their heartbeats go on", flush=True)
        return False


def run_tuning(
    path: Path,
    log_dir: Path,
    max_concurrent: int | None = None,
    scheduler: str | None = None,
    slurm: bool = False,
    storage: str | None = None,
) -> pd.DataFrame:
    """Run (or continue) a tuning; write its table, best configs, seeds sweep and plots into its study folder.

    :param path: The tuning file.
    :param log_dir: The study folder is ``log_dir/<name>``.
    :param max_concurrent: Trials at once on the embedded cluster (default: as many as the cores fit).
    :param scheduler: Address of an existing Dask scheduler instead.
    :param slurm: Start Dask workers as SLURM jobs (the file's ``slurm:`` block) instead.
    :param storage: An RDB URL for the studies (default: the file's ``storage``, else SQLite in the study folder).
    :return: The trials' table.
    """
    tuning = load_tuning(path)
    name = tuning["name"]
    if slurm and not tuning.get("slurm"):
        raise ConfigError(f"--slurm needs a 'slurm:' block in {path} (queue, account, walltime, cores, memory)")
    if slurm:
        slurm_plan(tuning["slurm"])  # its keys and values, before anything is created
    folder = log_dir / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"Cannot create the study folder {folder}: {e.strerror or e}") from None
    url = storage or tuning.get("storage") or f"sqlite:///{(folder / 'study.db').resolve()}"
    if url.startswith("sqlite") and (scheduler or slurm):
        print(
            "warning: the studies are in SQLite, which workers on other machines share unreliably (network file "
            "systems): pass --storage with a database server's URL",
            file=sys.stderr,
            flush=True,
        )
    with rundir.writer_lock(folder):  # one process drives a study folder; a second copy exits 2 naming it
        recorded = url if url.startswith("sqlite") else "an RDB URL (not recorded: it may hold a password)"
        (folder / "tuning.yml").write_text(yaml.safe_dump({**tuning, "storage": recorded}, sort_keys=False))
        _drive(tuning, folder, url, max_concurrent, scheduler, slurm)
        return write_outputs(tuning, folder, url)


def median_pruner(settings: dict[str, int], eval_freq: int) -> Any:
    """Optuna's median pruner (a study's pruner is not stored with it: the workers build the same one)."""
    import optuna

    # Reports are at the evaluations' step counts, k·eval_freq or a few steps past it (all envs step together):
    # the first warmup_evaluations are below this, the next is not.
    warmup = settings["warmup_evaluations"] * eval_freq + eval_freq // 2
    return optuna.pruners.MedianPruner(n_startup_trials=settings["startup_trials"], n_warmup_steps=warmup)


def _studies(tuning: dict[str, Any], url: str) -> dict[str, Any]:
    """Noise → its Optuna study (created, or loaded to continue), all with the same sampler seed and pruner, and
    the heartbeat settings and retry callback of lost trials (``_storage``)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    studies = {}
    for noise in tuning["noises"]:
        config = trial_config(tuning, noise, {})
        studies[noise] = optuna.create_study(
            study_name=study_name(tuning, config),
            storage=_storage(url, tuning["heartbeat"], tuning["retries"]),
            sampler=optuna.samplers.TPESampler(seed=tuning["seed"]),  # reseeded per trial by _ask
            pruner=median_pruner(tuning["pruner"], config["eval_freq"]),
            direction="maximize",
            load_if_exists=True,
        )
    return studies


def _drive(
    tuning: dict[str, Any],
    folder: Path,
    url: str,
    max_concurrent: int | None,
    scheduler: str | None,
    slurm: bool,
) -> None:
    """Ask the studies for trials, round-robin over the noises, as workers free up; tell them the results."""
    from distributed import as_completed

    studies = _studies(tuning, url)
    budget = tuning["trials"]
    fail_stale(studies, tuning["heartbeat"]["grace"])  # lost trials (a killed tuning's, long ago): retried
    # Trials left running by a killed tuning and not lost yet (this process holds the folder's lock: nobody else
    # runs them) continue.
    waiting = [(noise, t) for noise, study in studies.items() for t in study.trials if t.state.name == "RUNNING"]
    remaining = sum(_to_run(study, budget) for study in studies.values()) + len(waiting)
    if remaining == 0:
        print(f"tuning {folder.name}: all {budget} trials per noise are done", flush=True)
        return
    resources = trial_resources(tuning)
    engine = connect(tuning, resources, max_concurrent, scheduler, slurm, remaining, folder)
    futures: dict[Any, tuple[str, Any]] = {}
    pending = as_completed()
    unsubmitted = remaining  # trials still to hand out (for the SLURM jobs' count)
    watch = TrialWatch(studies, _storage(url), tuning["heartbeat"], [t._trial_id for _, t in waiting])
    try:
        watch.start()
        print(
            f"tuning {folder.name}: {budget} trials per noise ({', '.join(studies)}) in {folder} on {engine.address}",
            flush=True,
        )
        while True:
            engine.tick(unsubmitted + pending.count())  # SLURM: replace ended jobs; give up without workers
            free = engine.slots() - pending.count()
            while free > 0:
                task = waiting.pop(0) if waiting else _ask(studies, budget, tuning)
                if task is None:
                    unsubmitted = 0
                    break
                noise, trial = task
                watch.hold(trial._trial_id)
                config = trial_config(tuning, noise, trial.params)
                number, run = f"{trial.number:03d}", f"{run_number(trial):03d}"  # a retry resumes its lost trial
                future = engine.client.submit(
                    run_tuning_trial,
                    config,
                    str(folder / "trials" / noise / run),
                    str(folder / "output" / f"{noise}_{run}.log"),
                    url,
                    studies[noise].study_name,
                    trial._trial_id,
                    tuning,
                    key=f"{folder.name}/{noise}_{number}",  # unique on a shared scheduler
                    retries=tuning["retries"],
                    pure=False,
                    resources=engine.submit_resources,
                )
                futures[future] = (noise, trial)
                pending.add(future)
                unsubmitted = max(0, unsubmitted - 1)
                free -= 1
            if pending.is_empty() and not watch.wait_for_others():
                break
            for future in pending.next_batch(block=False):
                noise, trial = futures.pop(future)
                _tell(studies[noise], trial, future)
                watch.release(trial._trial_id)
            watch.check()
            time.sleep(0.2)
        (folder / rundir.ERROR).unlink(missing_ok=True)  # an earlier driver's error, now run past
    except BaseException as e:  # Ctrl-C, SIGTERM, no workers, an error: the running trials save their checkpoints
        raise stop_running_trials(e, engine, [f for f in futures if not f.done()], folder) from None
    finally:
        watch.close()
        engine.close()


def _ask(studies: dict[str, Any], budget: int, tuning: dict[str, Any]) -> tuple[str, Any] | None:
    """The next trial, as a frozen trial: a queued retry of a lost trial (of any noise) first, else a new trial of
    the noise with the fewest trials so far (None: every study has its budget).

    The sampler is seeded with (tuning seed, trial number): a sampler seeded once would, after a restart, draw its
    first points again (its random start-up trials repeated the trials before the kill)."""
    import optuna

    for noise, study in studies.items():
        if study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)):
            return noise, _asked(study, distributions(tuning["search"], noise))  # Optuna pops the queued trial
    counts = [(_counted(s.get_trials(deepcopy=False)), noise) for noise, s in studies.items()]
    open_studies = [(count, noise) for count, noise in counts if count < budget]
    if not open_studies:
        return None
    _, noise = min(open_studies)
    study = studies[noise]
    study.sampler = optuna.samplers.TPESampler(
        seed=int(np.random.SeedSequence([tuning["seed"], len(study.trials)]).generate_state(1)[0])
    )
    return noise, _asked(study, distributions(tuning["search"], noise))


def _asked(study: Any, space: dict[str, Any]) -> Any:
    """``study.ask(space)``, frozen (its system attributes say which trial a retry replaces)."""
    import warnings

    with warnings.catch_warnings():  # the driver holds the trial's heartbeat itself (TrialWatch), not study.optimize
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
        trial = study.ask(space)
    return study._storage.get_trial(trial._trial_id)


def _tell(study: Any, trial: Any, future: Any) -> None:
    import optuna

    label = f"{study.study_name} trial {trial.number}"
    try:
        if future.status != "finished":
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
            print(f"FAILED: {label} | {repr(future.exception())[:200]}", flush=True)
            return
        result = future.result()
        if result["state"] == "lost":
            print(f"lost: {label} | {result['error']}", flush=True)
        elif result["state"] == "pruned":
            study.tell(trial.number, state=optuna.trial.TrialState.PRUNED)
            print(f"pruned: {label} | {result['error']}", flush=True)
        else:
            study.tell(trial.number, result["value"])  # a NaN objective makes it a failed trial (Optuna's rule)
            complete = [t.value for t in study.trials if t.state.name == "COMPLETE"]
            best = f"best so far {max(complete):.2f}" if complete else "no complete trial yet"
            print(f"complete: {label} | objective {result['value']:.2f} ({best})", flush=True)
    except optuna.exceptions.UpdateFinishedTrialError:  # failed as lost meanwhile (by another driver of the study)
        print(f"lost: {label} | failed meanwhile by another process (no heartbeat for the grace period)", flush=True)


def trials_table(studies: dict[str, Any], folder: Path) -> pd.DataFrame:
    """One row per trial: noise, number, state, objective (pruned: its last report), steps, settings, folder. A
    trial lost (no heartbeat for the grace period) and retried is ``lost``, not ``fail``: its retry is a row too."""
    rows = []
    for noise, study in studies.items():
        trials = study.trials
        retried = _retried(trials)
        for t in trials:
            steps = max(t.intermediate_values) if t.intermediate_values else 0
            value = t.value if t.value is not None else t.intermediate_values.get(steps)
            state = "lost" if t.number in retried else t.state.name.lower()
            row = {"noise": noise, "trial": t.number, "state": state, "objective": value}
            row |= {"steps": steps, **t.params, "run": str(folder / "trials" / noise / f"{run_number(t):03d}")}
            rows.append(row)
    return pd.DataFrame(rows)


def write_outputs(tuning: dict[str, Any], folder: Path, url: str) -> pd.DataFrame:
    """``trials.csv``, ``best/*.yml``, ``best.md``, ``seeds.yaml``, ``history.png``, ``importance.png``."""
    studies = _studies(tuning, url)
    table = trials_table(studies, folder)
    rundir.atomic_write_text(folder / "trials.csv", table.to_csv(index=False))
    (folder / "best").mkdir(exist_ok=True)
    lines = [
        f"# Tuning {folder.name}: {tuning['algo']} on {tuning['env']}, {tuning['trials']} trials per noise",
        "",
        f"Objective: mean evaluation return over the last {tuning['objective']['last']} evaluations "
        f"(training seed {tuning['seed']}).",
        "",
        "| noise | best objective | trial | complete | pruned | failed | best settings |",
        "|---|---|---|---|---|---|---|",
    ]
    configs = []
    for noise, study in studies.items():
        states = [t.state.name for t in study.trials]
        counts = [states.count(s) for s in ("COMPLETE", "PRUNED", "FAIL")]
        if counts[0] == 0:
            lines.append(f"| {noise} | – | – | {counts[0]} | {counts[1]} | {counts[2]} | no complete trial yet |")
            continue
        best = study.best_trial
        config = trial_config(tuning, noise, best.params)
        path = folder / "best" / f"{config_name(config)}.yml"
        dump_config(config, path)
        configs.append(str(path.relative_to(folder)))
        settings = ", ".join(f"{k}={v}" for k, v in best.params.items())
        row = f"| {noise} | {best.value:.2f} | {best.number} | {counts[0]} | {counts[1]} | {counts[2]} | {settings} |"
        lines.append(row)
    lines += ["", f"Best configs: `best/` (`lattice-train --config {folder}/best/<file>`)."]
    rundir.atomic_write_text(folder / "best.md", "\n".join(lines) + "\n")
    if configs:
        seeds = list(range(tuning["seed"] + 1, tuning["seed"] + 1 + SEEDS_AFTER_TUNING))
        sweep = {"name": f"{folder.name}_seeds", "grid": {"config": configs, "seed": seeds}}
        for key in ("resources", "retries", "slurm"):
            if key in tuning:
                sweep[key] = tuning[key]
        header = "# The tuned configs over seeds the tuning did not see: lattice-sweep --config THIS_FILE\n"
        rundir.atomic_write_text(folder / "seeds.yaml", header + yaml.safe_dump(sweep, sort_keys=False))
    plot_history(table, folder / "history.png")
    plot_importance(studies, folder / "importance.png")
    return table


def plot_history(table: pd.DataFrame, path: Path) -> None:
    """Objective per trial (dots; pruned: hollow) and the best so far (line), one colour per noise."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (noise, rows) in enumerate(table.groupby("noise", sort=False)):
        color = f"C{i}"
        rows = rows.sort_values("trial")
        complete = rows[rows["state"] == "complete"]
        pruned = rows[rows["state"] == "pruned"]
        ax.scatter(complete["trial"], complete["objective"], color=color, s=18)
        ax.scatter(pruned["trial"], pruned["objective"], facecolors="none", edgecolors=color, s=18)
        best = complete.set_index("trial")["objective"].cummax().reindex(rows["trial"]).ffill()
        ax.plot(rows["trial"], best, color=color, label=noise)
    ax.set(xlabel="trial", ylabel="objective (mean eval return)", title="Optimisation history (hollow: pruned)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_importance(studies: dict[str, Any], path: Path) -> None:
    """Optuna's parameter importances (fANOVA) per noise, for the noises with at least two complete trials."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna

    importances = {}
    for noise, study in studies.items():
        complete = [t for t in study.trials if t.state.name == "COMPLETE"]
        if len(complete) >= 2 and len(complete[0].params) >= 1:
            try:
                importances[noise] = optuna.importance.get_param_importances(study)
            except (RuntimeError, ValueError):  # e.g. every complete trial has the same objective
                continue
    fig, axes = plt.subplots(1, max(1, len(importances)), figsize=(3.2 * max(1, len(importances)), 3), squeeze=False)
    for ax, (noise, values) in zip(axes[0], importances.items(), strict=False):
        keys = list(values)[::-1]
        ax.barh([k.removeprefix("policy_kwargs.") for k in keys], [values[k] for k in keys], color="C0")
        ax.set(title=noise, xlabel="importance", xlim=(0, 1))
    if not importances:
        axes[0][0].text(0.5, 0.5, "fewer than 2 complete trials", ha="center", va="center")
        axes[0][0].set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

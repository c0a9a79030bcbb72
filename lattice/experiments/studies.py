"""The tuning's Optuna studies in their database: the storage (SQLite or a database server), heartbeats of the
trials being run, lost trials failed and retried, and what the studies hold (a table of the trials, parameter
importances). The driver that asks and tells them: ``tune``.

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
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from lattice.experiments.errors import ConfigError


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


def open_storage(url: str, heartbeat: dict[str, int] | None = None, retries: int = 0) -> Any:
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
            return _create_storage(url, kwargs, beats)
        except ImportError as e:  # e.g. postgresql+psycopg2:// without psycopg2
            raise ConfigError(
                f"No database driver for {_shown(url)} ({e.__cause__ or e}): pip install 'sb3-lattice[sweeps]' "
                "(it installs psycopg2, PostgreSQL's)"
            ) from None
        except sqlalchemy.exc.SQLAlchemyError as e:  # the server does not answer, refuses the login, ...
            why = (str(getattr(e, "orig", None) or e).strip().splitlines() or [type(e).__name__])[0]
            raise ConfigError(f"Cannot open the studies' database {_shown(url)}: {why}") from None


def _create_storage(url: str, engine_kwargs: dict[str, Any], beats: dict[str, Any], tries: int = 3) -> Any:
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


def retried(trials: list[Any]) -> set[int]:
    """The numbers of the lost trials that a retry replaced (each retry names the trial it replaces last)."""
    return {t.system_attrs["retry_history"][-1] for t in trials if t.system_attrs.get("retry_history")}


def counted(trials: list[Any]) -> int:
    """The trials that count against a study's budget: all but the lost ones that a retry replaced."""
    return len(trials) - len(retried(trials))


def to_run(study: Any, budget: int) -> int:
    """Trials of a study still to run: new ones up to its budget, and the queued retries of lost ones."""
    import optuna

    trials = study.get_trials(deepcopy=False)
    queued = sum(t.state == optuna.trial.TrialState.WAITING for t in trials)
    return max(0, budget - counted(trials)) + queued


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
    ``grace`` seconds (``fail_stale``), whose retries ``tune.ask`` hands out first."""

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


def trials_table(studies: dict[str, Any]) -> pd.DataFrame:
    """One row per trial: noise, number, state, objective (pruned: its last report), steps, settings, and its run
    folder relative to the study folder (so that the table reads the same wherever the study folder is). A trial
    lost (no heartbeat for the grace period) and retried is ``lost``, not ``fail``: its retry is a row too."""
    rows = []
    for noise, study in studies.items():
        trials = study.trials
        lost = retried(trials)
        for t in trials:
            steps = max(t.intermediate_values) if t.intermediate_values else 0
            value = t.value if t.value is not None else t.intermediate_values.get(steps)
            state = "lost" if t.number in lost else t.state.name.lower()
            row = {"noise": noise, "trial": t.number, "state": state, "objective": value}
            row |= {"steps": steps, **t.params, "run": str(Path("trials") / noise / f"{run_number(t):03d}")}
            rows.append(row)
    return pd.DataFrame(rows)


def importances(studies: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Optuna's parameter importances (fANOVA) per noise, for the noises with at least two complete trials that
    sampled a parameter (and whose importances can be computed)."""
    import optuna

    found = {}
    for noise, study in studies.items():
        complete = [t for t in study.trials if t.state.name == "COMPLETE"]
        if len(complete) >= 2 and len(complete[0].params) >= 1:
            try:
                # fANOVA's forest is random: seeded, so that the same trials give the same figure
                evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
                found[noise] = optuna.importance.get_param_importances(study, evaluator=evaluator)
            except (RuntimeError, ValueError):  # e.g. every complete trial has the same objective
                continue
    return found

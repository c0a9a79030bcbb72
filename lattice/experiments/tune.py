"""Hyperparameter search per exploration noise: an Optuna study per (algorithm, noise, task), the same search space
and the same number of trials for every noise, on the sweeps' Dask engine (``lattice-tune``). The tuning file, its
search space and its trials' configs: ``tune_file``.

Every trial is a training run (``lattice.experiments.training``) in ``<study>/trials/<noise>/<number>/``; after each
evaluation it reports the mean return to its study, and the median pruner stops it (``error.txt`` says so) when its
best report so far is below the median of the complete trials' reports at that step. The objective is the mean
return of the last ``objective.last`` evaluations. A killed tuning resumes with the same command: finished trials
stay, trials that were running continue from their run folders' checkpoints, and the studies go on to their number
of trials.

The studies are in ``storage``: by default SQLite in the study folder (one machine); for workers on other machines,
a database server's URL (``--storage postgresql://user:password@host/db``; a bare ``postgresql://`` means the
psycopg2 driver of the ``sweeps`` extra). One ``lattice-tune`` drives a study folder (its lock); its Dask workers
write the intermediate values of their trials into the studies at once. Heartbeats (Optuna's, in every storage) tell
a trial that is being run from one whose holder was lost (e.g. the job that ran the driver and its workers): a lost
trial is failed and retried as a new trial that resumes from its run folder's last checkpoint (``studies``).

Written into the study folder: ``study.db`` (the studies), ``trials.csv``, ``best.md``,
``best/<algo>_<noise>_<env>.yml`` (the best settings per noise, as a config ``lattice-train --config`` takes),
``seeds.yaml`` (a sweep of the tuned configs over ``fresh_seeds.count`` seeds other than the tuning seed, with
``fresh_seeds.settings``), ``history.png`` and ``importance.png`` (``plots``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback

from lattice.experiments import rundir
from lattice.experiments.cluster import connect, slurm_plan
from lattice.experiments.errors import ConfigError
from lattice.experiments.load import dump_config
from lattice.experiments.lock import writer_lock
from lattice.experiments.plots import plot_history, plot_importance
from lattice.experiments.studies import (
    Heartbeat,
    TrialWatch,
    counted,
    fail_stale,
    importances,
    open_storage,
    run_number,
    to_run,
    trials_table,
)
from lattice.experiments.sweep import run_trial, stop_running_trials, trial_resources
from lattice.experiments.tune_file import (
    config_name,
    distributions,
    load_tuning,
    study_name,
    trial_config,
)
from lattice.experiments.validate import RunConfig


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
    config: RunConfig | Mapping[str, Any],
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

    config = RunConfig.of(config)
    pruner = median_pruner(tuning["pruner"], config.eval_freq)
    rdb = open_storage(storage)
    state = rdb.get_trial(trial_id).state
    if state != optuna.trial.TrialState.RUNNING:  # e.g. Dask reran the task of a trial failed as lost meanwhile
        return {"state": "lost", "error": f"the trial is {state.name} in the study: not run"}
    study = optuna.load_study(study_name=name, storage=rdb, pruner=pruner)
    report = ReportToOptuna(optuna.trial.Trial(study, trial_id), config.timesteps)
    with Heartbeat(rdb, tuning["heartbeat"]["interval"], [trial_id]):
        try:
            run_trial(config.as_dict(), run_dir, log_file, trial_resources(tuning)["cpus"], after_eval=report)
        except optuna.TrialPruned as e:
            return {"state": "pruned", "error": str(e)}
        except TrialLost as e:
            return {"state": "lost", "error": str(e)}
    return {"state": "complete", "value": objective(Path(run_dir), tuning["objective"]["last"])}


def run_tuning(
    path: Path,
    log_dir: Path,
    max_concurrent: int | None = None,
    scheduler: str | None = None,
    slurm: bool = False,
    storage: str | None = None,
    out: Path | None = None,
) -> pd.DataFrame:
    """Run (or continue) a tuning; write its table, best configs, seeds sweep and plots into its study folder.

    :param path: The tuning file.
    :param log_dir: The study folder is ``log_dir/<name>``.
    :param max_concurrent: Trials at once on the embedded cluster (default: as many as the cores fit).
    :param scheduler: Address of an existing Dask scheduler instead.
    :param slurm: Start Dask workers as SLURM jobs (the file's ``slurm:`` block) instead.
    :param storage: An RDB URL for the studies (default: the file's ``storage``, else SQLite in the study folder).
    :param out: Also write those outputs here (e.g. a results folder to commit; the study folder keeps its own).
    :return: The trials' table.
    """
    tuning = load_tuning(path)
    name = tuning["name"]
    if slurm and not tuning.get("slurm"):
        raise ConfigError(f"--slurm needs a 'slurm:' block in {path} (queue, account, walltime, cores, memory)")
    if slurm:
        slurm_plan(tuning["slurm"])  # its keys and values, before anything is created
    folder = log_dir / name
    for where, what in ((folder, "the study folder"), (out, "--out")):
        try:
            if where is not None:
                where.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"Cannot create {what} {where}: {e.strerror or e}") from None
    url = storage or tuning.get("storage") or f"sqlite:///{(folder / 'study.db').resolve()}"
    if url.startswith("sqlite") and (scheduler or slurm):
        print(
            "warning: the studies are in SQLite, which workers on other machines share unreliably (network file "
            "systems): pass --storage with a database server's URL",
            file=sys.stderr,
            flush=True,
        )
    with writer_lock(folder):  # one process drives a study folder; a second copy exits 2 naming it
        recorded = url if url.startswith("sqlite") else "an RDB URL (not recorded: it may hold a password)"
        (folder / "tuning.yml").write_text(yaml.safe_dump({**tuning, "storage": recorded}, sort_keys=False))
        _drive(tuning, folder, url, max_concurrent, scheduler, slurm)
        if out is not None:
            write_outputs(tuning, out, url)
        return write_outputs(tuning, folder, url)


def median_pruner(settings: dict[str, int], eval_freq: int) -> Any:
    """Optuna's median pruner (a study's pruner is not stored with it: the workers build the same one)."""
    import optuna

    # Reports are at the evaluations' step counts, k·eval_freq or a few steps past it (all envs step together):
    # step 0 and the first warmup_evaluations are below this, the next is not.
    warmup = settings["warmup_evaluations"] * eval_freq + eval_freq // 2
    return optuna.pruners.MedianPruner(n_startup_trials=settings["startup_trials"], n_warmup_steps=warmup)


def open_studies(tuning: dict[str, Any], url: str) -> dict[str, Any]:
    """Noise → its Optuna study (created, or loaded to continue), all with the same sampler seed and pruner, and
    the heartbeat settings and retry callback of lost trials (``studies.open_storage``)."""
    import optuna

    studies = {}
    for noise in tuning["noises"]:
        config = trial_config(tuning, noise, {})
        studies[noise] = optuna.create_study(
            study_name=study_name(tuning, config),
            storage=open_storage(url, tuning["heartbeat"], tuning["retries"]),
            sampler=optuna.samplers.TPESampler(seed=tuning["seed"]),  # reseeded per trial by ask
            pruner=median_pruner(tuning["pruner"], config.eval_freq),
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

    studies = open_studies(tuning, url)
    budget = tuning["trials"]
    fail_stale(studies, tuning["heartbeat"]["grace"])  # lost trials (a killed tuning's, long ago): retried
    # Trials left running by a killed tuning and not lost yet (this process holds the folder's lock: nobody else
    # runs them) continue.
    waiting = [(noise, t) for noise, study in studies.items() for t in study.trials if t.state.name == "RUNNING"]
    remaining = sum(to_run(study, budget) for study in studies.values()) + len(waiting)
    if remaining == 0:
        print(f"tuning {folder.name}: all {budget} trials per noise are done", flush=True)
        return
    resources = trial_resources(tuning)
    engine = connect(tuning, resources, max_concurrent, scheduler, slurm, remaining, folder)
    futures: dict[Any, tuple[str, Any]] = {}
    pending = as_completed()
    unsubmitted = remaining  # trials still to hand out (for the SLURM jobs' count)
    watch = TrialWatch(studies, open_storage(url), tuning["heartbeat"], [t._trial_id for _, t in waiting])
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
                task = waiting.pop(0) if waiting else ask(studies, budget, tuning)
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


def ask(studies: dict[str, Any], budget: int, tuning: dict[str, Any]) -> tuple[str, Any] | None:
    """The next trial, as a frozen trial: a queued retry of a lost trial (of any noise) first, else a new trial of
    the noise with the fewest trials so far (None: every study has its budget).

    The sampler is seeded with (tuning seed, trial number): a sampler seeded once would, after a restart, draw its
    first points again (its random start-up trials repeated the trials before the kill)."""
    import optuna

    for noise, study in studies.items():
        if study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)):
            return noise, _asked(study, distributions(tuning["search"], noise))  # Optuna pops the queued trial
    counts = [(counted(s.get_trials(deepcopy=False)), noise) for noise, s in studies.items()]
    unfilled = [(count, noise) for count, noise in counts if count < budget]
    if not unfilled:
        return None
    _, noise = min(unfilled)
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


def write_outputs(tuning: dict[str, Any], folder: Path, url: str) -> pd.DataFrame:
    """``trials.csv``, ``best/*.yml``, ``best.md``, ``seeds.yaml``, ``history.png``, ``importance.png`` (``plots``)
    into ``folder``: the same studies give the same files, byte for byte."""
    studies = open_studies(tuning, url)
    table = trials_table(studies)
    rundir.atomic_write_text(folder / "trials.csv", table.to_csv(index=False))
    (folder / "best").mkdir(exist_ok=True)
    lines = [
        f"# Tuning {tuning['name']}: {tuning['algo']} on {tuning['env']}, {tuning['trials']} trials per noise",
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
        fresh = tuning["fresh_seeds"]
        seeds = list(range(tuning["seed"] + 1, tuning["seed"] + 1 + fresh["count"]))
        sweep: dict[str, Any] = {"name": f"{tuning['name']}_seeds", "grid": {"config": configs, "seed": seeds}}
        if fresh["settings"]:
            sweep["settings"] = fresh["settings"]
        for key in ("resources", "retries", "slurm"):
            if key in tuning:
                sweep[key] = tuning[key]
        header = "# The tuned configs over seeds the tuning did not see: lattice-sweep --config THIS_FILE\n"
        rundir.atomic_write_text(folder / "seeds.yaml", header + yaml.safe_dump(sweep, sort_keys=False))
    plot_history(table, folder / "history.png")
    plot_importance(importances(studies), folder / "importance.png")
    return table

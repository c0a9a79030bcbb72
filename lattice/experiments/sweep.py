"""Sweeps: a grid of algorithm × noise × task × seed (× any setting), one training run per trial, on Dask.

A sweep file (``configs/sweeps/*.yaml``)::

    name: tiny                          # the sweep folder: <log_dir>/<name>/ (letters, digits, . _ = + -)
    grid:                               # every combination is one trial
      algo: [ppo]
      noise: [lattice, isotropic]
      env: [elbow]
      seed: [0, 1]
      policy_kwargs.alpha: [0.5, 1.0]   # any setting may be a grid axis (as in --hyperparams)
      # a joint axis: each value is a mapping of settings that vary together (it may hold algo, noise or env), e.g.
      # the paper's four hand settings, PPO, gSDE with T = 4 and Lattice with T = 1 and T = 4:
      # setting: [{noise: isotropic}, {noise: gsde, noise_period: 4}, {noise: lattice, noise_period: 1}, ...]
      # or, instead of algo, noise and env: config files (paths relative to the sweep file), e.g. tuned ones
      # config: [best/ppo_lattice_myoElbowPose1D6MRandom-v0.yml, best/ppo_pink_myoElbowPose1D6MRandom-v0.yml]
    settings: {timesteps: 100000, n_envs: 4}   # for every trial: config keys or algorithm keywords (dotted)
    retries: 1                          # Dask retries of a failed trial (an integer >= 0)
    resources: {cpus: 4, gpus: 1}       # what one trial occupies (default: 1 CPU, no GPU)
    slurm: {queue: gpu, account: lab, walltime: "24:00:00", cores: 8, memory: 32GB, jobs: 4}   # for --slurm
    # (and margin, worker_wait; lattice.experiments.cluster says what the driver does with its jobs)

Resources: every Dask worker runs one trial at a time (one thread per worker process: SB3 seeds global RNGs, so
trials must not share a process). A trial asks for ``resources`` (Dask's abstract resources ``cpus`` and ``gpus``),
so a worker runs it only if it declares at least as much (``dask worker ... --resources "cpus=4,gpus=1"``). The
embedded cluster starts ``cores // cpus`` workers (and no more than the GPUs allow), each with its own GPUs
(``CUDA_VISIBLE_DEVICES``); ``--slurm`` starts ``cores // cpus`` worker processes per job, each declaring that.

Each trial is exactly a run of ``lattice-train`` (``lattice.experiments.training``), in ``<sweep>/trials/<trial>/``.
Running the same sweep again skips finished trials and resumes unfinished ones from their checkpoints.

The sweep file is the truth, and ``<sweep>/sweep.yml`` records it as last run. A trial keeps the settings it began
with, so a rerun whose file changes the resolved config of a trial that already ran (finished or started: its
budget, a setting, a config file of the grid; ``device`` too) exits with code 2 before anything is written, naming
the trials and the changes (``key: ran with → file now``): restore the file, or give the sweep a new ``name:`` to
run it in a new folder. A changed grid runs its new trials; trials it no longer names stay on disk, out of
``sweep.yml`` and ``results.yml``. ``retries``, ``resources`` and ``slurm`` are not trial settings and may change.

One process runs a sweep folder at a time: a second copy of the command, while the first runs, exits with code 2
naming it (``lattice.experiments.lock.writer_lock``), and each trial holds its own run folder's lock while it
trains.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import yaml

from lattice.experiments import rundir
from lattice.experiments.cluster import DEADLINE_ENV, Engine, NoWorkers, check_local_gpus, connect, slurm_plan
from lattice.experiments.config import load_yaml, resolve_config, validate
from lattice.experiments.dotted import as_text, config_differences
from lattice.experiments.errors import ConfigError, UsageError
from lattice.experiments.lock import FolderInUse, writer_lock
from lattice.experiments.process import Terminated

GRID_NAMES = ("algo", "noise", "env", "seed")
SWEEP_KEYS = ("name", "grid", "settings", "retries", "resources", "slurm")


def expand(sweep: dict[str, Any], base: Path = Path(".")) -> dict[str, dict[str, Any]]:
    """Trial name → resolved config, for every combination of the grid (all validated before anything runs).

    :param base: The folder that the grid's ``config`` paths are relative to (the sweep file's).
    """
    unknown = set(sweep) - set(SWEEP_KEYS)
    if unknown:
        raise ConfigError(f"Unknown sweep key(s) {sorted(unknown)}; valid: {', '.join(SWEEP_KEYS)}")
    if sweep.get("name") is not None:  # without one, run_sweep names the folder after the file (checked there)
        folder_name(sweep["name"], base)
    sweep_retries(sweep)
    trial_resources(sweep)
    grid = dict(sweep.get("grid") or {})
    joint = _joint_keys(grid)
    # A grid names algo × noise × env, or config files (a run's config.yml, a tuned config) that hold them.
    named = set(grid) | joint
    required = ("config", "seed") if "config" in named else GRID_NAMES
    both = [name for name in ("algo", "noise", "env") if "config" in named and name in named]
    if both:
        raise ConfigError(f"The sweep's grid has config files and {', '.join(both)}: the config files set those")
    for name in required:
        values = grid.get(name)
        if name not in joint and (not isinstance(values, list) or not values):
            raise ConfigError(f"The sweep's grid needs a non-empty list for {name!r}, got {values!r}")
    settings = [f"{k}={as_text(v)}" for k, v in (sweep.get("settings") or {}).items()]
    axes = list(grid)
    trials: dict[str, dict[str, Any]] = {}
    for values in itertools.product(*(grid[a] for a in axes)):
        point: dict[str, Any] = {}
        for axis, value in zip(axes, values, strict=True):
            point.update(value if isinstance(value, dict) else {axis: value})  # a joint axis's value: its settings
        missing = [name for name in required if name not in point]
        if missing:
            raise ConfigError(f"A point of the sweep's grid has no {', '.join(missing)}: {point}")
        extra = {k: v for k, v in point.items() if k not in (*GRID_NAMES, "config")}
        hyperparams = settings + [f"{k}={as_text(v)}" for k, v in extra.items()]
        if "config" in point:
            name = f"{Path(str(point['config'])).stem}_seed{point['seed']}"
            config = resolve_config(
                config=base / str(point["config"]), overrides={"seed": point["seed"]}, hyperparams=hyperparams
            )
        else:
            name = f"{point['algo']}_{point['noise']}_{point['env']}_seed{point['seed']}"
            config = resolve_config(
                str(point["algo"]),
                str(point["noise"]),
                str(point["env"]),
                overrides={"seed": point["seed"]},
                hyperparams=hyperparams,
            )
        name = re.sub(r"[^A-Za-z0-9._=+-]", "", name + "".join(f"_{k}={as_text(v)}" for k, v in extra.items()))
        if name in trials:  # e.g. two runs' config.yml: their trials would share one folder
            raise ConfigError(
                f"Two points of the sweep's grid make the trial {name!r}: give the config files other names"
            )
        trials[name] = config
    return trials


def _joint_keys(grid: dict[str, Any]) -> set[str]:
    """The settings that the grid's joint axes set (axes whose values are mappings), checked: every axis is a
    non-empty list, a joint axis holds only mappings, and no setting is named by two axes."""
    keys: set[str] = set()
    for axis, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"The sweep's grid needs a non-empty list for {axis!r}, got {values!r}")
        mappings = [value for value in values if isinstance(value, dict)]
        if not mappings:
            continue
        if len(mappings) < len(values) or not all(mappings):
            raise ConfigError(
                f"The sweep's grid axis {axis!r} mixes settings and plain values: a joint axis lists mappings of "
                f"settings (e.g. {{noise: lattice, noise_period: 4}}), got {values!r}"
            )
        named = {key for mapping in mappings for key in mapping}
        clash = sorted(named & (set(grid) | keys))
        if clash:
            raise ConfigError(f"The sweep's grid sets {', '.join(clash)} in more than one axis (one is {axis!r})")
        keys |= named
    return keys


def trial_resources(sweep: dict[str, Any]) -> dict[str, int]:
    """What one trial occupies, from the sweep's ``resources:``: ``{"cpus": c}`` (default 1), and ``"gpus": g`` when
    it asks for GPUs (Dask runs a task only on workers that declare every resource it names, zero or not)."""
    given = dict(sweep.get("resources") or {})
    unknown = set(given) - {"cpus", "gpus"}
    if unknown:
        raise ConfigError(f"Unknown resource(s) {sorted(unknown)} in the sweep's resources:; valid: cpus, gpus")
    resources = {"cpus": given.get("cpus", 1), "gpus": given.get("gpus", 0)}
    for key, value in resources.items():
        minimum = 1 if key == "cpus" else 0
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ConfigError(f"resources.{key} must be an integer >= {minimum}, got {value!r}")
    return {key: value for key, value in resources.items() if value}


FOLDER_NAME = re.compile(r"[A-Za-z0-9_=+-][A-Za-z0-9._=+-]*")  # one folder, never ".", ".." or hidden


def folder_name(given: Any, path: Path) -> str:
    """A sweep's (or tuning's) folder name under the log dir: its file's ``name:``, else the file's stem; one folder
    name of letters, digits and ``. _ = + -`` (not starting with ``.``), so that it never leaves the log dir.

    :param given: The file's ``name:`` (None: the file has none).
    :param path: The file.
    """
    if given is None:
        if FOLDER_NAME.fullmatch(path.stem):
            return path.stem
        raise ConfigError(
            f"{path} has no name:, and its file name {path.stem!r} is not a folder name: give it a name: of letters, "
            "digits and . _ = + - (not starting with '.')"
        )
    text = str(given) if isinstance(given, int) and not isinstance(given, bool) else given
    if isinstance(text, str) and FOLDER_NAME.fullmatch(text):
        return text
    raise ConfigError(
        f"name must be one folder name of letters, digits and . _ = + - (not starting with '.'), got {given!r}"
    )


def sweep_retries(sweep: dict[str, Any]) -> int:
    """The sweep's ``retries:`` (Dask retries of a failed trial): an integer >= 0, 1 when not given."""
    retries = sweep.get("retries", 1)
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise ConfigError(f"retries must be an integer >= 0 (Dask retries of a failed trial), got {retries!r}")
    return retries


def changed_trials(trials: dict[str, dict[str, Any]], sweep_dir: Path) -> dict[str, list[str]]:
    """Trials of the sweep that already ran (started or finished) with other settings than ``trials`` gives them:
    trial name → ``key: recorded → now`` lines (``dotted.config_differences``). Every setting of a trial's resolved
    config counts (``device`` too: a trial resumes on its recorded device, and runs on a CPU and a GPU differ);
    ``retries``, ``resources`` and ``slurm`` are not trial settings. A trial folder without a recorded start is no
    run yet (``run_trial`` starts it anew)."""
    changed: dict[str, list[str]] = {}
    for trial, config in sorted(trials.items()):
        run = rundir.RunDir(sweep_dir / "trials" / trial)
        if not run.is_run():
            continue
        recorded = run.config()
        with contextlib.suppress(ConfigError):  # as a resume reads it: with keywords a newer SB3 may have added
            recorded = validate(run.config())
        differences = config_differences(config, recorded)
        if differences:
            changed[trial] = differences
    return changed


def check_unchanged(trials: dict[str, dict[str, Any]], sweep_dir: Path, path: Path) -> None:
    """Raise ConfigError (one line) if the sweep file changed the settings of trials that already ran
    (``changed_trials``): a trial continues, or stays finished, with the settings it began with, and ``sweep.yml``
    must not claim others."""
    changed = changed_trials(trials, sweep_dir)
    if not changed:
        return
    groups: dict[tuple[str, ...], list[str]] = {}  # trials with the same changes, named together
    for trial, differences in changed.items():
        groups.setdefault(tuple(differences), []).append(trial)
    parts = []
    for changes, names in list(groups.items())[:2]:
        named = rundir.few(names)
        listed = "; ".join(changes[:4]) + (f"; and {len(changes) - 4} more" if len(changes) > 4 else "")
        parts.append(f"{named} ({listed})")
    rest = sum(len(names) for names in list(groups.values())[2:])
    more = f"; and {rest} more trial(s) with other changes" if rest else ""
    raise ConfigError(
        f"{path} changes the settings of {len(changed)} trial(s) that already ran in {sweep_dir}: "
        f"{'; '.join(parts)}{more}; a trial keeps the settings it ran with: restore the file, or give the sweep "
        "a new name: to run it in a new folder"
    )


class TrialStopped(RuntimeError):
    """A trial stopped because its sweep was stopped (Ctrl-C, SIGTERM), after saving what it could."""


def run_trial(
    config: dict[str, Any], run_dir: str, log_file: str, cpus: int = 1, **train_kwargs: Any
) -> dict[str, Any]:
    """Run one trial to its end (in a Dask worker): skip it if finished, resume it if started, else start it.

    In a SLURM job it stops at the job's deadline (``cluster.DEADLINE_ENV``: the walltime less a margin), saves a
    checkpoint and hands over: Dask gives it to another worker (``Reschedule``) and this worker retires. When the
    sweep is stopped it saves a checkpoint and raises ``TrialStopped``.

    :param config: The trial's resolved config.
    :param run_dir: Its run folder.
    :param log_file: Where its printed lines go (appended), e.g. ``<sweep>/output/<trial>.log``.
    :param cpus: The cores the trial was given (``resources.cpus``): its envs run in-process on one
        (``vec_env: auto``).
    :param train_kwargs: More keywords of ``lattice.experiments.training.train`` (e.g. ``after_eval``).
    :return: The trial's summary, with the status (``finished`` or ``skipped``) and the worker's name.
    """
    from lattice.experiments.process import configure_process, pending_stop, stop_at
    from lattice.experiments.training import RunStopped, resume_run, start_run

    configure_process(cores=cpus)  # a worker process is an experiment process like the CLI's, with the trial's cores

    try:
        from distributed import get_worker

        worker = str(get_worker().name)
    except (ImportError, ValueError):
        worker = "local"
    path = Path(run_dir)
    finished = rundir.RunDir(path).finished_summary()
    if finished is not None:
        return {**finished, "status": "skipped", "worker": worker}
    deadline = os.environ.get(DEADLINE_ENV)
    with stop_at(float(deadline) if deadline else None):
        stop = pending_stop()
        if stop is not None:  # this worker's time is up, or its sweep was stopped: leave the folder as it is
            _hand_over_or_stop(stop, path.name)
        resume = rundir.RunDir(path).is_run()
        if not resume and path.is_dir():
            shutil.rmtree(path)  # created by a run killed before it recorded what runs: nothing in it to keep
        print(f"{'resuming' if resume else 'starting'}: {path.name} on worker {worker}", flush=True)
        # The trial's own lines (one per evaluation) go to its log file, not into the sweep's output.
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(log_file, "a") as log, contextlib.redirect_stdout(log):
                if resume:
                    summary = resume_run(path, progress_bar=False, **train_kwargs)
                else:
                    _, summary = start_run(config, path.parent, run_dir=path, progress_bar=False, **train_kwargs)
        except KeyboardInterrupt as e:  # a stop in training (RunStopped, after its checkpoint), or before it
            _hand_over_or_stop(e.__cause__ if isinstance(e, RunStopped) and e.__cause__ else e, path.name)
    (path / rundir.WORKER).write_text(worker + "\n")
    return {**summary, "worker": worker}


def _hand_over_or_stop(stop: BaseException, trial: str) -> NoReturn:
    """A trial's stop, as Dask takes it: at a job's deadline (``Handover``) Dask runs the trial again on another
    worker (``Reschedule``, not a failure) and this worker retires; else ``TrialStopped`` (a KeyboardInterrupt
    must not leave the worker's thread)."""
    from lattice.experiments.process import Handover

    if isinstance(stop, Handover):
        try:
            from distributed import Reschedule, get_worker

            worker = get_worker()
        except (ImportError, ValueError):  # not in a Dask worker
            raise TrialStopped(f"{trial}: {stop}") from None
        worker.loop.add_callback(worker.close_gracefully, reason="its SLURM job's walltime is near")
        raise Reschedule()
    raise TrialStopped(f"{trial}: {stop or 'interrupted (Ctrl-C)'}") from None


def latest_evaluation(run_dir: Path) -> str:
    """A running trial's latest evaluation, for progress lines: ``step 4,096: return 12.34`` or ``starting``."""
    try:
        data = np.load(run_dir / rundir.EVALUATIONS)  # written atomically: never half a file
        step, returns = int(data["timesteps"][-1]), np.asarray(data["results"][-1])
    except (FileNotFoundError, OSError, KeyError, IndexError, ValueError):
        return "starting"
    return f"step {step:,}: return {returns.mean():.2f}"


def run_sweep(
    path: Path,
    log_dir: Path,
    max_concurrent: int | None = None,
    scheduler: str | None = None,
    slurm: bool = False,
    progress_every: float = 60.0,
) -> dict[str, dict[str, Any]]:
    """Run (or continue) a sweep; print progress; write ``sweep.yml`` and ``results.yml`` into its folder.

    :param path: The sweep file.
    :param log_dir: The sweep folder is ``log_dir/<name>``.
    :param max_concurrent: Trials at once on the embedded cluster (default: as many as the cores fit).
    :param scheduler: Address of an existing Dask scheduler (``tcp://host:port``) instead.
    :param slurm: Start Dask workers as SLURM jobs (the sweep's ``slurm:`` block) instead.
    :param progress_every: Seconds between lines on the running trials (a line per finished trial comes anyway).
    :return: Trial name → its result (summary, worker) or ``{"status": "failed", "error": ...}``.
    """
    sweep = load_yaml(path)
    trials = expand(sweep, path.parent)
    resources = trial_resources(sweep)
    name = folder_name(sweep.get("name"), path)
    if slurm and not sweep.get("slurm"):
        raise ConfigError(f"--slurm needs a 'slurm:' block in {path} (queue, account, walltime, cores, memory)")
    if slurm:
        slurm_plan(sweep["slurm"])  # its keys and values, before anything is created
    elif scheduler is None:
        check_local_gpus(resources)
    sweep_dir = log_dir / name
    check_unchanged(trials, sweep_dir, path)  # before anything in the folder changes
    created = not sweep_dir.exists()
    try:
        (sweep_dir / "trials").mkdir(parents=True, exist_ok=True)  # the same command again continues the sweep
    except OSError as e:
        raise ConfigError(f"Cannot create the sweep folder {sweep_dir}: {e.strerror or e}") from None
    try:
        # One process runs a sweep folder's trials at a time: a second copy of the command is refused (FolderInUse)
        # before it starts a cluster. Each trial also holds its run folder's lock while it trains.
        with writer_lock(sweep_dir):
            # Again under the lock (no other process can start a trial now); then sweep.yml is the file as it is,
            # which matches every trial that ran.
            check_unchanged(trials, sweep_dir, path)
            record = yaml.safe_dump({**sweep, "trials": sorted(trials)}, sort_keys=False)
            rundir.atomic_write_text(sweep_dir / "sweep.yml", record)
            return _run_trials(sweep, trials, resources, sweep_dir, max_concurrent, scheduler, slurm, progress_every)
    except UsageError as e:
        if created and not isinstance(e, FolderInUse):  # refused before any trial ran: leave nothing behind
            shutil.rmtree(sweep_dir, ignore_errors=True)
        raise


def _run_trials(
    sweep: dict[str, Any],
    trials: dict[str, dict[str, Any]],
    resources: dict[str, int],
    sweep_dir: Path,
    max_concurrent: int | None,
    scheduler: str | None,
    slurm: bool,
    progress_every: float,
) -> dict[str, dict[str, Any]]:
    """Start or connect to the cluster, hand it the trials as workers free up, print progress, write the results.

    :raises SweepStopped: on Ctrl-C or SIGTERM, after the running trials saved their checkpoints.
    :raises NoWorkers: when no worker joined for the cluster's ``worker_wait``.
    """
    from distributed import as_completed

    name = sweep_dir.name
    engine = connect(sweep, resources, max_concurrent, scheduler, slurm, len(trials), sweep_dir)
    results: dict[str, dict[str, Any]] = {}
    futures: dict[Any, str] = {}
    try:
        retries = sweep_retries(sweep)
        workers = len(engine.client.scheduler_info()["workers"])
        print(f"sweep {name}: {len(trials)} trials in {sweep_dir} on {engine.address} ({workers} workers)", flush=True)
        # Trials are handed to Dask only as workers free up: with all of them submitted at once, Dask queued the
        # resource-restricted tasks on one worker and left the other idle (seen on a 2-worker sweep). Seed by
        # seed, so that a sweep stopped early has every noise × task at about the same number of seeds.
        waiting = sorted(trials, key=lambda t: trials[t]["seed"])
        pending = as_completed()
        last_status = time.monotonic()
        while waiting or not pending.is_empty():
            engine.tick(len(trials) - len(results))  # SLURM: replace ended jobs; give up without workers
            free = engine.slots() - pending.count() if waiting else 0
            for trial in [waiting.pop(0) for _ in range(min(max(0, free), len(waiting)))]:
                future = engine.client.submit(
                    run_trial,
                    trials[trial],
                    str(sweep_dir / "trials" / trial),
                    str(sweep_dir / "output" / f"{trial}.log"),
                    resources["cpus"],
                    key=trial,
                    retries=retries,
                    pure=False,
                    resources=engine.submit_resources,
                )
                futures[future] = trial
                pending.add(future)
            for future in pending.next_batch(block=False):
                trial = futures[future]
                if future.status == "finished":
                    results[trial] = future.result()
                    final = results[trial]["final_eval"]
                    line = f"{results[trial]['status']}: {trial} | return {final['return_mean']:.2f}"
                    line += f" | worker {results[trial]['worker']}"
                else:
                    results[trial] = {"status": "failed", "error": repr(future.exception())}
                    line = f"FAILED after {retries + 1} tries: {trial} | {results[trial]['error'][:200]}"
                print(f"{_counts(trials, results, _running(engine, trials, results))} {line}", flush=True)
            if time.monotonic() - last_status >= progress_every:
                running = _running(engine, trials, results)
                latest = "; ".join(f"{t} ({latest_evaluation(sweep_dir / 'trials' / t)})" for t in running)
                print(f"{_counts(trials, results, running)} running: {latest or 'none'}", flush=True)
                last_status = time.monotonic()
            time.sleep(0.2)
        (sweep_dir / rundir.ERROR).unlink(missing_ok=True)  # an earlier driver's error, now run past
    except BaseException as e:
        raise stop_running_trials(e, engine, [f for f in futures if not f.done()], sweep_dir) from None
    finally:
        rundir.atomic_write_text(sweep_dir / "results.yml", yaml.safe_dump(results, sort_keys=True))
        engine.close()
    return results


def stop_running_trials(error: BaseException, engine: Engine, running: list[Any], folder: Path) -> BaseException:
    """A sweep's (or tuning's) driver stops: Ctrl-C, SIGTERM, no workers, or an error of its own. The running trials
    save their checkpoints (``Engine.stop_trials``); returns what to raise: ``SweepStopped`` for a stop on request,
    ``NoWorkers`` as it is, and for an error of the driver ``SweepStopped`` naming it, with its traceback in
    ``<folder>/error.txt``."""
    if isinstance(error, (NoWorkers, ConfigError)):
        return error
    if isinstance(error, KeyboardInterrupt):  # Ctrl-C, or SIGTERM (Terminated)
        why = str(error) or "interrupted (Ctrl-C)"
        return SweepStopped(why, engine.stop_trials(why, running), 143 if isinstance(error, Terminated) else 130)
    rundir.atomic_write_text(folder / rundir.ERROR, "".join(traceback.format_exception(error)))
    why = f"{type(error).__name__}: {error}; its traceback is in {folder / rundir.ERROR}"
    return SweepStopped(why, engine.stop_trials(why, running), 1)


class SweepStopped(Exception):
    """A sweep (or tuning) stopped before its end (Ctrl-C, SIGTERM, an error of the driver), after its running trials
    saved their checkpoints.

    :param why: ``interrupted (Ctrl-C)``, ``terminated by SIGTERM``, or the driver's error.
    :param trials: The trials that were running (each saved a checkpoint where it could).
    :param exit_code: 130 for Ctrl-C, 143 for SIGTERM, 1 for an error.
    """

    def __init__(self, why: str, trials: list[str], exit_code: int):
        super().__init__(why)
        self.why, self.trials, self.exit_code = why, trials, exit_code


def _running(engine: Engine, trials: dict[str, Any], results: dict[str, Any]) -> list[str]:
    """Trials a worker is running now (Dask's task keys are the trial names)."""
    return engine.running([t for t in trials if t not in results])


def _counts(trials: dict[str, Any], results: dict[str, Any], running: list[str]) -> str:
    failed = sum(r["status"] == "failed" for r in results.values())
    queued = len(trials) - len(results) - len(running)
    return f"[{len(results) - failed} done, {len(running)} running, {queued} queued, {failed} failed]"

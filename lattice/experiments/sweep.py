"""Sweeps: a grid of algorithm × noise × task × seed (× any setting), one training run per trial, on Dask.

A sweep file (``configs/sweeps/*.yaml``)::

    name: tiny                          # the sweep folder: <log_dir>/<name>/
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
    retries: 1                          # Dask retries of a failed trial
    resources: {cpus: 4, gpus: 1}       # what one trial occupies (default: 1 CPU, no GPU)
    slurm: {queue: gpu, account: lab, walltime: "24:00:00", cores: 8, memory: 32GB, jobs: 4}   # for --slurm

Resources: every Dask worker runs one trial at a time (one thread per worker process: SB3 seeds global RNGs, so
trials must not share a process). A trial asks for ``resources`` (Dask's abstract resources ``cpus`` and ``gpus``),
so a worker runs it only if it declares at least as much (``dask worker ... --resources "cpus=4,gpus=1"``). The
embedded cluster starts ``cores // cpus`` workers (and no more than the GPUs allow), each with its own GPUs
(``CUDA_VISIBLE_DEVICES``); ``--slurm`` starts ``cores // cpus`` worker processes per job, each declaring that.

Each trial is exactly a run of ``lattice-train`` (``lattice.experiments.training``), in ``<sweep>/trials/<trial>/``.
Running the same sweep again skips finished trials and resumes unfinished ones from their checkpoints. One process
runs a sweep folder at a time: a second copy of the command, while the first runs, exits with code 2 naming it
(``lattice.experiments.rundir.writer_lock``), and each trial holds its own run folder's lock while it trains.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from lattice.experiments import rundir
from lattice.experiments.config import ConfigError, load_yaml, resolve_config

GRID_NAMES = ("algo", "noise", "env", "seed")
SWEEP_KEYS = ("name", "grid", "settings", "retries", "resources", "slurm")


def _as_text(value: Any) -> str:
    """A value as YAML flow text, for a ``key=value`` setting."""
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").strip()


def expand(sweep: dict[str, Any], base: Path = Path(".")) -> dict[str, dict[str, Any]]:
    """Trial name → resolved config, for every combination of the grid (all validated before anything runs).

    :param base: The folder that the grid's ``config`` paths are relative to (the sweep file's).
    """
    unknown = set(sweep) - set(SWEEP_KEYS)
    if unknown:
        raise ConfigError(f"Unknown sweep key(s) {sorted(unknown)}; valid: {', '.join(SWEEP_KEYS)}")
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
    settings = [f"{k}={_as_text(v)}" for k, v in (sweep.get("settings") or {}).items()]
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
        hyperparams = settings + [f"{k}={_as_text(v)}" for k, v in extra.items()]
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
        name = re.sub(r"[^A-Za-z0-9._=+-]", "", name + "".join(f"_{k}={_as_text(v)}" for k, v in extra.items()))
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


def run_trial(config: dict[str, Any], run_dir: str, log_file: str, **train_kwargs: Any) -> dict[str, Any]:
    """Run one trial to its end (in a Dask worker): skip it if finished, resume it if started, else start it.

    :param config: The trial's resolved config.
    :param run_dir: Its run folder.
    :param log_file: Where its printed lines go (appended), e.g. ``<sweep>/output/<trial>.log``.
    :param train_kwargs: More keywords of ``lattice.experiments.training.train`` (e.g. ``after_eval``).
    :return: The trial's summary, with the status (``finished`` or ``skipped``) and the worker's name.
    """
    from lattice.experiments.process import configure_process
    from lattice.experiments.training import resume_run, start_run

    configure_process()  # a worker process is an experiment process like the CLI's

    try:
        from distributed import get_worker

        worker = str(get_worker().name)
    except (ImportError, ValueError):
        worker = "local"
    path = Path(run_dir)
    finished = rundir.RunDir(path).finished_summary()
    if finished is not None:
        return {**finished, "status": "skipped", "worker": worker}
    resume = rundir.RunDir(path).is_run()
    if not resume and path.is_dir():
        shutil.rmtree(path)  # created by a run killed before it recorded what runs: nothing in it to keep
    print(f"{'resuming' if resume else 'starting'}: {path.name} on worker {worker}", flush=True)
    # The trial's own lines (one per evaluation) go to its log file, not into the sweep's output.
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "a") as log, contextlib.redirect_stdout(log):
        if resume:
            summary = resume_run(path, progress_bar=False, **train_kwargs)
        else:
            _, summary = start_run(config, path.parent, run_dir=path, progress_bar=False, **train_kwargs)
    (path / rundir.WORKER).write_text(worker + "\n")
    return {**summary, "worker": worker}


def _resource_text(resources: dict[str, int]) -> str:
    return ",".join(f"{k}={v}" for k, v in resources.items())


def _use_gpus(first: int, count: int) -> None:
    """In a worker process, before CUDA starts: see only GPUs ``first .. first + count - 1``."""
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(first + i) for i in range(count))


def _local_cluster(n_workers: int | None, resources: dict[str, int], n_trials: int) -> Any:
    """An embedded LocalCluster on 127.0.0.1: as many one-thread workers as the machine's cores (and GPUs) fit."""
    from distributed import Client, LocalCluster

    fit = max(1, (os.cpu_count() or 1) // resources["cpus"])
    cap = n_trials  # --max-concurrent may exceed the cores, never the GPUs
    gpus = resources.get("gpus", 0)
    if gpus:
        import torch as th

        cap = min(cap, th.cuda.device_count() // gpus)  # at least 1: checked by _check_local_gpus
    n_workers = max(1, min(n_workers or fit, cap))
    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",  # the scheduler's HTTP endpoint on a free port: sweeps side by side never clash
        resources=resources,
    )
    client = Client(cluster)
    for i, address in enumerate(sorted(client.scheduler_info()["workers"]) if gpus else []):
        client.run(_use_gpus, i * gpus, gpus, workers=[address])
    return client


def _check_local_gpus(resources: dict[str, int]) -> None:
    """For the embedded cluster: this machine must have the GPUs one trial asks for."""
    gpus = resources.get("gpus", 0)
    if gpus:
        import torch as th

        available = th.cuda.device_count()
        if available < gpus:
            raise ConfigError(
                f"resources.gpus={gpus} per trial, but this machine has {available} CUDA GPU(s); "
                "set resources.gpus to 0 or run on a machine with GPUs"
            )


def slurm_cluster(options: dict[str, Any], resources: dict[str, int]) -> Any:
    """Dask workers as SLURM jobs (dask-jobqueue): a job of ``cores`` runs ``cores // cpus`` trials at once, each in
    its own worker process; a job for GPU trials runs one trial, with ``--gres=gpu:<gpus>``."""
    from dask_jobqueue import SLURMCluster

    options = {k: v for k, v in options.items() if k != "jobs"}  # jobs: how many, for scale()
    gpus = resources.get("gpus", 0)
    per_job = 1 if gpus else max(1, int(options.get("cores", resources["cpus"])) // resources["cpus"])
    if gpus:
        options["job_extra_directives"] = [*options.get("job_extra_directives", []), f"--gres=gpu:{gpus}"]
    options["worker_extra_args"] = [*options.get("worker_extra_args", []), "--resources", _resource_text(resources)]
    # Trials with n_envs > 1 start env processes: the worker processes must not be daemonic.
    prologue = "export DASK_DISTRIBUTED__WORKER__DAEMON=False"
    options["job_script_prologue"] = [*options.get("job_script_prologue", []), prologue]
    return SLURMCluster(processes=per_job, **options)


def _check_workers(client: Any, resources: dict[str, int]) -> None:
    """On an existing cluster: fail early if its workers cannot run a trial (they never would)."""
    workers = client.scheduler_info()["workers"].values()
    if workers and not any(all(w.get("resources", {}).get(k, 0) >= v for k, v in resources.items()) for w in workers):
        raise ConfigError(
            f"No worker of {client.scheduler.address} declares the resources a trial needs "
            f"({_resource_text(resources)}); start workers with: "
            f'dask worker ADDRESS --nthreads 1 --resources "{_resource_text(resources)}"'
        )


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
    name = str(sweep.get("name") or path.stem)
    if slurm and not sweep.get("slurm"):
        raise ConfigError(f"--slurm needs a 'slurm:' block in {path} (queue, account, walltime, cores, memory)")
    if scheduler is None and not slurm:
        _check_local_gpus(resources)
    sweep_dir = log_dir / name
    created = not sweep_dir.exists()
    try:
        (sweep_dir / "trials").mkdir(parents=True, exist_ok=True)  # the same command again continues the sweep
    except OSError as e:
        raise ConfigError(f"Cannot create the sweep folder {sweep_dir}: {e.strerror or e}") from None
    try:
        # One process runs a sweep folder's trials at a time: a second copy of the command is refused (FolderInUse)
        # before it starts a cluster. Each trial also holds its run folder's lock while it trains.
        with rundir.writer_lock(sweep_dir):
            return _run_trials(sweep, trials, resources, sweep_dir, max_concurrent, scheduler, slurm, progress_every)
    except ConfigError as e:
        if created and not isinstance(e, rundir.FolderInUse):  # refused before any trial ran: leave nothing behind
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
    """Start or connect to the cluster, hand it the trials as workers free up, print progress, write the results."""
    from distributed import as_completed

    name = sweep_dir.name
    client, submit_resources = connect(sweep, resources, max_concurrent, scheduler, slurm, len(trials))
    results: dict[str, dict[str, Any]] = {}
    try:
        (sweep_dir / "sweep.yml").write_text(yaml.safe_dump({**sweep, "trials": sorted(trials)}, sort_keys=False))
        retries = int(sweep.get("retries", 1))
        workers = len(client.scheduler_info()["workers"])
        print(f"sweep {name}: {len(trials)} trials in {sweep_dir} on {client.scheduler.address} ({workers} workers)")
        # Trials are handed to Dask only as workers free up: with all of them submitted at once, Dask queued the
        # resource-restricted tasks on one worker and left the other idle (seen on a 2-worker sweep). Seed by
        # seed, so that a sweep stopped early has every noise × task at about the same number of seeds.
        waiting = sorted(trials, key=lambda t: trials[t]["seed"])
        futures: dict[Any, str] = {}
        pending = as_completed()
        last_status = last_slots = time.monotonic()
        slots = worker_slots(client, submit_resources)
        while waiting or not pending.is_empty():
            if waiting and time.monotonic() - last_slots >= 5.0:  # workers may join or leave (SLURM jobs)
                slots, last_slots = worker_slots(client, submit_resources), time.monotonic()
            free = slots - pending.count() if waiting else 0
            for trial in [waiting.pop(0) for _ in range(min(max(0, free), len(waiting)))]:
                future = client.submit(
                    run_trial,
                    trials[trial],
                    str(sweep_dir / "trials" / trial),
                    str(sweep_dir / "output" / f"{trial}.log"),
                    key=trial,
                    retries=retries,
                    pure=False,
                    resources=submit_resources,
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
                print(f"{_counts(trials, results, _running(client, trials, results))} {line}", flush=True)
            if time.monotonic() - last_status >= progress_every:
                running = _running(client, trials, results)
                latest = "; ".join(f"{t} ({latest_evaluation(sweep_dir / 'trials' / t)})" for t in running)
                print(f"{_counts(trials, results, running)} running: {latest or 'none'}", flush=True)
                last_status = time.monotonic()
            time.sleep(0.2)
    finally:
        rundir.atomic_write_text(sweep_dir / "results.yml", yaml.safe_dump(results, sort_keys=True))
        client.close()
    return results


def connect(
    sweep: dict[str, Any],
    resources: dict[str, int],
    max_concurrent: int | None,
    scheduler: str | None,
    slurm: bool,
    n_trials: int,
) -> tuple[Any, dict[str, int] | None]:
    """A Dask client: of an existing scheduler, of SLURM jobs, or of an embedded cluster; and the resources to ask
    for per trial (None: the workers of an existing scheduler declare none, and the sweep asks for none).

    :param sweep: The sweep (or tuning) file's contents: its ``resources:`` and ``slurm:`` blocks.
    """
    import dask
    from distributed import Client

    # Trials start env worker processes (SubprocVecEnv): Dask's worker processes must not be daemonic.
    dask.config.set({"distributed.worker.daemon": False})
    if scheduler is not None:
        client = Client(scheduler)
        # Workers declare no resources unless started with --resources: ask for them only when the sweep does.
        submit_resources = resources if "resources" in sweep else None
        if submit_resources:
            try:
                _check_workers(client, submit_resources)
            except ConfigError:
                client.close()
                raise
        return client, submit_resources
    if slurm:
        cluster = slurm_cluster(sweep["slurm"], resources)
        cluster.scale(jobs=int(sweep["slurm"].get("jobs", 1)))
        return Client(cluster), resources
    return _local_cluster(max_concurrent, resources, n_trials), resources


def worker_slots(client: Any, resources: dict[str, int] | None) -> int:
    """Trials the cluster's workers can run at once (at least 1, so that a sweep waits for workers to join)."""
    slots = 0
    for worker in client.scheduler_info()["workers"].values():
        if resources:
            have = worker.get("resources", {})
            slots += min(int(have.get(k, 0) // v) for k, v in resources.items())
        else:
            slots += int(worker.get("nthreads", 1))
    return max(1, slots)


def _executing(dask_worker: Any) -> list[str]:
    """Keys of the tasks a Dask worker is executing now (run on the worker by ``client.run``)."""
    return [str(task.key) for task in dask_worker.state.executing]


def _running(client: Any, trials: dict[str, Any], results: dict[str, Any]) -> list[str]:
    """Trials a worker is running now (Dask's task keys are the trial names). The scheduler's ``processing``
    also counts tasks waiting in a worker's queue (tasks with resource restrictions all go there), so ask the
    workers."""
    busy = {key for keys in client.run(_executing).values() for key in keys}
    return sorted(t for t in trials if t in busy and t not in results)


def _counts(trials: dict[str, Any], results: dict[str, Any], running: list[str]) -> str:
    failed = sum(r["status"] == "failed" for r in results.values())
    queued = len(trials) - len(results) - len(running)
    return f"[{len(results) - failed} done, {len(running)} running, {queued} queued, {failed} failed]"

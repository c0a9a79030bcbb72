"""Sweeps: a grid of algorithm × noise × task × seed (× any setting), one training run per trial, on Dask.

A sweep file (``configs/sweeps/*.yaml``)::

    name: tiny                          # the sweep folder: <log_dir>/<name>/
    grid:                               # every combination is one trial
      algo: [ppo]
      noise: [lattice, isotropic]
      env: [elbow]
      seed: [0, 1]
      policy_kwargs.alpha: [0.5, 1.0]   # any setting may be a grid axis (as in --hyperparams)
    settings: {timesteps: 100000, n_envs: 4}   # for every trial: config keys or algorithm keywords (dotted)
    retries: 1                          # Dask retries of a failed trial
    slurm: {queue: gpu, account: lab, walltime: "24:00:00", cores: 8, memory: 32GB, jobs: 4}   # for --slurm

Each trial is exactly a run of ``experiments/run.py`` (``lattice.training``), in ``<sweep>/trials/<trial>/``.
Running the same sweep again skips finished trials and resumes unfinished ones from their checkpoints.
"""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path
from typing import Any

import yaml

from lattice.config import ConfigError, load_yaml, resolve_config

GRID_NAMES = ("algo", "noise", "env", "seed")


def _as_text(value: Any) -> str:
    """A value as YAML flow text, for a ``key=value`` setting."""
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").strip()


def expand(sweep: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Trial name → resolved config, for every combination of the grid (all validated before anything runs)."""
    unknown = set(sweep) - {"name", "grid", "settings", "retries", "resources", "slurm"}
    if unknown:
        raise ConfigError(f"Unknown sweep key(s) {sorted(unknown)}; valid: name, grid, settings, retries, slurm")
    grid = dict(sweep.get("grid") or {})
    for name in GRID_NAMES:
        values = grid.get(name)
        if not isinstance(values, list) or not values:
            raise ConfigError(f"The sweep's grid needs a non-empty list for {name!r}, got {values!r}")
    settings = [f"{k}={_as_text(v)}" for k, v in (sweep.get("settings") or {}).items()]
    axes = list(grid)
    trials: dict[str, dict[str, Any]] = {}
    for values in itertools.product(*(grid[a] for a in axes)):
        point = dict(zip(axes, values, strict=True))
        extra = {k: v for k, v in point.items() if k not in GRID_NAMES}
        name = f"{point['algo']}_{point['noise']}_{point['env']}_seed{point['seed']}"
        name += "".join(f"_{k}={_as_text(v)}" for k, v in extra.items())
        name = re.sub(r"[^A-Za-z0-9._=+-]", "", name)
        trials[name] = resolve_config(
            str(point["algo"]),
            str(point["noise"]),
            str(point["env"]),
            overrides={"seed": point["seed"]},
            hyperparams=settings + [f"{k}={_as_text(v)}" for k, v in extra.items()],
        )
    return trials


def run_trial(config: dict[str, Any], run_dir: str) -> dict[str, Any]:
    """Run one trial to its end (in a Dask worker): skip it if finished, resume it if started, else start it.

    :return: The trial's summary, with the status (``finished`` or ``skipped``) and the worker's name.
    """
    os.environ.setdefault("MUJOCO_GL", "egl")
    from lattice.training import resume_run, start_run

    try:
        from distributed import get_worker

        worker = str(get_worker().name)
    except (ImportError, ValueError):
        worker = "local"
    path = Path(run_dir)
    summary_path = path / "summary.yml"
    if summary_path.is_file() and load_yaml(summary_path).get("status") == "finished":
        return {**load_yaml(summary_path), "status": "skipped", "worker": worker}
    if (path / "config.yml").is_file():
        summary = resume_run(path, progress_bar=False)
    else:
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()  # created by a run killed before it wrote anything
        _, summary = start_run(config, path.parent, run_dir=path, progress_bar=False)
    (path / "worker.txt").write_text(worker + "\n")
    return {**summary, "worker": worker}


def _client(n_workers: int, scheduler: str | None, slurm: dict[str, Any] | None) -> Any:
    """A Dask client: an embedded LocalCluster on 127.0.0.1, an existing scheduler, or SLURM via dask-jobqueue."""
    import dask
    from distributed import Client, LocalCluster

    # Trials start env worker processes (SubprocVecEnv): Dask's worker processes must not be daemonic.
    dask.config.set({"distributed.worker.daemon": False})
    if scheduler is not None:
        return Client(scheduler)
    if slurm is not None:
        from dask_jobqueue import SLURMCluster

        options = dict(slurm)
        jobs = int(options.pop("jobs", n_workers))
        slurm_cluster = SLURMCluster(processes=1, **options)
        slurm_cluster.scale(jobs=jobs)
        return Client(slurm_cluster)
    cluster = LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    return Client(cluster)


def run_sweep(
    path: Path,
    log_dir: Path,
    max_concurrent: int | None = None,
    scheduler: str | None = None,
    slurm: bool = False,
) -> dict[str, dict[str, Any]]:
    """Run (or continue) a sweep; print progress; write ``sweep.yml`` and ``results.yml`` into its folder.

    :param path: The sweep file.
    :param log_dir: The sweep folder is ``log_dir/<name>``.
    :param max_concurrent: Trials at once on the embedded cluster (default: CPU cores).
    :param scheduler: Address of an existing Dask scheduler (``tcp://host:port``) instead.
    :param slurm: Start Dask workers as SLURM jobs (the sweep's ``slurm:`` block) instead.
    :return: Trial name → its result (summary, worker) or ``{"status": "failed", "error": ...}``.
    """
    from distributed import as_completed

    sweep = load_yaml(path)
    trials = expand(sweep)
    name = str(sweep.get("name") or path.stem)
    if slurm and not sweep.get("slurm"):
        raise ConfigError(f"--slurm needs a 'slurm:' block in {path} (queue, account, walltime, cores, memory)")
    sweep_dir = log_dir / name
    (sweep_dir / "trials").mkdir(parents=True, exist_ok=True)  # the same command again continues the sweep
    (sweep_dir / "sweep.yml").write_text(yaml.safe_dump({**sweep, "trials": sorted(trials)}, sort_keys=False))
    n_workers = max(1, min(max_concurrent or os.cpu_count() or 1, len(trials)))
    client = _client(n_workers, scheduler, sweep.get("slurm") if slurm else None)
    retries = int(sweep.get("retries", 1))
    print(f"sweep {name}: {len(trials)} trials in {sweep_dir} on {client.scheduler.address}", flush=True)
    futures = {
        client.submit(
            run_trial, config, str(sweep_dir / "trials" / trial), key=trial, retries=retries, pure=False
        ): trial
        for trial, config in trials.items()
    }
    results: dict[str, dict[str, Any]] = {}
    try:
        for future in as_completed(futures):
            trial = futures[future]
            if future.status == "finished":
                results[trial] = future.result()
                final = results[trial]["final_eval"]
                line = f"{results[trial]['status']}: {trial} | return {final['return_mean']:.2f}"
                line += f" | worker {results[trial]['worker']}"
            else:
                results[trial] = {"status": "failed", "error": repr(future.exception())}
                line = f"FAILED after {retries + 1} tries: {trial} | {results[trial]['error'][:200]}"
            failed = sum(r["status"] == "failed" for r in results.values())
            print(
                f"[{len(results) - failed} done, {len(trials) - len(results)} to go, {failed} failed] {line}",
                flush=True,
            )
    finally:
        (sweep_dir / "results.yml").write_text(yaml.safe_dump(results, sort_keys=True))
        client.close()
    return results

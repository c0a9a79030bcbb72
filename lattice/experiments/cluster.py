"""Where the trials of a sweep or a tuning run (``connect`` → ``Engine``): an embedded Dask cluster on this machine,
an existing Dask scheduler, or Dask workers in SLURM jobs that the driver keeps alive.

Every Dask worker runs one trial at a time (one thread per worker process: SB3 seeds global RNGs, so trials must not
share a process). A trial asks for its ``resources`` (Dask's abstract resources ``cpus`` and ``gpus``).

SLURM (``--slurm``, the file's ``slurm:`` block). dask-jobqueue writes the job script; the driver owns the jobs:

- Names and logs: the jobs of a sweep are named ``lattice-<name>-<hash of its folder>``, their logs go to
  ``<sweep>/jobs/``. A driver cancels the jobs of that name that an earlier driver of the same folder left behind
  (killed, or its login session lost) and waits until they have ended, so that their trials' run folders are free;
  every exit of the driver (done, Ctrl-C, SIGTERM, an error) cancels its jobs.
- Lost jobs are replaced. dask-jobqueue's ``scale`` submits jobs once and never replaces one that ends, and its
  ``adapt`` replaces an ended job only when that job runs a single worker process (it matches workers to jobs by
  name, and a job of several processes names its workers ``<job>-<i>``). So the driver keeps its own count: every
  ``POLL`` seconds it asks ``squeue`` which of its jobs still exist and submits a new job for each that ended, while
  the unfinished trials need it. Dask gives a lost worker's trial to another worker, where it resumes from its last
  checkpoint; a worker lost while it ran a trial counts against that trial's ``retries``, as an error does (Dask's
  ``allowed-failures`` is set to ``retries``).
- Walltime is planned, not suffered: a job's trials stop ``margin`` seconds before its walltime, save a checkpoint
  and hand over (Dask's ``Reschedule``, which is not a failure), and the worker retires; Dask's ``--lifetime``
  (half a margin before the walltime, staggered) retires a worker in any case before SLURM would kill it. A trial
  longer than one walltime thus goes on across jobs, each resuming from the checkpoint the last one saved.
- A sweep never waits forever: when trials wait and no worker has been connected for ``worker_wait`` seconds (jobs
  pending in a full queue, jobs that fail at start), the driver says so and exits (``NoWorkers``); the same command
  continues the sweep. A scheduler of the user's (``--scheduler``) that has no worker gets ``WORKER_WAIT``.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import inspect
import logging
import math
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lattice.experiments.config import ConfigError
from lattice.experiments.process import request_stop

# The keys of a ``slurm:`` block that the driver uses itself; the others are dask-jobqueue's SLURMCluster keywords.
SLURM_KEYS = {
    "jobs": "how many jobs run at once (default 1)",
    "margin": "seconds before the walltime at which a job's trials checkpoint and hand over "
    "(default: a tenth of the walltime, at least 30 s and at most 10 min)",
    "worker_wait": "seconds the sweep waits with no worker before it exits (default 3600)",
}
WORKER_WAIT = 3600.0  # default seconds without any worker before a sweep gives up (a job pending in a busy queue)
POLL = 5.0  # seconds between two looks at the jobs (squeue) and the workers
STOP_WAIT = 120.0  # seconds a stopped sweep waits for its running trials to save their checkpoints
DEADLINE_ENV = "LATTICE_TRIAL_DEADLINE"  # set in a job: when (seconds since the epoch) its trials hand over


class NoWorkers(RuntimeError):
    """No worker joined the cluster for ``worker_wait`` seconds while trials waited."""


@dataclass(frozen=True)
class SlurmPlan:
    """A ``slurm:`` block, checked: the driver's settings and dask-jobqueue's keywords.

    :param jobs: Jobs at once.
    :param walltime: The job's time limit in seconds (None: the partition's, unknown here: no handover planned).
    :param margin: Seconds before the walltime at which trials hand over.
    :param worker_wait: Seconds without any worker before the driver gives up.
    :param options: SLURMCluster keywords (``queue``, ``account``, ``walltime``, ``cores``, ``memory``, ...).
    """

    jobs: int
    walltime: float | None
    margin: float
    worker_wait: float
    options: dict[str, Any]


def walltime_seconds(text: str) -> float:
    """A SLURM time limit in seconds: ``minutes``, ``minutes:seconds``, ``hours:minutes:seconds``, ``days-hours``,
    ``days-hours:minutes`` or ``days-hours:minutes:seconds`` (``sbatch --time``'s formats).

    :raises ValueError: for any other text.
    """
    days, dash, clock = text.strip().rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    if len(parts) > 3 or min(parts) < 0 or (dash and not days):
        raise ValueError(text)
    if dash:  # days-hours[:minutes[:seconds]]
        hours, minutes, seconds = [*parts, 0, 0][:3]
    else:  # minutes, minutes:seconds, hours:minutes:seconds
        hours, minutes, seconds = [[0, parts[0], 0], [0, *parts], parts][len(parts) - 1]
    return float(((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + seconds)


def _jobqueue_keywords() -> set[str]:
    """The keywords SLURMCluster accepts (its own, its jobs', and their base classes')."""
    from dask_jobqueue import SLURMCluster
    from dask_jobqueue.core import Job, JobQueueCluster
    from dask_jobqueue.slurm import SLURMJob

    names: set[str] = set()
    for cls in (SLURMCluster, JobQueueCluster, SLURMJob, Job):
        names |= {n for n, p in inspect.signature(cls.__init__).parameters.items() if p.kind != p.VAR_KEYWORD}
    return names - {"self", "scheduler", "name", "processes", "config_name"}


def slurm_plan(block: Any) -> SlurmPlan:
    """Check a ``slurm:`` block (before anything is created): its keys, the jobs, the walltime and the margin.

    :raises ConfigError: naming the bad key or value and what is valid.
    """
    if not isinstance(block, dict) or not block:
        raise ConfigError(
            f"slurm: must be a mapping of settings (queue, account, walltime, cores, memory, jobs, ...), got {block!r}"
        )
    options = {k: v for k, v in block.items() if k not in SLURM_KEYS}
    unknown = sorted(set(options) - _jobqueue_keywords())
    if unknown:
        raise ConfigError(
            f"Unknown slurm setting(s) {unknown}; valid: {', '.join(SLURM_KEYS)} and dask-jobqueue's SLURMCluster "
            "keywords (queue, account, walltime, cores, memory, interface, job_extra_directives, ...)"
        )
    import dask

    for key in ("cores", "memory"):  # dask-jobqueue needs both, from the block or from its own config files
        if key not in options and dask.config.get(f"jobqueue.slurm.{key}", None) is None:
            raise ConfigError(f"slurm.{key} is needed: the {key} of one job (e.g. cores: 8, memory: 16GB)")
    jobs = block.get("jobs", 1)
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ConfigError(f"slurm.jobs must be an integer >= 1, got {jobs!r}")
    walltime = None
    if "walltime" in options:
        text = options["walltime"]
        try:
            walltime = walltime_seconds(text) if isinstance(text, str) else -1.0
        except ValueError:
            walltime = -1.0
        if walltime <= 0:
            unquoted = " (YAML reads an unquoted 00:02:00 as a number)" if isinstance(text, int) else ""
            raise ConfigError(
                f'slurm.walltime must be a positive time in quotes, in SLURM\'s format ("24:00:00", "2-00:00:00", '
                f'"30" for 30 minutes), got {text!r}{unquoted}'
            )
    default_margin = 30.0 if walltime is None else min(600.0, max(30.0, walltime / 10))
    margin = block.get("margin", default_margin)
    if not isinstance(margin, (int, float)) or isinstance(margin, bool) or margin <= 0:
        raise ConfigError(f"slurm.margin must be a positive number of seconds, got {margin!r}")
    if walltime is not None and margin >= walltime / 2:
        raise ConfigError(
            f"slurm.margin ({margin} s) must be less than half the walltime ({walltime:g} s): the trials of a job "
            "would have no time left to train"
        )
    wait = block.get("worker_wait", WORKER_WAIT)
    if not isinstance(wait, (int, float)) or isinstance(wait, bool) or wait <= 0:
        raise ConfigError(f"slurm.worker_wait must be a positive number of seconds, got {wait!r}")
    return SlurmPlan(jobs, walltime, float(margin), float(wait), options)


def job_name(folder: Path) -> str:
    """The SLURM job name of a sweep's (or tuning's) jobs: its name, and a hash of its folder so that two folders
    of the same name (two users' copies, two log dirs) never cancel each other's jobs."""
    digest = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:8]
    return f"lattice-{folder.name}-{digest}"


def _resource_text(resources: dict[str, int]) -> str:
    return ",".join(f"{k}={v}" for k, v in resources.items())


def _use_gpus(first: int, count: int) -> None:
    """In a worker process, before CUDA starts: see only GPUs ``first .. first + count - 1``."""
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(first + i) for i in range(count))


def check_local_gpus(resources: dict[str, int]) -> None:
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


def _stop_on_ctrl_c() -> None:
    """In an embedded cluster's worker process: Ctrl-C in the terminal reaches the whole process group; the trial
    stops as a run does on Ctrl-C (a checkpoint, ``error.txt``) instead of the process dying with a traceback."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, lambda signum, frame: request_stop("interrupted (Ctrl-C)"))


def _local_cluster(n_workers: int | None, resources: dict[str, int], n_trials: int) -> tuple[Any, Any]:
    """An embedded LocalCluster on 127.0.0.1 (its dashboard too): as many one-thread workers as the machine's cores
    (and GPUs) fit."""
    from distributed import Client, LocalCluster

    fit = max(1, (os.cpu_count() or 1) // resources["cpus"])
    cap = n_trials  # --max-concurrent may exceed the cores, never the GPUs
    gpus = resources.get("gpus", 0)
    if gpus:
        import torch as th

        cap = min(cap, th.cuda.device_count() // gpus)  # at least 1: checked by check_local_gpus
    n_workers = max(1, min(n_workers or fit, cap))
    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",  # a free port: sweeps side by side never clash
        resources=resources,
        # A trial's error is reported once, by the sweep (with its traceback in the trial's error.txt), not also
        # by the worker ("Compute Failed"), which would also print a traceback for a trial stopped on Ctrl-C.
        silence_logs=logging.CRITICAL,
    )
    client = Client(cluster)
    client.run(_stop_on_ctrl_c)
    for i, address in enumerate(sorted(client.scheduler_info()["workers"]) if gpus else []):
        client.run(_use_gpus, i * gpus, gpus, workers=[address])
    return cluster, client


def slurm_cluster(plan: SlurmPlan, resources: dict[str, int], folder: Path | None = None) -> Any:
    """A Dask scheduler in this process whose workers run as SLURM jobs (dask-jobqueue); no job is submitted yet
    (``JobKeeper`` does). A job of ``cores`` runs ``cores // cpus`` trials at once, each in its own worker process;
    a job for GPU trials runs one trial, with ``--gres=gpu:<gpus>``.

    :param folder: The sweep folder: the jobs' name and log folder come from it (``job_name``, ``<folder>/jobs``).
    """
    from dask_jobqueue import SLURMCluster

    options = dict(plan.options)
    gpus = resources.get("gpus", 0)
    per_job = trials_per_job(plan, resources)
    options.setdefault("cores", per_job * resources["cpus"])
    if gpus:
        options["job_extra_directives"] = [*options.get("job_extra_directives", []), f"--gres=gpu:{gpus}"]
    extra = [*options.get("worker_extra_args", []), "--resources", _resource_text(resources)]
    prologue = [
        *options.get("job_script_prologue", []),
        # Trials with n_envs > 1 start env processes: the worker processes must not be daemonic.
        "export DASK_DISTRIBUTED__WORKER__DAEMON=False",
    ]
    interface = options.get("interface")
    if interface:
        # A worker's HTTP endpoint binds every interface unless told one address: that of the workers' interface.
        find_ip = f"from distributed.utils import get_ip_interface; print(get_ip_interface({interface!r}))"
        python = shlex.quote(str(options.get("python") or sys.executable))
        prologue.append(f"export LATTICE_WORKER_IP=$({python} -c {shlex.quote(find_ip)})")
        extra += ["--dashboard-address", "${LATTICE_WORKER_IP}:0"]
    if plan.walltime is not None:
        # The trials hand over at walltime - margin (DEADLINE_ENV, read by run_trial); Dask retires the worker between
        # walltime - 3/4 margin and walltime - 1/4 margin, after the handover and before SLURM's kill.
        prologue.append(f"export {DEADLINE_ENV}=$(( $(date +%s) + {int(plan.walltime - plan.margin)} ))")
        extra += ["--lifetime", f"{int(plan.walltime - plan.margin / 2)}s"]
        extra += ["--lifetime-stagger", f"{max(1, int(plan.margin / 4))}s"]
    options["worker_extra_args"] = extra
    options["job_script_prologue"] = prologue
    scheduler_options = {"dashboard_address": None, **options.pop("scheduler_options", {})}
    if folder is not None:
        options.setdefault("job_name", job_name(folder))
        options.setdefault("log_directory", str((folder / "jobs").resolve()))
    return SLURMCluster(processes=per_job, scheduler_options=scheduler_options, **options)


def trials_per_job(plan: SlurmPlan, resources: dict[str, int]) -> int:
    """Trials one job runs at once: ``cores // cpus`` (one worker process each), or one GPU trial."""
    if resources.get("gpus", 0):
        return 1
    return max(1, int(plan.options.get("cores", resources["cpus"])) // resources["cpus"])


class JobKeeper:
    """Keeps ``jobs`` SLURM jobs of a dask-jobqueue cluster alive while trials need them (see the module docstring).

    :param cluster: The SLURMCluster (its ``worker_spec`` / ``workers``: one entry per job).
    :param jobs: Jobs at once.
    :param per_job: Trials one job runs at once.
    :param log_dir: Where the jobs' logs go (for the lines it prints).
    :param say: Where its lines go (submitted, ended, replaced).
    """

    def __init__(self, cluster: Any, jobs: int, per_job: int, log_dir: str, say: Any = print):
        self.cluster, self.jobs, self.per_job, self.log_dir, self.say = cluster, jobs, per_job, log_dir, say
        self.name = str(cluster.job_name)
        self.user = getpass.getuser()

    def _squeue(self) -> dict[str, str]:
        """Job id → state of this sweep's jobs that SLURM still knows (pending, running, completing)."""
        out = subprocess.run(
            ["squeue", "--noheader", "--name", self.name, "--user", self.user, "--format", "%i %T"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        return dict(line.split(None, 1) for line in out.splitlines() if line.strip())

    def cancel_all(self, wait: float = 120.0) -> list[str]:
        """Cancel every job of this name (also those a killed driver left) and wait until SLURM has ended them, so
        that no worker of theirs still writes into a run folder. Returns the ids that were cancelled."""
        try:
            found = left = self._squeue()
        except (OSError, subprocess.SubprocessError):
            return []
        if found:
            subprocess.run(["scancel", "--name", self.name, "--user", self.user], capture_output=True, timeout=60)
        deadline = time.monotonic() + wait
        while left and time.monotonic() < deadline:
            time.sleep(1.0)
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                left = self._squeue()
        if left:
            jobs = ", ".join(sorted(left))
            raise NoWorkers(f"SLURM has not ended the jobs {jobs} ({self.name}) {wait:g} s after scancel")
        return sorted(found)

    def keep(self, unfinished: int) -> None:
        """Forget the jobs that ended and submit new ones up to what ``unfinished`` trials need (at most ``jobs``).
        When ``squeue`` fails (a controller restarting), nothing changes until the next call."""
        # The jobs submitted so far, before asking SLURM: a job submitted meanwhile is not taken for an ended one.
        submitted = [(name, job.job_id) for name, job in list(self.cluster.workers.items()) if job.job_id is not None]
        try:
            live = self._squeue()
        except (OSError, subprocess.SubprocessError) as e:
            self.say(
                f"warning: squeue failed ({type(e).__name__}); the jobs are looked at again in {POLL:g} s", flush=True
            )
            return
        for name, job_id in submitted:
            if job_id not in live:  # ended: done, cancelled, preempted, timed out
                self.say(f"job {job_id} ended; its trials go to other workers", flush=True)
                self.cluster.workers.pop(name, None)
                self.cluster.worker_spec.pop(name, None)
        need = min(self.jobs, math.ceil(unfinished / self.per_job))
        have = len(self.cluster.worker_spec)
        if have < need:
            self.cluster.scale(jobs=need)  # adds the missing jobs' specs and submits them (sbatch)
            self.say(f"submitting {need - have} SLURM job(s) ({self.name}; logs in {self.log_dir})", flush=True)


class Engine:
    """A Dask client and what stands behind it (an embedded cluster, SLURM jobs, or a scheduler of the user's).

    :param client: The Dask client.
    :param submit_resources: The resources to ask for per trial (None: the workers of an existing scheduler
        declare none, and the trials ask for none).
    :param cluster: The cluster this process started (closed with the engine), or None.
    :param keeper: The SLURM job keeper, or None.
    :param worker_wait: Seconds without any worker before ``tick`` raises ``NoWorkers`` (None: wait).
    """

    def __init__(
        self,
        client: Any,
        submit_resources: dict[str, int] | None,
        cluster: Any = None,
        keeper: JobKeeper | None = None,
        worker_wait: float | None = None,
    ):
        self.client, self.submit_resources, self.cluster, self.keeper = client, submit_resources, cluster, keeper
        self.worker_wait = worker_wait
        self._workers_seen = time.monotonic()
        self._ticked = -math.inf
        self._slots = (-math.inf, 1)  # (when counted, trials the workers can run at once)

    @property
    def address(self) -> str:
        return str(self.client.scheduler.address)

    def slots(self) -> int:
        """Trials the cluster's workers can run at once (at least 1, so that a sweep waits for workers to join),
        counted again every ``POLL`` seconds (workers join and leave: SLURM jobs; the drivers ask in every loop)."""
        counted, slots = self._slots
        if time.monotonic() - counted >= POLL:
            self._slots = counted, slots = time.monotonic(), worker_slots(self.client, self.submit_resources)
        return slots

    def tick(self, unfinished: int) -> None:
        """Keep the SLURM jobs (``JobKeeper.keep``), and give up when no worker has been seen for ``worker_wait``.
        Looks every ``POLL`` seconds (calls in between return at once).

        :param unfinished: Trials not finished yet (running or waiting).
        :raises NoWorkers: when trials wait and no worker has been connected for ``worker_wait`` seconds.
        """
        if time.monotonic() - self._ticked < POLL:
            return
        self._ticked = time.monotonic()
        if self.keeper is not None:
            self.keeper.keep(unfinished)
        if unfinished == 0 or self.client.scheduler_info()["workers"]:
            self._workers_seen = time.monotonic()
        elif self.worker_wait is not None and time.monotonic() - self._workers_seen > self.worker_wait:
            where = f"SLURM jobs {self.keeper.name} (squeue --name {self.keeper.name})" if self.keeper else self.address
            raise NoWorkers(f"no worker joined for {self.worker_wait:g} s ({where})")

    def running(self, keys: list[str]) -> list[str]:
        """Those of ``keys`` (trial task keys) that a worker is executing now."""
        return running(self.client, keys)

    def stop_trials(self, why: str, futures: list[Any], wait: float = STOP_WAIT) -> list[str]:
        """Ask the running trials to stop as Ctrl-C stops a run (a checkpoint, ``error.txt``), cancel the trials not
        started, and wait up to ``wait`` seconds until no trial runs. Returns the keys of the trials that were
        running."""
        keys = [str(f.key) for f in futures]
        stopping: list[str] = []
        with contextlib.suppress(Exception):  # a worker already gone has nothing to stop
            stopping = self.running(keys)
        with contextlib.suppress(Exception):
            self.client.cancel(futures)  # first: a stopped trial is not tried again
        with contextlib.suppress(Exception):
            self.client.run(request_stop, why)
        deadline = time.monotonic() + wait
        still = stopping
        while still and time.monotonic() < deadline:
            time.sleep(0.5)
            with contextlib.suppress(Exception):
                still = self.running(keys)
        return stopping

    def close(self) -> None:
        """Close the client and the cluster this process started; cancel its SLURM jobs and wait until they end."""
        quiet = logging.getLogger("distributed")
        level, quiet.level = quiet.level, logging.CRITICAL  # workers that leave mid-task are expected here
        try:
            with contextlib.suppress(Exception):
                self.client.close()
            if self.cluster is not None:
                with contextlib.suppress(Exception):
                    self.cluster.close()
            if self.keeper is not None:
                try:
                    self.keeper.cancel_all()
                except NoWorkers as e:  # on the way out of another error: say it, do not hide that error
                    print(f"warning: {e}: cancel them with  scancel --name {self.keeper.name}", file=sys.stderr)
        finally:
            quiet.level = level


def connect(
    spec: dict[str, Any],
    resources: dict[str, int],
    max_concurrent: int | None,
    scheduler: str | None,
    slurm: bool,
    n_trials: int,
    folder: Path | None = None,
) -> Engine:
    """The engine of a sweep or tuning: an existing scheduler's, SLURM jobs', or an embedded cluster's.

    :param spec: The sweep (or tuning) file's contents: its ``resources:``, ``retries:`` and ``slurm:`` blocks.
    :param folder: The sweep (or study) folder: SLURM jobs are named after it and log into ``<folder>/jobs``.
    """
    import dask
    from distributed import Client

    # Trials start env worker processes (SubprocVecEnv): Dask's worker processes must not be daemonic. A worker
    # lost while it ran a trial counts against that trial's retries, as an error does.
    dask.config.set(
        {"distributed.worker.daemon": False, "distributed.scheduler.allowed-failures": int(spec.get("retries", 1))}
    )
    if scheduler is not None:
        client = Client(scheduler)
        # Workers declare no resources unless started with --resources: ask for them only when the file does.
        submit_resources = resources if "resources" in spec else None
        if submit_resources:
            try:
                _check_workers(client, submit_resources)
            except ConfigError:
                client.close()
                raise
        return Engine(client, submit_resources, worker_wait=WORKER_WAIT)
    if slurm:
        plan = slurm_plan(spec.get("slurm"))
        cluster = slurm_cluster(plan, resources, folder)
        log_dir = plan.options.get("log_directory") or str((folder or Path(".")).resolve() / "jobs")
        keeper = JobKeeper(cluster, plan.jobs, trials_per_job(plan, resources), log_dir)
        stale = keeper.cancel_all()
        if stale:
            print(f"cancelled {len(stale)} job(s) of an earlier driver of this folder: {', '.join(stale)}", flush=True)
        return Engine(Client(cluster), resources, cluster, keeper, plan.worker_wait)
    check_local_gpus(resources)
    cluster, client = _local_cluster(max_concurrent, resources, n_trials)
    return Engine(client, resources, cluster)


def _check_workers(client: Any, resources: dict[str, int]) -> None:
    """On an existing cluster: fail early if its workers cannot run a trial (they never would)."""
    workers = client.scheduler_info()["workers"].values()
    if workers and not any(all(w.get("resources", {}).get(k, 0) >= v for k, v in resources.items()) for w in workers):
        raise ConfigError(
            f"No worker of {client.scheduler.address} declares the resources a trial needs "
            f"({_resource_text(resources)}); start workers with: "
            f'dask worker ADDRESS --nthreads 1 --resources "{_resource_text(resources)}"'
        )


def worker_slots(client: Any, resources: dict[str, int] | None) -> int:
    """Trials the cluster's workers can run at once (at least 1, so that a sweep waits for workers to join)."""
    slots = 0
    for worker in client.scheduler_info()["workers"].values():
        if worker.get("status", "running") != "running":  # retiring (its walltime is near) or closing
            continue
        if resources:
            have = worker.get("resources", {})
            slots += min(int(have.get(k, 0) // v) for k, v in resources.items())
        else:
            slots += int(worker.get("nthreads", 1))
    return max(1, slots)


def _executing(dask_worker: Any) -> list[str]:
    """Keys of the tasks a Dask worker is executing now (run on the worker by ``client.run``)."""
    return [str(task.key) for task in dask_worker.state.executing]


def running(client: Any, keys: list[str]) -> list[str]:
    """Those of ``keys`` that a worker is executing now. The scheduler's ``processing`` also counts tasks waiting in
    a worker's queue (tasks with resource restrictions all go there), so ask the workers."""
    busy = {key for keys_ in client.run(_executing).values() for key in keys_}
    return sorted(k for k in keys if k in busy)

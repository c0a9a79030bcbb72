"""What a trial costs through SLURM (issue 30), beside the embedded Dask cluster, and what a paper-scale sweep costs.

    python benchmarks/cluster_overhead.py [--repeats 3] [--steps 2048] [--lost-steps 6000] [--hand-steps 16384]
                                          [--skip-slurm] [--skip-hand] [--quick] [--out FILE]

1. Overhead: the same tiny sweep (PPO-Lattice on the elbow, 2 seeds, the settings of tests/test_cluster.py) runs as
   ``lattice-sweep`` once on the embedded cluster and once with ``--slurm`` (2 jobs of 1 core, every address on
   loopback), alternating which goes first. Per mode: the command's wall time, when its lines came (cluster up, jobs
   submitted, first trial ``starting:``, last trial finished, exit), the trials' own ``train_seconds``; the paired
   difference SLURM - embedded is the overhead each trial pays (the two trials run side by side in both modes).
   Both modes must give the same final returns (same seeds, same training).
2. A lost job: a one-trial SLURM sweep; once the trial has a checkpoint its job is ``scancel``-ed, and the seconds from
   the scancel to each event of the recovery are taken (the job gone from ``squeue``, the driver's ``job <id> ended``
   and ``submitting 1 SLURM job(s)`` lines, the new job running, its worker registered, the trial's log saying
   ``resuming ... from checkpoint at``).
3. Paper scale: one PPO trial per hand task and noise (the paper's MyoSuite settings, 16 envs) through the sweep
   engine on the embedded cluster with ``resources: {cpus: 2}`` (one trial at a time, the whole machine), and the
   hours of configs/sweeps/paper_myosuite.yaml priced from its steps per second, on this machine.

Every sweep runs in a temporary folder that is removed afterwards; every SLURM job of the benchmark is cancelled
(by its job name) when it ends, however it ends. Medians and ranges are over ``--repeats`` runs of this process.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import random
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from lattice.experiments.cluster import POLL, job_name

ROOT = Path(__file__).resolve().parent.parent
SWEEP = ROOT / "experiments" / "sweep.py"
PAPER_SWEEP = ROOT / "configs" / "sweeps" / "paper_myosuite.yaml"
# PPO-Lattice on the 6-muscle elbow, one env, rollouts of 64 steps (tests/test_cluster.py's SETTINGS).
SETTINGS = {
    "n_envs": 1,
    "eval_freq": 1000,
    "eval_episodes": 2,
    "save_freq": 1000,
    "max_episode_steps": 20,
    "n_steps": 64,
    "batch_size": 32,
}
SLURM_BLOCK = {"cores": 1, "memory": "2GB", "interface": "lo"}  # every address on loopback
TIMEOUT = 900.0  # seconds any one sweep command may take before the benchmark gives up on it


def tiny_sweep(name: str, timesteps: int, seeds: list[int], jobs: int) -> dict[str, Any]:
    grid = {"algo": ["ppo"], "noise": ["lattice"], "env": ["elbow"], "seed": seeds}
    return {
        "name": name,
        "grid": grid,
        "settings": {**SETTINGS, "timesteps": timesteps},
        "retries": 1,
        "slurm": {**SLURM_BLOCK, "jobs": jobs},
    }


def squeue(*args: str) -> list[list[str]]:
    """``squeue --noheader --user <me> [args]``, one list of fields per line."""
    out = subprocess.run(
        ["squeue", "--noheader", "--user", getpass.getuser(), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [line.split() for line in out.splitlines() if line.strip()]


class Sweep:
    """One ``lattice-sweep`` command in a subprocess (its own process group): its stdout lines, each with the seconds
    since the command started, and what its SLURM jobs write.

    :param folder: A temporary folder: the sweep file and ``sweeps/<name>/`` go there.
    :param spec: The sweep file's contents.
    :param slurm: Run it with ``--slurm``.
    """

    def __init__(self, folder: Path, spec: dict[str, Any], slurm: bool):
        path = folder / f"{spec['name']}.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        log_dir = folder / "sweeps"
        self.dir = log_dir / spec["name"]
        self.job_name = job_name(self.dir)
        self.slurm = slurm
        command = [sys.executable, str(SWEEP), "--config", str(path), "--log-dir", str(log_dir)]
        command += ["--progress-every", "3600", *(["--slurm"] if slurm else [])]
        self.lines: list[tuple[float, str]] = []
        self.seen: dict[str, float] = {}  # text -> seconds when a job log first showed it
        self.stderr = open(folder / "driver.err", "w")  # closed in close()
        self.start = time.monotonic()
        self.process = subprocess.Popen(
            command, cwd=folder, stdout=subprocess.PIPE, stderr=self.stderr, text=True, start_new_session=True
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append((self.now(), line.rstrip("\n")))

    def now(self) -> float:
        return time.monotonic() - self.start

    def line(self, text: str, after: float = -1.0, last: bool = False) -> float | None:
        """Seconds at which the first (or last) stdout line containing ``text`` came after ``after``, or None."""
        times = [t for t, line in list(self.lines) if text in line and t > after]
        return (times[-1] if last else times[0]) if times else None

    def job_logs(self, text: str) -> float | None:
        """Seconds at which a job log (``<sweep>/jobs/*``) was first seen to contain ``text`` (call often: the time
        is when this call found it), or None."""
        if text not in self.seen:
            for log in sorted((self.dir / "jobs").glob("*")):
                with contextlib.suppress(OSError):
                    if text in log.read_text(errors="replace"):
                        self.seen[text] = self.now()
                        break
        return self.seen.get(text)

    def printed(self, text: str) -> float | None:
        """When ``text`` first came in the driver's stdout (embedded workers print there) or a job log."""
        return self.line(text) if not self.slurm else self.job_logs(text)

    def wait(self, timeout: float = TIMEOUT, every: Callable[[], Any] | None = None) -> int:
        """Wait for the command to exit (calling ``every`` every 0.1 s meanwhile); its exit code.

        :raises RuntimeError: if it did not exit within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.dir.name}: no exit after {timeout:g} s; its lines: {self.tail()}")
            if every is not None:
                every()
            time.sleep(0.1)
        self.end = self.now()
        self.reader.join(timeout=10)
        return self.process.returncode

    def tail(self) -> str:
        lines = [line for _, line in self.lines[-5:]]
        with contextlib.suppress(OSError):
            lines += Path(self.stderr.name).read_text(errors="replace").splitlines()[-5:]
        return " / ".join(lines)

    def close(self) -> None:
        """Stop the command if it still runs, cancel its SLURM jobs and wait until SLURM has ended them."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=150)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        self.stderr.close()
        if self.slurm:
            subprocess.run(["scancel", "--name", self.job_name, "--user", getpass.getuser()], check=False, timeout=60)
            deadline = time.monotonic() + 120
            while squeue("--name", self.job_name, "--format", "%i") and time.monotonic() < deadline:
                time.sleep(1.0)

    def results(self) -> dict[str, Any]:
        return yaml.safe_load((self.dir / "results.yml").read_text()) or {}

    def summaries(self) -> dict[str, dict[str, Any]]:
        """Trial name -> its summary.yml."""
        return {p.parent.name: yaml.safe_load(p.read_text()) for p in sorted(self.dir.glob("trials/*/summary.yml"))}


@contextlib.contextmanager
def sweep_in_tempdir(spec: dict[str, Any], slurm: bool) -> Any:
    """A ``Sweep`` in a fresh temporary folder; stopped, its jobs cancelled and the folder removed at the end."""
    with tempfile.TemporaryDirectory(prefix="cluster_overhead_") as tmp:
        sweep = Sweep(Path(tmp), spec, slurm)
        try:
            yield sweep
        finally:
            sweep.close()


def wait_until(condition: Callable[[], bool], timeout: float, what: str, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def spread(values: list[float], digits: int = 1) -> str:
    """``median [min–max]`` (or the one value)."""
    if not values:
        return "–"
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:.{digits}f}"
    return f"{median:.{digits}f} [{min(values):.{digits}f}–{max(values):.{digits}f}]"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


# -- 1. a trial through SLURM against the embedded cluster ---------------------------------------------------------

EVENTS = [  # (row, how to find it: stdout text, or "printed:" text that workers print, "last:" for the last line)
    ("cluster up (`sweep ...:` line)", "sweep overhead"),
    ("jobs submitted (`submitting` line)", "submitting "),
    ("first trial starts (`starting:`)", "printed:starting: "),
    ("last trial finished (`finished:` line)", "last:] finished: "),
]


def overhead_once(spec: dict[str, Any], mode: str) -> tuple[dict[str, float], dict[str, Any]]:
    """One run of the tiny sweep (``embedded`` or ``slurm``): the seconds of each row of part 1, and each trial's
    final evaluation (results.yml)."""
    with sweep_in_tempdir(spec, slurm=mode == "slurm") as sweep:
        found: dict[str, float] = {}

        def look() -> None:  # workers print `starting:` into the driver's stdout (embedded) or their job log
            if "starting: " not in found:
                seen = sweep.printed("starting: ")
                if seen is not None:
                    found["starting: "] = seen

        code = sweep.wait(every=look)
        look()
        if code != 0:
            raise RuntimeError(f"{mode} sweep exited with {code}: {sweep.tail()}")
        train = statistics.mean(float(s["train_seconds"]) for s in sweep.summaries().values())
        row: dict[str, float] = {}
        for name, how in EVENTS:
            if how.startswith("printed:"):
                at = found.get(how.removeprefix("printed:"))
            elif how.startswith("last:"):
                at = sweep.line(how.removeprefix("last:"), last=True)
            else:
                at = sweep.line(how)
            if at is not None:
                row[name] = at
        row["wall"] = sweep.end
        row["exit after the last trial finished"] = sweep.end - row.get(EVENTS[-1][0], sweep.end)
        row["trial's train_seconds (mean of trials)"] = train
        row["wall − train_seconds"] = sweep.end - train
        return row, {trial: r["final_eval"] for trial, r in sweep.results().items()}


def run_overhead(steps: int, seeds: int, repeats: int, modes: list[str]) -> list[str]:
    """Part 1: the tiny sweep in each of ``modes`` (``embedded``, ``slurm``), ``repeats`` times (alternating which
    goes first); its markdown lines, which say whether every run gave the same final returns."""
    spec = tiny_sweep("overhead", steps, list(range(seeds)), jobs=seeds)
    times: dict[str, dict[str, list[float]]] = {m: {} for m in ("embedded", "slurm")}
    finals: list[dict[str, Any]] = []
    for repeat in range(repeats):
        for mode in modes if repeat % 2 == 0 else modes[::-1]:
            row, final = overhead_once(spec, mode)
            for key, value in row.items():
                times[mode].setdefault(key, []).append(value)
            finals.append(final)
    same = all(f == finals[0] for f in finals) and len(finals[0]) == seeds
    names = [name for name, _ in EVENTS]
    order = [
        "wall",
        *names,
        "exit after the last trial finished",
        "trial's train_seconds (mean of trials)",
        "wall − train_seconds",
    ]
    emb, slu = times["embedded"], times["slurm"]
    rows = []
    for key in order:
        paired = [s - e for s, e in zip(slu.get(key, []), emb.get(key, []), strict=False)]
        diff = spread(paired) if key in emb and key in slu else "–"
        rows.append([key, spread(emb.get(key, [])), spread(slu.get(key, [])), diff])
    lines = [
        f"### 1. A trial through SLURM vs the embedded cluster ({repeats} repeat(s), median [min–max], seconds)",
        "",
        f"Sweep: PPO-Lattice on the elbow, {seeds} seeds × {steps:,} steps (tests/test_cluster.py's settings: 1 env, "
        f"n_steps 64, eval and checkpoint every 1,000 steps); embedded: {seeds} workers; `--slurm`: {seeds} jobs of "
        "`{cores: 1, memory: 2GB, interface: lo}`. Times are seconds after the command started; the trials run side "
        "by side in both modes, so the wall difference is what each trial pays.",
        "",
        *table(["", "embedded", "slurm", "slurm − embedded (paired)"], rows),
        "",
    ]
    if slu.get("wall"):
        overhead = [s - e for s, e in zip(slu["wall"], emb["wall"], strict=True)]
        lines.append(
            f"**SLURM overhead per trial: {spread(overhead)} s** of wall time (SLURM wall − embedded wall, paired "
            f"by repeat; {seeds} trials in parallel in both modes)."
        )
    verdict = "yes" if same else "NO"
    lines += [
        f"Same final returns in every run (results.yml `final_eval`, {len(finals)} runs × {seeds} trials): "
        f"**{verdict}**.",
        "",
    ]
    if not same:
        lines += ["```", yaml.safe_dump(finals, sort_keys=True).strip(), "```", ""]
    return lines


# -- 2. a lost job ------------------------------------------------------------------------------------------------

LOST_EVENTS = [
    "job gone from squeue",
    "driver: `job <id> ended`",
    "driver: `submitting 1 SLURM job(s)`",
    "new job in squeue",
    "new job RUNNING",
    "new worker registered (job log)",
    "trial log: `resuming ... from checkpoint at`",
]


def checkpoint_steps(trial: Path) -> list[int]:
    return sorted(int(p.stem.split("_")[-2]) for p in (trial / "checkpoints").glob("rl_model_[0-9]*_steps.zip"))


def lost_once(spec: dict[str, Any], rng: random.Random) -> tuple[dict[str, float], str]:
    """One lost job: seconds from the scancel to each of ``LOST_EVENTS`` (those seen), and a note on the steps. The
    scancel comes a random 0 to ``POLL`` seconds after the first checkpoint, so that it falls at any phase of the
    driver's squeue poll (else the trial's fixed pace times it at about the same phase in every repeat)."""
    resumed_text = "trial log: `resuming ... from checkpoint at`"
    with sweep_in_tempdir(spec, slurm=True) as sweep:
        trial = sweep.dir / "trials" / "ppo_lattice_elbow_seed0"
        log = sweep.dir / "output" / f"{trial.name}.log"
        wait_until(lambda: bool(checkpoint_steps(trial)), 300, "a checkpoint")
        time.sleep(rng.uniform(0.0, POLL))
        (job,) = [fields[0] for fields in squeue("--name", sweep.job_name, "--format", "%i")]
        newest = checkpoint_steps(trial)[-1]
        cancelled = sweep.now()
        subprocess.run(["scancel", job], check=True, timeout=60)
        at: dict[str, float] = {}
        new: list[str] = []

        def resumed() -> bool:
            now = sweep.now()
            listed = {fields[0]: fields[1] for fields in squeue("--name", sweep.job_name, "--format", "%i %T")}
            if job not in listed:
                at.setdefault("job gone from squeue", now)
            others = [j for j in listed if j != job]
            if others:
                at.setdefault("new job in squeue", now)
                new[:] = others[:1]
                if listed[others[0]] == "RUNNING":
                    at.setdefault("new job RUNNING", now)
            if new and "new worker registered (job log)" not in at:
                for path in (sweep.dir / "jobs").glob(f"*{new[0]}*"):
                    with contextlib.suppress(OSError):
                        if "Registered to" in path.read_text(errors="replace"):
                            at["new worker registered (job log)"] = now
            with contextlib.suppress(OSError):
                if "from checkpoint at" in log.read_text(errors="replace"):
                    at.setdefault(resumed_text, now)
            return resumed_text in at

        wait_until(resumed, 400, "the trial's resume", every=0.2)
        code = sweep.wait()
        if code != 0:
            raise RuntimeError(f"the lost-job sweep exited with {code}: {sweep.tail()}")
        ended = sweep.line(f"job {job} ended")
        if ended is not None:
            at["driver: `job <id> ended`"] = ended
        submitted = sweep.line("submitting 1 SLURM job(s)", after=ended if ended is not None else cancelled)
        if submitted is not None:
            at["driver: `submitting 1 SLURM job(s)`"] = submitted
        match = re.search(r"from checkpoint at ([\d,]+) steps", log.read_text(errors="replace"))
        note = f"newest checkpoint at the scancel: {newest:,} steps; resumed from {match[1] if match else '?'} steps"
        return {name: t - cancelled for name, t in at.items()}, note


def run_lost(steps: int, repeats: int) -> list[str]:
    """Part 2: scancel the job of a one-trial SLURM sweep once the trial has a checkpoint; time the recovery."""
    spec = tiny_sweep("lost", steps, [0], jobs=1)
    events: dict[str, list[float]] = {name: [] for name in LOST_EVENTS}
    notes: list[str] = []
    rng = random.Random(0)
    for _ in range(repeats):
        seconds, note = lost_once(spec, rng)
        for name, value in seconds.items():
            events[name].append(value)
        notes.append(note)
    rows = [[name, spread(values)] for name, values in events.items()]
    return [
        f"### 2. A lost job: seconds from `scancel` to each event ({repeats} repeat(s), median [min–max])",
        "",
        f"One trial of {steps:,} steps (checkpoint every 1,000), 1 job; the job is cancelled a random 0–{POLL:g} s "
        f"after the trial's first checkpoint. The driver looks at `squeue` every `cluster.POLL` = {POLL:g} s, so "
        f"its `job <id> ended` line comes 0–{POLL:g} s after SLURM has ended the job.",
        "",
        *table(["event", "s after scancel"], rows),
        "",
        *(f"- repeat {i + 1}: {note}" for i, note in enumerate(notes)),
        "",
    ]


# -- 3. a hand trial at the paper's settings ------------------------------------------------------------------------

HAND_SETTINGS = [{"noise": "isotropic"}, {"noise": "lattice", "noise_period": 4}]


def run_hand(steps: int, envs: list[str]) -> list[str]:
    """Part 3: one PPO trial per task and noise at the paper's MyoSuite settings, one at a time on the whole machine;
    steps per second, and the paper sweep priced from them."""
    spec = {
        "name": "hand",
        "grid": {"seed": [0], "algo": ["ppo"], "env": envs, "setting": HAND_SETTINGS},
        # one evaluation (of 2 episodes) and one checkpoint at the end: the paper's runs evaluate every 1% of steps
        "settings": {"timesteps": steps, "eval_freq": steps, "eval_episodes": 2, "save_freq": steps},
        "retries": 0,
        "resources": {"cpus": os.cpu_count() or 1},
    }
    with sweep_in_tempdir(spec, slurm=False) as sweep:
        code = sweep.wait(timeout=max(TIMEOUT, 2.0 * steps * len(envs) * len(HAND_SETTINGS) / 20))
        if code != 0:
            raise RuntimeError(f"the hand sweep exited with {code}: {sweep.tail()}")
        wall = sweep.end
        summaries = sweep.summaries()
        configs = {t: yaml.safe_load((sweep.dir / "trials" / t / "config.yml").read_text()) for t in summaries}
    paper = yaml.safe_load(PAPER_SWEEP.read_text())
    budget = float(paper["settings"]["timesteps"])
    seeds, settings = len(paper["grid"]["seed"]), len(paper["grid"]["setting"])
    cores = os.cpu_count() or 1
    rows: list[list[str]] = []
    speeds: dict[str, list[float]] = {}  # the grid's task name (reorient, pen) -> steps/s of its trials
    for trial, summary in summaries.items():
        config = configs[trial]
        task = next(env for env in envs if f"_{env}_seed" in trial)
        sps = float(summary["steps_per_second"])
        speeds.setdefault(task, []).append(sps)
        noise = summary["noise"] + (f" (T = {config['noise_period']})" if summary["noise"] != "isotropic" else "")
        started, finished = sweep.line(f"starting: {trial} "), sweep.line(f"finished: {trial} ")
        in_sweep = f"{finished - started:.0f}" if started is not None and finished is not None else "–"
        hours = budget / sps / 3600
        name = f"{task} (`{config['env']}`)" if task != config["env"] else task
        row = [name, noise, f"{summary['timesteps']:,}", in_sweep, f"{summary['train_seconds']:.0f}", f"{sps:.0f}"]
        rows.append([*row, f"{hours:.1f}", f"{hours * cores:.0f}"])
    per_task = {env: budget / statistics.mean(v) / 3600 for env, v in speeds.items()}
    paper_envs = [str(e) for e in paper["grid"]["env"]]
    priced = [e for e in paper_envs if e in per_task]
    total = seeds * settings * sum(per_task[e] for e in priced)
    header = ["task (env id)", "noise", "steps", "trial s in sweep", "train s", "steps/s"]
    header += [f"h per {budget / 1e6:g}M-step trial", "core-h"]
    lines = [
        f"### 3. A hand trial at the paper's MyoSuite PPO settings, through the sweep engine ({cores}-core machine)",
        "",
        f"PPO, 16 envs with VecNormalize, n_steps 128, batch 32, 10 epochs, [256, 256] (configs/shared/"
        f"paper_ppo_myosuite.yaml); {steps:,} steps per trial, embedded cluster with `resources: {{cpus: {cores}}}` "
        "(one trial at a time on the whole machine). steps/s is summary.yml's (training only, its one evaluation of "
        "2 episodes included); 'trial s in sweep' runs from the trial's `starting:` line to its `finished:` line "
        f"(env processes' start and the final evaluation included); the sweep took {wall:.0f} s in all.",
        "",
        *table(header, rows),
        "",
    ]
    if priced:
        missing = [
            ", ".join(f"{k} {v}" for k, v in s.items()) for s in paper["grid"]["setting"] if s not in HAND_SETTINGS
        ]
        partial = "" if len(priced) == len(paper_envs) else f" (only the tasks {', '.join(priced)}: a partial price)"
        lines += [
            f"configs/sweeps/paper_myosuite.yaml ({seeds * settings * len(paper_envs)} trials: {len(paper_envs)} tasks "
            f"× {settings} settings × {seeds} seeds × {budget / 1e6:g}M steps) at **this {cores}-core machine's** "
            f"speed, one trial at a time: **{total:,.0f} h of wall time = {total * cores:,.0f} core-hours**{partial}. "
            f"Each setting is priced at its task's mean measured speed ({', '.join(missing)}: not measured here).",
            "",
            f"On a 16-core node (the file's `resources: {{cpus: 16}}`) the 16 env processes, which here share "
            f"{cores} cores, would each get a core, so the rollout part of a trial's time shrinks; PPO's update "
            "(10 epochs of minibatches of 32 over each 2,048-step rollout, one torch thread) stays on one core and "
            "does not. This benchmark does not separate the two parts, so it gives no 16-core figure.",
            "",
        ]
    return lines


# -- the report ---------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="runs of parts 1 and 2 (median and range reported)")
    parser.add_argument("--steps", type=int, default=2048, help="steps per trial of the tiny sweep (part 1)")
    parser.add_argument("--seeds", type=int, default=2, help="trials of the tiny sweep (and SLURM jobs) in part 1")
    parser.add_argument("--lost-steps", type=int, default=6000, help="steps of the trial whose job is lost (part 2)")
    parser.add_argument("--hand-steps", type=int, default=16384, help="steps per hand trial (part 3)")
    parser.add_argument("--hand-envs", nargs="+", default=["reorient", "pen"], help="hand tasks of part 3")
    parser.add_argument("--skip-slurm", action="store_true", help="no SLURM: part 1 on the embedded cluster only")
    parser.add_argument("--skip-overhead", action="store_true", help="leave out part 1")
    parser.add_argument("--skip-lost", action="store_true", help="leave out part 2")
    parser.add_argument("--skip-hand", action="store_true", help="leave out part 3 (minutes)")
    parser.add_argument("--quick", action="store_true", help="smallest sizes, 1 repeat: a smoke run")
    parser.add_argument("--out", type=Path, help="also write the tables to this markdown file")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.steps, args.lost_steps, args.hand_steps = 1, 256, 3000, 2048
    report: list[str] = []

    def emit(lines: list[str]) -> None:
        report.extend(lines)
        print("\n".join(lines), flush=True)
        if args.out is not None:
            args.out.write_text("\n".join(report) + "\n")

    begin = time.monotonic()
    header = ["## Cluster overhead (issue 30)", "", f"`{shlex.join(sys.orig_argv)}`", ""]
    if not args.skip_slurm:
        queued = subprocess.run(
            ["squeue", "--noheader", "--format", "%i %j"], capture_output=True, text=True, check=True, timeout=60
        ).stdout.splitlines()
        if queued:
            header += [f"Note: {len(queued)} SLURM job(s) were queued at the start: {'; '.join(queued)}.", ""]
    emit(header)
    if not args.skip_overhead:
        modes = ["embedded"] if args.skip_slurm else ["embedded", "slurm"]
        emit(run_overhead(args.steps, args.seeds, args.repeats, modes))
    if not args.skip_lost and not args.skip_slurm:
        emit(run_lost(args.lost_steps, args.repeats))
    if not args.skip_hand:
        emit(run_hand(args.hand_steps, args.hand_envs))
    emit([f"Total benchmark time: {(time.monotonic() - begin) / 60:.1f} min."])


if __name__ == "__main__":
    main()

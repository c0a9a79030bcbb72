"""Training throughput of PPO on a MyoSuite hand task, as a ratio to raw simulation on the same core.

    python benchmarks/throughput.py [--iterations 10] [--core N] [--variants isotropic gsde_t4 lattice_t1 lattice_t4]
                                    [--vec-envs dummy subproc] [--env myoHandReorient8-v0]
    python benchmarks/throughput.py --sweep [--iterations 10]

One core (``--core``, default the last one; the process and its env workers pinned to it, one torch thread), one
process, so that every figure is comparable with the others:

1. raw simulation: ``gymnasium.make(env)`` stepped with pre-drawn uniform random actions (resets counted as they
   happen), one env;
2. the package's env: the task's env as the experiment layer builds it (``lattice.experiments.build.task_env`` of
   the resolved config: ``configs/reorient.yaml``'s variant for ``myoHandReorient8-v0``), stepped the same way;
3. ``learn()`` of PPO as ``lattice-train --algo ppo --env <env> --noise <noise>`` trains it: the config resolved by
   the config loader, the training envs, VecNormalize and the model built by the experiment layer's own functions
   (``training_vec_env``, ``make_vec_envs``, ``normalized``, ``build_model``), with the training callbacks that run
   at every step (evaluations, checkpoints, the progress bar and the CSV/tensorboard logs left out). The paper's
   settings: 16 envs x 128 steps (2,048 samples per iteration), minibatch 32, 10 epochs, pi/vf [256, 256].
   Variants: isotropic, gSDE with noise period 4, Lattice with noise period 1 and 4; each with the config's
   ``vec_env: dummy`` (the 16 envs in this process) and ``vec_env: subproc`` (16 worker processes, on the same core).

Each iteration's wall time is split into env stepping (``VecEnv.step`` inside the rollout, VecNormalize and
Monitor included), the policy's forward passes in the rollout (``forward``, ``predict_values``, ``reset_noise``),
the update (``train()``), and the rest (rollout buffer, callbacks, logging), by wrapping the model's bound methods
here (the package is unchanged). After one warm-up iteration per model, each round runs one iteration of every
variant trained side by side, with the two env measurements before the first round and after every round. The
in-process variants train side by side; those with worker processes one at a time (16 workers hold about 6 GB).
A variant's ratio to raw simulation uses the mean of the raw measurements before and after its round; its ratio to
isotropic divides those ratios round by round (side by side: the two variants' steps per second in the same
round), so that a shared machine's drift cancels; medians over the rounds are reported.

``--sweep``: the throughput of a sweep's trials on the whole machine: one process per core (each pinned to its
core, spawned together, started at once behind a barrier), each training isotropic PPO on a DummyVecEnv as above;
the raw simulation measured on all cores at once the same way, before and after, as the ceiling.

A Markdown table goes to stdout and the figures, with the machine and the versions, to
``benchmarks/results/throughput.json`` (``--output``; the single-core and the sweep figures are kept side by side).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import functools
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import mujoco
import myosuite  # registers the myo* environments
import numpy as np
import stable_baselines3
import torch as th
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from lattice.callbacks import EpisodicNoiseCallback
from lattice.experiments.callbacks import EpisodeEnergyCallback, StopSignalCallback, UpdateSizeCallback
from lattice.experiments.config import RunConfig, resolve_run_config, task_env
from lattice.experiments.training import (
    build_model,
    env_info_keywords,
    make_vec_envs,
    normalized,
    training_vec_env,
)

# name -> (noise, noise_period: the config's T, None for a noise that is not state-dependent)
VARIANTS: dict[str, tuple[str, int | None]] = {
    "isotropic": ("isotropic", None),
    "gsde_t4": ("gsde", 4),
    "lattice_t1": ("lattice", 1),
    "lattice_t4": ("lattice", 4),
}
VEC_ENVS = ("dummy", "subproc")
RESULTS = Path(__file__).resolve().parent / "results" / "throughput.json"
PHASES = ("env", "policy", "update", "other")


# --- configs and models --------------------------------------------------------------------------------------------


def run_config(
    env_id: str, variant: str, vec_env: str, n_envs: int | None = None, n_steps: int | None = None
) -> RunConfig:
    """The resolved config of ``lattice-train --algo ppo --env env_id --noise <variant's noise>`` on the CPU (the
    variant's noise period; ``n_envs`` / ``n_steps`` replace the task file's, for smoke tests only)."""
    noise, period = VARIANTS[variant]
    overrides: dict[str, Any] = {"device": "cpu", "vec_env": vec_env}
    if period is not None:
        overrides["noise_period"] = period
    if n_envs is not None:
        overrides["n_envs"] = n_envs
    hyperparams = [] if n_steps is None else [f"n_steps={n_steps}"]
    return resolve_run_config("ppo", noise, env_id, overrides=overrides, hyperparams=hyperparams)


def training_venv(config: RunConfig, info_keywords: tuple[str, ...]) -> tuple[VecEnv, str]:
    """The training envs of a run as ``training._build`` makes them (no monitor files), and where they run."""
    vec_env_cls, where = training_vec_env(config.vec_env, config.n_envs)
    venv = make_vec_envs(config, config.seed, config.n_envs, None, info_keywords, vec_env_cls=vec_env_cls)
    return venv, where


def training_callbacks() -> CallbackList:
    """The callbacks of a training run that act at every step (``training._learn``'s, without evaluations,
    checkpoints and the progress bar)."""
    return CallbackList([StopSignalCallback(), EpisodicNoiseCallback(), EpisodeEnergyCallback(), UpdateSizeCallback()])


class Timed:
    """A PPO model whose iterations are timed phase by phase, by wrapping its bound methods (instance attributes
    shadowing the class's: the package and SB3 are unchanged).

    ``iterate()`` runs one PPO iteration (one ``learn`` of one rollout) and returns its wall time and phases:
    ``env`` (``VecEnv.step`` in the rollout), ``policy`` (the policy's forward passes and noise redraws in the
    rollout), ``update`` (``train()``), ``other`` (the rest of the iteration).
    """

    def __init__(self, model: OnPolicyAlgorithm, callbacks: BaseCallback):
        self.model, self.callbacks = model, callbacks
        self.samples = model.n_steps * model.n_envs
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.in_rollout = False
        model.collect_rollouts = self._rollout(model.collect_rollouts)  # type: ignore[method-assign]
        model.train = self._timed(model.train, "update", always=True)  # type: ignore[method-assign]
        env = model.get_env()
        assert env is not None
        env.step = self._timed(env.step, "env")  # type: ignore[method-assign]
        for name in ("forward", "predict_values", "reset_noise"):
            setattr(model.policy, name, self._timed(getattr(model.policy, name), "policy"))

    def _timed(self, method: Callable[..., Any], phase: str, always: bool = False) -> Callable[..., Any]:
        @functools.wraps(method)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if not (always or self.in_rollout):  # e.g. the update's noise redraws are the update's
                return method(*args, **kwargs)
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds[phase] += time.perf_counter() - start

        return timed

    def _rollout(self, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def rollout(*args: Any, **kwargs: Any) -> Any:
            self.in_rollout = True
            try:
                return method(*args, **kwargs)
            finally:
                self.in_rollout = False

        return rollout

    def iterate(self) -> dict[str, float]:
        """One PPO iteration: its seconds (``wall``), steps per second and phases (seconds)."""
        self.seconds = dict.fromkeys(PHASES, 0.0)
        start = time.perf_counter()
        self.model.learn(self.samples, callback=self.callbacks, reset_num_timesteps=False)
        wall = time.perf_counter() - start
        phases = {**self.seconds, "other": wall - sum(self.seconds.values())}
        return {"wall": wall, "steps_per_s": self.samples / wall, **phases}


def build_timed(config: RunConfig) -> tuple[Timed, float, str]:
    """The model of ``config`` on its training envs, timed; the envs' start-up seconds (construction to the first
    reset) and where they run."""
    info_keywords = env_info_keywords(config)
    start = time.perf_counter()
    venv, where = training_venv(config, info_keywords)
    venv.reset()
    startup = time.perf_counter() - start
    model = build_model(config, normalized(venv, config, training=True))
    assert isinstance(model, OnPolicyAlgorithm)
    return Timed(model, training_callbacks()), startup, where


# --- simulation ----------------------------------------------------------------------------------------------------


class Stepper:
    """One env stepped with pre-drawn uniform random actions, resetting at episode ends (timed with the steps)."""

    def __init__(self, env: gym.Env, steps: int, seed: int = 0):
        self.env = env
        space = env.action_space
        assert isinstance(space, gym.spaces.Box)
        rng = np.random.default_rng(seed)
        self.actions = rng.uniform(space.low, space.high, (steps, *space.shape)).astype(space.dtype)
        self.env.reset(seed=seed)

    def steps_per_second(self) -> float:
        start = time.perf_counter()
        for action in self.actions:
            _, _, terminated, truncated, _ = self.env.step(action)
            if terminated or truncated:
                self.env.reset()
        return len(self.actions) / (time.perf_counter() - start)


def simulations(env_id: str, steps: int) -> dict[str, Stepper]:
    """The raw simulation (``gymnasium.make``) and the package's env of the task (the isotropic run's config)."""
    config = run_config(env_id, "isotropic", "dummy")
    return {"raw": Stepper(gym.make(env_id), steps), "package": Stepper(task_env(config), steps)}


# --- one core ------------------------------------------------------------------------------------------------------


def pin(core: int) -> None:
    """Run this process (and the processes it starts from now on) on ``core``, with one torch thread."""
    os.sched_setaffinity(0, {core})
    th.set_num_threads(1)


def measure_sims(sims: dict[str, Stepper], rates: dict[str, list[float]]) -> float:
    """Measure each simulation once (appended to ``rates``); returns the raw simulation's steps per second."""
    for name, stepper in sims.items():
        rates[name].append(stepper.steps_per_second())
    return rates["raw"][-1]


def measure_group(
    args: argparse.Namespace, vec_env: str, variants: list[str], sims: dict[str, Stepper], rates: dict[str, list[float]]
) -> dict[str, dict[str, Any]]:
    """Variants trained side by side: built, one warm-up iteration each, then rounds of one iteration of each, the
    simulations measured before the first round and after each; every iteration records the raw simulation's
    steps per second around its round (the mean of the measurements before and after it)."""
    models: dict[str, Timed] = {}
    measured: dict[str, dict[str, Any]] = {}
    for variant in variants:
        config = run_config(args.env, variant, vec_env, args.n_envs, args.n_steps)
        models[variant], startup, where = build_timed(config)
        measured[variant] = {"vec_env": where, "startup_s": startup, "iterations": []}
        print(f"  {variant}: {where}, start-up {startup:.1f} s", file=sys.stderr, flush=True)
    for model in models.values():  # warm-up: the first reset, the first update
        model.iterate()
    before = measure_sims(sims, rates)
    for r in range(args.iterations):
        iterations = {variant: model.iterate() for variant, model in models.items()}
        after = measure_sims(sims, rates)
        for variant, it in iterations.items():
            measured[variant]["iterations"].append({**it, "raw_sim_steps_per_s": (before + after) / 2})
        before = after
        line = ", ".join(f"{v} {it['steps_per_s']:.0f}" for v, it in iterations.items())
        print(f"  {vec_env} round {r + 1}/{args.iterations}: {line} steps/s", file=sys.stderr, flush=True)
    for model in models.values():
        env = model.model.get_env()
        assert env is not None
        env.close()
    return measured


def summarize(measured: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each variant's medians over its iterations: steps per second, the ratio to the raw simulation around the
    same round, the ratio to isotropic (of the ratios to raw simulation, round by round: for variants trained side
    by side, the ratio of their steps per second in the same round), and where the time went."""

    def to_raw(variant: str) -> list[float]:
        return [it["steps_per_s"] / it["raw_sim_steps_per_s"] for it in measured[variant]["iterations"]]

    rows: dict[str, dict[str, Any]] = {}
    for variant, data in measured.items():
        its = data["iterations"]
        wall = sum(it["wall"] for it in its)
        iso = None
        if "isotropic" in measured:
            iso = statistics.median(a / b for a, b in zip(to_raw(variant), to_raw("isotropic"), strict=True))
        rows[variant] = {
            "steps_per_s": statistics.median(it["steps_per_s"] for it in its),
            "ratio_to_raw_sim": statistics.median(to_raw(variant)),
            "ratio_to_isotropic": iso,
            "percent": {p: 100 * sum(it[p] for it in its) / wall for p in PHASES},
            "seconds_per_iteration": statistics.median(it["wall"] for it in its),
            **data,
        }
    return rows


def single_core(args: argparse.Namespace) -> dict[str, Any]:
    """Every vec env kind's variants on one core: in-process ones side by side, those with worker processes one
    at a time (16 workers take about 6 GB: 0.4 GB each)."""
    pin(args.core)
    variants = sorted(args.variants, key=list(VARIANTS).index)  # isotropic first
    sims = simulations(args.env, args.sim_steps)
    kinds: dict[str, Any] = {}
    for kind in args.vec_envs:
        rates: dict[str, list[float]] = {name: [] for name in sims}
        groups = [variants] if kind == "dummy" else [[variant] for variant in variants]
        measured = {v: m for group in groups for v, m in measure_group(args, kind, group, sims, rates).items()}
        kinds[kind] = {
            "raw_sim_steps_per_s": statistics.median(rates["raw"]),
            "package_env_steps_per_s": statistics.median(rates["package"]),
            "package_env_ratio_to_raw_sim": statistics.median(
                p / r for p, r in zip(rates["package"], rates["raw"], strict=True)
            ),
            "sim_measurements": rates,
            "variants": summarize(measured),
        }
    return {"core": args.core, "kinds": kinds}


def single_core_table(result: dict[str, Any], samples: int) -> str:
    lines = [
        f"core {result['core']}, one torch thread, {samples:,} samples per PPO iteration; medians over rounds",
        "",
        "| vec env | what | steps/s | × raw sim | × isotropic | env % | policy % | update % | other % | start-up s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, data in result["kinds"].items():
        lines.append(f"| {kind} | raw simulation (gym.make) | {data['raw_sim_steps_per_s']:,.0f} | 1 | | | | | | |")
        lines.append(
            f"| {kind} | the package's env (task_env) | {data['package_env_steps_per_s']:,.0f} | "
            f"{data['package_env_ratio_to_raw_sim']:.2f} | | | | | | |"
        )
        for variant, row in data["variants"].items():
            iso = "" if row["ratio_to_isotropic"] is None else f"{row['ratio_to_isotropic']:.2f}"
            pct = " | ".join(f"{row['percent'][p]:.0f}" for p in PHASES)
            lines.append(
                f"| {kind} | PPO {variant} | {row['steps_per_s']:,.0f} | {row['ratio_to_raw_sim']:.3f} | {iso} | "
                f"{pct} | {row['startup_s']:.1f} |"
            )
    return "\n".join(lines)


# --- the whole machine ---------------------------------------------------------------------------------------------


def _sweep_worker(task: str, core: int, args: dict[str, Any], barrier: Any, results: Any) -> None:
    """One core's process: build, wait for the others, measure; put (core, figures) on ``results``."""
    pin(core)
    if task == "raw":
        stepper = Stepper(gym.make(args["env"]), args["sim_steps"], seed=core)
        stepper.steps_per_second()  # warm-up
        barrier.wait()
        rates = [stepper.steps_per_second() for _ in range(args["sim_rounds"])]
        results.put((core, {"steps_per_s": statistics.median(rates), "rounds": rates}))
        return
    config = dataclasses.replace(
        run_config(args["env"], "isotropic", "dummy", args["n_envs"], args["n_steps"]), seed=core
    )
    model, _, _ = build_timed(config)
    model.iterate()  # warm-up
    barrier.wait()
    its = [model.iterate() for _ in range(args["iterations"])]
    wall = sum(it["wall"] for it in its)
    results.put((core, {"steps_per_s": model.samples * len(its) / wall, "iterations": its}))


def on_all_cores(task: str, cores: list[int], args: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """``task`` (``raw`` or ``ppo``) in one spawned process per core, started together."""
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(len(cores)), ctx.Queue()
    processes = [ctx.Process(target=_sweep_worker, args=(task, core, args, barrier, results)) for core in cores]
    for process in processes:
        process.start()
    figures = dict(results.get() for _ in processes)
    for process in processes:
        process.join()
    return dict(sorted(figures.items()))


def sweep(args: argparse.Namespace) -> dict[str, Any]:
    cores = sorted(os.sched_getaffinity(0))
    shared = dict(
        env=args.env,
        sim_steps=args.sim_steps,
        sim_rounds=max(3, args.iterations),
        iterations=args.iterations,
        n_envs=args.n_envs,
        n_steps=args.n_steps,
    )
    raw_before = on_all_cores("raw", cores, shared)
    print(f"  raw simulation on {len(cores)} cores: done", file=sys.stderr, flush=True)
    trials = on_all_cores("ppo", cores, shared)
    print(f"  PPO trials on {len(cores)} cores: done", file=sys.stderr, flush=True)
    raw_after = on_all_cores("raw", cores, shared)
    ceiling = (
        sum(f["steps_per_s"] for f in raw_before.values()) + sum(f["steps_per_s"] for f in raw_after.values())
    ) / 2
    total = sum(f["steps_per_s"] for f in trials.values())
    return {
        "cores": cores,
        "trials": {core: f["steps_per_s"] for core, f in trials.items()},
        "trials_sum_steps_per_s": total,
        "raw_sim_ceiling_steps_per_s": ceiling,
        "ratio_to_ceiling": total / ceiling,
        "raw_before": raw_before,
        "raw_after": raw_after,
        "trial_iterations": {core: f["iterations"] for core, f in trials.items()},
    }


def sweep_table(result: dict[str, Any]) -> str:
    lines = [
        f"whole machine: {len(result['cores'])} trial(s) (isotropic PPO, vec_env dummy), one per core, at once",
        "",
        "| core | PPO trial steps/s | raw sim steps/s (before, after) |",
        "|---|---|---|",
    ]
    for core, rate in result["trials"].items():
        before, after = result["raw_before"][core]["steps_per_s"], result["raw_after"][core]["steps_per_s"]
        lines.append(f"| {core} | {rate:,.0f} | {before:,.0f}, {after:,.0f} |")
    lines.append(
        f"| all | {result['trials_sum_steps_per_s']:,.0f} | {result['raw_sim_ceiling_steps_per_s']:,.0f} (ceiling) |"
    )
    lines += ["", f"trials / raw ceiling: {result['ratio_to_ceiling']:.3f}"]
    return "\n".join(lines)


# --- output --------------------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "cores_allowed": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "torch": th.__version__,
        "stable_baselines3": stable_baselines3.__version__,
        "mujoco": mujoco.__version__,
        "myosuite": getattr(myosuite, "__version__", "unknown"),
    }


def write_results(path: Path, section: str, figures: dict[str, Any], args: argparse.Namespace) -> None:
    """Write ``figures`` as ``section`` (``single_core`` or ``sweep``) of the JSON file, keeping the other one."""
    data = json.loads(path.read_text()) if path.exists() else {}
    data[section] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {k: v for k, v in vars(args).items() if k != "output"},
        **figures,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=10, help="timed PPO iterations (rounds) after one warm-up")
    parser.add_argument("--core", type=int, default=max(os.sched_getaffinity(0)), help="the core to run on")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--vec-envs", nargs="+", default=list(VEC_ENVS), choices=VEC_ENVS)
    parser.add_argument("--sweep", action="store_true", help="the whole machine: one trial per core, at once")
    parser.add_argument("--env", default="myoHandReorient8-v0", help="a MyoSuite id with a task file")
    parser.add_argument("--sim-steps", type=int, default=2048, help="env steps per simulation measurement")
    parser.add_argument("--n-envs", type=int, default=None, help="replace the task's n_envs (smoke tests only)")
    parser.add_argument("--n-steps", type=int, default=None, help="replace the task's n_steps (smoke tests only)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="the JSON file")
    args = parser.parse_args()
    config = run_config(args.env, "isotropic", "dummy", args.n_envs, args.n_steps)
    samples = config.n_envs * config.hyperparams["n_steps"]
    if args.sweep:
        result = sweep(args)
        write_results(args.output, "sweep", result, args)
        print(sweep_table(result))
    else:
        result = single_core(args)
        write_results(args.output, "single_core", result, args)
        print(single_core_table(result, samples))


if __name__ == "__main__":
    main()

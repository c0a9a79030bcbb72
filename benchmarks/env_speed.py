"""Steps per second of the overactuated env (``lattice/OveractuatedReach-v0``), single-threaded, beside Ant-v5.

    python benchmarks/env_speed.py [--actuators 8 64 300] [--steps 5000] [--rounds 5]

Each env is built with ``gymnasium.make`` (its registered wrappers included) and stepped with pre-drawn uniform
random actions, resetting at episode ends. The envs run interleaved round by round in one process and the
median round is reported, with the ratio to MuJoCo's Ant-v5 measured the same way.
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import numpy as np

import lattice  # noqa: F401  (registers lattice/OveractuatedReach-v0)
from lattice.envs.overactuated import ENV_ID


def steps_per_second(env: gym.Env, actions: np.ndarray) -> float:
    env.reset(seed=0)
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return len(actions) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actuators", type=int, nargs="+", default=[8, 64, 300], help="values of N")
    parser.add_argument("--steps", type=int, default=5000, help="steps per round and env")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median reported)")
    args = parser.parse_args()
    envs = {"Ant-v5": gym.make("Ant-v5")} | {
        f"OveractuatedReach-v0 N={n}": gym.make(ENV_ID, n_actuators=n) for n in args.actuators
    }
    rng = np.random.default_rng(0)
    actions = {
        name: rng.uniform(-1, 1, (args.steps, *env.action_space.shape)).astype(np.float32)  # type: ignore[misc]
        for name, env in envs.items()
    }
    rates: dict[str, list[float]] = {name: [] for name in envs}
    for _ in range(args.rounds):
        for name, env in envs.items():
            rates[name].append(steps_per_second(env, actions[name]))
    ant = statistics.median(rates["Ant-v5"])
    print("| env | steps/s | ratio to Ant-v5 |\n|---|---|---|")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"| {name} | {median:,.0f} | {median / ant:.1f}× |")


if __name__ == "__main__":
    main()

"""How far does each exploration noise move the body, at the same per-actuator noise magnitude?

    python benchmarks/exploration_coverage.py [--tasks overactuated-8 overactuated-32 overactuated-128 hand ant]
        [--steps 100] [--episodes 8] [--action-std 0.3] [--out results/exploration_coverage]

For each task and noise (isotropic, gsde, lattice, pink), an untrained PPO policy of this package (the task's config,
``configs/<task>.yaml``) is rescaled so that its per-actuator action noise has the same size for every noise:
a shift of ``log_std`` found by bisection makes the root-mean-square over actuators and visited states of the
per-actuator std equal to ``--action-std``. Then, from the same seeded starts, the policy acts with noise
(redrawn every ``noise_period`` = 4 steps for gsde and lattice, as in training; pink noise's sequence starts anew
each episode) and without it (its mean action).
Coverage is the root-mean-square distance between the noisy and the noise-free trajectories of the body's
positions over the episode: the mass's (x, y) for the overactuated env, the hand's joint angles for the
MyoSuite hand, the torso's (x, y) and the joint angles for Ant. The ratio to isotropic noise is printed.

The paper's intuition to test: independent noise on many actuators cancels out and moves the body little;
noise through the latent (shared by all actuators) does not cancel.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch as th
from stable_baselines3.common.vec_env import DummyVecEnv

from lattice.colored import reset_episodes
from lattice.experiments.config import resolve_config, task_env
from lattice.experiments.process import configure_process
from lattice.experiments.training import build_model

NOISES = ("isotropic", "gsde", "lattice", "pink")
# task name → (config task, env keywords, positions of the body: unwrapped env → vector)
TASKS: dict[str, tuple[str, dict[str, Any], Any]] = {
    **{
        f"overactuated-{n}": ("overactuated", {"n_actuators": n}, lambda env: env.position.copy())
        for n in (8, 32, 128, 300)
    },
    "hand": ("reorient", {}, lambda env: env.data.qpos[:23].copy()),  # the hand's 23 joints; then the die's 6
    "ant": ("ant", {}, lambda env: np.concatenate([env.data.qpos[:2], env.data.qpos[7:]])),
}


def action_std(policy: Any, obs: th.Tensor) -> th.Tensor:
    """Per-actuator std of the policy's action noise at each observation, shape (batch, n)."""
    dist = policy.get_distribution(obs)
    if hasattr(dist, "covariance"):  # Lattice: the diagonal of Σ(x)
        return dist.covariance().diagonal(dim1=-2, dim2=-1).sqrt()
    return dist.distribution.stddev  # SB3's Normal for isotropic, gSDE and pink


def match_noise(policy: Any, obs: th.Tensor, target: float) -> float:
    """Shift ``log_std`` so that the RMS per-actuator std at ``obs`` is ``target`` (bisection on the shift)."""
    log_std = policy.log_std
    start = log_std.detach().clone()

    def rms(shift: float) -> float:
        with th.no_grad():
            log_std.copy_(start + shift)
            return float(action_std(policy, obs).pow(2).mean().sqrt())

    low, high = -20.0, 20.0
    for _ in range(60):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if rms(mid) < target else (low, mid)
    return rms(0.5 * (low + high))  # and leaves log_std there


def rollout(
    model: Any, env: Any, positions: Any, seed: int, steps: int, noisy: bool, period: int
) -> tuple[np.ndarray, np.ndarray]:
    """Observations and body positions over one episode from a seeded start, with or without the policy's noise."""
    obs, _ = env.reset(seed=seed)
    policy = model.policy
    reset_episodes(policy.action_dist, None)  # pink: a new sequence for the new episode
    observations, out = [], []
    for t in range(steps):
        if noisy and policy.use_sde and t % period == 0:
            policy.reset_noise(1)
        observations.append(obs)
        action, _ = model.predict(obs[None], deterministic=not noisy)
        obs, _, terminated, truncated, _ = env.step(action[0])
        out.append(positions(env.unwrapped))
        if terminated or truncated:
            break
    return np.array(observations), np.array(out)


def coverage(task: str, noise: str, args: argparse.Namespace) -> dict[str, Any]:
    config_task, env_kwargs, positions = TASKS[task]
    config = resolve_config("ppo", noise, config_task, overrides={"seed": args.seed})
    env = task_env(config, **env_kwargs)
    model = build_model({**config, "device": "cpu"}, DummyVecEnv([lambda: env]))
    # States to match the noise at: the noise-free policy's own visits.
    period = config["noise_period"]
    visited = [rollout(model, env, positions, args.seed + e, args.steps, False, period)[0] for e in range(2)]
    matched = match_noise(model.policy, th.as_tensor(np.concatenate(visited), dtype=th.float32), args.action_std)
    distances = []
    for episode in range(args.episodes):
        seed = 1000 + args.seed + episode
        clean = rollout(model, env, positions, seed, args.steps, False, period)[1]
        noisy = rollout(model, env, positions, seed, args.steps, True, period)[1]
        length = min(len(clean), len(noisy))
        distances.append(np.mean(np.sum((noisy[:length] - clean[:length]) ** 2, axis=1)))
    env.close()
    rms = float(np.sqrt(np.mean(distances)))
    per_episode = np.sqrt(distances)
    return {
        "task": task,
        "env": config["env"],
        "actuators": int(np.prod(env.action_space.shape or (0,))),
        "noise": noise,
        "action_std": matched,
        "coverage": rms,
        "coverage_sem": float(np.std(per_episode, ddof=1) / np.sqrt(len(per_episode))),
    }


def plot(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(table["task"]))
    fig, ax = plt.subplots(figsize=(1.8 * len(tasks) + 2, 4))
    width = 0.8 / len(NOISES)
    for i, noise in enumerate(NOISES):
        rows = table[table["noise"] == noise].set_index("task").loc[tasks]
        ratio = rows["coverage"] / table[table["noise"] == "isotropic"].set_index("task").loc[tasks, "coverage"]
        ax.bar(np.arange(len(tasks)) + (i - (len(NOISES) - 1) / 2) * width, ratio, width, label=noise)
    ax.axhline(1.0, color="gray", lw=0.8)
    actuators = dict(zip(table["task"], table["actuators"], strict=True))
    labels = [f"{t}\n({actuators[t]} actuators)" for t in tasks]
    ax.set_xticks(np.arange(len(tasks)), labels, fontsize=8)
    ax.set(ylabel="state displacement by the noise\n(ratio to isotropic, same action std)")
    ax.set_title("Exploration coverage of untrained policies")
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--tasks",
        nargs="+",
        default=["overactuated-8", "overactuated-32", "overactuated-128", "hand", "ant"],
        choices=list(TASKS),
    )
    parser.add_argument("--steps", type=int, default=100, help="steps per episode (at most)")
    parser.add_argument("--episodes", type=int, default=8, help="episodes per task and noise")
    parser.add_argument("--action-std", type=float, default=0.3, help="RMS per-actuator action noise std")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/exploration_coverage"))
    args = parser.parse_args()
    configure_process()  # headless rendering backend, one torch thread
    rows = []
    for task in args.tasks:
        for noise in NOISES:
            rows.append(coverage(task, noise, args))
            print(
                f"{task:18s} {noise:10s} action std {rows[-1]['action_std']:.3f} | coverage {rows[-1]['coverage']:.4f}",
                flush=True,
            )
    table = pd.DataFrame(rows)
    iso = table[table["noise"] == "isotropic"].set_index("task")["coverage"]
    table["ratio_to_isotropic"] = table["coverage"] / table["task"].map(iso)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out.with_suffix(".csv"), index=False)
    lines = ["| task | env | actuators | " + " | ".join(NOISES) + " |", "|---" * (3 + len(NOISES)) + "|"]
    for task, group in table.groupby("task", sort=False):
        cells = [
            f"{r.coverage:.3g} ± {r.coverage_sem:.2g} ({r.ratio_to_isotropic:.2f}×)"
            for r in group.set_index("noise").loc[list(NOISES)].itertuples()
        ]
        lines.append(f"| {task} | {group['env'].iloc[0]} | {group['actuators'].iloc[0]} | " + " | ".join(cells) + " |")
    markdown = "\n".join(lines) + "\n"
    args.out.with_suffix(".md").write_text(markdown)
    plot(table, args.out.with_suffix(".png"))
    print(markdown)


if __name__ == "__main__":
    main()

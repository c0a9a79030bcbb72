"""Training speed (env steps per second) of SAC and PPO with each exploration noise, as a ratio to isotropic.

    python benchmarks/training_speed.py [--envs myoHandReorient8-v0 Ant-v5] [--algos sac ppo] [--rounds 3]

SAC: 1 gradient step per env step, batch 256, [256, 256], one env, noise redrawn every 4 steps
(``sde_sample_freq=4``). PPO: 4 envs × 128 steps, minibatch 32, 10 epochs, [256, 256] (the paper's MyoSuite
setting, with fewer envs), noise redrawn at the start of each rollout (SB3's default ``sde_sample_freq=-1``).
One torch thread.

All noises of an (algorithm, env) pair train side by side in this process: after a warm-up, each round times
a fixed number of further steps of every model in turn, and the median round is reported, so the ratios hold
on a shared, noisy machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import myosuite  # noqa: F401  (registers the myo* environments)
import torch as th
from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env

from lattice import LatticeActorCriticPolicy, LatticeRecurrentActorCriticPolicy, LatticeSACPolicy

# name -> (noise, use_sde, extra policy keywords)
VARIANTS: dict[str, tuple[str, bool, dict[str, Any]]] = {
    "isotropic": ("isotropic", False, {}),
    "gsde": ("gsde", True, {}),
    "lattice full_std=False": ("lattice", True, {"full_std": False}),
    "lattice full_std=True": ("lattice", True, {"full_std": True}),
    "lattice_iid": ("lattice_iid", False, {}),
}


def make_model(
    algo: str, env_id: str, variant: str, seed: int = 0, sac_sample_freq: int = 4, ppo_sample_freq: int = -1
) -> BaseAlgorithm:
    noise, use_sde, extra = VARIANTS[variant]
    policy_kwargs: dict[str, Any] = dict(noise=noise, net_arch=[256, 256], **extra)
    common: dict[str, Any] = dict(use_sde=use_sde, policy_kwargs=policy_kwargs, seed=seed, device="cpu")
    if algo == "sac":
        env = make_vec_env(env_id, n_envs=1, seed=seed)
        sac_kwargs: dict[str, Any] = dict(batch_size=256, learning_starts=256, train_freq=1, gradient_steps=1)
        return SAC(LatticeSACPolicy, env, sde_sample_freq=sac_sample_freq, **sac_kwargs, **common)
    env = make_vec_env(env_id, n_envs=4, seed=seed)
    policy_kwargs.update(net_arch=dict(pi=[256, 256], vf=[256, 256]))
    ppo_kwargs: dict[str, Any] = dict(sde_sample_freq=ppo_sample_freq, n_steps=128, batch_size=32, n_epochs=10)
    if algo == "ppo":
        return PPO(LatticeActorCriticPolicy, env, **ppo_kwargs, **common)
    return RecurrentPPO(LatticeRecurrentActorCriticPolicy, env, **ppo_kwargs, **common)


def measure(algo: str, env_id: str, variants: list[str], steps: int, rounds: int, sample_freq: int) -> dict[str, float]:
    """Median env steps per second of each variant, the variants interleaved round by round."""
    models = {
        variant: make_model(algo, env_id, variant, sac_sample_freq=sample_freq, ppo_sample_freq=sample_freq)
        for variant in variants
    }
    for model in models.values():  # warm-up: fill SAC's buffer past learning_starts, run a first PPO update
        model.learn(steps, reset_num_timesteps=True)
    speeds: dict[str, list[float]] = {variant: [] for variant in variants}
    for _ in range(rounds):
        for variant, model in models.items():
            start = time.perf_counter()
            model.learn(steps, reset_num_timesteps=False)
            speeds[variant].append(steps / (time.perf_counter() - start))
    return {variant: statistics.median(values) for variant, values in speeds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=["myoHandReorient8-v0", "Ant-v5"])
    parser.add_argument("--algos", nargs="+", default=["sac", "ppo"], choices=["sac", "ppo", "recurrent_ppo"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--sac-steps", type=int, default=300, help="env steps per SAC timing round")
    parser.add_argument("--ppo-steps", type=int, default=1024, help="env steps per PPO timing round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (median reported)")
    parser.add_argument("--sac-sample-freq", type=int, default=4, help="SAC's sde_sample_freq (noise period T)")
    parser.add_argument("--ppo-sample-freq", type=int, default=-1, help="PPO's sde_sample_freq (-1: per rollout)")
    args = parser.parse_args()
    th.set_num_threads(1)
    variants = ["isotropic", *[v for v in args.variants if v != "isotropic"]]

    print(
        "env steps per second (ratio to isotropic), one torch thread, sde_sample_freq "
        f"{args.sac_sample_freq} (SAC) / {args.ppo_sample_freq} (PPO)"
    )
    print("| algo | env | " + " | ".join(variants) + " |")
    print("|---" * (len(variants) + 2) + "|")
    for algo in args.algos:
        for env_id in args.envs:
            steps = args.sac_steps if algo == "sac" else args.ppo_steps
            freq = args.sac_sample_freq if algo == "sac" else args.ppo_sample_freq
            speed = measure(algo, env_id, variants, steps, args.rounds, freq)
            cells = [f"{speed[v]:.0f} ({speed[v] / speed['isotropic']:.2f}×)" for v in variants]
            print(f"| {algo} | {env_id} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()

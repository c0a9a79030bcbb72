"""A run's saved policy on its own env, normalised as it was trained: for evaluation (``lattice-enjoy``) and
videos (``lattice-render``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

from lattice.experiments.callbacks import Episodes, evaluate_episodes
from lattice.experiments.config import ALGOS, RunConfig, task_env, validate
from lattice.experiments.errors import ConfigError, RunFolderError
from lattice.experiments.rundir import RunDir
from lattice.policies import load_model


@dataclass
class Playback:
    """A loaded policy and the env it acts in.

    :param config: The run's resolved config.
    :param model: The policy's algorithm (loaded on the CPU).
    :param venv: One env (Monitor inside), with the policy's VecNormalize statistics, frozen, when the run normalises.
    :param env: The experiment env inside it (``lattice.experiments.config.task_env``), e.g. to render frames from.
    """

    config: RunConfig
    model: BaseAlgorithm
    venv: VecEnv
    env: gym.Env


def run_model_files(run_dir: Path, which: str = "best") -> tuple[RunConfig, Path, Path | None]:
    """A run's validated config, and the files of its model ``which`` (``best``, ``final`` or a checkpoint's step
    count) and of that model's normalisation statistics (None when the run does not normalise); a UsageError names
    what is missing, before anything is loaded."""
    run = RunDir(run_dir)
    if not run.is_run():
        raise RunFolderError(f"{run_dir} is not a run folder of lattice-train (no config.yml / command.txt)")
    config = RunConfig.of(validate(run.config()))
    model_path, stats_path = run.model_files(which)
    if config.normalize is not False and stats_path is None:
        raise RunFolderError(f"{model_path} has no VecNormalize statistics beside it; it cannot be played as trained")
    return config, model_path, stats_path


def load_run_policy(
    run_dir: Path,
    which: str = "best",
    seed: int | None = None,
    render_mode: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
) -> Playback:
    """Load a run's policy (``best``, ``final`` or a checkpoint's step count) with its own normalisation statistics
    (those saved with that model) on a fresh env of the run's task.

    :param seed: The env's seed (default: the run's evaluation seed, seed + n_envs).
    :param render_mode: e.g. ``rgb_array`` for videos.
    :param env_kwargs: Added to the run's env keywords (e.g. a render size).
    """
    config, model_path, stats_path = run_model_files(run_dir, which)
    env = task_env(config, render_mode, **(env_kwargs or {}))
    venv: VecEnv = DummyVecEnv([lambda: Monitor(env)])
    if stats_path is not None:
        venv = VecNormalize.load(str(stats_path), venv)
        venv.training, venv.norm_reward = False, False
    venv.seed(config.seed + config.n_envs if seed is None else seed)
    model = load_model(ALGOS[config.algo][0], model_path, device="cpu")  # 0.2's models too
    return Playback(config, model, venv, env)


def evaluate_run(
    run_dir: Path, which: str = "best", episodes: int = 10, seed: int | None = None, deterministic: bool = True
) -> Episodes:
    """Return, success and energy of ``episodes`` episodes of a run's policy (see ``load_run_policy``)."""
    if episodes <= 0:
        raise ConfigError(f"--episodes must be positive, got {episodes}")
    playback = load_run_policy(run_dir, which, seed)
    try:
        return evaluate_episodes(playback.model, playback.venv, episodes, deterministic)
    finally:
        playback.venv.close()

"""Headless rollout videos of a trained policy from its run folder (MP4, at the env's control rate).

Rendering without a display needs ``MUJOCO_GL=egl`` (software EGL works) before MuJoCo is imported; it is set
here when no display is present and nothing was chosen.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"

import imageio.v2 as imageio
import mujoco
import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from lattice.callbacks import checkpoint_steps
from lattice.config import ALGOS, ConfigError, load_yaml, validate
from lattice.envs import control_dt, make_env


def model_files(run_dir: Path, which: str) -> tuple[Path, Path | None]:
    """The model and its VecNormalize statistics: ``best``, ``final`` or a checkpoint's step count."""
    if which == "best":
        model, stats = run_dir / "best_model.zip", run_dir / "best_vecnormalize.pkl"
    elif which == "final":
        model, stats = run_dir / "final_model.zip", run_dir / "vecnormalize.pkl"
    elif which.isdigit():
        model = run_dir / "checkpoints" / f"rl_model_{which}_steps.zip"
        stats = run_dir / "checkpoints" / f"rl_model_vecnormalize_{which}_steps.pkl"
    else:
        raise ConfigError(f"--model {which!r}: choose best, final or a checkpoint's step count")
    if not model.exists():
        steps = sorted(checkpoint_steps(p) for p in (run_dir / "checkpoints").glob("rl_model_*_steps.zip"))
        raise ConfigError(
            f"No {which} model in {run_dir} ({model.name} missing); available: "
            + ", ".join([n for n in ("best", "final") if (run_dir / f"{n}_model.zip").exists()] + list(map(str, steps)))
        )
    return model, stats if stats.exists() else None


class _Frames:
    """Frames of an env: MyoSuite hand scenes through a camera aimed at the manipulated object (MyoSuite's default
    camera shows the hand as a speck), other MyoSuite scenes through its free camera at the requested size, and
    gymnasium's MuJoCo envs through their own ``render()`` (Ant: a camera tracking the torso).
    """

    def __init__(self, env: Any, size: tuple[int, int]):
        self.env, self.size = env, size
        unwrapped = env.unwrapped
        self.myosuite = type(unwrapped).__module__.startswith("myosuite")
        self.object = -1
        if self.myosuite:
            self.object = mujoco.mj_name2id(unwrapped.model, mujoco.mjtObj.mjOBJ_BODY, "Object")
        if self.object >= 0:
            self.renderer = mujoco.Renderer(unwrapped.model, height=size[1], width=size[0])
            self.camera = mujoco.MjvCamera()
            mujoco.mjv_defaultFreeCamera(unwrapped.model, self.camera)
            self.camera.distance, self.camera.azimuth, self.camera.elevation = 0.45, 180.0, -25.0

    def aim(self) -> None:
        """Aim at the object where it starts the episode (fixed during it, so a drop is seen as one)."""
        if self.object >= 0:
            self.camera.lookat[:] = self.env.unwrapped.data.xpos[self.object]

    def __call__(self) -> np.ndarray:
        unwrapped = self.env.unwrapped
        if self.object >= 0:
            self.renderer.update_scene(unwrapped.data, camera=self.camera)
            return self.renderer.render().copy()
        if self.myosuite:
            return unwrapped.render(width=self.size[0], height=self.size[1], camera_id=-1)
        return self.env.render()


def render_run(
    run_dir: Path,
    which: str = "best",
    episodes: int = 1,
    out: Path | None = None,
    max_steps: int | None = None,
    size: tuple[int, int] = (480, 360),
    seed: int | None = None,
) -> Path:
    """Render deterministic rollouts of a run's policy to an MP4 and return its path.

    :param run_dir: A run folder of ``experiments/run.py``.
    :param which: ``best``, ``final`` or a checkpoint's step count.
    :param episodes: Episodes, one after the other in one video.
    :param out: The MP4 path; default ``run_dir/videos/<which>.mp4``.
    :param max_steps: Stop after this many steps in all (None: whole episodes).
    :param size: (width, height) in pixels.
    :param seed: Seed of the rendered env (default: the run's evaluation seed).
    """
    if episodes <= 0 or (max_steps is not None and max_steps <= 0):
        raise ConfigError(f"episodes and max_steps must be positive, got {episodes} and {max_steps}")
    if not (run_dir / "config.yml").is_file():
        raise ConfigError(f"{run_dir} is not a run folder of experiments/run.py (no config.yml)")
    config = validate(load_yaml(run_dir / "config.yml"))
    model_path, stats_path = model_files(run_dir, which)
    render_kwargs = {} if config["env"].startswith("myo") else {"width": size[0], "height": size[1]}
    env = make_env(
        config["env"],
        {**config["env_kwargs"], **render_kwargs},
        config["max_episode_steps"],
        config["reward_weights"],
        render_mode="rgb_array",
    )
    venv: Any = DummyVecEnv([lambda: env])
    if stats_path is not None:
        venv = VecNormalize.load(str(stats_path), venv)
        venv.training, venv.norm_reward = False, False
    model = ALGOS[config["algo"]][0].load(model_path, device="cpu")
    venv.seed(config["seed"] + config["n_envs"] if seed is None else seed)

    frame = _Frames(env, size)
    frames, steps = [], 0
    for _ in range(episodes):
        obs, state, start, done = venv.reset(), None, np.ones(1, dtype=bool), False
        frame.aim()
        frames.append(frame())
        while not done and (max_steps is None or steps < max_steps):
            action, state = model.predict(obs, state=state, episode_start=start, deterministic=True)
            obs, _, dones, _ = venv.step(action)
            done, start, steps = bool(dones[0]), dones, steps + 1
            if not done:  # after the last step the env has already been reset
                frames.append(frame())
        if max_steps is not None and steps >= max_steps:
            break
    venv.close()

    out = out or run_dir / "videos" / f"{which}.mp4"
    out.parent.mkdir(parents=True, exist_ok=True)
    fps = 1.0 / control_dt(env)
    imageio.mimwrite(out, frames, fps=fps, macro_block_size=2)  # type: ignore[arg-type]  # yuv420p: even sizes
    return out

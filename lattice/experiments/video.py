"""Headless rollout videos of a trained policy from its run folder (MP4, at the env's control rate).

Rendering without a display needs ``MUJOCO_GL=egl`` before MuJoCo is imported; the commands set it
(``lattice.experiments.process``), and MuJoCo is imported here only when a video is made.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from lattice.envs import control_dt
from lattice.experiments import rundir
from lattice.experiments.config import RunConfig, task_env, validate
from lattice.experiments.errors import ConfigError, NotRenderable, OutputPathError
from lattice.experiments.playback import load_run_policy, run_model_files

VIDEO_SUFFIXES = (".mp4", ".gif")


class _Frames:
    """Frames of an env: MyoSuite hand scenes through a camera aimed at the manipulated object (MyoSuite's default
    camera shows the hand as a speck), other MyoSuite scenes through its free camera at the requested size, and
    gymnasium's MuJoCo envs through their own ``render()`` (Ant: a camera tracking the torso).

    In hand scenes the sites are hidden (the pen task's tolerance sphere, a yellow ball 15 cm wide, would cover the
    hand) and the headlight is raised to a floor (the reorient scene has no light of its own and is nearly black).
    """

    CAMERA = (0.5, 150.0, -30.0)  # distance (m), azimuth and elevation (degrees): the hand, its object and the target
    HEADLIGHT = (0.35, 0.5)  # the least ambient and diffuse headlight of a hand scene

    def __init__(self, env: Any, size: tuple[int, int]):
        import mujoco

        self.env, self.size = env, size
        unwrapped = env.unwrapped
        self.myosuite = type(unwrapped).__module__.startswith("myosuite")
        self.object = -1
        if self.myosuite:
            self.object = mujoco.mj_name2id(unwrapped.model, mujoco.mjtObj.mjOBJ_BODY, "Object")
        if self.object >= 0:
            model = unwrapped.model
            # model.vis only changes how the scene is drawn, never the physics
            model.vis.headlight.ambient[:] = np.maximum(model.vis.headlight.ambient, self.HEADLIGHT[0])
            model.vis.headlight.diffuse[:] = np.maximum(model.vis.headlight.diffuse, self.HEADLIGHT[1])
            self.renderer = mujoco.Renderer(model, height=size[1], width=size[0])
            self.camera = mujoco.MjvCamera()
            mujoco.mjv_defaultFreeCamera(model, self.camera)
            self.camera.distance, self.camera.azimuth, self.camera.elevation = self.CAMERA
            self.options = mujoco.MjvOption()
            self.options.sitegroup[:] = 0

    def aim(self) -> None:
        """Aim at the object where it starts the episode (fixed during it, so a drop is seen as one)."""
        if self.object >= 0:
            self.camera.lookat[:] = self.env.unwrapped.data.xpos[self.object]

    def __call__(self) -> np.ndarray:
        unwrapped = self.env.unwrapped
        if self.object >= 0:
            self.renderer.update_scene(unwrapped.data, camera=self.camera, scene_option=self.options)
            return self.renderer.render().copy()
        if self.myosuite:
            return unwrapped.render(width=self.size[0], height=self.size[1], camera_id=-1)
        return self.env.render()


def _size_keywords(config: RunConfig, size: tuple[int, int]) -> dict[str, int]:
    """Constructor keywords that set the frame size: gymnasium's MuJoCo envs and this package's own take width and
    height; MyoSuite scenes are sized per frame (``_Frames``); other envs (whose constructor refuses them) render at
    their own size."""
    if config.env.startswith("myo"):
        return {}
    keywords = {"width": size[0], "height": size[1]}
    try:
        task_env(config, "rgb_array", **keywords).close()
    except TypeError:
        return {}
    return keywords


def check_renderable(config: RunConfig | Mapping[str, Any], size: tuple[int, int] = (480, 360)) -> None:
    """Render one frame of a config's task on a throwaway env, so that ``--video`` fails before training (with
    NotRenderable), not after it."""
    config = RunConfig.of(config)
    try:
        env = task_env(config, "rgb_array", **_size_keywords(config, size))
        try:
            env.reset(seed=0)
            frame = _Frames(env, size)()
        finally:
            env.close()
        if not isinstance(frame, np.ndarray) or frame.ndim != 3:
            raise ValueError(f"render() gave {type(frame).__name__}, not an RGB image")
    except Exception as e:  # whatever stops a frame (a missing renderer, no OpenGL, an env without rgb_array)
        first = (str(e).splitlines() or [""])[0]
        raise NotRenderable(f"--video: {config.env} cannot be rendered here ({type(e).__name__}: {first})") from None


def check_video_path(out: Path) -> None:
    """Raise OutputPathError unless ``out`` names a video file (.mp4 or .gif) in a folder that can be written."""
    if out.suffix.lower() not in VIDEO_SUFFIXES:
        raise OutputPathError(f"--out {out}: a video file name ends in {' or '.join(VIDEO_SUFFIXES)}")
    if out.parent.exists() and not out.parent.is_dir():
        raise OutputPathError(f"--out {out}: {out.parent} is a file, not a folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        probe = out.parent / f".{out.name}.probe"
        probe.touch()
        probe.unlink()
    except OSError as e:
        raise OutputPathError(f"--out {out}: cannot write there ({e.strerror or e})") from None


def _check_rollout(episodes: int, max_steps: int | None, size: tuple[int, int]) -> None:
    """Raise ConfigError for a rollout's bad arguments."""
    if episodes <= 0 or (max_steps is not None and max_steps <= 0):
        raise ConfigError(f"episodes and max_steps must be positive, got {episodes} and {max_steps}")
    if size[0] <= 0 or size[1] <= 0:
        raise ConfigError(f"--size must be positive, got {size[0]} {size[1]}")


def rollout_frames(
    run_dir: Path,
    which: str = "best",
    episodes: int = 1,
    max_steps: int | None = None,
    size: tuple[int, int] = (480, 360),
    seed: int | None = None,
) -> tuple[list[np.ndarray], float]:
    """The frames of deterministic rollouts of a run's policy, and the env's control rate (frames per second).

    :param run_dir: A run folder of ``lattice-train``.
    :param which: ``best``, ``final`` or a checkpoint's step count.
    :param episodes: Episodes, one after the other.
    :param max_steps: Stop after this many steps in all (None: whole episodes).
    :param size: (width, height) in pixels.
    :param seed: Seed of the rendered env (default: the run's evaluation seed).
    """
    _check_rollout(episodes, max_steps, size)
    run = rundir.RunDir(run_dir)
    size_keywords = _size_keywords(RunConfig.of(validate(run.config())), size) if run.is_run() else {}
    playback = load_run_policy(run_dir, which, seed, render_mode="rgb_array", env_kwargs=size_keywords)
    env, model = playback.env, playback.model
    venv: Any = playback.venv  # its reset() gives one observation array here (one Box env)

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
    return frames, 1.0 / control_dt(env)


def write_video(frames: list[np.ndarray], fps: float, out: Path) -> Path:
    """Write frames to an MP4 or GIF (by ``out``'s suffix), under a temporary name and then renamed: a reader (a
    README, a training run's own video) never sees half a file."""
    import imageio.v2 as imageio

    check_video_path(out)
    partial = rundir.temporary(out)
    if out.suffix.lower() == ".gif":
        imageio.mimwrite(partial, frames, duration=1000 / fps, loop=0)  # type: ignore[arg-type]
    else:
        imageio.mimwrite(partial, frames, fps=fps, macro_block_size=2)  # type: ignore[arg-type]  # yuv420p: even
    partial.replace(out)
    return out


def render_run(
    run_dir: Path,
    which: str = "best",
    episodes: int = 1,
    out: Path | None = None,
    max_steps: int | None = None,
    size: tuple[int, int] = (480, 360),
    seed: int | None = None,
) -> Path:
    """Render deterministic rollouts of a run's policy to an MP4 (or GIF) and return its path.

    :param out: The video's path; default ``run_dir/videos/<which>.mp4``. The other parameters: ``rollout_frames``.
    """
    # bad arguments and a missing model are named before the video's folder is made
    _check_rollout(episodes, max_steps, size)
    run_model_files(run_dir, which)
    out = out or rundir.RunDir(run_dir) / rundir.VIDEOS / f"{which}.mp4"
    check_video_path(out)  # before the rollouts: a bad path costs nothing
    frames, fps = rollout_frames(run_dir, which, episodes, max_steps, size, seed)
    return write_video(frames, fps, out)

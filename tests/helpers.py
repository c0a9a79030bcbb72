"""Helpers shared by the test modules: the repository's paths, the experiment scripts run as users run them, tiny
run budgets, a process paused at a moment its files choose, and the pen env with a blow-up on demand. A plain
module, not fixtures: the paths serve in ``pytest.mark.parametrize`` at collection time, and the functions take
arguments. No test module imports another. conftest.py does not import it: the packaging tests copy conftest.py
alone, with the core's test files, into a core-only install."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np

from lattice.envs import RewardWeights, ensure_registered, make_env

ROOT = Path(__file__).resolve().parent.parent
RUN = str(ROOT / "experiments" / "run.py")
RENDER = str(ROOT / "experiments" / "render.py")
# Hyperparameters that let each algorithm learn within a budget of a few hundred steps.
TINY = {
    "ppo": ["n_steps=64", "batch_size=32"],
    "recurrent_ppo": ["n_steps=64", "batch_size=32"],
    "sac": ["learning_starts=32", "batch_size=32", "buffer_size=2000"],
}
PEN_WEIGHTS = dict(pos_align_diff=100.0, rot_align_diff=100.0, solved=1.0)  # configs/pen.yaml's non-zero terms


def cli(*args: str, cwd: Path, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python *args`` (a script and its arguments) in ``cwd`` as a user would, capturing its output.

    :param args: the script and its arguments
    :param cwd: the working folder
    :param timeout: seconds before the process is killed (the test then fails)
    :param env: variables added to this process's environment
    :return: the finished process, with its exit status, stdout and stderr
    """
    environ = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=environ
    )


def tiny_run_args(algo: str, noise: str, log_dir: Path, env: str = "elbow", steps: int = 128) -> list[str]:
    """experiments/run.py's arguments for a run of a few seconds: one env, episodes of 20 steps, an evaluation of 2
    episodes and a checkpoint every 64 steps, the algorithm's tiny hyperparameters (``TINY``) last, so that a test
    can append more ``--hyperparams``.

    :param algo: ppo, recurrent_ppo or sac
    :param noise: the exploration noise
    :param log_dir: where the run folder is made
    :param env: the env id or task name
    :param steps: the training budget
    :return: the arguments, starting with the script
    """
    return [
        RUN,
        *("--algo", algo, "--noise", noise, "--env", env, "-n", str(steps), "--n-envs", "1"),
        *("--eval-freq", "64", "--eval-episodes", "2", "--save-freq", "64", "--log-dir", str(log_dir)),
        "--no-progress-bar",
        *("--hyperparams", "max_episode_steps=20", *TINY[algo]),
    ]


def only_run_dir(log_dir: Path) -> Path:
    """The one run folder under ``log_dir`` (``<algo>/<env>_<n>``); fails if there is not exactly one."""
    (run_dir,) = [p for p in log_dir.glob("*/*") if p.is_dir()]
    return run_dir


def pen_env(guarded: bool) -> gym.Env:
    """The pen task with the paper's reward: through make_env (with SimulationGuard), or the same without it."""
    if guarded:
        return make_env("myoHandPenTwirlRandom-v0", max_episode_steps=100, reward_weights=PEN_WEIGHTS)
    ensure_registered("myoHandPenTwirlRandom-v0")
    return RewardWeights(gym.make("myoHandPenTwirlRandom-v0", max_episode_steps=100), PEN_WEIGHTS)


def spin_the_pen(env: gym.Env, speed: float) -> tuple[list, tuple]:
    """Three ordinary steps, then the pen's x rotation set to ``speed`` rad/s (DOF 26, where the blow-ups seen in
    training happen) and one more step; returns the ordinary steps' rewards and the last step."""
    env.reset(seed=0)
    zero = np.zeros(env.action_space.shape, dtype=np.float32)
    rewards = [env.step(zero)[1] for _ in range(3)]
    env.unwrapped.data.qvel[env.unwrapped.model.joint("OBJRx").dofadr[0]] = speed
    return rewards, env.step(zero)


def stop_when(
    process: subprocess.Popen,
    condition: Callable[[], bool],
    timeout: float = 240,
    group: bool = False,
    every: float = 0.05,
) -> bool:
    """Pause ``process`` (SIGSTOP) at the first look at which ``condition()`` holds and leave it paused; between
    looks it runs on (SIGCONT). A test then signals it at a moment chosen by its files, not by a clock: they stay as
    read until the process continues. The run folder's files are renamed into place whole, so a paused run's are
    readable.

    :param process: a running child process
    :param condition: what to wait for, read while the process is paused
    :param timeout: seconds before giving up
    :param group: pause the process's whole process group (a sweep or tuning and its Dask workers: started with
        ``start_new_session=True``), so that no worker moves the state on between the look and the test's signal
    :param every: seconds it runs between looks (a slow look, e.g. opening Optuna studies, wants longer ones so that
        the process is not kept paused most of the time)
    :return: whether the condition held (``process`` paused), or the process ended or time ran out first (then it
        is not paused)
    """

    def send(sig: int) -> None:
        if group:
            os.killpg(process.pid, sig)
        else:
            process.send_signal(sig)

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        send(signal.SIGSTOP)
        held = False
        try:
            held = bool(condition())
        finally:  # left paused only where the condition held (not where it raised)
            if not held:
                send(signal.SIGCONT)
        if held:
            return True
        time.sleep(every)
    return False

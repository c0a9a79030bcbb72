"""The overactuated benchmark env: gymnasium's checker, determinism, its physics in closed form, energy, the CLI."""

from __future__ import annotations

import subprocess
import sys
import warnings

import gymnasium as gym
import imageio
import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env

from lattice import OVERACTUATED_ENV_ID, OveractuatedReach
from lattice.envs import ACT_SQ, ACTION_SQ, EFFORT, SUCCESS, make_env
from lattice.experiments.config import load_yaml
from lattice.experiments.report import label_tasks
from tests.helpers import ROOT, only_run_dir, tiny_run_args


@pytest.mark.parametrize("n", [4, 16, 300])
def test_gymnasium_env_checker_passes_without_warnings(n):
    env = gym.make(OVERACTUATED_ENV_ID, n_actuators=n)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
    assert env.action_space.shape == (n,) and env.observation_space.shape == (6 + n,)
    assert env.spec is not None and env.spec.max_episode_steps == 100


def test_deterministic_under_a_seed():
    actions = np.random.default_rng(0).uniform(-1, 1, (150, 16)).astype(np.float32)

    def rollout(seed: int) -> tuple[np.ndarray, list[float]]:
        env = gym.make(OVERACTUATED_ENV_ID, n_actuators=16)
        obs, _ = env.reset(seed=seed)
        observations, rewards = [obs], []
        for action in actions:
            obs, reward, terminated, truncated, _ = env.step(action)
            observations.append(obs)
            rewards.append(float(reward))
            if terminated or truncated:
                obs, _ = env.reset()
                observations.append(obs)
        return np.stack(observations), rewards

    first, again, other = rollout(3), rollout(3), rollout(4)
    np.testing.assert_array_equal(first[0], again[0])
    assert first[1] == again[1]
    assert not np.array_equal(first[0][0, 4:6], other[0][0, 4:6])  # another seed, another goal


def test_physics_in_closed_form():
    env = OveractuatedReach(n_actuators=8)
    env.reset(seed=0)
    rate = env.dt / env.tau
    # Equal excitation of every muscle: the antagonists cancel, the mass stays put; activations rise as
    # act_t = e (1 − (1 − rate)^t).
    for t in range(1, 6):
        obs, *_ = env.step(np.zeros(8, dtype=np.float32))  # e = 0.5
        np.testing.assert_allclose(env.activations, 0.5 * (1 - (1 - rate) ** t))
        np.testing.assert_allclose(obs[:4], 0.0, atol=1e-12)
    # Only muscle 0 (pulling along +x): F = (2 F_max / N) act_0 (1, 0); semi-implicit Euler with damping.
    env.reset(seed=0)
    action = -np.ones(8, dtype=np.float32)
    action[0] = 1.0
    env.step(action)
    force = 2 * env.max_force / 8 * rate
    np.testing.assert_allclose(env.velocity, [env.dt * force, 0.0], atol=1e-12)
    np.testing.assert_allclose(env.position, [env.dt**2 * force, 0.0], atol=1e-12)
    _, reward, *_ = env.step(action)
    expected = -np.linalg.norm(env.goal - env.position) - env.energy_weight * np.mean(env.activations**2)
    assert reward == pytest.approx(expected)


@pytest.mark.parametrize("n", [8, 128])
def test_independent_noise_on_the_muscles_cancels_as_one_over_n(n):
    """Cov of the net force under iid excitation noise of std σ, one step from rest at e = 0.5:
    (2 F_max / N)² (rate σ)² Σᵢ dᵢdᵢᵀ = 2 F_max² (rate σ)² / N · I. Monte-Carlo over 4000 draws."""
    env = OveractuatedReach(n_actuators=n)
    rate, sigma = env.dt / env.tau, 0.1  # action noise std 2σ: excitation noise std σ (no clipping at ±1)
    rng = np.random.default_rng(0)
    forces = []
    for _ in range(4000):
        env.reset(seed=0)
        env.activations = np.full(n, 0.5)
        env.step(rng.normal(0.0, 2 * sigma, n))
        forces.append(env.velocity / env.dt)  # from rest: v = dt · F
    cov = np.cov(np.array(forces).T)
    expected = 2 * env.max_force**2 * (rate * sigma) ** 2 / n
    np.testing.assert_allclose(np.diag(cov), [expected, expected], rtol=0.1)
    assert abs(cov[0, 1]) < 0.1 * expected


def test_energy_and_success_through_the_experiment_wrappers():
    env = make_env(OVERACTUATED_ENV_ID, {"n_actuators": 16}, max_episode_steps=30)
    assert env.info_keywords == (EFFORT, ACT_SQ, ACTION_SQ, SUCCESS)
    env.reset(seed=1)
    rng = np.random.default_rng(1)
    effort, act_sq, action_sq = [], [], []
    for _ in range(30):
        action = rng.uniform(-1.2, 1.2, 16)
        _, _, terminated, truncated, info = env.step(action)
        act = env.unwrapped.activations
        effort.append(np.linalg.norm(act) / 16)
        act_sq.append(np.mean(act**2))
        action_sq.append(np.mean(np.clip(action, -1, 1) ** 2))
    assert truncated and not terminated
    assert info[EFFORT] == pytest.approx(np.mean(effort))
    assert info[ACT_SQ] == pytest.approx(np.mean(act_sq))
    assert info[ACTION_SQ] == pytest.approx(np.mean(action_sq))
    assert info[SUCCESS] == (info["distance"] < 0.1)


@pytest.mark.fast
def test_bad_actuator_count_names_the_rule():
    with pytest.raises(ValueError, match=r"n_actuators must be an even integer >= 4 \(antagonistic pairs\), got 7"):
        OveractuatedReach(n_actuators=7)


def test_training_run_from_the_cli(tmp_path):
    args = tiny_run_args("ppo", "lattice", tmp_path / "logs", env="overactuated")
    result = subprocess.run(
        [sys.executable, args[0], "--video", *args[1:], "env_kwargs.n_actuators=16"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "logs")
    assert run_dir.name == "lattice-OveractuatedReach-v0_1"  # named as rl-baselines3-zoo names it
    config = load_yaml(run_dir / "config.yml")
    assert config["env"] == OVERACTUATED_ENV_ID and config["env_kwargs"] == {"n_actuators": 16}
    summary = load_yaml(run_dir / "summary.yml")
    assert summary["status"] == "finished" and 0.0 < summary["final_eval"]["act_sq"] < 1.0
    # the video: one frame per step of an episode (max_episode_steps=20) plus the first, at the env's 50 Hz
    frames = imageio.mimread(run_dir / summary["video"], memtest=False)
    assert len(frames) == 20 and frames[0].shape == (360, 480, 3)
    assert imageio.v3.immeta(run_dir / summary["video"])["fps"] == pytest.approx(50.0)


def test_render_draws_the_goal_the_mass_and_the_muscles():
    env = gym.make(OVERACTUATED_ENV_ID, n_actuators=8, render_mode="rgb_array", width=200, height=200)
    env.reset(seed=3)
    image = env.render()
    assert image.shape == (200, 200, 3) and image.dtype == np.uint8
    goal_pixel = np.round(100 + env.unwrapped.goal * np.array([1, -1]) * 90).astype(int)  # 0.45·200 px per metre
    assert tuple(image[goal_pixel[1], goal_pixel[0]]) == (60, 180, 75)
    assert tuple(image[100, 100]) == (0, 90, 200)  # the mass at the origin
    for _ in range(10):
        env.step(np.ones(8, dtype=np.float32))  # every muscle fully excited: longer, redder spokes
    red = (image[..., 0] > 150) & (image[..., 2] < 60)
    assert red.sum() < (env.render()[..., 0] > 150).sum()
    with pytest.raises(ValueError, match="render_mode"):
        OveractuatedReach(render_mode="depth_array")


def test_report_tells_apart_runs_of_one_env_id_by_their_keywords():
    frame = pd.DataFrame(
        {
            "env": [OVERACTUATED_ENV_ID] * 3 + ["Ant-v5"],
            "env_kwargs": ["{n_actuators: 16}", "{n_actuators: 128}", "{n_actuators: 16}", "{}"],
        }
    )
    assert list(label_tasks(frame)["env"]) == [
        "OveractuatedReach-v0 n_actuators=16",
        "OveractuatedReach-v0 n_actuators=128",
        "OveractuatedReach-v0 n_actuators=16",
        "Ant-v5",
    ]


def test_make_lists_the_id_after_import_lattice():
    code = "import gymnasium, lattice; print(gymnasium.make('lattice/OveractuatedReach-v0').action_space.shape)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "(64,)", result.stderr[-2000:]

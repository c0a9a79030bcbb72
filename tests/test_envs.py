"""Experiment env wrappers on real envs: energy against a hand computation, the paper's reward terms, ids."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from lattice.envs import (
    ACT_SQ,
    ACTION_SQ,
    DIVERGED,
    EFFORT,
    SUCCESS,
    check_env_id,
    control_dt,
    make_env,
)
from tests.helpers import pen_env, spin_the_pen


def _run_episode(env, rng, scale=1.0):
    """Step one episode with Gaussian actions (beyond the bounds at times); record actions and activations."""
    env.reset(seed=0)
    actions, activations, infos = [], [], []
    done = False
    while not done:
        action = (rng.normal(size=env.action_space.shape) * scale).astype(np.float32)
        _, _, terminated, truncated, info = env.step(action)
        actions.append(action)
        act = env.unwrapped.data.act
        activations.append(np.array(act, dtype=np.float64))
        infos.append(info)
        done = terminated or truncated
    return np.array(actions, dtype=np.float64), np.array(activations), infos


@pytest.mark.parametrize("env_id", ["myoElbowPose1D6MRandom-v0", "myoChallengeDieReorientP2-v0"])
def test_muscle_energy_is_the_episode_mean(env_id):
    env = make_env(env_id, max_episode_steps=25)
    actions, act, infos = _run_episode(env, np.random.default_rng(0))
    n_muscles = act.shape[1]
    assert n_muscles == env.action_space.shape[0] and len(act) == 25
    last = infos[-1]
    # MyoChallenge effort: mean over steps of ‖act‖₂ / n_muscles; and mean over steps and muscles of act².
    assert last[EFFORT] == pytest.approx(np.mean(np.linalg.norm(act, axis=1) / n_muscles), rel=1e-12)
    assert last[ACT_SQ] == pytest.approx(np.mean(act**2), rel=1e-12)
    low, high = env.action_space.low, env.action_space.high
    assert last[ACTION_SQ] == pytest.approx(np.mean(np.clip(actions, low, high) ** 2), rel=1e-6)
    assert last[SUCCESS] == bool(last["solved"])
    # Reported only at the episode's end (what Monitor records), and not equal to the last step's value.
    assert all(EFFORT not in info for info in infos[:-1])
    assert last[EFFORT] != pytest.approx(np.linalg.norm(act[-1]) / n_muscles)
    assert set(env.info_keywords) == {EFFORT, ACT_SQ, ACTION_SQ, SUCCESS, DIVERGED}
    assert not any(info[DIVERGED] for info in infos)


def test_ant_energy_is_the_mean_squared_applied_action():
    env = make_env("Ant-v5", max_episode_steps=30)
    actions, _, infos = _run_episode(env, np.random.default_rng(1), scale=2.0)  # often beyond [-1, 1]
    assert np.abs(actions).max() > 1.0
    assert infos[-1][ACTION_SQ] == pytest.approx(np.mean(np.clip(actions, -1.0, 1.0) ** 2), rel=1e-6)
    assert env.info_keywords == (ACTION_SQ, DIVERGED)
    # Within the bounds (SB3 clips or squashes actions), it is Ant's own control cost, Σ a² · weight, per actuator.
    actions, _, infos = _run_episode(env, np.random.default_rng(2), scale=0.4)
    assert np.abs(actions).max() < 1.0
    ctrl = np.array([-info["reward_ctrl"] for info in infos]) / env.unwrapped._ctrl_cost_weight
    assert infos[-1][ACTION_SQ] == pytest.approx(np.mean(ctrl) / 8, rel=1e-5)


def test_paper_reward_terms_of_reorient():
    weights = dict(pos_dist=2.0, rot_dist=0.2, pos_dist_diff=100.0, rot_dist_diff=10.0, alive=1.0, solved=2.0)
    env = make_env("myoChallengeDieReorientP2-v0", max_episode_steps=20, reward_weights=weights)
    env.reset(seed=0)
    previous = dict(env.env._previous)  # RewardWeights: the reset state's terms, where the first *_diff starts
    assert previous["pos_dist"] < 0 and previous["done"] == 0  # rwd = −distance; not dropped at the start
    rng = np.random.default_rng(2)
    for _ in range(20):
        _, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, size=39).astype(np.float32))
        terms = {k: float(v) for k, v in info["rwd_dict"].items()}
        expected = (
            2.0 * terms["pos_dist"]
            + 0.2 * terms["rot_dist"]
            + 100.0 * (terms["pos_dist"] - previous["pos_dist"])  # rwd = −distance: its decrease
            + 10.0 * (terms["rot_dist"] - previous["rot_dist"])
            + 1.0 * (not terms["done"])
            + 2.0 * terms["solved"]
        )
        assert reward == pytest.approx(expected, rel=1e-9, abs=1e-12)
        assert reward != pytest.approx(terms["dense"])  # the env's own reward is replaced
        previous = terms
        if terminated or truncated:
            break


@pytest.mark.fast
def test_unknown_reward_term_names_the_valid_ones():
    env = make_env("myoHandPenTwirlRandom-v0", reward_weights={"pos_dist": 1.0})
    with pytest.raises(ValueError, match=r"Unknown reward term\(s\) \['pos_dist'\].*'pos_align_diff'"):
        env.reset(seed=0)


@pytest.mark.fast
def test_control_step_and_env_ids():
    assert control_dt(make_env("Ant-v5")) == pytest.approx(0.05)
    assert control_dt(make_env("myoChallengeDieReorientP2-v0")) == pytest.approx(0.01)  # not 1 / render_fps
    check_env_id("myoHandReorient8-v0")
    with pytest.raises(ValueError, match="did you mean 'myoHandReorient8-v0'"):
        check_env_id("myoHandReorent8-v0")


@pytest.mark.parametrize(
    "speed, mujoco_resets",
    [(2e3, False), (1e5, True)],  # the pen flies off within the step; MuJoCo's own check fires and resets the state
)
def test_a_diverged_step_ends_the_episode_with_reward_zero(speed, mujoco_resets):
    """A contact blow-up gives the unguarded paper reward an absurd value (the pen leaves at 1e5 rad/s) or one
    computed on MuJoCo's reset state; with the guard that step ends the episode with reward 0, flagged."""
    bare_rewards, (_, bare_reward, bare_terminated, _, _) = spin_the_pen(pen_env(guarded=False), speed)
    env = pen_env(guarded=True)
    rewards, (_, reward, terminated, _, info) = spin_the_pen(env, speed)
    assert rewards == pytest.approx(bare_rewards, rel=1e-12)  # ordinary steps are untouched
    assert bare_reward != 0.0 and (abs(bare_reward) > 1e3 or mujoco_resets)
    reset_count = env.unwrapped.data.warning[int(mujoco.mjtWarning.mjWARN_BADQACC)].number
    assert (reset_count > 0) == mujoco_resets
    assert (reward, terminated, info[DIVERGED]) == (0.0, True, True)
    assert bare_terminated  # unguarded, MyoSuite ends it too (dropped, or its own instability check)
    env.reset(seed=1)  # the next episode starts clean
    _, _, _, _, info = env.step(np.zeros(env.action_space.shape, dtype=np.float32))
    assert info[DIVERGED] is False
    # the episode's energy means are still reported, and Monitor gets the flag
    assert DIVERGED in env.info_keywords


def test_the_guard_leaves_ordinary_episodes_alone():
    """Over a whole episode of random actions the guarded env returns what the bare one does, step for step."""
    bare, env = pen_env(guarded=False), pen_env(guarded=True)
    rng = np.random.default_rng(3)
    obs_bare, _ = bare.reset(seed=4)
    obs, _ = env.reset(seed=4)
    np.testing.assert_array_equal(obs, obs_bare)
    done = False
    while not done:
        action = rng.uniform(-1, 1, size=env.action_space.shape).astype(np.float32)
        step_bare, step = bare.step(action), env.step(action)
        np.testing.assert_array_equal(step[0], step_bare[0])
        assert step[1:4] == step_bare[1:4] and step[4][DIVERGED] is False
        done = step[2] or step[3]

"""Chance baselines on real envs (the overactuated benchmark, the MyoSuite elbow, Ant): the zero policy's numbers
against closed forms and a hand-written episode loop, the random policy's actions, determinism, and run configs
rebuilt from the rows of the reports in results/."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import yaml

from lattice.envs.overactuated import OveractuatedReach
from lattice.experiments.build import task_env
from lattice.experiments.chance import (
    POLICIES,
    TASK_SETTINGS,
    ChancePolicy,
    chance_evaluations,
    config_from_row,
    registered_env_id,
)
from lattice.experiments.dotted import flatten
from lattice.experiments.report import IDENTITY_KEYS, label_tasks
from lattice.experiments.stats import METRICS
from lattice.experiments.validate import RunConfig, resolve_run_config
from lattice.noise import NOISE_PARAMETERS, NOISES
from tests.helpers import ROOT

SEEDS = (0, 1)
N_ACTUATORS = 16
MUSCLE_ZERO = 1.0 / (1.0 + np.exp(2.5))  # MyoSuite's excitation σ(5(a − 0.5)) of the action a = 0


@pytest.fixture(scope="module")
def configs() -> dict[str, RunConfig]:
    """Each task with a few short evaluation episodes (Ant's cut to 20 steps)."""
    return {
        "overactuated": resolve_run_config(
            "ppo",
            "isotropic",
            "overactuated",
            overrides={"env_kwargs": {"n_actuators": N_ACTUATORS}, "eval_episodes": 3},
        ),
        "elbow": resolve_run_config("ppo", "isotropic", "elbow", overrides={"eval_episodes": 2}),
        "ant": resolve_run_config("sac", "isotropic", "ant", overrides={"eval_episodes": 2, "max_episode_steps": 20}),
    }


@pytest.fixture(scope="module")
def baselines(configs) -> dict[str, pd.DataFrame]:
    return {task: chance_evaluations(config, SEEDS) for task, config in configs.items()}


def test_one_row_per_policy_and_seed(configs, baselines):
    for task, frame in baselines.items():
        assert list(frame.columns) == ["policy", "seed", "episodes", *METRICS]
        assert list(zip(frame["policy"], frame["seed"], strict=True)) == [(p, s) for p in POLICIES for s in SEEDS]
        assert (frame["episodes"] == configs[task].eval_episodes).all()
    # what an env does not log is NaN: Ant has no muscles and no success flag
    assert baselines["ant"][["success", "effort", "act_sq"]].isna().all().all()
    assert baselines["ant"][["return", "action_sq"]].notna().all().all()
    assert baselines["elbow"][list(METRICS)].notna().all().all()


def test_identical_on_a_second_call_and_no_global_random_state_used(configs, baselines):
    before = np.random.get_state()  # noqa: NPY002 (the legacy global state is what must stay untouched)
    again = chance_evaluations(configs["overactuated"], SEEDS)
    after = np.random.get_state()  # noqa: NPY002
    pd.testing.assert_frame_equal(again, baselines["overactuated"])
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2:] == after[2:]


def test_settings_outside_the_task_settings_do_not_matter(configs, baselines):
    """Another noise, algorithm, hyperparameters and no VecNormalize: the same baselines (TASK_SETTINGS)."""
    task = {name: configs["overactuated"][name] for name in TASK_SETTINGS}
    other = resolve_run_config("sac", "lattice", "overactuated", overrides={**task, "normalize": False, "seed": 7})
    pd.testing.assert_frame_equal(chance_evaluations(other, SEEDS), baselines["overactuated"])


def test_zero_policy_sends_zeros(baselines):
    for frame in baselines.values():
        assert (frame.loc[frame["policy"] == "zero", "action_sq"] == 0.0).all()  # mean a² of the applied actions

    # Overactuated: excitation (0 + 1) / 2 = 0.5 on every muscle, so after step k every activation is
    # 0.5 (1 − (1 − r)^k), r = dt / τ; effort ‖act‖₂ / N = act / √N; 100 steps an episode.
    zero = baselines["overactuated"].query("policy == 'zero'")
    env = OveractuatedReach(n_actuators=N_ACTUATORS)
    act = 0.5 * (1.0 - (1.0 - env.dt / env.tau) ** np.arange(1, 101))
    np.testing.assert_allclose(zero["act_sq"], np.mean(act**2), rtol=1e-12)
    np.testing.assert_allclose(zero["effort"], np.mean(act) / np.sqrt(N_ACTUATORS), rtol=1e-12)

    # Elbow: every muscle's activation rises towards the excitation σ(−2.5) ≈ 0.076, never above it.
    zero = baselines["elbow"].query("policy == 'zero'")
    n_muscles = 6
    assert (zero["act_sq"] <= MUSCLE_ZERO**2 * (1 + 1e-6)).all() and (zero["act_sq"] > 0.9 * MUSCLE_ZERO**2).all()
    effort = zero["effort"] * np.sqrt(n_muscles)  # = the mean activation, every muscle's being the same
    assert (effort <= MUSCLE_ZERO * (1 + 1e-6)).all() and (effort > 0.9 * MUSCLE_ZERO).all()


@pytest.mark.parametrize("task", ["overactuated", "elbow"])
def test_zero_policy_returns_match_a_hand_written_loop(configs, baselines, task):
    """The same env, seeded seed + n_envs and reset without a seed after each episode, stepped by hand with zeros:
    the raw episode returns (Monitor rounds each to 6 decimals)."""
    config = configs[task]
    for seed in SEEDS:
        env = task_env(config)
        env.reset(seed=seed + config.n_envs)
        returns = []
        for _ in range(config.eval_episodes):
            total, done = 0.0, False
            while not done:
                _, reward, terminated, truncated, _ = env.step(np.zeros(env.action_space.shape, env.action_space.dtype))
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
            env.reset()
        env.close()
        row = baselines[task].query("policy == 'zero' and seed == @seed")
        assert row["return"].item() == pytest.approx(np.mean(returns), abs=1e-5)


def test_random_policy_draws_uniformly_in_the_box_by_seed(baselines):
    space = gym.spaces.Box(np.float32([-1.0, 0.0, 2.0]), np.float32([1.0, 0.5, 2.5]))
    observations = np.zeros((4, 7), dtype=np.float32)  # a batch of 4 envs
    draws = [ChancePolicy("random", space, seed).predict(observations)[0] for seed in (0, 0, 1)]
    for actions in draws:
        assert actions.shape == (4, 3) and actions.dtype == np.float32
        assert all(space.contains(a) for a in actions)
    assert np.array_equal(draws[0], draws[1]) and not np.array_equal(draws[0], draws[2])

    # In the evaluations: uniform on [−1, 1] gives E[a²] = 1/3 (4,800 draws of a² a seed: standard error 0.004).
    random = baselines["overactuated"].query("policy == 'random'")["action_sq"]
    np.testing.assert_allclose(random, 1.0 / 3.0, atol=0.02)
    assert random.nunique() == len(SEEDS)


def test_unknown_policy_and_unbounded_space_are_refused():
    with pytest.raises(ValueError, match="Unknown chance policy 'lazy'"):
        ChancePolicy("lazy", gym.spaces.Box(-1.0, 1.0, (2,)), 0)
    with pytest.raises(ValueError, match="bounded Box"):
        ChancePolicy("random", gym.spaces.Box(-np.inf, np.inf, (2,)), 0)


def test_registered_env_id_from_a_report_label():
    assert registered_env_id("OveractuatedReach-v0") == "lattice/OveractuatedReach-v0"
    assert registered_env_id("myoElbowPose1D6MRandom-v0") == "myoElbowPose1D6MRandom-v0"
    assert registered_env_id("Ant-v5") == "Ant-v5"
    with pytest.raises(ValueError, match="did you mean"):
        registered_env_id("OveractuatedReach-v9")
    gym.register("elsewhere/OveractuatedReach-v0", entry_point="lattice.envs.overactuated:OveractuatedReach")
    try:
        with pytest.raises(ValueError, match="ambiguous: registered as elsewhere/OveractuatedReach-v0, lattice/"):
            registered_env_id("OveractuatedReach-v0")
    finally:
        del gym.registry["elsewhere/OveractuatedReach-v0"]


def test_config_from_a_row_without_settings_round_trips():
    """A report made before reports recorded settings (results/repro's rows without the settings column it was
    given afterwards): the task files' settings, the row's identity; the configs labelled as the report labels
    tasks give back the rows' labels."""
    rows = pd.read_csv(ROOT / "results" / "repro" / "evaluations.csv").groupby("env").head(1)
    rows = rows.drop(columns="settings")
    configs = [config_from_row(row, {"eval_episodes": 20}) for _, row in rows.iterrows()]
    for config, (_, row) in zip(configs, rows.iterrows(), strict=True):
        assert (config.algo, config.noise, config.seed) == (row["algo"], row["noise"], row["seed"])
        assert config.eval_episodes == 20
    made = pd.DataFrame(
        {
            "env": [config.env for config in configs],
            "env_kwargs": [yaml.safe_dump(config.env_kwargs, default_flow_style=True).strip() for config in configs],
        }
    )
    relabelled = label_tasks(made)
    assert list(relabelled["env"]) == list(rows["env"]) and list(made["env_kwargs"]) == list(rows["env_kwargs"])
    assert "lattice/OveractuatedReach-v0" in list(made["env"])


def test_config_from_a_row_with_settings_round_trips():
    """results/hand: every recorded setting comes back as the row has it, but the parameters of other noises,
    which the version that made these runs recorded with no effect (``load.recorded_config`` drops them)."""
    row = pd.read_csv(ROOT / "results" / "hand" / "evaluations.csv").iloc[0]
    config = config_from_row(row)
    settings = {k: v for k, v in flatten(config.as_dict()).items() if k.split(".")[0] not in IDENTITY_KEYS}
    recorded = yaml.safe_load(row["settings"])
    other_noises = {f"hyperparams.policy_kwargs.{name}" for name in NOISE_PARAMETERS} - {
        f"hyperparams.policy_kwargs.{name}" for name in NOISES[config.noise].param_names
    }
    assert settings == {k: v for k, v in recorded.items() if k not in other_noises}
    assert set(recorded) - set(settings) <= other_noises
    assert (config.env, config.algo, config.noise, config.seed) == (row["env"], row["algo"], row["noise"], row["seed"])
    # A report names a noise with the settings that tell its runs apart ("lattice T=4"): the noise is its first word.
    labelled = row.copy()
    labelled["noise"] = f"{row['noise']} T=4"
    assert config_from_row(labelled).noise == config.noise

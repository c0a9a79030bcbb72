"""Chance baselines of a task: what a policy that learnt nothing scores under the very evaluation protocol of a
run's evaluations, so that a report's "return rose to 150" has a floor.

Two policies, each evaluated on a run's own evaluation env (``training.eval_env``: one env seeded
``seed + n_envs``, the config's wrappers, raw rewards) for the config's ``eval_episodes`` episodes, with the
evaluation's own episode loop (``callbacks.evaluate_episodes``, SB3's ``evaluate_policy``):

- ``zero``: the action 0 of the env's action space at every step. What that applies depends on the task:

  - MyoSuite muscles (elbow, hand: ``normalize_act``, every actuator a muscle): MyoSuite maps an action a ∈ [−1, 1]
    to the excitation σ(5(a − 0.5)), a sigmoid centred at 0.5, so action 0 is an excitation of σ(−2.5) ≈ 0.076 on
    every muscle, not 0.5 nor 0, and the activations settle at it: a weak co-contraction of all muscles.
  - The overactuated benchmark (``lattice.envs.overactuated``): the excitation is (a + 1) / 2, so action 0 is 0.5
    on every muscle; antagonistic pairs then pull equally, the net force is 0 and the mass stays at the start while
    paying the energy term for mean(act²) → 0.25.
  - MuJoCo locomotion (Ant): zero torque on every joint; the body settles under gravity.

- ``random``: actions drawn uniformly from the action space's box at every step, from a numpy Generator seeded by
  the run's seed (no global random state is used or changed).

Both ignore observations, so the evaluation env's observation normalisation does not matter to them; its rewards
are the raw ones, as in every evaluation. The env of seed s plays the same episodes as the first evaluation of the
runs of seed s: the same initial states and goals, where the task draws them independently of the actions (later
evaluations of a run continue the same env's random stream).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
import yaml

from lattice.envs import check_env_id, ensure_registered
from lattice.envs.overactuated import ENV_ID as OVERACTUATED_ID
from lattice.experiments.callbacks import Episodes, evaluate_episodes
from lattice.experiments.dotted import unflatten
from lattice.experiments.load import recorded_config
from lattice.experiments.settings import defaults
from lattice.experiments.stats import METRICS
from lattice.experiments.training import eval_env
from lattice.experiments.validate import RunConfig, resolve_run_config, validate_run_config

POLICIES = ("zero", "random")

# The settings a chance baseline depends on (with the seed): the task's env and episodes, and how many training
# envs precede the evaluation env's seed. Runs that agree on them share one baseline whatever their algorithm,
# noise or hyperparameters.
TASK_SETTINGS = ("env", "env_kwargs", "max_episode_steps", "reward_weights", "n_envs", "eval_episodes")

_RANDOM_STREAM = 0xC4A7CE  # mixed with the run's seed, so that the actions' stream is none of the envs' streams


class ChancePolicy:
    """A policy that ignores its observations, with the ``predict`` of SB3's ``PolicyPredictor`` (what
    ``evaluate_policy`` calls).

    :param name: ``zero`` (the action 0 every step) or ``random`` (uniform over the action space's box).
    :param action_space: The evaluation env's action space (a bounded Box).
    :param seed: Seeds the random policy's Generator (unused by ``zero``).
    """

    def __init__(self, name: str, action_space: gym.spaces.Space, seed: int):
        if name not in POLICIES:
            raise ValueError(f"Unknown chance policy {name!r}; choose one of {', '.join(POLICIES)}")
        if not isinstance(action_space, gym.spaces.Box) or not action_space.is_bounded():
            raise ValueError(f"Chance policies need a bounded Box action space, got {action_space}")
        self.name, self.action_space = name, action_space
        self.rng = np.random.default_rng([seed, _RANDOM_STREAM])

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """One action per env of the batch ``observation`` (the observations themselves are not looked at).

        :param observation: A batch of observations (a VecEnv's: the first axis is the env).
        :param state: Unused (no recurrent state).
        :param episode_start: Unused.
        :param deterministic: Unused: ``random`` draws at random in evaluations too; that is its point.
        :return: The actions, shaped ``(n_envs, *action_shape)`` in the action space's dtype, and no state.
        """
        first = next(iter(observation.values())) if isinstance(observation, dict) else observation
        space = self.action_space
        shape = (len(first), *space.shape)
        if self.name == "zero":
            return np.zeros(shape, dtype=space.dtype), None
        return self.rng.uniform(space.low, space.high, size=shape).astype(space.dtype), None


def episode_metrics(episodes: Episodes) -> dict[str, float]:
    """Each of the report's metrics (``stats.METRICS``) as the mean over ``episodes``, NaN for one the env does not
    log, read from the ``evaluations.npz`` key it comes from (as ``EnergyEvalCallback`` saves them)."""
    per_key: dict[str, list[float]] = {"results": episodes.returns, **episodes.energy}
    if episodes.successes:
        per_key["successes"] = [float(s) for s in episodes.successes]
    return {column: float(np.mean(per_key[key])) if key in per_key else np.nan for column, (key, _) in METRICS.items()}


def chance_evaluations(
    config: RunConfig | Mapping[str, Any], seeds: Sequence[int], policies: Sequence[str] = POLICIES
) -> pd.DataFrame:
    """The chance baselines of ``config``'s task: each policy evaluated on each seed's evaluation env.

    Deterministic: the envs are seeded, the random policy's actions come from a Generator of its own seeded by the
    seed, so a second call gives identical numbers.

    :param config: A resolved run config (``RunConfig`` or its dict); its seed, algorithm, noise and hyperparameters
        do not matter (``TASK_SETTINGS`` do).
    :param seeds: The runs' seeds: seed s is evaluated on the env seeded ``s + n_envs``, as the runs of seed s are.
    :param policies: Which of ``POLICIES`` to evaluate.
    :return: One row per (policy, seed): ``policy``, ``seed``, ``episodes`` and each ``stats.METRICS`` column
        (``return``, ``success``, ``effort``, ``act_sq``, ``action_sq``), the mean over the seed's episodes, NaN for
        a metric the env does not log.
    """
    config = RunConfig.of(config)
    rows = []
    for name in policies:
        for seed in seeds:
            run = replace(config, seed=int(seed))
            # No info keywords: evaluate_episodes reads energy and success from the last step's info, not from
            # Monitor's episode summary (they only add columns to monitor CSVs, of which an evaluation writes none).
            env = eval_env(run, ())
            try:
                policy = ChancePolicy(name, env.action_space, run.seed)
                episodes = evaluate_episodes(policy, env, run.eval_episodes)
            finally:
                env.close()
            rows.append(
                {"policy": name, "seed": run.seed, "episodes": len(episodes.returns), **episode_metrics(episodes)}
            )
    return pd.DataFrame(rows, columns=["policy", "seed", "episodes", *METRICS])


def registered_env_id(name: str) -> str:
    """The registered gymnasium id whose name without namespace is ``name`` (``OveractuatedReach-v0`` →
    ``lattice/OveractuatedReach-v0``), as reports label tasks (``report.label_tasks``).

    :raises ValueError: No registered id has that name (naming the closest ones), or several namespaces do.
    """
    ensure_registered(name)  # MyoSuite's ids carry no namespace
    ensure_registered(OVERACTUATED_ID)  # this package's namespaced ids
    matches = [env_id for env_id in gym.registry if env_id.rsplit("/", 1)[-1] == name]
    if not matches:
        check_env_id(name)  # raises, with the closest registered ids
    if len(matches) > 1:
        raise ValueError(f"Env name {name!r} is ambiguous: registered as {', '.join(sorted(matches))}")
    return matches[0]


def config_from_row(row: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> RunConfig:
    """The run config of a row of a report's ``evaluations.csv`` (``report.run_evaluations``, labelled by
    ``report.label_tasks``), enough to build its evaluation env: the env id from the label's name (the first word;
    ``registered_env_id``), ``env_kwargs``, ``algo``, ``noise``, ``seed`` and the ``settings`` column.

    A report made before it recorded settings (no ``settings`` column, e.g. ``results/repro``) gives the task
    file's settings for that env (``resolve_run_config``), not what a sweep changed: pass those as ``overrides``
    (e.g. ``{"eval_episodes": 20}``). ``device`` and ``vec_env``, which reports leave out, get their defaults.

    :param row: One row (a mapping or a pandas Series).
    :param overrides: Settings applied last (setting name → value).
    :raises ValueError: The env name is not registered, or ambiguous (``registered_env_id``).
    :raises ConfigError: The settings are not valid for this version.
    """
    env = registered_env_id(str(row["env"]).split(" ", 1)[0])
    identity: dict[str, Any] = {
        "env": env,
        "env_kwargs": yaml.safe_load(str(row["env_kwargs"])) or {},
        "algo": str(row["algo"]),
        "noise": str(row["noise"]).split(" ", 1)[0],  # a label of report.label_settings: "lattice T=4"
        "seed": int(row["seed"]),
    }
    settings = row.get("settings")
    if not isinstance(settings, str):  # absent, or NaN in a report that mixes both kinds of rows
        return resolve_run_config(identity["algo"], identity["noise"], env, overrides={**identity, **(overrides or {})})
    config = {**defaults(), **unflatten(yaml.safe_load(settings)), **identity, **(overrides or {})}
    return validate_run_config(recorded_config(config))


CHANCE_LABELS = {"zero": "zero action", "random": "random action"}  # chance.POLICIES, as the report names them


def chance_baselines(evaluations: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """The chance baselines of each task in a report's evaluations (``chance_evaluations``): the zero-action and random
    policies on the evaluation env of each seed the task's runs have, with the runs' evaluation protocol (episodes,
    wrappers), as rows like the runs' final evaluations (``noise``: the policy, ``algo``: ``none``).

    :return: The rows, and why a task has none (its runs disagree on the settings a baseline depends on, or its env
        cannot be built here).
    """
    frames, missing = [], {}
    for env, runs in evaluations.drop_duplicates("run").groupby("env", sort=True):
        try:
            configs = [config_from_row(row) for _, row in runs.sort_values(["seed", "run"]).iterrows()]
            protocols = {tuple(repr(getattr(c, key)) for key in TASK_SETTINGS) for c in configs}
            if len(protocols) > 1:
                missing[str(env)] = f"its runs differ in {', '.join(TASK_SETTINGS)}"
                continue
            frame = chance_evaluations(configs[0], sorted({c.seed for c in configs}))
        except (ValueError, OSError, ImportError) as e:  # ConfigError too; an env that does not build here
            missing[str(env)] = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}"
            continue
        frame = frame.assign(env=env, algo="none", noise=frame["policy"].map(CHANCE_LABELS), timesteps=0)
        frames.append(frame.assign(run=frame["policy"] + "/" + frame["seed"].astype(str)).drop(columns="policy"))
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), missing

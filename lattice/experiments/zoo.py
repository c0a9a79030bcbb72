"""rl-baselines3-zoo's view of a run folder: ``<env>.zip``, ``<env>/vecnormalize.pkl``, ``<env>/config.yml`` and
``<env>/args.yml`` (the layout: ``lattice.experiments.rundir``).

The zoo's ``enjoy`` (and ``record_video``, ``push_to_hub``) read ``logs/<algo>/<env>_<N>/<env>.zip`` and normalise
with ``<env>/vecnormalize.pkl`` whichever model they load (``--load-best`` reads ``best_model.zip``). Both names
serve the run's best policy and its own statistics, so either choice plays it exactly as it was evaluated.
"""

from __future__ import annotations

from typing import Any, Protocol

import yaml

from lattice.experiments.rundir import (
    ARGS,
    BEST_MODEL,
    BEST_VECNORMALIZE,
    CONFIG,
    FINAL_MODEL,
    VECNORMALIZE,
    RunDir,
    atomic_write_text,
    env_name,
    link_or_copy,
)


class ZooSettings(Protocol):
    """The run settings the zoo's view needs, read-only (a ``lattice.experiments.validate.RunConfig`` has them; this
    module stays below the config modules)."""

    @property
    def env(self) -> str: ...
    @property
    def env_kwargs(self) -> dict[str, Any]: ...
    @property
    def max_episode_steps(self) -> int | None: ...
    @property
    def reward_weights(self) -> dict[str, float] | None: ...
    @property
    def normalize(self) -> dict[str, Any] | bool: ...


def write_zoo_config(run: RunDir, config: ZooSettings, policy: str) -> None:
    """``<env>/config.yml`` and ``<env>/args.yml`` as rl-baselines3-zoo writes them: whether (and how) to
    normalise, the env's wrappers and keywords, so that its ``enjoy`` rebuilds this run's env.

    :param run: The run folder.
    :param config: The run's resolved config (a ``RunConfig``).
    :param policy: The policy class's dotted path.
    """
    folder = run / env_name(config.env)
    folder.mkdir(exist_ok=True)
    wrappers: list[Any] = []
    if config.reward_weights:
        wrappers.append({"lattice.envs.RewardWeights": {"weights": dict(config.reward_weights)}})
    wrappers.append("lattice.envs.EpisodeEnergy")
    hyperparams = {"policy": policy, "normalize": config.normalize, "env_wrapper": wrappers}
    env_kwargs = dict(config.env_kwargs)
    if config.max_episode_steps is not None:
        env_kwargs["max_episode_steps"] = config.max_episode_steps
    atomic_write_text(folder / CONFIG, yaml.safe_dump(hyperparams, sort_keys=False))
    atomic_write_text(folder / ARGS, yaml.safe_dump({"env": config.env, "env_kwargs": env_kwargs}))


def publish_zoo_view(run: RunDir, env_id: str) -> None:
    """Point the zoo's names at the best policy: the old ``<env>.zip`` is removed first, then
    ``<env>/vecnormalize.pkl`` and ``<env>.zip`` are linked, so that a kill at any point leaves the zoo no model
    rather than a model with another model's statistics."""
    name = env_name(env_id)
    (run / f"{name}.zip").unlink(missing_ok=True)
    if (run / BEST_VECNORMALIZE).exists():
        (run / name).mkdir(exist_ok=True)
        link_or_copy(run / BEST_VECNORMALIZE, run / name / VECNORMALIZE)
    link_or_copy(run / BEST_MODEL, run / f"{name}.zip")


def remove_zoo_view(run: RunDir) -> None:
    """Remove the zoo's model and statistics (a resume that sets the best model aside: the next evaluation
    publishes a new one)."""
    for model in run.path.glob("*.zip"):
        if (run.path / model.stem).is_dir() and model.name not in (BEST_MODEL, FINAL_MODEL):
            model.unlink()  # the model first: the zoo finds no model rather than one with other statistics
            (run.path / model.stem / VECNORMALIZE).unlink(missing_ok=True)

"""Validation: merged settings → a ``RunConfig``, every value checked, every default filled in.

``resolve_run_config`` merges the layers (``lattice.experiments.load``) and validates them; ``validate_run_config``
validates a mapping of settings (a run's ``config.yml``). Each raises a ``ConfigError`` (one line, naming the bad
value and the valid ones) for a value a run cannot take, before anything is written:

- every run setting against its declaration (``lattice.experiments.settings``), ``normalize``'s keywords included;
- the algorithm's and policy's keywords against their constructors and ranges (``lattice.experiments.keywords``);
- the noise's parameters through the noise registry (``lattice.noise.resolve_noise_params``): only the chosen
  noise's are recorded, and one of another noise away from its default is refused; ``noise_period`` likewise
  applies to state-dependent noises only (``null`` for the others);
- sizes that no machine runs: more envs than processes can be started, an n-step return longer than the replay
  buffer (the buffers' memory, which needs the env's spaces, is ``lattice.experiments.build.check_sizes``).

The resolved config holds every value (the constructors' defaults filled in), is written to the run folder as
``config.yml`` (``RunConfig.as_dict``) and repeats the run when passed back with ``--config``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from lattice.colored import DEFAULT_HORIZON
from lattice.envs import check_env_id, registered_episode_length
from lattice.experiments.algorithms import ALGOS
from lattice.experiments.errors import ConfigError
from lattice.experiments.keywords import algorithm_keywords, policy_keywords, to_yaml_value
from lattice.experiments.load import CONFIG_DIR, check_keys, merge_config, task_names
from lattice.experiments.settings import SETTING, SETTINGS
from lattice.noise import NOISE_PARAMETERS, resolve_noise_params


@dataclass(frozen=True, eq=False)
class RunConfig(Mapping[str, Any]):
    """The resolved config of one run: one typed field per run setting (``settings.SETTINGS``, in its order).

    Built by ``validate_run_config`` / ``resolve_run_config`` only, so every field holds a valid value. It is also a
    read-only mapping (``config["seed"]``, ``dict(config)``, equal to the dict of its items) for code that still
    reads settings by name; ``as_dict()`` is what ``config.yml`` holds.
    """

    algo: str
    noise: str
    env: str
    env_kwargs: dict[str, Any]
    max_episode_steps: int | None
    reward_weights: dict[str, float] | None
    n_envs: int
    vec_env: str  # auto, dummy or subproc: as given (training resolves auto: lattice.experiments.training)
    normalize: dict[str, Any] | bool  # False, or VecNormalize's keywords
    seed: int
    timesteps: int
    noise_period: int | None  # None for a noise that is not state-dependent
    eval_freq: int
    eval_episodes: int
    save_freq: int
    device: str
    hyperparams: dict[str, Any]  # the algorithm's keywords, policy_kwargs (a dict) included

    def __getitem__(self, key: str) -> Any:
        if key not in SETTING:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(SETTING)

    def __len__(self) -> int:
        return len(SETTING)

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> RunConfig:
        """``config`` as a RunConfig: itself, or a resolved config's dict (``validate``'s, a ``config.yml`` that
        validation wrote), taken as it is; anything else goes through ``validate_run_config``."""
        if isinstance(config, RunConfig):
            return config
        return cls(**{s.name: config[s.name] for s in SETTINGS})

    @property
    def policy_kwargs(self) -> dict[str, Any]:
        """The policy's keywords (``hyperparams["policy_kwargs"]``)."""
        return self.hyperparams["policy_kwargs"]

    def as_dict(self) -> dict[str, Any]:
        """The config as plain YAML values, in the settings' order (what ``config.yml`` holds); a copy."""
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)}


def resolve_run_config(
    algo: str | None = None,
    noise: str | None = None,
    env: str | None = None,
    config: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    hyperparams: list[str] | None = None,
    config_dir: Path = CONFIG_DIR,
) -> RunConfig:
    """The resolved, validated config of one run.

    :param algo: Algorithm name (``algorithms.ALGORITHMS``); may come from ``config`` instead.
    :param noise: Noise name (``lattice.noise.NOISES``); may come from ``config`` instead.
    :param env: A task name (a file in ``config_dir``) or a gym id; may come from ``config`` instead (default ant).
    :param config: A task file or a run's ``config.yml``, used instead of looking up ``env``'s task file.
    :param overrides: Settings given as flags (setting name → value), above the files.
    :param hyperparams: ``key=value`` strings (``load.parse_hyperparams``), above everything.
    :param config_dir: Where ``defaults.yaml`` and the task files are.
    """
    merged = merge_config(algo, noise, env, config, overrides, hyperparams, config_dir)
    return validate_run_config(merged, config_dir)


def validate_run_config(config: Mapping[str, Any], config_dir: Path = CONFIG_DIR) -> RunConfig:
    """Check every setting and fill in the constructors' defaults.

    :param config: Every run setting (a merged config, or a run's ``config.yml``).
    :param config_dir: Whose task names an unknown env's error message suggests.
    """
    check_keys(config, "the config")
    missing = [s.name for s in SETTINGS if s.name not in config]
    if missing:
        raise ConfigError(f"Config is missing {', '.join(missing)} ({'; '.join(SETTING[k].help for k in missing)})")
    values = {s.name: s.check(copy.deepcopy(config[s.name])) for s in SETTINGS if s.name != "noise_period"}
    algo, noise = values["algo"], values["noise"]
    try:
        check_env_id(str(values["env"]), task_names(config_dir))
    except ValueError as e:
        raise ConfigError(str(e)) from None
    values["noise_period"] = noise_period_for(noise, config["noise_period"])

    algo_class, policy_class = ALGOS[algo]
    hyperparams = dict(values["hyperparams"])
    policy_given = hyperparams.pop("policy_kwargs", None) or {}
    if not isinstance(policy_given, dict):
        raise ConfigError(f"policy_kwargs must be a mapping, got {policy_given!r}")
    filled, _ = algorithm_keywords(algo_class, hyperparams)
    noise_given = {k: v for k, v in policy_given.items() if k in NOISE_PARAMETERS}
    policy = policy_keywords(policy_class, {k: v for k, v in policy_given.items() if k not in NOISE_PARAMETERS})
    try:
        noise_params = resolve_noise_params(noise, noise_given)
    except ValueError as e:
        raise ConfigError(f"policy_kwargs: {e}") from None
    if "noise_horizon" in noise_params and noise_params["noise_horizon"] is None:
        # Colored noise draws one sequence per episode: as long as the task's episodes.
        noise_params["noise_horizon"] = _episode_length(values["max_episode_steps"], values["env"])
    filled["policy_kwargs"] = {**policy, **{k: to_yaml_value(v) for k, v in noise_params.items()}}
    values["hyperparams"] = filled
    _check_sizes(values)
    return RunConfig(**values)


def noise_period_for(noise: str, value: Any) -> int | None:
    """``noise_period`` for ``noise``: checked for a state-dependent noise (null: the default), else null, refused
    when set to anything but its default (it would have no effect)."""
    setting = SETTING["noise_period"]
    assert setting.noises is not None
    if noise in setting.noises:
        return setting.check(setting.default if value is None else value)
    if value is not None and value != setting.default:
        raise ConfigError(
            f"noise_period={value!r} has no effect with noise {noise!r}, which draws fresh noise every step: drop it "
            f"(--noise-period, noise_period in --hyperparams or a config file) or choose a state-dependent noise "
            f"({', '.join(setting.noises)})"
        )
    return None


def _episode_length(max_episode_steps: int | None, env: str) -> int:
    """The run's episode length: ``max_episode_steps``, else the env's registered one (else colored noise's
    default, for an env without a time limit)."""
    if max_episode_steps is not None:
        return max_episode_steps
    return registered_episode_length(env) or DEFAULT_HORIZON


def _check_sizes(values: dict[str, Any]) -> None:
    """Sizes that need no env to be refused: an n-step return (off-policy ``n_steps``) must fit in the replay
    buffer, which keeps ``buffer_size // n_envs`` steps of each env."""
    hyperparams = values["hyperparams"]
    if "buffer_size" in hyperparams and "n_steps" in hyperparams:
        per_env = max(hyperparams["buffer_size"] // values["n_envs"], 1)
        if hyperparams["n_steps"] > per_env:
            raise ConfigError(
                f"n_steps={hyperparams['n_steps']!r} is out of range: an n-step return needs n_steps steps of one env "
                f"in the replay buffer, which keeps buffer_size // n_envs = {per_env} of each; it must be in "
                f"[1, {per_env}]"
            )

"""Experiment configs: YAML per task in ``configs/``, merged with the CLI into one resolved, validated config.

A task file (``configs/ant.yaml``, ...) holds the settings shared by all algorithms at the top level and a block
per algorithm (``sac:``, ``ppo:``, ``recurrent_ppo:``) that is merged on top; ``include:`` names files merged
first (shared blocks live in one file, e.g. ``configs/shared/paper_ppo_myosuite.yaml``), and ``variants:`` maps
other gym ids that run with the task's settings to the keys they change. ``configs/defaults.yaml`` is the first
layer of every config. Order of precedence, lowest first::

    defaults.yaml  <  included files  <  the task file  <  CLI flags (--seed, -n, ...)  <  --hyperparams

The task files that ship with the package are in ``lattice/experiments/configs/`` (the repository's ``configs/``
links there). A folder of one's own (``--config-dir``) is searched first: its task files, and its ``defaults.yaml``
if it has one; an ``include:`` is looked up next to the including file, then among the packaged files (so a task
file of one's own can include ``shared/paper_sac.yaml``).

The resolved config is flat (the keys of ``RUN_KEYS``), holds every value (the algorithm's and the policy's
constructor defaults are filled in) and is written to the run folder as ``config.yml``; passing it back with
``--config`` repeats the run.
"""

from __future__ import annotations

import copy
import difflib
import functools
import importlib
import inspect
import math
import numbers
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch as th
import yaml
from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm

from lattice.colored import DEFAULT_HORIZON
from lattice.envs import EpisodeEnergy, check_env_id, make_env, registered_episode_length
from lattice.noise import NOISES
from lattice.policies import LatticeActorCriticPolicy, LatticeRecurrentActorCriticPolicy, LatticeSACPolicy

CONFIG_DIR = Path(__file__).resolve().parent / "configs"  # the packaged task and sweep files

# One dict maps algorithm names to (algorithm, policy) classes.
ALGOS: dict[str, tuple[type[BaseAlgorithm], type]] = {
    "sac": (SAC, LatticeSACPolicy),
    "ppo": (PPO, LatticeActorCriticPolicy),
    "recurrent_ppo": (RecurrentPPO, LatticeRecurrentActorCriticPolicy),
}

# The keys of a resolved config, with what they mean (the CLI's --help and the error messages use these).
RUN_KEYS: dict[str, str] = {
    "algo": f"algorithm: {', '.join(ALGOS)}",
    "noise": f"exploration noise: {', '.join(NOISES)}",
    "env": "gymnasium id of the environment",
    "env_kwargs": "keywords of the env's constructor",
    "max_episode_steps": "episode length (null: the registered one)",
    "reward_weights": "MyoSuite reward term -> weight (null: the env's own reward)",
    "n_envs": "parallel training envs (one process each when > 1)",
    "normalize": "VecNormalize keywords, or false",
    "seed": "random seed (worker i uses seed + i; evaluation uses seed + n_envs)",
    "timesteps": "total environment steps",
    "noise_period": "steps between noise redraws T (SB3's sde_sample_freq; -1: once per rollout)",
    "eval_freq": "environment steps between evaluations",
    "eval_episodes": "episodes per evaluation",
    "save_freq": "environment steps between checkpoints",
    "device": "torch device: auto, cpu, cuda",
    "hyperparams": "keywords of the algorithm's constructor (policy_kwargs included)",
}
# Constructor keywords the runner sets from other settings, and the setting to use instead.
RUNNER_SET = {
    "policy": "--algo",
    "env": "--env",
    "seed": "--seed",
    "device": "--device",
    "use_sde": "--noise",
    "sde_sample_freq": "--noise-period",
    "tensorboard_log": "--log-dir",
    "verbose": None,  # the runner prints one line per evaluation instead
    "_init_setup_model": None,
}
POLICY_RUNNER_SET = {
    "observation_space": None,
    "action_space": None,
    "lr_schedule": None,
    "use_sde": "--noise",
    "noise": "--noise",
    "squash_output": None,
}
POSITIVE = ("timesteps", "n_envs", "eval_freq", "eval_episodes", "save_freq")


@dataclass(frozen=True)
class Interval:
    """The values an algorithm keyword may take: ``low .. high`` (ends included or not), or one of ``also``."""

    low: float
    high: float = math.inf
    closed: str = "[]"  # which ends are included: "[]", "(]", "[)" or "()"
    also: tuple[float, ...] = ()

    def __contains__(self, value: float) -> bool:
        above = value >= self.low if self.closed[0] == "[" else value > self.low
        below = value <= self.high if self.closed[1] == "]" else value < self.high
        return (above and below) or value in self.also

    def __str__(self) -> str:
        text = f"{self.closed[0]}{self.low:g}, {self.high:g}{self.closed[1]}".replace("inf]", "inf)")
        return text + "".join(f" or {v:g}" for v in self.also)


# Ranges of SB3's algorithm keywords, from their documented meaning. SB3's constructors check few of them: a value
# outside fails (PPO n_epochs=0), or trains on NaN without a word (SAC batch_size=0), only once learning has
# started. Every keyword with a numeric default must be a finite number (an integer where the default is one).
KEYWORD_RANGES: dict[str, Interval] = {
    "learning_rate": Interval(0, closed="()"),
    "gamma": Interval(0, 1),
    "gae_lambda": Interval(0, 1),
    "tau": Interval(0, 1, "(]"),
    "n_steps": Interval(1),
    "batch_size": Interval(1),
    "n_epochs": Interval(1),
    "buffer_size": Interval(1),
    "learning_starts": Interval(0),
    "train_freq": Interval(1),
    "gradient_steps": Interval(1, also=(-1,)),  # -1: as many gradient steps as environment steps
    "target_update_interval": Interval(1),
    "clip_range": Interval(0, closed="()"),
    "clip_range_vf": Interval(0, closed="()"),
    "ent_coef": Interval(0),
    "vf_coef": Interval(0),
    "max_grad_norm": Interval(0, closed="()"),
    "target_kl": Interval(0, closed="()"),
    "stats_window_size": Interval(1),
}


class ConfigError(ValueError):
    """A bad setting, with a message naming it and the valid choices (the CLI exits with code 2)."""


class _Loader(yaml.SafeLoader):
    """PyYAML's SafeLoader, reading ``3e-4`` and ``1e6`` as numbers (YAML 1.1 wants ``3.0e-4``) as users write them."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:\d[\d_]*)?\.?\d*[eE][-+]?\d+$"), list("-+.0123456789")
)


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``update``, recursively for nested dicts (a new dict; inputs unchanged)."""
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from ``path``, or a ConfigError saying what is wrong with the file."""
    try:
        data = _yaml(path.read_text())
    except OSError as e:
        raise ConfigError(f"Cannot read config {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"Config {path} is not a text file (YAML expected)") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"Config {path} is not valid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"Config {path} must be a mapping of settings, got {type(data).__name__}")
    return data


@functools.lru_cache
def _task_files(config_dir: Path) -> dict[str, dict[str, Any]]:
    """Task name → contents of the task files of ``config_dir`` (read once; shared blocks have no ``env``)."""
    files = {p.stem: load_yaml(p) for p in sorted(config_dir.glob("*.yaml"))}
    return {name: data for name, data in files.items() if "env" in data}


def _search_path(config_dir: Path) -> list[Path]:
    """``config_dir``, then the packaged configs."""
    return [config_dir] if config_dir.resolve() == CONFIG_DIR.resolve() else [config_dir, CONFIG_DIR]


def task_names(config_dir: Path = CONFIG_DIR) -> list[str]:
    """The task files of ``config_dir`` and the packaged ones, by name (``ant``, ``reorient``, ...)."""
    return list(dict.fromkeys(name for folder in _search_path(config_dir) for name in _task_files(folder)))


def find_task_file(env: str, config_dir: Path = CONFIG_DIR) -> Path | None:
    """The task file named ``env``, or whose ``env`` or ``variants`` list the gym id ``env`` (``config_dir`` first,
    then the packaged ones), or None."""
    for folder in _search_path(config_dir):
        for name, data in _task_files(folder).items():
            if name == env or data["env"] == env or env in (data.get("variants") or {}):
                return folder / f"{name}.yaml"
    return None


def _defaults_file(config_dir: Path) -> Path:
    """``config_dir``'s ``defaults.yaml`` if it has one, else the packaged one."""
    return next(
        (d / "defaults.yaml" for d in _search_path(config_dir) if (d / "defaults.yaml").is_file()),
        CONFIG_DIR / "defaults.yaml",
    )


def _layers(path: Path, seen: tuple[Path, ...] = ()) -> list[dict[str, Any]]:
    """The file and, before it, the files it includes (recursively), lowest precedence first."""
    if path in seen:
        raise ConfigError(f"Config {path} includes itself (via {' -> '.join(map(str, seen))})")
    data = load_yaml(path)
    includes = data.pop("include", []) or []
    layers: list[dict[str, Any]] = []
    for name in [includes] if isinstance(includes, str) else includes:
        included = path.parent / name
        if not included.is_file() and (CONFIG_DIR / name).is_file():
            included = CONFIG_DIR / name  # a file of one's own including a packaged block
        layers += _layers(included, (*seen, path))
    return [*layers, data]


def _flatten(layer: dict[str, Any], algo: str, source: str) -> dict[str, Any]:
    """A layer's shared settings with its ``algo`` block merged on top; unknown keys raise."""
    shared = {k: v for k, v in layer.items() if k not in ALGOS and k != "variants"}
    flat = deep_merge(shared, layer.get(algo) or {})
    _check_keys(flat, source)
    return flat


def _check_keys(flat: dict[str, Any], source: str) -> None:
    for key in flat:
        if key not in RUN_KEYS:
            close = difflib.get_close_matches(key, RUN_KEYS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                f"Unknown config key {key!r} in {source}; {hint}valid keys: {', '.join(RUN_KEYS)} "
                "(algorithm keywords go under 'hyperparams')"
            )


def parse_hyperparams(items: list[str]) -> dict[str, Any]:
    """``["learning_rate=1e-3", "policy_kwargs.alpha=0.5", "normalize=false"]`` → a nested dict.

    Values are YAML (``[256, 256]``, ``null``, ``{a: 1}``); a dotted key reaches into nested settings. A key
    naming a config setting (``n_envs``, ``env_kwargs.x``, ...) sets it; any other key is an algorithm keyword
    (under ``hyperparams``).
    """
    result: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"Malformed --hyperparams {item!r}: write key=value, e.g. learning_rate=3e-4")
        try:
            value = _yaml(text)
        except (yaml.YAMLError, ValueError) as e:
            raise ConfigError(f"Malformed value in --hyperparams {item!r}: {e}") from None
        parts = key.split(".")
        if parts[0] in ("algo", "noise", "env"):
            raise ConfigError(f"--hyperparams {item!r}: set {parts[0]} with --{parts[0]}")
        if parts[0] not in RUN_KEYS:
            parts = ["hyperparams", *parts]
        node = result
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--hyperparams {item!r} reaches into {part!r}, which is set to a value")
        node[parts[-1]] = value
    return result


def _signature_defaults(classes: tuple[type, ...], skip: dict[str, str | None]) -> dict[str, Any]:
    """Keyword → default of a class's constructor: ``classes`` is its MRO, followed while ``**kwargs`` is passed on."""
    params: dict[str, Any] = {}
    for cls in classes:
        if "__init__" not in vars(cls):
            continue
        passes_on = False
        for name, param in inspect.signature(cls.__init__).parameters.items():  # type: ignore[misc]
            passes_on |= param.kind == param.VAR_KEYWORD
            if name in skip or name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            params.setdefault(name, param.default)
        if not passes_on:
            break
    return params


def _to_yaml_value(value: Any) -> Any:
    """A constructor default as a YAML value: classes by name (``ReLU``) or dotted path, tuples as lists."""
    if isinstance(value, type):
        name = value.__name__
        if getattr(th.nn, name, None) is value or getattr(th.optim, name, None) is value:
            return name
        return f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, tuple):
        return [_to_yaml_value(v) for v in value]
    return value


def _fill(given: dict[str, Any], defaults: dict[str, Any], skip: dict[str, str | None], what: str) -> dict[str, Any]:
    for key in given:
        if key in skip:
            fix = f"set it with {skip[key]}" if skip[key] else "the runner sets it"
            raise ConfigError(f"{what} keyword {key!r} cannot be set in a config: {fix}")
        if key not in defaults:
            close = difflib.get_close_matches(key, defaults, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(f"Unknown {what} keyword {key!r}; {hint}valid: {', '.join(sorted(defaults))}")
    filled = {k: _to_yaml_value(v) for k, v in defaults.items() if v is not inspect.Parameter.empty}
    for key, value in given.items():
        default = defaults[key]
        if (
            isinstance(default, int)
            and not isinstance(default, bool)
            and isinstance(value, float)
            and value.is_integer()
        ):
            value = int(value)  # buffer_size: 1e6
        filled[key] = value
    return filled


def resolve_class(value: Any, module: Any = th.nn) -> Any:
    """A class from its YAML name: a name in ``module`` (``ReLU`` in torch.nn) or a dotted path."""
    if not isinstance(value, str):
        return value
    if "." not in value:
        try:
            return getattr(module, value)
        except AttributeError:
            raise ConfigError(f"Unknown class {value!r}: not in {module.__name__}; give a dotted path") from None
    module_name, _, name = value.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError):
        raise ConfigError(f"Cannot import {value!r}") from None


def resolve_config(
    algo: str | None = None,
    noise: str | None = None,
    env: str | None = None,
    config: Path | None = None,
    overrides: dict[str, Any] | None = None,
    hyperparams: list[str] | None = None,
    config_dir: Path = CONFIG_DIR,
) -> dict[str, Any]:
    """The resolved, validated config of one run.

    :param algo: Algorithm name (``ALGOS``); may come from ``config`` instead.
    :param noise: Noise name (``NOISES``); may come from ``config`` instead.
    :param env: A task name (a file in ``config_dir``) or a gym id; may come from ``config`` instead.
    :param config: A task file or a run's ``config.yml``, used instead of looking up ``env``'s task file.
    :param overrides: Settings from CLI flags (``RUN_KEYS`` → value), above the files.
    :param hyperparams: ``key=value`` strings (see ``parse_hyperparams``), above everything.
    :param config_dir: Where ``defaults.yaml`` and the task files are.
    """
    file_layers = _layers(config) if config is not None else []
    # algo / noise / env: the CLI's, else the config file's.
    file_flat = {k: v for layer in file_layers for k, v in layer.items() if k in ("algo", "noise", "env")}
    cli_env = env if config is not None else None  # with a config file, --env replaces the file's env
    algo = algo or file_flat.get("algo")
    noise = noise or file_flat.get("noise")
    env = env or file_flat.get("env")
    for name, value, choices in (("algo", algo, ALGOS), ("noise", noise, NOISES)):
        if value is None:
            raise ConfigError(f"No {name} given: pass --{name} (one of: {', '.join(choices)})")
        if value not in choices:
            raise ConfigError(f"Unknown {name} {value!r}; choose one of: {', '.join(choices)}")
    assert isinstance(algo, str) and isinstance(noise, str)
    if not env:
        raise ConfigError(f"No env given: pass --env (a task: {', '.join(task_names(config_dir))}; or a gym id)")

    variant: dict[str, Any] = {}
    if config is None:
        task_file = find_task_file(env, config_dir)
        if task_file is not None:
            file_layers = _layers(task_file)
            variants = file_layers[-1].get("variants") or {}
            if env in variants:
                variant = {"env": env, **(variants[env] or {})}
        else:
            variant = {"env": env}  # a gym id without a task file (validate() checks that it exists)

    if (overrides or {}).get("noise_period") is not None and not NOISES[noise].state_dependent:
        raise ConfigError(
            f"--noise-period sets when state-dependent noise is redrawn; noise {noise!r} is fresh every step. "
            "Drop --noise-period or choose a state-dependent noise ('gsde', 'lattice')."
        )
    defaults = _defaults_file(config_dir)
    layers = [_flatten(load_yaml(defaults), algo, str(defaults))]
    layers += [_flatten(layer, algo, str(config or env)) for layer in file_layers]
    resolved: dict[str, Any] = {}
    for layer in layers:
        resolved = deep_merge(resolved, layer)
    # A variant (another gym id run with a task's settings) replaces the keys it names: its env takes other kwargs.
    resolved.update(_flatten(variant, algo, f"variants: {env}"))
    resolved = deep_merge(resolved, {k: v for k, v in (overrides or {}).items() if v is not None})
    cli = parse_hyperparams(hyperparams or [])
    _check_keys(cli, "--hyperparams")
    resolved = deep_merge(resolved, cli)
    resolved.update(algo=algo, noise=noise)
    if cli_env:
        resolved["env"] = cli_env
    return validate(resolved, config_dir)


def validate(config: dict[str, Any], config_dir: Path = CONFIG_DIR) -> dict[str, Any]:
    """Check every setting and fill in the constructor defaults; returns the resolved config (key order fixed).

    :param config_dir: Whose task names an unknown env's error message suggests.
    """
    _check_keys(config, "the config")
    missing = [k for k in RUN_KEYS if k not in config]
    if missing:
        raise ConfigError(f"Config is missing {', '.join(missing)} ({'; '.join(RUN_KEYS[k] for k in missing)})")
    algo, noise = config["algo"], config["noise"]
    if algo not in ALGOS:
        raise ConfigError(f"Unknown algo {algo!r}; choose one of: {', '.join(ALGOS)}")
    if noise not in NOISES:
        raise ConfigError(f"Unknown noise {noise!r}; choose one of: {', '.join(NOISES)}")
    try:
        check_env_id(str(config["env"]), task_names(config_dir))
    except ValueError as e:
        raise ConfigError(str(e)) from None
    try:
        th.device("cpu" if config["device"] == "auto" else config["device"])
    except (RuntimeError, TypeError):
        raise ConfigError(f"Unknown device {config['device']!r}; choose auto, cpu, cuda or cuda:<index>") from None
    for key in POSITIVE:
        value = config[key]
        if isinstance(value, float) and value.is_integer():
            value = config[key] = int(value)  # YAML reads 1e6 as a float
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{key} must be a positive integer, got {value!r}")
    period = config["noise_period"]
    if not isinstance(period, int) or isinstance(period, bool) or period == 0 or period < -1:
        raise ConfigError(f"noise_period must be a positive integer or -1 (once per rollout), got {period!r}")
    if not isinstance(config["seed"], int) or isinstance(config["seed"], bool) or config["seed"] < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {config['seed']!r}")
    if config["normalize"] is True:
        config["normalize"] = {}
    if config["normalize"] is not False and not isinstance(config["normalize"], dict):
        raise ConfigError(f"normalize must be false or a mapping of VecNormalize keywords, got {config['normalize']!r}")
    for key in ("env_kwargs", "hyperparams"):
        if not isinstance(config[key] or {}, dict):
            raise ConfigError(f"{key} must be a mapping, got {config[key]!r}")
        config[key] = config[key] or {}
    if config["reward_weights"] is not None and not isinstance(config["reward_weights"], dict):
        raise ConfigError(
            f"reward_weights must be a mapping of term -> weight or null, got {config['reward_weights']!r}"
        )

    algo_class, policy_class = ALGOS[algo]
    hyperparams = dict(config["hyperparams"])
    policy_kwargs = hyperparams.pop("policy_kwargs", None) or {}
    if not isinstance(policy_kwargs, dict):
        raise ConfigError(f"policy_kwargs must be a mapping, got {policy_kwargs!r}")
    algo_defaults = _signature_defaults(algo_class.__mro__, {**RUNNER_SET, "policy_kwargs": None})
    filled = _fill(hyperparams, algo_defaults, RUNNER_SET, f"{algo_class.__name__}")
    policy_defaults = _signature_defaults(policy_class.__mro__, POLICY_RUNNER_SET)
    filled["policy_kwargs"] = _fill(policy_kwargs, policy_defaults, POLICY_RUNNER_SET, f"{policy_class.__name__}")
    for key, value in filled.items():
        _check_keyword(key, value, algo_defaults.get(key))
    if noise == "pink" and filled["policy_kwargs"].get("noise_horizon") is None:
        # Colored noise draws one sequence per episode: as long as the task's episodes.
        filled["policy_kwargs"]["noise_horizon"] = _episode_length(config)
    config["hyperparams"] = filled
    return {key: config[key] for key in RUN_KEYS}


def _episode_length(config: dict[str, Any]) -> int:
    """The run's episode length: ``max_episode_steps``, else the env's registered one (else colored noise's
    default, for an env without a time limit)."""
    if config["max_episode_steps"] is not None:
        return int(config["max_episode_steps"])
    return registered_episode_length(str(config["env"])) or DEFAULT_HORIZON


def _check_keyword(key: str, value: Any, default: Any) -> None:
    """An algorithm keyword's value: of its default's kind (bool, integer, finite number) and in its range
    (``KEYWORD_RANGES``). Values of other kinds (None, "auto", [4, "episode"]) are left to the constructor, except
    that a frequency given as [n, unit] has its n checked."""
    if key == "train_freq" and isinstance(value, list) and value:
        value = value[0]
    number = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return
    if isinstance(default, int) and not (isinstance(value, numbers.Integral) and not isinstance(value, bool)):
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    if isinstance(default, float) and not number:
        raise ConfigError(f"{key} must be a number, got {value!r}")
    if number and not math.isfinite(value):
        raise ConfigError(f"{key} must be finite, got {value!r}")
    if number and key in KEYWORD_RANGES and value not in KEYWORD_RANGES[key]:
        raise ConfigError(f"{key}={value!r} is out of range: it must be in {KEYWORD_RANGES[key]}")


def check_device(device: str) -> None:
    """Raise ConfigError unless torch can use ``device`` here (``auto`` always can): a device that is not available
    is an error, not SB3's silent fallback to the CPU."""
    available = ["auto", "cpu", *(f"cuda:{i}" for i in range(th.cuda.device_count()))]
    if th.backends.mps.is_available():
        available.append("mps")
    if device in ("auto", "cpu"):
        return
    parsed = th.device(device)
    if parsed.type == "cuda" and th.cuda.is_available() and (parsed.index or 0) < th.cuda.device_count():
        return
    if parsed.type == "mps" and th.backends.mps.is_available():
        return
    raise ConfigError(f"Device {device!r} is not available on this machine; available: {', '.join(available)}")


def algo_kwargs(config: dict[str, Any]) -> dict[str, Any]:
    """The algorithm's constructor keywords from a resolved config (classes imported, noise wired in)."""
    spec = NOISES[config["noise"]]
    kwargs = copy.deepcopy(config["hyperparams"])
    policy_kwargs = kwargs.pop("policy_kwargs")
    for key, value in list(policy_kwargs.items()):
        if key == "activation_fn":
            policy_kwargs[key] = resolve_class(value, th.nn)
        elif key == "optimizer_class":
            policy_kwargs[key] = resolve_class(value, th.optim)
        elif key.endswith("_class"):
            policy_kwargs[key] = resolve_class(value)
        elif isinstance(value, list) and key in ("std_clip",):
            policy_kwargs[key] = tuple(value)
    for key, value in list(kwargs.items()):
        if key.endswith("_class"):
            kwargs[key] = resolve_class(value)
        elif key == "train_freq" and isinstance(value, list):
            kwargs[key] = tuple(value)
    policy_kwargs["noise"] = config["noise"]
    kwargs["policy_kwargs"] = policy_kwargs
    kwargs["use_sde"] = spec.state_dependent
    if spec.state_dependent:
        kwargs["sde_sample_freq"] = config["noise_period"]
    return kwargs


def task_env(config: dict[str, Any], render_mode: str | None = None, **env_kwargs: Any) -> EpisodeEnergy:
    """One env of a resolved config's task (``lattice.envs.make_env`` with its keywords, episode length and reward
    weights); ``env_kwargs`` are added to the config's."""
    return make_env(
        config["env"],
        {**config["env_kwargs"], **env_kwargs},
        config["max_episode_steps"],
        config["reward_weights"],
        render_mode=render_mode,
    )


def dump_config(config: dict[str, Any], path: Path) -> None:
    """Write a resolved config as YAML (every value plain YAML; readable back with ``--config``)."""
    path.write_text(yaml.safe_dump(config, sort_keys=False, default_flow_style=None))

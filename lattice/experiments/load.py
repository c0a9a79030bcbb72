"""Loading and merging configs: YAML files, task files and their blocks, ``--hyperparams``, in order of precedence.

A task file (``configs/ant.yaml``, ...) holds the settings shared by all algorithms at the top level and a block
per algorithm, named after it (``sac:``, ``ppo:``, ``recurrent_ppo:``, ``a2c:``, ``tqc:``), merged on top; a
block named after a noise (``lattice:``, at the top level or inside an algorithm's block) is merged on top of the
settings around it when that noise runs (the parameters of one noise live there, e.g. Lattice's ``std_clip``).
``include:`` names files merged first (shared blocks live in one file, e.g. ``configs/shared/paper_sac.yaml``), and
``variants:`` maps other gym ids that run with the task's settings to the keys they change. An algorithm without a
block gets the shared settings only (``tqc`` does not borrow ``sac:``'s block: its settings were not tuned for it).

Order of precedence, lowest first::

    the declared defaults (settings.SETTINGS)  <  defaults.yaml  <  included files  <  the task file
        <  the flags (--seed, -n, ...)  <  --hyperparams

The task files that ship with the package are in ``lattice/experiments/configs/`` (the repository's ``configs/``
links there). A folder of one's own (``--config-dir``) is searched first: its task files, and its ``defaults.yaml``
if it has one; an ``include:`` is looked up next to the including file, then among the packaged files.

What comes out is a merged mapping of settings, not yet checked: ``lattice.experiments.validate`` checks it.
"""

from __future__ import annotations

import copy
import difflib
import functools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from lattice.experiments.algorithms import ALGORITHM_NAMES
from lattice.experiments.errors import ConfigError
from lattice.experiments.settings import SETTING, SETTINGS, defaults, yaml_copy
from lattice.noise import NOISES, without_other_noises_params

CONFIG_DIR = Path(__file__).resolve().parent / "configs"  # the packaged task and sweep files
BLOCKS = (*ALGORITHM_NAMES, *NOISES)  # the keys of a file that name a block, not a setting


class _Loader(yaml.SafeLoader):
    """PyYAML's SafeLoader, reading ``3e-4`` and ``1e6`` as numbers (YAML 1.1 wants ``3.0e-4``) as users write them."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:\d[\d_]*)?\.?\d*[eE][-+]?\d+$"), list("-+.0123456789")
)


def yaml_value(text: str) -> Any:
    """A YAML value from text, as configs, flags and ``--hyperparams`` read it (``1e6`` is a number)."""
    return yaml.load(text, Loader=_Loader)


def deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
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
        data = yaml_value(path.read_text())
    except OSError as e:
        raise ConfigError(f"Cannot read config {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"Config {path} is not a text file (YAML expected)") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"Config {path} is not valid YAML: {' '.join(str(e).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"Config {path} must be a mapping of settings, got {type(data).__name__}")
    return data


def dump_config(config: Mapping[str, Any], path: Path) -> None:
    """Write a resolved config (a ``RunConfig`` or its dict) as YAML: every value plain YAML, in the settings'
    order, readable back with ``--config``."""
    plain = {key: config[key] for key in config}
    path.write_text(yaml.safe_dump(plain, sort_keys=False, default_flow_style=None))


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


def _block(layer: Mapping[str, Any], name: str, source: str) -> dict[str, Any]:
    block = layer.get(name) or {}
    if not isinstance(block, dict):
        raise ConfigError(f"The {name}: block in {source} must be a mapping of settings, got {block!r}")
    return block


def _flatten(layer: Mapping[str, Any], algo: str, noise: str, source: str) -> dict[str, Any]:
    """A layer's settings for ``algo`` and ``noise``: the shared ones, its noise block, its algorithm block, and
    that block's noise block, each on top of the one before; unknown keys raise."""
    shared = {k: v for k, v in layer.items() if k not in BLOCKS and k != "variants"}
    algo_block = _block(layer, algo, source)
    nested = [k for k in algo_block if k in ALGORITHM_NAMES]
    if nested:
        raise ConfigError(f"The {algo}: block in {source} holds an algorithm block ({nested[0]}:)")
    flat = deep_merge(shared, _block(layer, noise, source))
    flat = deep_merge(flat, {k: v for k, v in algo_block.items() if k not in NOISES})
    flat = deep_merge(flat, _block(algo_block, noise, f"{source} ({algo}:)"))
    check_keys(flat, source)
    return flat


def check_keys(flat: Mapping[str, Any], source: str) -> None:
    """Raise ConfigError for a key that is no run setting, suggesting the closest one."""
    for key in flat:
        if key not in SETTING:
            close = difflib.get_close_matches(key, SETTING, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(
                f"Unknown config key {key!r} in {source}; {hint}valid keys: {', '.join(SETTING)} "
                "(algorithm keywords go under 'hyperparams')"
            )


def parse_hyperparams(items: list[str]) -> dict[str, Any]:
    """``["learning_rate=1e-3", "policy_kwargs.alpha=0.5", "normalize=false"]`` → a nested dict.

    Values are YAML (``[256, 256]``, ``null``, ``{a: 1}``); a dotted key reaches into nested settings. A key
    naming a run setting (``n_envs``, ``env_kwargs.x``, ...) sets it; any other key is an algorithm keyword
    (under ``hyperparams``).
    """
    result: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"Malformed --hyperparams {item!r}: write key=value, e.g. learning_rate=3e-4")
        try:
            value = yaml_value(text)
        except (yaml.YAMLError, ValueError) as e:
            raise ConfigError(f"Malformed value in --hyperparams {item!r}: {' '.join(str(e).split())}") from None
        parts = key.split(".")
        if parts[0] in ("algo", "noise", "env"):
            raise ConfigError(f"--hyperparams {item!r}: set {parts[0]} with --{parts[0]}")
        if parts[0] not in SETTING:
            parts = ["hyperparams", *parts]
        node = result
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--hyperparams {item!r} reaches into {part!r}, which is set to a value")
        node[parts[-1]] = value
    return result


def recorded_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A run's recorded config (``config.yml``: every setting) without the settings its noise does not use: the
    policy keywords of other noises and a ``noise_period`` of a noise that is not state-dependent. Version 0.2 recorded
    them whatever the noise (e.g. the MyoSuite block's ``std_clip`` in an isotropic run), with no effect on the run;
    a recorded config of this version has none. A setting added since it was recorded (``Setting.since``) is read
    as its default, which trains as the versions before it did. Anything else is kept as it is."""
    recorded = copy.deepcopy(dict(config))
    for setting in SETTINGS:
        if setting.since is not None and setting.name not in recorded:
            recorded[setting.name] = yaml_copy(setting.default)
    spec = NOISES.get(recorded.get("noise"))  # type: ignore[arg-type]
    if spec is None:
        return recorded  # validation names the bad noise
    if not spec.state_dependent and "noise_period" in recorded:
        recorded["noise_period"] = None
    policy_kwargs = (recorded.get("hyperparams") or {}).get("policy_kwargs")
    if isinstance(policy_kwargs, dict):
        recorded["hyperparams"]["policy_kwargs"] = without_other_noises_params(spec.name, policy_kwargs)
    return recorded


def is_recorded(layer: Mapping[str, Any]) -> bool:
    """Whether a config file is a run's recorded config (every setting, flat; those added since it was recorded
    aside) rather than a task file."""
    return all(s.name in layer for s in SETTINGS if s.since is None) and not any(k in layer for k in BLOCKS)


def merge_config(
    algo: str | None = None,
    noise: str | None = None,
    env: str | None = None,
    config: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    hyperparams: list[str] | None = None,
    config_dir: Path = CONFIG_DIR,
) -> dict[str, Any]:
    """The settings of one run, merged from every layer in order of precedence (not yet checked: see
    ``lattice.experiments.validate.resolve_run_config``, which takes the same arguments; ``overrides`` are the
    flags' settings, every value applied, null included). A run's ``config.yml`` given as ``config`` is read as
    ``recorded_config`` reads it, for the chosen noise."""
    file_layers = _layers(config) if config is not None else []
    # algo / noise / env: the arguments', else the config file's; algo and noise choose the files' blocks.
    file_flat = {k: v for layer in file_layers for k, v in layer.items() if k in ("algo", "noise", "env")}
    cli_env = env if config is not None else None  # with a config file, --env replaces the file's env
    chosen: dict[str, Any] = {}
    for name, value in (("algo", algo), ("noise", noise)):
        value = value or file_flat.get(name)
        if value is None:
            raise ConfigError(f"No {name} given: pass --{name} (one of: {', '.join(SETTING[name].choices)})")
        chosen[name] = SETTING[name].check(value)
    algo, noise = chosen["algo"], chosen["noise"]
    assert isinstance(algo, str) and isinstance(noise, str)
    env = env or file_flat.get("env") or SETTING["env"].default
    if len(file_layers) == 1 and is_recorded(file_layers[0]):
        file_layers = [recorded_config({**file_layers[0], "noise": noise})]

    variant: dict[str, Any] = {}
    if config is None:
        task_file = find_task_file(str(env), config_dir)
        if task_file is not None:
            file_layers = _layers(task_file)
            variants = file_layers[-1].get("variants") or {}
            if env in variants:
                variant = {"env": env, **(variants[env] or {})}
        else:
            variant = {"env": env}  # a gym id without a task file (validation checks that it exists)

    defaults_file = _defaults_file(config_dir)
    layers = [defaults(), _flatten(load_yaml(defaults_file), algo, noise, str(defaults_file))]
    layers += [_flatten(layer, algo, noise, str(config or env)) for layer in file_layers]
    resolved: dict[str, Any] = {}
    for layer in layers:
        resolved = deep_merge(resolved, layer)
    # A variant (another gym id run with a task's settings) replaces the keys it names: its env takes other kwargs.
    resolved.update(_flatten(variant, algo, noise, f"variants: {env}"))
    check_keys(overrides or {}, "the flags")
    resolved = deep_merge(resolved, overrides or {})
    cli = parse_hyperparams(hyperparams or [])
    check_keys(cli, "--hyperparams")
    resolved = deep_merge(resolved, cli)
    resolved.update(algo=algo, noise=noise)
    if cli_env:
        resolved["env"] = cli_env
    return {s.name: resolved[s.name] for s in SETTINGS if s.name in resolved}

"""The tuning file (``configs/tune/*.yaml``) of ``lattice-tune``: its keys and defaults, its search space, and the
config of each trial, all checked before anything runs (the driver: ``tune``)::

    name: elbow_ppo                   # the study folder: <log_dir>/<name>/
    algo: ppo
    env: elbow
    noises: [isotropic, gsde, lattice, pink]
    trials: 20                        # per noise
    seed: 0                           # the training seed of every trial, and the sampler's
    settings: {timesteps: 20000, eval_freq: 2000, eval_episodes: 5}   # for every trial (as in sweeps)
    objective: {last: 3}              # mean evaluation return over the last 3 evaluations
    pruner: {startup_trials: 5, warmup_evaluations: 2}   # Optuna's median pruner
    storage: null                     # null: SQLite in the study folder; or an RDB URL (a cluster's workers)
    heartbeat: {interval: 10, grace: 60}   # seconds: a trial is lost when no one beats for it for `grace`
    search:                           # key (as in --hyperparams) → a range or choices; `noises:` limits an entry
      learning_rate: {low: 1.0e-5, high: 1.0e-3, log: true}
      policy_kwargs.log_std_init: {low: -2.0, high: 0.5}
      noise_period: {choices: [1, 4, 16], noises: [gsde, lattice]}
      policy_kwargs.alpha: {low: 0.1, high: 2.0, noises: [lattice]}
      policy_kwargs.noise_exponent: {low: 0.0, high: 2.0, noises: [pink]}
    resources: {cpus: 1}              # as in sweeps, and so are retries: and slurm:
    fresh_seeds: {count: 5, settings: {timesteps: 60000}}   # seeds.yaml: the best configs over new seeds, and
                                      # settings over the tuning's (e.g. a longer budget than the trials had)

A search entry is ``{low, high[, log, step]}`` (integers when its bounds and step are: ``IntDistribution``) or
``{choices}`` (stored in the studies as their YAML text), and applies to the noises of its ``noises:`` list (default:
every tuned noise). Every trial's config is resolved as ``lattice-train`` resolves one: the tuning's ``settings``,
then the trial's sampled values, as ``--hyperparams`` would set them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from lattice.experiments.config import RunConfig, resolve_run_config
from lattice.experiments.dotted import as_text
from lattice.experiments.errors import ConfigError
from lattice.experiments.load import load_yaml
from lattice.experiments.sweep import folder_name, sweep_retries, trial_resources
from lattice.noise import NOISES

TUNE_KEYS = (
    "name",
    "algo",
    "env",
    "noises",
    "trials",
    "seed",
    "settings",
    "objective",
    "pruner",
    "storage",
    "heartbeat",
    "search",
    "resources",
    "retries",
    "slurm",
    "fresh_seeds",
)
SPACE_KEYS = ("low", "high", "log", "step", "choices", "noises")
HEARTBEAT = {"interval": 10, "grace": 60}  # seconds (see ``studies``)
SEEDS_AFTER_TUNING = 5  # default fresh_seeds.count: seeds of the generated sweep of the tuned configs


def load_tuning(path: Path) -> dict[str, Any]:
    """The tuning file, checked: its keys, its noises, its search space, and every trial's config at both ends of
    every range and at every choice (so that a bad key or value fails before anything runs)."""
    tuning = load_yaml(path)
    tuning["name"] = folder_name(tuning.get("name"), path)  # one folder under the log dir
    tuning["retries"] = sweep_retries(tuning)  # an integer >= 0, as in sweeps
    unknown = set(tuning) - set(TUNE_KEYS)
    if unknown:
        raise ConfigError(f"Unknown tuning key(s) {sorted(unknown)} in {path}; valid: {', '.join(TUNE_KEYS)}")
    for key in ("algo", "env", "noises", "search"):
        if not tuning.get(key):
            raise ConfigError(f"The tuning file {path} needs {key!r}")
    noises = tuning["noises"]
    if not isinstance(noises, list) or not all(n in NOISES for n in noises):
        raise ConfigError(f"noises must be a list of: {', '.join(NOISES)}; got {noises!r}")
    for key, minimum in (("trials", 1), ("seed", 0)):
        value = tuning.setdefault(key, 20 if key == "trials" else 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ConfigError(f"{key} must be an integer >= {minimum}, got {value!r}")
    defaults = {
        "objective": {"last": 3},
        "pruner": {"startup_trials": 5, "warmup_evaluations": 2},
        "heartbeat": HEARTBEAT,
    }
    for name, block_defaults in defaults.items():
        given = tuning.get(name) or {}
        if not isinstance(given, dict):
            raise ConfigError(f"{name} must be a mapping ({', '.join(block_defaults)}), got {given!r}")
        for key, value in given.items():
            if key not in block_defaults:
                raise ConfigError(f"Unknown {name} setting {key!r}; valid: {', '.join(block_defaults)}")
            minimum = 0 if name == "pruner" else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
                raise ConfigError(f"{name}.{key} must be an integer >= {minimum}, got {value!r}")
        tuning[name] = {**block_defaults, **given}
    tuning["fresh_seeds"] = _fresh_seeds(tuning.get("fresh_seeds"))
    if tuning["heartbeat"]["grace"] <= tuning["heartbeat"]["interval"]:
        beats = tuning["heartbeat"]
        raise ConfigError(
            f"heartbeat.grace must be longer than heartbeat.interval (a trial is lost after missed beats), got "
            f"interval={beats['interval']!r}, grace={beats['grace']!r}"
        )
    trial_resources(tuning)
    if not isinstance(tuning["search"], dict):
        raise ConfigError(f"search must be a mapping of setting -> range or choices, got {tuning['search']!r}")
    tuning["search"] = {key: _check_space(key, entry, noises) for key, entry in tuning["search"].items()}
    for noise in noises:
        try:
            distributions(tuning["search"], noise)
        except ValueError as e:  # Optuna's own checks of a range (e.g. log with step)
            raise ConfigError(f"search: {e}") from None
        for point in _corners(tuning["search"], noise):
            trial_config(tuning, noise, point)  # raises ConfigError naming the bad setting
            trial_config(tuning, noise, point, tuning["fresh_seeds"]["settings"])  # and as seeds.yaml runs it
    return tuning


def _fresh_seeds(given: Any) -> dict[str, Any]:
    """The ``fresh_seeds`` block: how many seeds the tuned configs are run over afterwards (``seeds.yaml``), and
    settings over the tuning's for those runs (a budget longer than the trials', say)."""
    if not isinstance(given, (dict, type(None))) or set(given or {}) - {"count", "settings"}:
        raise ConfigError(f"fresh_seeds must be a mapping with count and settings, got {given!r}")
    block = {"count": SEEDS_AFTER_TUNING, "settings": {}, **(given or {})}
    count = block["count"]
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ConfigError(f"fresh_seeds.count must be an integer >= 1, got {count!r}")
    if not isinstance(block["settings"], dict):
        raise ConfigError(f"fresh_seeds.settings must be a mapping of run settings, got {block['settings']!r}")
    return block


def _check_space(key: str, entry: Any, noises: list[str]) -> dict[str, Any]:
    """One search-space entry: ``{low, high[, log, step]}`` or ``{choices}``, and optionally ``noises``."""
    where = f"search.{key}"
    if not isinstance(entry, dict) or set(entry) - set(SPACE_KEYS):
        raise ConfigError(
            f"{where} must be a mapping with low and high (and log, step) or choices, and optionally noises; "
            f"got {entry!r}"
        )
    only = entry.get("noises", noises)
    if not isinstance(only, list) or not set(only) <= set(noises):
        raise ConfigError(f"{where}.noises must be a list of the tuned noises ({', '.join(noises)}), got {only!r}")
    if "choices" in entry:
        if set(entry) & {"low", "high", "log", "step"}:
            raise ConfigError(f"{where}: give either choices or low/high, not both")
        if not isinstance(entry["choices"], list) or not entry["choices"]:
            raise ConfigError(f"{where}.choices must be a non-empty list, got {entry['choices']!r}")
        return {"choices": entry["choices"], "noises": only}
    low, high = entry.get("low"), entry.get("high")
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (low, high))
    if not numbers or not low < high:  # type: ignore[operator]
        raise ConfigError(f"{where} needs numbers low < high, got low={low!r}, high={high!r}")
    log = entry.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}.log must be true or false, got {log!r}")
    if log and low <= 0:  # type: ignore[operator]
        raise ConfigError(f"{where}: a log range needs low > 0, got {low!r}")
    step = entry.get("step")
    if step is not None and (not isinstance(step, (int, float)) or isinstance(step, bool) or not 0 < step < math.inf):
        raise ConfigError(f"{where}.step must be a positive number, got {step!r}")
    if step is not None and log:
        raise ConfigError(f"{where}: give step or log, not both (Optuna samples a log range continuously)")
    return {"low": low, "high": high, "log": log, "step": step, "noises": only}


def _corners(search: dict[str, dict[str, Any]], noise: str) -> list[dict[str, Any]]:
    """Points that together take every entry's lowest and highest value and every choice."""
    entries = {k: v for k, v in search.items() if noise in v["noises"]}
    width = max([len(v["choices"]) for v in entries.values() if "choices" in v] + [2])
    points = []
    for i in range(width):
        point = {}
        for key, entry in entries.items():
            values = entry["choices"] if "choices" in entry else [entry["low"], entry["high"]]
            point[key] = values[i % len(values)]
        points.append(point)
    return points


def distributions(search: dict[str, dict[str, Any]], noise: str) -> dict[str, Any]:
    """The Optuna distributions of the entries that apply to ``noise`` (choices are stored as their YAML text)."""
    import optuna

    out: dict[str, Any] = {}
    for key, entry in search.items():
        if noise not in entry["noises"]:
            continue
        if "choices" in entry:
            out[key] = optuna.distributions.CategoricalDistribution([as_text(c) for c in entry["choices"]])
        elif all(isinstance(entry[k], int) for k in ("low", "high", "step") if entry[k] is not None):
            out[key] = optuna.distributions.IntDistribution(
                entry["low"], entry["high"], log=entry["log"], step=entry["step"] or 1
            )
        else:
            out[key] = optuna.distributions.FloatDistribution(
                float(entry["low"]), float(entry["high"]), log=entry["log"], step=entry["step"]
            )
    return out


def trial_config(
    tuning: dict[str, Any], noise: str, params: dict[str, Any], after: dict[str, Any] | None = None
) -> RunConfig:
    """The resolved config of a trial: the tuning's settings, then the trial's sampled values.

    :param after: Settings applied last (``fresh_seeds.settings``: how ``seeds.yaml`` runs the config).
    """
    settings = [f"{k}={as_text(v)}" for k, v in (tuning.get("settings") or {}).items()]
    sampled = [f"{k}={v if isinstance(v, str) else as_text(v)}" for k, v in params.items()]
    later = [f"{k}={as_text(v)}" for k, v in (after or {}).items()]
    return resolve_run_config(
        tuning["algo"],
        noise,
        tuning["env"],
        overrides={"seed": tuning["seed"]},
        hyperparams=settings + sampled + later,
    )


def config_name(config: RunConfig) -> str:
    """``<algo>_<noise>_<env>``, the env's namespace joined by ``-`` (``ppo_lattice_lattice-OveractuatedReach-v0``):
    a trial config's name, that of its best config file."""
    return f"{config.algo}_{config.noise}_{config.env}".replace("/", "-")


def study_name(tuning: dict[str, Any], config: RunConfig) -> str:
    """The study of a noise, ``<tuning>/<algo>_<noise>_<env>``: named by the tuning too, so that tunings can share
    one database. The env keeps its namespace (``lattice/OveractuatedReach-v0``): studies are found by this name."""
    return f"{tuning['name']}/{config.algo}_{config.noise}_{config.env}"

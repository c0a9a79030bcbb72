"""The keywords of the algorithm and its policy (a config's ``hyperparams``): their defaults, read from the
constructors' signatures, and their valid ranges.

SB3's constructors check few of their keywords: a value outside its range fails (PPO ``n_epochs=0``), or trains on
NaN without a word (SAC ``batch_size=0``), only once learning has started. So every keyword with a numeric default
must be a finite number of its default's kind (an integer where the default is one), and those in
``KEYWORD_RANGES`` / ``POLICY_KEYWORD_RANGES`` must be in their range. The noises' own parameters (``alpha``,
``std_clip``, ...) are the noise registry's (``lattice.noise.resolve_noise_params``), not checked here.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import math
import numbers
from typing import Any

import torch as th

from lattice.experiments.errors import ConfigError
from lattice.experiments.settings import Interval
from lattice.noise import NOISE_PARAMETERS

# Constructor keywords the runner sets from other settings, and the setting to use instead.
RUNNER_SET: dict[str, str | None] = {
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
POLICY_RUNNER_SET: dict[str, str | None] = {
    "observation_space": None,
    "action_space": None,
    "lr_schedule": None,
    "use_sde": "--noise",
    "noise": "--noise",
    "squash_output": None,
}

# Ranges of SB3's algorithm keywords, from their documented meaning.
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
    "rms_prop_eps": Interval(0, closed="()"),  # A2C
    "top_quantiles_to_drop_per_net": Interval(0),  # TQC
}
# Ranges of the policies' keywords. log_std_init: σ = exp(log_std_init) and σ² must be finite and non-zero in
# float32 (exp overflows above 88.7, σ² above 44): ±20 keeps σ² within 1e-18 .. 2e17 (SAC clips log σ to [-20, 2]).
POLICY_KEYWORD_RANGES: dict[str, Interval] = {
    "log_std_init": Interval(-20, 20),
    "clip_mean": Interval(0),
    "lstm_hidden_size": Interval(1),
    "n_lstm_layers": Interval(1),
    "n_quantiles": Interval(1),
    "n_critics": Interval(1),
}
# Why a range has a finite end, said with the error.
RANGE_REASONS = {"log_std_init": "σ = exp(log_std_init) and σ² must be finite and non-zero in float32"}


def signature_defaults(classes: tuple[type, ...], skip: dict[str, str | None]) -> dict[str, Any]:
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


def to_yaml_value(value: Any) -> Any:
    """A constructor default as a YAML value: classes by name (``ReLU``) or dotted path, tuples as lists."""
    if isinstance(value, type):
        name = value.__name__
        if getattr(th.nn, name, None) is value or getattr(th.optim, name, None) is value:
            return name
        return f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, tuple):
        return [to_yaml_value(v) for v in value]
    return value


def fill_keywords(
    given: dict[str, Any], defaults: dict[str, Any], skip: dict[str, str | None], what: str
) -> dict[str, Any]:
    """``given`` keywords of a constructor, checked against its ``defaults`` (unknown or runner-set ones raise),
    on top of the defaults (as YAML values)."""
    for key in given:
        if key in skip:
            fix = f"set it with {skip[key]}" if skip[key] else "the runner sets it"
            raise ConfigError(f"{what} keyword {key!r} cannot be set in a config: {fix}")
        if key not in defaults:
            close = difflib.get_close_matches(key, defaults, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(f"Unknown {what} keyword {key!r}; {hint}valid: {', '.join(sorted(defaults))}")
    filled = {k: to_yaml_value(v) for k, v in defaults.items() if v is not inspect.Parameter.empty}
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


def check_keyword(key: str, value: Any, default: Any, ranges: dict[str, Interval]) -> None:
    """A constructor keyword's value: of its default's kind (bool, integer, finite number) and in its range.
    Values of other kinds (None, "auto", [4, "episode"]) are left to the constructor, except that a frequency given
    as [n, unit] has its n checked."""
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
    if number and key in ranges and value not in ranges[key]:
        why = f" ({RANGE_REASONS[key]})" if key in RANGE_REASONS else ""
        raise ConfigError(f"{key}={value!r} is out of range: it must be in {ranges[key]}{why}")


def algorithm_keywords(algo_class: type, hyperparams: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The algorithm's keywords (``hyperparams`` without ``policy_kwargs``, on top of the constructor's defaults),
    checked; and its defaults."""
    defaults = signature_defaults(algo_class.__mro__, {**RUNNER_SET, "policy_kwargs": None})
    filled = fill_keywords(hyperparams, defaults, RUNNER_SET, algo_class.__name__)
    for key, value in filled.items():
        check_keyword(key, value, defaults.get(key), KEYWORD_RANGES)
    return filled, defaults


def policy_keywords(policy_class: type, given: dict[str, Any]) -> dict[str, Any]:
    """The policy's keywords other than the noise's parameters (``given`` on top of the constructor's defaults),
    checked."""
    defaults = signature_defaults(policy_class.__mro__, POLICY_RUNNER_SET)
    defaults = {k: v for k, v in defaults.items() if k not in NOISE_PARAMETERS}
    filled = fill_keywords(given, defaults, POLICY_RUNNER_SET, policy_class.__name__)
    for key, value in filled.items():
        check_keyword(key, value, defaults.get(key), POLICY_KEYWORD_RANGES)
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

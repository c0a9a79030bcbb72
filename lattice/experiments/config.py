"""Experiment configs, in one import: the public names of the modules that load, validate and build them.

=====================================  ==============================================================================
module                                 its job
=====================================  ==============================================================================
``lattice.experiments.settings``       each run setting declared once (name, type, default, range, help)
``lattice.experiments.load``           YAML files, task files and their blocks, ``--hyperparams``: merged by
                                       precedence
``lattice.experiments.keywords``       the algorithm's and policy's keywords: defaults from the signatures, ranges
``lattice.experiments.validate``       merged settings → a ``RunConfig`` (every value checked, defaults filled in)
``lattice.experiments.build``          a ``RunConfig`` → the task's env, the algorithm's keywords; memory and device
``lattice.experiments.algorithms``     algorithm name → (algorithm class, policy class)
``lattice.experiments.errors``         the error types and the exit code of bad input
=====================================  ==============================================================================

``resolve_config`` and ``validate`` return the resolved config as a plain dict (what ``config.yml`` holds), for code
that passes configs on as dicts; new code uses ``resolve_run_config`` / ``validate_run_config``, which return the
typed ``RunConfig``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lattice.experiments.algorithms import ALGORITHM_NAMES, ALGORITHMS, ALGOS
from lattice.experiments.build import algo_kwargs, check_device, check_sizes, task_env
from lattice.experiments.errors import ConfigError, OutputPathError, RunFolderError, UsageError
from lattice.experiments.keywords import KEYWORD_RANGES, POLICY_KEYWORD_RANGES, resolve_class
from lattice.experiments.load import (
    CONFIG_DIR,
    deep_merge,
    dump_config,
    find_task_file,
    load_yaml,
    merge_config,
    parse_hyperparams,
    recorded_config,
    task_names,
)
from lattice.experiments.settings import SETTING, SETTINGS, Interval, settings_table
from lattice.experiments.validate import RunConfig, resolve_run_config, validate_run_config

__all__ = [
    "ALGORITHMS",
    "ALGORITHM_NAMES",
    "ALGOS",
    "CONFIG_DIR",
    "KEYWORD_RANGES",
    "POLICY_KEYWORD_RANGES",
    "SETTING",
    "SETTINGS",
    "ConfigError",
    "Interval",
    "OutputPathError",
    "RunConfig",
    "RunFolderError",
    "UsageError",
    "algo_kwargs",
    "check_device",
    "check_sizes",
    "deep_merge",
    "dump_config",
    "find_task_file",
    "load_yaml",
    "merge_config",
    "parse_hyperparams",
    "recorded_config",
    "resolve_class",
    "resolve_config",
    "resolve_run_config",
    "settings_table",
    "task_env",
    "task_names",
    "validate",
    "validate_run_config",
]


def resolve_config(
    algo: str | None = None,
    noise: str | None = None,
    env: str | None = None,
    config: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    hyperparams: list[str] | None = None,
    config_dir: Path = CONFIG_DIR,
) -> dict[str, Any]:
    """``resolve_run_config``'s config as a plain dict (its ``as_dict()``: what ``config.yml`` holds)."""
    return resolve_run_config(algo, noise, env, config, overrides, hyperparams, config_dir).as_dict()


def validate(config: Mapping[str, Any], config_dir: Path = CONFIG_DIR) -> dict[str, Any]:
    """A run's recorded config (``config.yml``, read back to resume, replay or compare it) validated: read as
    ``load.recorded_config`` reads it (the settings of other noises that version 0.2 recorded are dropped), as a
    plain dict (``RunConfig.as_dict()``)."""
    return validate_run_config(recorded_config(config), config_dir).as_dict()

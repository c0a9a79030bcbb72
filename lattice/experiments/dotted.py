"""Nested settings by dotted key, as ``--hyperparams`` names them (``hyperparams.policy_kwargs.alpha``): the one
flattener of configs (reports tell runs apart by it; resumes and sweeps say which settings changed) and its
inverse, the ``key=value`` text of a value, and the differences of two configs."""

from __future__ import annotations

import json
from typing import Any

import yaml


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as dotted keys: ``{"a": {"b": 1}, "c": {}}`` → ``{"a.b": 1, "c": {}}`` (an empty mapping
    is a value of its own: nothing under it could tell it apart from another).

    :param config: Nested mappings of settings.
    :param prefix: Prepended to every key (``"hyperparams."`` for the keys under ``hyperparams``).
    """
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys back to nested settings: the inverse of ``flatten`` (``{"a.b": 1}`` → ``{"a": {"b": 1}}``)."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, last = key.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return nested


def as_text(value: Any) -> str:
    """A value as YAML flow text, for a ``key=value`` setting (``[64, 64]``, ``null``, ``{a: 1}``)."""
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").strip()


def config_differences(recorded: dict[str, Any], trained: dict[str, Any]) -> list[str]:
    """``key: trained → recorded`` for every setting (dotted for nested ones) in which two configs differ.

    :param recorded: The config as ``config.yml`` says now.
    :param trained: The config a model was trained with (``checkpoints.trained_config``).
    """
    # compared as JSON values, as the model's zip stores them (tuples become lists)
    before, after = flatten(json.loads(json.dumps(trained))), flatten(json.loads(json.dumps(recorded)))
    return [
        f"{key}: {before.get(key, '(unset)')!r} → {after.get(key, '(unset)')!r}"
        for key in sorted(set(before) | set(after))
        if key not in before or key not in after or before[key] != after[key]
    ]

"""The algorithms the experiment layer trains: one entry per name, mapping it to the algorithm and policy classes.

Every SB3 / sb3-contrib algorithm that supports gSDE takes every noise. A class is imported when its entry is first
looked up, so that naming an algorithm (``--help``, a config's ``algo``) does not import every algorithm, and an
algorithm whose policy this version of the package lacks is refused with one line instead of failing at import.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lattice.experiments.errors import ConfigError

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm


@dataclass(frozen=True)
class Algorithm:
    """An algorithm the runner trains.

    :param name: Its name in configs and on the command line (also the name of a task file's block for it).
    :param algorithm: Dotted path of the algorithm class.
    :param policy: Dotted path of the package's policy class for it.
    :param description: One line for help texts.
    """

    name: str
    algorithm: str
    policy: str
    description: str


ALGORITHMS: tuple[Algorithm, ...] = (
    Algorithm("sac", "stable_baselines3.SAC", "lattice.policies.LatticeSACPolicy", "SB3's SAC"),
    Algorithm("ppo", "stable_baselines3.PPO", "lattice.policies.LatticeActorCriticPolicy", "SB3's PPO"),
    Algorithm(
        "recurrent_ppo",
        "sb3_contrib.RecurrentPPO",
        "lattice.policies.LatticeRecurrentActorCriticPolicy",
        "sb3-contrib's RecurrentPPO (an LSTM before the heads)",
    ),
    Algorithm("a2c", "stable_baselines3.A2C", "lattice.policies.LatticeActorCriticPolicy", "SB3's A2C"),
    Algorithm("tqc", "sb3_contrib.TQC", "lattice.policies.LatticeTQCPolicy", "sb3-contrib's TQC"),
)
ALGORITHM_NAMES: tuple[str, ...] = tuple(a.name for a in ALGORITHMS)


def _import(path: str, algo: str) -> type:
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        raise ConfigError(f"algo {algo!r} needs {path}, which cannot be imported here") from None


class _Classes(Mapping[str, "tuple[type[BaseAlgorithm], type]"]):
    """Algorithm name → (algorithm class, policy class), imported on first look-up."""

    def __init__(self, algorithms: tuple[Algorithm, ...]):
        self._entries = {a.name: a for a in algorithms}
        self._loaded: dict[str, tuple[type[BaseAlgorithm], type]] = {}

    def __getitem__(self, name: str) -> tuple[type[BaseAlgorithm], type]:
        if name not in self._loaded:
            entry = self._entries[name]  # KeyError for an unknown name, as a dict
            self._loaded[name] = (_import(entry.algorithm, name), _import(entry.policy, name))
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


# One mapping from algorithm names to (algorithm, policy) classes, as rl-baselines3-zoo keeps it.
ALGOS: Mapping[str, tuple[type[BaseAlgorithm], type]] = _Classes(ALGORITHMS)

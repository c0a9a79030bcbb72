"""Lattice exploration (latent, time-correlated noise; NeurIPS 2023) for Stable-Baselines3.

Public API::

    from lattice import LatticeSACPolicy, LatticeActorCriticPolicy, LatticeRecurrentActorCriticPolicy
    from lattice import LatticeNoiseDistribution, LatticeIIDNoiseDistribution, NOISES, make_noise_distribution

Importing the package registers the overactuated benchmark env, ``lattice/OveractuatedReach-v0``.
"""

from lattice.distributions import LatticeIIDNoiseDistribution, LatticeNoiseDistribution
from lattice.noise import NOISES, NoiseSpec, get_noise_spec, make_noise_distribution
from lattice.overactuated import ENV_ID as OVERACTUATED_ENV_ID
from lattice.overactuated import OveractuatedReach
from lattice.policies import (
    LatticeActor,
    LatticeActorCriticPolicy,
    LatticeRecurrentActorCriticPolicy,
    LatticeSACPolicy,
)

__version__ = "0.1.0"

__all__ = [
    "NOISES",
    "OVERACTUATED_ENV_ID",
    "LatticeActor",
    "LatticeActorCriticPolicy",
    "LatticeIIDNoiseDistribution",
    "LatticeNoiseDistribution",
    "LatticeRecurrentActorCriticPolicy",
    "LatticeSACPolicy",
    "NoiseSpec",
    "OveractuatedReach",
    "get_noise_spec",
    "make_noise_distribution",
]

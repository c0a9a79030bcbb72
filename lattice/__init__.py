"""Lattice exploration (latent, time-correlated noise; NeurIPS 2023) for Stable-Baselines3.

Public API (the core: needs torch, numpy, gymnasium, stable-baselines3, sb3-contrib)::

    from lattice import LatticeSACPolicy, LatticeTQCPolicy, LatticeActorCriticPolicy, LatticeRecurrentActorCriticPolicy
    from lattice import LatticeNoiseDistribution, LatticeIIDNoiseDistribution, NOISES, make_noise_distribution
    from lattice import ColoredNoiseDistribution, SquashedColoredNoiseDistribution, EpisodicNoiseCallback

Importing the package registers the overactuated benchmark env, ``lattice/OveractuatedReach-v0`` (as MyoSuite
registers its envs), and imports nothing of the experiment layer (``lattice.experiments``: configs, training
runs, reports, videos, sweeps; installed with ``pip install 'sb3-lattice[experiments]'``).
"""

from lattice.callbacks import EpisodicNoiseCallback
from lattice.colored import ColoredNoiseDistribution, SquashedColoredNoiseDistribution
from lattice.distributions import LatticeIIDNoiseDistribution, LatticeNoiseDistribution
from lattice.envs.overactuated import ENV_ID as OVERACTUATED_ENV_ID
from lattice.envs.overactuated import OveractuatedReach
from lattice.noise import (
    NOISE_PARAMETERS,
    NOISES,
    NoiseParam,
    NoiseSpec,
    get_noise_spec,
    make_noise_distribution,
    register_noise,
    resolve_noise_params,
)
from lattice.policies import (
    LatticeActor,
    LatticeActorCriticPolicy,
    LatticeRecurrentActorCriticPolicy,
    LatticeSACPolicy,
    LatticeTQCPolicy,
    load_model,
)

__version__ = "0.3.0"

__all__ = [
    "NOISES",
    "NOISE_PARAMETERS",
    "OVERACTUATED_ENV_ID",
    "ColoredNoiseDistribution",
    "EpisodicNoiseCallback",
    "LatticeActor",
    "LatticeActorCriticPolicy",
    "LatticeIIDNoiseDistribution",
    "LatticeNoiseDistribution",
    "LatticeRecurrentActorCriticPolicy",
    "LatticeSACPolicy",
    "LatticeTQCPolicy",
    "NoiseParam",
    "NoiseSpec",
    "OveractuatedReach",
    "SquashedColoredNoiseDistribution",
    "__version__",
    "get_noise_spec",
    "load_model",
    "make_noise_distribution",
    "register_noise",
    "resolve_noise_params",
]

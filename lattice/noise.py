"""The registry: the one place that maps an exploration-noise name to how it is built.

=================  ============================================  ===========  ================================
name               distribution                                  ``use_sde``  noise
=================  ============================================  ===========  ================================
``isotropic``      SB3 ``DiagGaussianDistribution`` (PPO),       False        fresh, independent per action
                   ``SquashedDiagGaussianDistribution`` (SAC)
``gsde``           SB3 ``StateDependentNoiseDistribution``       True         a = μ + P_aᵀx, P redrawn every T
``lattice``        ``LatticeNoiseDistribution``                  True         latent + action, redrawn every T
``lattice_iid``    ``LatticeIIDNoiseDistribution``               False        latent + action, fresh every step
``pink``           ``ColoredNoiseDistribution`` (PPO),           False        a = μ + σ ⊙ ε_t, ε a 1/f^β sequence
                   ``SquashedColoredNoiseDistribution`` (SAC)                 per env and episode (β = 1: pink)
=================  ============================================  ===========  ================================

T is SB3's ``sde_sample_freq`` (-1: only at the start of each rollout). ``pink`` is the colored-noise family: its
exponent β is ``noise_exponent`` (0: white, 1: pink, the default, 2: red), its sequence length ``noise_horizon``
(the episode length); see ``lattice.colored``.

A noise is one ``NoiseSpec`` entry: whether it is state-dependent, how to build its distribution from the policy's
keywords, and how SAC's actor builds its action head for it (SB3's ``ActorCriticPolicy`` builds the head through
the distribution's own ``proba_distribution_net``, so PPO needs nothing more). The policies, the CLI and the
configs read everything else from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gymnasium import spaces
from stable_baselines3.common.distributions import (
    DiagGaussianDistribution,
    Distribution,
    SquashedDiagGaussianDistribution,
    StateDependentNoiseDistribution,
)
from stable_baselines3.common.preprocessing import get_action_dim
from torch import nn

from lattice.colored import DEFAULT_HORIZON, ColoredNoiseDistribution, SquashedColoredNoiseDistribution
from lattice.distributions import LatticeIIDNoiseDistribution, LatticeNoiseDistribution

# (distribution, latent dimension d, log_std_init, clip_mean) → SAC's (mu, log_std)
SACHead = Callable[[Any, int, float, float], tuple[nn.Module, Any]]


def _state_dependent_head(dist: Any, latent_dim: int, log_std_init: float, clip_mean: float) -> tuple[nn.Module, Any]:
    """gSDE / Lattice in SAC: a ``log_std`` parameter; the mean is clipped by a Hardtanh, the noise added after it."""
    mu, log_std = dist.proba_distribution_net(
        latent_dim=latent_dim, latent_sde_dim=latent_dim, log_std_init=log_std_init
    )
    if clip_mean > 0.0:
        mu = nn.Sequential(mu, nn.Hardtanh(min_val=-clip_mean, max_val=clip_mean))
    return mu, log_std


def _latent_std_head(dist: Any, latent_dim: int, log_std_init: float, clip_mean: float) -> tuple[nn.Module, Any]:
    """Lattice without time correlation in SAC: the d + n stds are an output of the latent features."""
    return dist.proba_distribution_net(latent_dim, state_dependent_std=True)


def _gaussian_head(dist: Any, latent_dim: int, log_std_init: float, clip_mean: float) -> tuple[nn.Module, Any]:
    """Isotropic noise in SAC: SB3's squashed Gaussian, with a state-dependent ``log_std`` layer."""
    return nn.Linear(latent_dim, dist.action_dim), nn.Linear(latent_dim, dist.action_dim)


def _isotropic(action_dim: int, squash_output: bool, **_: Any) -> Distribution:
    return SquashedDiagGaussianDistribution(action_dim) if squash_output else DiagGaussianDistribution(action_dim)


def _gsde(
    action_dim: int, *, full_std: bool, use_expln: bool, squash_output: bool, learn_features: bool, **_: Any
) -> Distribution:
    return StateDependentNoiseDistribution(
        action_dim, full_std=full_std, use_expln=use_expln, squash_output=squash_output, learn_features=learn_features
    )


def _lattice(
    action_dim: int,
    *,
    full_std: bool,
    use_expln: bool,
    squash_output: bool,
    learn_features: bool,
    alpha: float,
    std_clip: tuple[float, float],
    std_reg: float,
    **_: Any,
) -> Distribution:
    return LatticeNoiseDistribution(
        action_dim,
        full_std=full_std,
        use_expln=use_expln,
        squash_output=squash_output,
        learn_features=learn_features,
        std_clip=std_clip,
        std_reg=std_reg,
        alpha=alpha,
    )


def _colored(
    action_dim: int, *, squash_output: bool, noise_exponent: float, noise_horizon: int | None, **_: Any
) -> Distribution:
    horizon = DEFAULT_HORIZON if noise_horizon is None else noise_horizon
    if squash_output:
        return SquashedColoredNoiseDistribution(action_dim, exponent=noise_exponent, horizon=horizon)
    return ColoredNoiseDistribution(action_dim, exponent=noise_exponent, horizon=horizon)


def _lattice_iid(action_dim: int, *, alpha: float, squash_output: bool, **_: Any) -> Distribution:
    return LatticeIIDNoiseDistribution(action_dim, alpha=alpha, squash_output=squash_output)


@dataclass(frozen=True)
class NoiseSpec:
    """How an exploration noise is built.

    :param name: The registry name.
    :param state_dependent: Whether the noise is a fixed function of the state between redraws (needs the
        algorithm's ``use_sde=True``, which drives the redraws).
    :param description: One line for help texts and error messages.
    :param build: (action_dim, keywords of ``make_noise_distribution``) → the distribution; a builder takes the
        keywords it uses and ignores the others.
    :param sac_head: How SAC's actor builds (mu, log_std) for this distribution.
    """

    name: str
    state_dependent: bool
    description: str
    build: Callable[..., Distribution]
    sac_head: SACHead


NOISES: dict[str, NoiseSpec] = {
    spec.name: spec
    for spec in (
        NoiseSpec(
            "isotropic",
            False,
            "independent Gaussian noise on each action, fresh every step",
            _isotropic,
            _gaussian_head,
        ),
        NoiseSpec(
            "gsde",
            True,
            "gSDE: action noise linear in the latent state, redrawn every sde_sample_freq",
            _gsde,
            _state_dependent_head,
        ),
        NoiseSpec(
            "lattice",
            True,
            "Lattice: latent + action noise, time-correlated, redrawn every sde_sample_freq",
            _lattice,
            _state_dependent_head,
        ),
        NoiseSpec(
            "lattice_iid",
            False,
            "Lattice without time correlation: latent + action noise, fresh every step",
            _lattice_iid,
            _latent_std_head,
        ),
        NoiseSpec(
            "pink",
            False,
            "colored noise: per env and episode, a Gaussian sequence with spectrum 1/f^β (noise_exponent; 1: pink)",
            _colored,
            _gaussian_head,
        ),
    )
}


def get_noise_spec(name: str) -> NoiseSpec:
    """The registry entry for ``name``, or a ValueError listing the valid names."""
    try:
        return NOISES[name]
    except KeyError:
        raise ValueError(f"Unknown noise {name!r}; choose one of: {', '.join(NOISES)}") from None


def check_noise(name: str, use_sde: bool, action_space: spaces.Space) -> NoiseSpec:
    """Validate a noise against the algorithm's ``use_sde`` and the action space, with errors naming the fix."""
    spec = get_noise_spec(name)
    if not isinstance(action_space, spaces.Box):
        raise ValueError(
            f"noise={name!r} needs a continuous (Box) action space, got {action_space}. "
            "For discrete actions use SB3's own MlpPolicy."
        )
    others = ", ".join(repr(n) for n, s in NOISES.items() if s.state_dependent != spec.state_dependent)
    if spec.state_dependent and not use_sde:
        raise ValueError(
            f"noise={name!r} is state-dependent (noise matrices redrawn every sde_sample_freq steps): pass "
            f"use_sde=True to the algorithm, e.g. SAC(..., use_sde=True), or use a noise fresh every step ({others})."
        )
    if not spec.state_dependent and use_sde:
        raise ValueError(
            f"noise={name!r} draws fresh noise every step and does not use use_sde: pass use_sde=False to the "
            f"algorithm, or choose a state-dependent noise ({others})."
        )
    return spec


def make_noise_distribution(
    name: str,
    action_space: spaces.Space,
    *,
    use_sde: bool,
    squash_output: bool = False,
    learn_features: bool = False,
    full_std: bool = True,
    use_expln: bool = False,
    alpha: float = 1.0,
    std_clip: tuple[float, float] = (1e-3, 1.0),
    std_reg: float = 0.0,
    noise_exponent: float = 1.0,
    noise_horizon: int | None = None,
) -> Distribution:
    """Build the action distribution for an exploration noise.

    :param name: A registry name (``isotropic``, ``gsde``, ``lattice``, ``lattice_iid``, ``pink``).
    :param action_space: The (Box) action space.
    :param use_sde: The algorithm's ``use_sde``; must match the noise (see ``check_noise``).
    :param squash_output: tanh-squashed actions (SAC).
    :param learn_features: Let the state-dependent noise variance train the latent features (SB3's SAC does).
    :param full_std: gSDE / Lattice: one std per noise-matrix entry instead of one per latent row.
    :param use_expln: gSDE / Lattice: ``expln`` instead of ``exp`` for the std.
    :param alpha: Lattice: scale of the latent noise.
    :param std_clip: Lattice (state-dependent): (σ_min, σ_max) clip of the std.
    :param std_reg: Lattice (state-dependent): action std floor.
    :param noise_exponent: Colored noise: β of the spectrum 1/f^β (0: white, 1: pink, 2: red).
    :param noise_horizon: Colored noise: length of each env's sequence, the episode length (None: 1000 steps).
    """
    spec = check_noise(name, use_sde, action_space)
    return spec.build(
        get_action_dim(action_space),
        squash_output=squash_output,
        learn_features=learn_features,
        full_std=full_std,
        use_expln=use_expln,
        alpha=alpha,
        std_clip=std_clip,
        std_reg=std_reg,
        noise_exponent=noise_exponent,
        noise_horizon=noise_horizon,
    )

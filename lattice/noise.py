"""The registry: one place that maps an exploration-noise name to the distribution that implements it.

=================  ============================================  ===========  ================================
name               distribution                                  ``use_sde``  noise
=================  ============================================  ===========  ================================
``isotropic``      SB3 ``DiagGaussianDistribution`` (PPO),       False        fresh, independent per action
                   ``SquashedDiagGaussianDistribution`` (SAC)
``gsde``           SB3 ``StateDependentNoiseDistribution``       True         a = μ + P_aᵀx, P redrawn every T
``lattice``        ``LatticeNoiseDistribution``                  True         latent + action, redrawn every T
``lattice_iid``    ``LatticeIIDNoiseDistribution``               False        latent + action, fresh every step
=================  ============================================  ===========  ================================

T is SB3's ``sde_sample_freq`` (-1: only at the start of each rollout).
"""

from __future__ import annotations

from dataclasses import dataclass

from gymnasium import spaces
from stable_baselines3.common.distributions import (
    DiagGaussianDistribution,
    Distribution,
    SquashedDiagGaussianDistribution,
    StateDependentNoiseDistribution,
)
from stable_baselines3.common.preprocessing import get_action_dim

from lattice.distributions import LatticeIIDNoiseDistribution, LatticeNoiseDistribution


@dataclass(frozen=True)
class NoiseSpec:
    """How an exploration noise is built.

    :param name: The registry name.
    :param state_dependent: Whether the noise is a fixed function of the state between redraws (needs the
        algorithm's ``use_sde=True``, which drives the redraws).
    :param description: One line for help texts and error messages.
    """

    name: str
    state_dependent: bool
    description: str


NOISES: dict[str, NoiseSpec] = {
    spec.name: spec
    for spec in (
        NoiseSpec("isotropic", False, "independent Gaussian noise on each action, fresh every step"),
        NoiseSpec("gsde", True, "gSDE: action noise linear in the latent state, redrawn every sde_sample_freq"),
        NoiseSpec("lattice", True, "Lattice: latent + action noise, time-correlated, redrawn every sde_sample_freq"),
        NoiseSpec("lattice_iid", False, "Lattice without time correlation: latent + action noise, fresh every step"),
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
    if spec.state_dependent and not use_sde:
        alternative = "lattice_iid" if name == "lattice" else "isotropic"
        raise ValueError(
            f"noise={name!r} is state-dependent (noise matrices redrawn every sde_sample_freq steps): pass "
            f"use_sde=True to the algorithm, e.g. SAC(..., use_sde=True), or use noise={alternative!r}."
        )
    if not spec.state_dependent and use_sde:
        raise ValueError(
            f"noise={name!r} draws fresh noise every step and does not use use_sde: pass use_sde=False to the "
            "algorithm, or choose a state-dependent noise ('gsde', 'lattice')."
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
) -> Distribution:
    """Build the action distribution for an exploration noise.

    :param name: A registry name (``isotropic``, ``gsde``, ``lattice``, ``lattice_iid``).
    :param action_space: The (Box) action space.
    :param use_sde: The algorithm's ``use_sde``; must match the noise (see ``check_noise``).
    :param squash_output: tanh-squashed actions (SAC).
    :param learn_features: Let the state-dependent noise variance train the latent features (SB3's SAC does).
    :param full_std: gSDE / Lattice: one std per noise-matrix entry instead of one per latent row.
    :param use_expln: gSDE / Lattice: ``expln`` instead of ``exp`` for the std.
    :param alpha: Lattice: scale of the latent noise.
    :param std_clip: Lattice (state-dependent): (σ_min, σ_max) clip of the std.
    :param std_reg: Lattice (state-dependent): action std floor.
    """
    spec = check_noise(name, use_sde, action_space)
    action_dim = get_action_dim(action_space)
    if spec.name == "isotropic":
        return SquashedDiagGaussianDistribution(action_dim) if squash_output else DiagGaussianDistribution(action_dim)
    # SB3's gSDE keywords; Lattice (state-dependent) takes them too.
    sde_kwargs = dict(
        full_std=full_std, use_expln=use_expln, squash_output=squash_output, learn_features=learn_features
    )
    if spec.name == "gsde":
        return StateDependentNoiseDistribution(action_dim, **sde_kwargs)
    if spec.name == "lattice":
        return LatticeNoiseDistribution(action_dim, **sde_kwargs, std_clip=std_clip, std_reg=std_reg, alpha=alpha)
    return LatticeIIDNoiseDistribution(action_dim, alpha=alpha, squash_output=squash_output)

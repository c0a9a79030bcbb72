"""The registry: the one place that declares each exploration noise, its parameters, and how it is built.

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

T is SB3's ``sde_sample_freq`` (-1: only at the start of each rollout).

Each noise is one ``NoiseSpec``: whether it is state-dependent, its own parameters (``NoiseParam``: name, default,
meaning, valid values), how to build its distribution, and how SAC's actor builds its action head for it (SB3's
``ActorCriticPolicy`` builds the head through the distribution's own ``proba_distribution_net``, so PPO needs nothing
more). The policies, the CLI, the configs and the docs read everything else from here:

=================  ==========================================================
noise              its parameters (policy keywords)
=================  ==========================================================
``isotropic``      none
``gsde``           none (SB3's own ``full_std``, ``use_expln`` and ``log_std_init`` apply)
``lattice``        ``alpha``, ``std_clip``, ``std_reg`` (and SB3's gSDE keywords)
``lattice_iid``    ``alpha``
``pink``           ``noise_exponent``, ``noise_horizon``
=================  ==========================================================

A parameter the chosen noise does not use is refused (``resolve_noise_params``): it would be saved and reported as
if it had an effect. Files written by version 0.2 carry every noise's parameters, mostly at their defaults: a
parameter at its default value is dropped without a word, and ``lattice.policies.load_model`` (for models) and the
experiment layer (for ``config.yml``) drop the others, which had no effect (``without_other_noises_params``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
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


@dataclass(frozen=True)
class NoiseParam:
    """A parameter of a noise, as a policy keyword.

    :param name: The keyword (``alpha``).
    :param default: Its value when not given.
    :param doc: What it means, one line (help texts, the docs).
    :param check: The given value → the value as stored (a float, a tuple), or ValueError naming the valid values.
    """

    name: str
    default: Any
    doc: str
    check: Callable[[Any], Any]


def _number(name: str, low: float, what: str) -> Callable[[Any], float]:
    """A check for a finite real number >= ``low``."""

    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value < math.inf:
            raise ValueError(f"{name} must be a finite number >= {low:g} ({what}), got {value!r}")
        return float(value)

    return check


def _std_clip(value: Any) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        low = high = math.nan
    if not 0.0 < low < high < math.inf:
        raise ValueError(f"std_clip must be (min, max) with 0 < min < max < inf, got {value!r}")
    return low, high


def _exponent(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"noise_exponent must be a finite number (β: 0 white, 1 pink, 2 red), got {value!r}")
    return float(value)


def _horizon(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < 2:
        raise ValueError(f"noise_horizon must be an integer >= 2 (the episode length) or None, got {value!r}")
    return int(value)


ALPHA = NoiseParam("alpha", 1.0, "scale α of the latent noise (0: action noise only)", _number("alpha", 0.0, "α"))
STD_CLIP = NoiseParam("std_clip", (1e-3, 1.0), "(σ_min, σ_max) clip of the noise std", _std_clip)
STD_REG = NoiseParam("std_reg", 0.0, "floor added to the action noise variance", _number("std_reg", 0.0, "a floor"))
NOISE_EXPONENT = NoiseParam("noise_exponent", 1.0, "β of the spectrum 1/f^β (0: white, 1: pink, 2: red)", _exponent)
NOISE_HORIZON = NoiseParam(
    "noise_horizon", None, f"length of each env's sequence, the episode length (None: {DEFAULT_HORIZON})", _horizon
)


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


# A builder: (action_dim, SB3's distribution keywords, the noise's own parameters) → the distribution. SB3's keywords
# (squash_output, learn_features, full_std, use_expln) are passed to every builder, which takes those it uses, as SB3
# itself ignores full_std and use_expln without gSDE.


def _isotropic(action_dim: int, *, squash_output: bool, **_: Any) -> Distribution:
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


def _lattice_iid(action_dim: int, *, squash_output: bool, alpha: float, **_: Any) -> Distribution:
    return LatticeIIDNoiseDistribution(action_dim, alpha=alpha, squash_output=squash_output)


def _colored(
    action_dim: int, *, squash_output: bool, noise_exponent: float, noise_horizon: int | None, **_: Any
) -> Distribution:
    horizon = DEFAULT_HORIZON if noise_horizon is None else noise_horizon
    if squash_output:
        return SquashedColoredNoiseDistribution(action_dim, exponent=noise_exponent, horizon=horizon)
    return ColoredNoiseDistribution(action_dim, exponent=noise_exponent, horizon=horizon)


@dataclass(frozen=True)
class NoiseSpec:
    """An exploration noise: everything the policies, the CLI and the docs need to know about it.

    :param name: The registry name.
    :param state_dependent: Whether the noise is a fixed function of the state between redraws (needs the
        algorithm's ``use_sde=True``, which drives the redraws every ``sde_sample_freq`` steps).
    :param description: One line for help texts and error messages.
    :param build: (action_dim, SB3's distribution keywords, the noise's parameters) → the distribution.
    :param sac_head: How SAC's actor builds (mu, log_std) for this distribution.
    :param params: The noise's own parameters (policy keywords), with their defaults and checks.
    """

    name: str
    state_dependent: bool
    description: str
    build: Callable[..., Distribution]
    sac_head: SACHead
    params: tuple[NoiseParam, ...] = ()

    def defaults(self) -> dict[str, Any]:
        """The noise's parameters at their defaults."""
        return {p.name: p.default for p in self.params}

    def resolve(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """The noise's parameters: ``given`` checked and normalised, the others at their defaults.

        ``given`` may hold only noise parameters (``NOISE_PARAMETERS``). One of another noise is refused (ValueError,
        one line naming this noise's parameters), unless it is at its default (then dropped: files of version 0.2
        carry every noise's parameters).
        """
        own = {p.name: p for p in self.params}
        resolved = self.defaults()
        for name, value in given.items():
            if name in own:
                resolved[name] = own[name].check(value)
                continue
            if name not in NOISE_PARAMETERS:
                raise ValueError(f"{name!r} is no noise parameter; noise parameters: {', '.join(NOISE_PARAMETERS)}")
            if _equal(value, NOISE_PARAMETERS[name].default):
                continue
            users = ", ".join(n for n, s in NOISES.items() if name in s.param_names)
            mine = ", ".join(own) or "none"
            raise ValueError(
                f"noise {self.name!r} has no parameter {name!r} (a parameter of {users}); "
                f"{self.name}'s parameters: {mine}"
            )
        return resolved

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)


def _equal(value: Any, default: Any) -> bool:
    """Whether a given value is the default (a list from YAML equals a tuple default)."""
    if isinstance(default, tuple) and isinstance(value, (list, tuple)):
        return len(value) == len(default) and all(_equal(v, d) for v, d in zip(value, default, strict=True))
    return type(value) is not bool and value == default if default is not None else value is None


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
            (ALPHA, STD_CLIP, STD_REG),
        ),
        NoiseSpec(
            "lattice_iid",
            False,
            "Lattice without time correlation: latent + action noise, fresh every step",
            _lattice_iid,
            _latent_std_head,
            (ALPHA,),
        ),
        NoiseSpec(
            "pink",
            False,
            "colored noise: per env and episode, a Gaussian sequence with spectrum 1/f^β (noise_exponent; 1: pink)",
            _colored,
            _gaussian_head,
            (NOISE_EXPONENT, NOISE_HORIZON),
        ),
    )
}

# Every parameter of any noise, by name: the keywords the policies take for the noises (the rest are SB3's).
NOISE_PARAMETERS: dict[str, NoiseParam] = {p.name: p for spec in NOISES.values() for p in spec.params}


def register_noise(spec: NoiseSpec) -> None:
    """Add a noise of one's own to the registry, for this process: the policies take it (``noise=spec.name`` and its
    parameters) from then on. A model that uses it loads where the same registration has run first. (A noise for
    everyone, the CLI and config files included, is one more entry in ``NOISES`` in this module.)

    :param spec: The noise; its name must be new, and a parameter it shares by name with another noise must be the
        same declaration (a name means one thing across noises).
    """
    if spec.name in NOISES:
        raise ValueError(f"A noise named {spec.name!r} exists already; registered: {', '.join(NOISES)}")
    for param in spec.params:
        known = NOISE_PARAMETERS.get(param.name)
        if known is not None and known != param:
            raise ValueError(f"Parameter {param.name!r} is declared already, differently: reuse lattice.noise's")
    NOISES[spec.name] = spec
    NOISE_PARAMETERS.update({p.name: p for p in spec.params})


def get_noise_spec(name: str) -> NoiseSpec:
    """The registry entry for ``name``, or a ValueError listing the valid names."""
    try:
        return NOISES[name]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown noise {name!r}; choose one of: {', '.join(NOISES)}") from None


def resolve_noise_params(noise: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of ``noise`` from ``given`` (noise parameters only) and the defaults (``NoiseSpec.resolve``)."""
    return get_noise_spec(noise).resolve(given)


def without_other_noises_params(noise: str, policy_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``policy_kwargs`` without the parameters of noises other than ``noise``, whatever their values. Version 0.2
    accepted and ignored them, and its files carry them (its MyoSuite PPO settings gave every noise Lattice's
    ``std_clip``); they had no effect, so reading such a file drops them. New input is checked instead
    (``resolve_noise_params``)."""
    own = get_noise_spec(noise).param_names
    return {k: v for k, v in policy_kwargs.items() if k not in NOISE_PARAMETERS or k in own}


def split_noise_params(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Remove the noise parameters from a dict of policy keywords and return them (the rest are SB3's)."""
    return {name: kwargs.pop(name) for name in list(kwargs) if name in NOISE_PARAMETERS}


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
    **noise_params: Any,
) -> Distribution:
    """Build the action distribution for an exploration noise.

    :param name: A registry name (``isotropic``, ``gsde``, ``lattice``, ``lattice_iid``, ``pink``).
    :param action_space: The (Box) action space.
    :param use_sde: The algorithm's ``use_sde``; must match the noise (see ``check_noise``).
    :param squash_output: tanh-squashed actions (SAC).
    :param learn_features: Let the state-dependent noise variance train the latent features (SB3's SAC does).
    :param full_std: gSDE / Lattice: one std per noise-matrix entry instead of one per latent row.
    :param use_expln: gSDE / Lattice: ``expln`` instead of ``exp`` for the std.
    :param noise_params: The noise's own parameters (``NOISES[name].params``: ``alpha``, ``std_clip``, ``std_reg``
        for Lattice; ``alpha`` for ``lattice_iid``; ``noise_exponent``, ``noise_horizon`` for ``pink``); another
        noise's parameter is refused.
    """
    spec = check_noise(name, use_sde, action_space)
    return spec.build(
        get_action_dim(action_space),
        squash_output=squash_output,
        learn_features=learn_features,
        full_std=full_std,
        use_expln=use_expln,
        **spec.resolve(noise_params),
    )

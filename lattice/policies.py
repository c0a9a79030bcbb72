"""SB3 policies with a choice of exploration noise: ``lattice`` (default), ``lattice_iid``, ``gsde``, ``isotropic``,
``pink``.

They are SB3's own policies (``SACPolicy``, ``ActorCriticPolicy``, sb3-contrib's ``RecurrentActorCriticPolicy``)
whose action distribution comes from the registry in ``lattice.noise``; every noise setting is a constructor
keyword, so ``Model.load`` rebuilds the same policy:

    SAC(LatticeSACPolicy, env, use_sde=True, sde_sample_freq=4)
    PPO(LatticeActorCriticPolicy, env, use_sde=True, policy_kwargs=dict(alpha=1.0, full_std=False))
    RecurrentPPO(LatticeRecurrentActorCriticPolicy, env, use_sde=True)
    PPO(LatticeActorCriticPolicy, env, policy_kwargs=dict(noise="isotropic"))   # SB3's Gaussian, same class
    SAC(LatticeSACPolicy, env, policy_kwargs=dict(noise="pink", noise_horizon=1000))   # colored noise

Colored noise starts a new sequence per episode when ``learn`` gets ``lattice.callbacks.EpisodicNoiseCallback``
(without it, each env's sequence runs on across episodes and is renewed every ``noise_horizon`` steps).

Paper: https://arxiv.org/abs/2305.20065
"""

from __future__ import annotations

import math
from typing import Any

import torch as th
from gymnasium import spaces
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor, create_mlp
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.sac.policies import Actor, SACPolicy
from torch import nn

from lattice.colored import set_exploring
from lattice.noise import get_noise_spec, make_noise_distribution


def _noise_kwargs(
    noise: str,
    alpha: float,
    std_clip: tuple[float, float],
    std_reg: float,
    noise_exponent: float,
    noise_horizon: int | None,
) -> dict[str, Any]:
    """Validate the values early (before SB3 builds anything) and normalise them for saving."""
    get_noise_spec(noise)
    if not 0.0 <= alpha < math.inf:
        raise ValueError(f"alpha must be a finite number >= 0 (the latent noise scale), got {alpha}")
    if len(std_clip) != 2 or not 0.0 < std_clip[0] < std_clip[1] < math.inf:
        raise ValueError(f"std_clip must be (min, max) with 0 < min < max < inf, got {tuple(std_clip)}")
    if not 0.0 <= std_reg < math.inf:
        raise ValueError(f"std_reg must be a finite number >= 0, got {std_reg}")
    if not math.isfinite(noise_exponent):
        raise ValueError(f"noise_exponent must be a finite number (β: 0 white, 1 pink, 2 red), got {noise_exponent}")
    if noise_horizon is not None and (isinstance(noise_horizon, bool) or int(noise_horizon) != noise_horizon):
        raise ValueError(f"noise_horizon must be an integer (the episode length) or None, got {noise_horizon!r}")
    if noise_horizon is not None and noise_horizon < 2:
        raise ValueError(f"noise_horizon must be at least 2 steps (the episode length), got {noise_horizon}")
    return dict(
        noise=noise,
        alpha=float(alpha),
        std_clip=(float(std_clip[0]), float(std_clip[1])),
        std_reg=float(std_reg),
        noise_exponent=float(noise_exponent),
        noise_horizon=None if noise_horizon is None else int(noise_horizon),
    )


class _NoiseActorCriticMixin:
    """Gives an SB3 actor-critic policy the noise keywords: ``noise``, ``alpha``, ``std_clip``, ``std_reg``,
    ``noise_exponent`` and ``noise_horizon``.

    The registry builds the action distribution in ``_build`` (where SB3 creates the action head), so the
    network is built once. ``full_std``, ``use_expln`` and ``squash_output`` keep their SB3 meaning.
    """

    action_space: spaces.Space
    use_sde: bool
    dist_kwargs: dict[str, Any] | None

    def __init__(
        self,
        *args: Any,
        noise: str = "lattice",
        alpha: float = 1.0,
        std_clip: tuple[float, float] = (1e-3, 1.0),
        std_reg: float = 0.0,
        noise_exponent: float = 1.0,
        noise_horizon: int | None = None,
        **kwargs: Any,
    ):
        # Set before the parent constructor, which calls _build() (sb3-contrib sets lstm_output_dim likewise).
        self.noise_kwargs = _noise_kwargs(noise, alpha, std_clip, std_reg, noise_exponent, noise_horizon)
        super().__init__(*args, **kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        settings = {k: v for k, v in self.noise_kwargs.items() if k != "noise"}
        self.action_dist = make_noise_distribution(
            self.noise_kwargs["noise"], self.action_space, use_sde=self.use_sde, **settings, **(self.dist_kwargs or {})
        )
        super()._build(lr_schedule)  # type: ignore[misc]

    def set_training_mode(self, mode: bool) -> None:
        super().set_training_mode(mode)  # type: ignore[misc]
        set_exploring(self.action_dist, not mode)  # colored noise drives rollouts, not training updates

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data: dict[str, Any] = super()._get_constructor_parameters()  # type: ignore[misc]
        data.update(self.noise_kwargs)
        return data


class LatticeActorCriticPolicy(_NoiseActorCriticMixin, ActorCriticPolicy):
    """SB3's ``ActorCriticPolicy`` (PPO, A2C) with a choice of exploration noise.

    Takes every keyword of ``ActorCriticPolicy`` plus:

    :param noise: ``lattice`` (needs ``use_sde=True``), ``lattice_iid``, ``gsde`` (needs ``use_sde=True``),
        ``isotropic`` or ``pink``.
    :param alpha: Scale α of the latent noise (Lattice).
    :param std_clip: (σ_min, σ_max) clip of the noise std (state-dependent Lattice).
    :param std_reg: Action std floor (state-dependent Lattice).
    :param noise_exponent: β of colored noise's spectrum 1/f^β (``pink``; 0: white, 1: pink, 2: red).
    :param noise_horizon: Length of colored noise's sequence per env, the episode length (``pink``; None: 1000).
    """


class LatticeRecurrentActorCriticPolicy(_NoiseActorCriticMixin, RecurrentActorCriticPolicy):
    """sb3-contrib's ``RecurrentActorCriticPolicy`` (RecurrentPPO) with a choice of exploration noise.

    Takes every keyword of ``RecurrentActorCriticPolicy`` plus ``noise``, ``alpha``, ``std_clip``, ``std_reg``,
    ``noise_exponent`` and ``noise_horizon`` (see ``LatticeActorCriticPolicy``).
    """


class LatticeActor(Actor):
    """SAC actor whose action head comes from the noise registry (see ``LatticeSACPolicy``).

    It reuses SB3's ``Actor`` for everything but construction, which it does once, from the registry (instead
    of letting ``Actor.__init__`` build a gSDE or Gaussian head first).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        net_arch: list[int],
        features_extractor: nn.Module,
        features_dim: int,
        activation_fn: type[nn.Module] = nn.ReLU,
        use_sde: bool = False,
        log_std_init: float = 0.0,
        full_std: bool = True,
        use_expln: bool = True,
        clip_mean: float = 2.0,
        normalize_images: bool = True,
        noise: str = "lattice",
        alpha: float = 1.0,
        std_clip: tuple[float, float] = (1e-3, 1.0),
        std_reg: float = 0.0,
        noise_exponent: float = 1.0,
        noise_horizon: int | None = None,
    ):
        BasePolicy.__init__(
            self,
            observation_space,
            action_space,
            features_extractor=features_extractor,
            normalize_images=normalize_images,
            squash_output=True,
        )
        self.use_sde = use_sde
        self.sde_features_extractor = None
        self.net_arch = net_arch
        self.features_dim = features_dim
        self.activation_fn = activation_fn
        self.log_std_init = log_std_init
        self.use_expln = use_expln
        self.full_std = full_std
        self.clip_mean = clip_mean
        self.noise_kwargs = _noise_kwargs(noise, alpha, std_clip, std_reg, noise_exponent, noise_horizon)
        settings = {k: v for k, v in self.noise_kwargs.items() if k != "noise"}

        self.latent_pi = nn.Sequential(*create_mlp(features_dim, -1, net_arch, activation_fn))
        last_layer_dim = net_arch[-1] if len(net_arch) > 0 else features_dim
        # SB3's SAC lets the noise variance train the features (learn_features=True).
        self.action_dist = make_noise_distribution(  # type: ignore[assignment]
            noise,
            action_space,
            use_sde=use_sde,
            squash_output=True,
            learn_features=True,
            full_std=full_std,
            use_expln=use_expln,
            **settings,
        )
        self.mu, self.log_std = get_noise_spec(noise).sac_head(
            self.action_dist, last_layer_dim, log_std_init, clip_mean
        )

    def set_training_mode(self, mode: bool) -> None:
        super().set_training_mode(mode)
        set_exploring(self.action_dist, not mode)  # colored noise drives rollouts, not SAC's updates

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(self.noise_kwargs)
        return data


class LatticeSACPolicy(SACPolicy):
    """SB3's ``SACPolicy`` with a choice of exploration noise; Lattice with the paper's settings by default.

    Takes every keyword of ``SACPolicy`` (with defaults ``use_expln=True``, ``log_std_init=0.0``) plus:

    :param noise: ``lattice`` (needs ``use_sde=True``), ``lattice_iid``, ``gsde`` (needs ``use_sde=True``),
        ``isotropic`` or ``pink``.
    :param full_std: gSDE / Lattice: one std per noise-matrix entry (else one per latent row).
    :param alpha: Scale α of the latent noise (Lattice).
    :param std_clip: (σ_min, σ_max) clip of the noise std (state-dependent Lattice).
    :param std_reg: Action std floor (state-dependent Lattice).
    :param noise_exponent: β of colored noise's spectrum 1/f^β (``pink``; 0: white, 1: pink, 2: red).
    :param noise_horizon: Length of colored noise's sequence per env, the episode length (``pink``; None: 1000).
    """

    actor: LatticeActor

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        use_sde: bool = False,
        log_std_init: float = 0.0,
        use_expln: bool = True,
        clip_mean: float = 2.0,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        n_critics: int = 2,
        share_features_extractor: bool = False,
        noise: str = "lattice",
        full_std: bool = True,
        alpha: float = 1.0,
        std_clip: tuple[float, float] = (1e-3, 1.0),
        std_reg: float = 0.0,
        noise_exponent: float = 1.0,
        noise_horizon: int | None = None,
    ):
        # Set before the parent constructor, which builds the actor through make_actor().
        self.noise_kwargs = _noise_kwargs(noise, alpha, std_clip, std_reg, noise_exponent, noise_horizon)
        self.full_std = full_std
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=net_arch,
            activation_fn=activation_fn,
            use_sde=use_sde,
            log_std_init=log_std_init,
            use_expln=use_expln,
            clip_mean=clip_mean,
            features_extractor_class=features_extractor_class,
            features_extractor_kwargs=features_extractor_kwargs,
            normalize_images=normalize_images,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            n_critics=n_critics,
            share_features_extractor=share_features_extractor,
        )

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> LatticeActor:
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return LatticeActor(**actor_kwargs, full_std=self.full_std, **self.noise_kwargs).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(full_std=self.full_std, **self.noise_kwargs)
        return data

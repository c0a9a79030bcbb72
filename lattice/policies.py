"""SB3 policies with a choice of exploration noise: ``lattice`` (default), ``lattice_iid``, ``gsde``, ``isotropic``,
``pink``.

They are SB3's own policies (``SACPolicy``, ``ActorCriticPolicy``, sb3-contrib's ``RecurrentActorCriticPolicy`` and
``TQCPolicy``) whose action distribution comes from the registry in ``lattice.noise``; the noise and its parameters
are constructor keywords, so ``Model.load`` rebuilds the same policy:

    SAC(LatticeSACPolicy, env, use_sde=True, sde_sample_freq=4)
    PPO(LatticeActorCriticPolicy, env, use_sde=True, policy_kwargs=dict(alpha=1.0, full_std=False))  # also A2C
    RecurrentPPO(LatticeRecurrentActorCriticPolicy, env, use_sde=True)
    TQC(LatticeTQCPolicy, env, use_sde=True)
    PPO(LatticeActorCriticPolicy, env, policy_kwargs=dict(noise="isotropic"))   # SB3's Gaussian, same class
    SAC(LatticeSACPolicy, env, policy_kwargs=dict(noise="pink", noise_horizon=1000))   # colored noise

Colored noise starts a new sequence per episode when ``learn`` gets ``lattice.callbacks.EpisodicNoiseCallback``
(without it, each env's sequence runs on across episodes and is renewed every ``noise_horizon`` steps).

Paper: https://arxiv.org/abs/2305.20065
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any, TypeVar

import torch as th
from gymnasium import spaces
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from sb3_contrib.tqc.policies import TQCPolicy
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.save_util import json_to_data, open_path
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, create_mlp
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.sac.policies import Actor, SACPolicy
from torch import nn

from lattice.colored import set_exploring
from lattice.noise import (
    get_noise_spec,
    make_noise_distribution,
    resolve_noise_params,
    split_noise_params,
    without_other_noises_params,
)


def _noise_kwargs(noise: str, given: dict[str, Any]) -> dict[str, Any]:
    """``noise`` and its own parameters, checked and normalised by the registry before SB3 builds anything (what the
    policy saves among its constructor parameters)."""
    return {"noise": get_noise_spec(noise).name, **resolve_noise_params(noise, given)}


class _NoiseActorCriticMixin:
    """Gives an SB3 actor-critic policy the keyword ``noise`` and that noise's parameters (``lattice.noise``).

    The registry builds the action distribution in ``_build`` (where SB3 creates the action head), so the
    network is built once. ``full_std``, ``use_expln`` and ``squash_output`` keep their SB3 meaning.
    """

    action_space: spaces.Space
    use_sde: bool
    dist_kwargs: dict[str, Any] | None

    def __init__(self, *args: Any, noise: str = "lattice", **kwargs: Any):
        # Set before the parent constructor, which calls _build() (sb3-contrib sets lstm_output_dim likewise).
        self.noise_kwargs = _noise_kwargs(noise, split_noise_params(kwargs))
        super().__init__(*args, **kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        noise, params = self._noise_and_params()
        self.action_dist = make_noise_distribution(
            noise, self.action_space, use_sde=self.use_sde, **params, **(self.dist_kwargs or {})
        )
        super()._build(lr_schedule)  # type: ignore[misc]

    def _noise_and_params(self) -> tuple[str, dict[str, Any]]:
        params = dict(self.noise_kwargs)
        return params.pop("noise"), params

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
    :param noise_params: The chosen noise's own parameters (``lattice.noise.NOISES[noise].params``): ``alpha``,
        ``std_clip``, ``std_reg`` (``lattice``); ``alpha`` (``lattice_iid``); ``noise_exponent``, ``noise_horizon``
        (``pink``). A parameter of another noise is refused.
    """


class LatticeRecurrentActorCriticPolicy(_NoiseActorCriticMixin, RecurrentActorCriticPolicy):
    """sb3-contrib's ``RecurrentActorCriticPolicy`` (RecurrentPPO) with a choice of exploration noise.

    Takes every keyword of ``RecurrentActorCriticPolicy`` plus ``noise`` and the noise's own parameters (see
    ``LatticeActorCriticPolicy``).
    """


class LatticeActor(Actor):
    """SAC / TQC actor whose action head comes from the noise registry (see ``LatticeSACPolicy``).

    It reuses SB3's ``Actor`` for everything but construction, which it does once, from the registry (instead
    of letting ``Actor.__init__`` build a gSDE or Gaussian head first). sb3-contrib's TQC actor has the same
    interface, so TQC uses it too.
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
        **noise_params: Any,
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
        self.noise_kwargs = _noise_kwargs(noise, noise_params)

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
            **noise_params,
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


class _NoiseSACMixin:
    """Gives an SB3 SAC-family policy (``SACPolicy``, sb3-contrib's ``TQCPolicy``) the keyword ``noise`` and that
    noise's parameters: its actor is a ``LatticeActor``, built through SB3's ``make_actor`` hook.

    The defaults ``use_expln=True`` and ``log_std_init=0.0`` are the paper's (SB3's are ``False`` and ``-3``).
    ``full_std`` is passed to the actor, which SB3's SAC policy does not do.
    """

    actor_kwargs: dict[str, Any]
    device: th.device
    _update_features_extractor: Any

    def __init__(
        self,
        *args: Any,
        noise: str = "lattice",
        full_std: bool = True,
        use_expln: bool = True,
        log_std_init: float = 0.0,
        **kwargs: Any,
    ):
        # Set before the parent constructor, which builds the actor through make_actor().
        self.noise_kwargs = _noise_kwargs(noise, split_noise_params(kwargs))
        self.full_std = full_std
        super().__init__(*args, use_expln=use_expln, log_std_init=log_std_init, **kwargs)  # type: ignore[call-arg]

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> LatticeActor:
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return LatticeActor(**actor_kwargs, full_std=self.full_std, **self.noise_kwargs).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data: dict[str, Any] = super()._get_constructor_parameters()  # type: ignore[misc]
        data.update(full_std=self.full_std, **self.noise_kwargs)
        return data


class LatticeSACPolicy(_NoiseSACMixin, SACPolicy):
    """SB3's ``SACPolicy`` with a choice of exploration noise; Lattice with the paper's settings by default.

    Takes every keyword of ``SACPolicy`` (with defaults ``use_expln=True``, ``log_std_init=0.0``) plus:

    :param noise: ``lattice`` (needs ``use_sde=True``), ``lattice_iid``, ``gsde`` (needs ``use_sde=True``),
        ``isotropic`` or ``pink``.
    :param full_std: gSDE / Lattice: one std per noise-matrix entry (else one per latent row).
    :param noise_params: The chosen noise's own parameters (see ``LatticeActorCriticPolicy``).
    """

    actor: LatticeActor


class LatticeTQCPolicy(_NoiseSACMixin, TQCPolicy):  # type: ignore[misc]  # actor: SAC-style, same interface
    """sb3-contrib's ``TQCPolicy`` with a choice of exploration noise: the keywords of ``LatticeSACPolicy`` plus
    TQC's own (``n_quantiles``, ``n_critics``)."""

    actor: LatticeActor  # type: ignore[assignment]


_Model = TypeVar("_Model", bound=BaseAlgorithm)


def load_model(algo: type[_Model], path: str | Path | io.BufferedIOBase, **kwargs: Any) -> _Model:
    """``algo.load(path, **kwargs)`` for a model saved by any version of this package.

    A model saved by version 0.2 may hold parameters of other noises than its own in its ``policy_kwargs`` (0.2
    accepted and ignored them; its MyoSuite PPO settings gave every noise Lattice's ``std_clip``), which the policies
    now refuse. They had no effect, so they are dropped here (``lattice.noise.without_other_noises_params``) and the
    model loads as it was trained. For any other model this is ``algo.load`` itself.

    :param algo: The algorithm class (``PPO``, ``SAC``, ...).
    :param path: The saved model, as ``algo.load`` takes it.
    :param kwargs: ``algo.load``'s keywords (``env``, ``device``, ``custom_objects``, ...).
    """
    file = open_path(path, "r", suffix="zip")  # as algo.load finds it (".zip" added when missing)
    try:
        with zipfile.ZipFile(file) as archive:
            saved = json.loads(archive.read("data"))
    finally:
        if file is path:
            file.seek(0)  # a file object of the caller's: algo.load reads it from the start
        else:
            file.close()
    # only policy_kwargs is read (SB3's own decoding of it): the rest is left to algo.load
    policy_kwargs = json_to_data(json.dumps({"policy_kwargs": saved.get("policy_kwargs", {})}))["policy_kwargs"]
    if isinstance(policy_kwargs, dict):
        own = without_other_noises_params(policy_kwargs.get("noise", "lattice"), policy_kwargs)
        if own != policy_kwargs:
            kwargs["custom_objects"] = {"policy_kwargs": own, **(kwargs.get("custom_objects") or {})}
    return algo.load(path, **kwargs)

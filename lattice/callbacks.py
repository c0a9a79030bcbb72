"""Callbacks of the core library (SB3's ``BaseCallback``), for ``model.learn(..., callback=...)``."""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from lattice.colored import reset_episodes


class EpisodicNoiseCallback(BaseCallback):
    """Start each env's next episode on a new noise sequence, for noises that keep one per env (``pink``).

    SB3's policies do not see when an env's episode ends (RecurrentPPO's aside); its rollout loops call a callback
    after every env step with that step's ``dones``, so this callback passes them to the policy's distribution.
    For the other noises it does nothing: pass it whatever the noise, as the experiment layer does::

        model = PPO(LatticeActorCriticPolicy, env, policy_kwargs=dict(noise="pink", noise_horizon=1000))
        model.learn(1_000_000, callback=EpisodicNoiseCallback())
    """

    def _on_step(self) -> bool:
        ended = np.flatnonzero(self.locals["dones"])
        if len(ended):
            policy = self.model.policy
            reset_episodes(getattr(policy, "action_dist", None), ended)  # PPO, RecurrentPPO
            reset_episodes(getattr(getattr(policy, "actor", None), "action_dist", None), ended)  # SAC
        return True

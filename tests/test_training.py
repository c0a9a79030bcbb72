"""Short real training runs: every algorithm × noise on MuJoCo and MyoSuite environments."""

import math

import gymnasium as gym
import myosuite  # noqa: F401  (registers the myo* environments)
import numpy as np
import pytest
from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.env_util import make_vec_env

from lattice import NOISES, LatticeActorCriticPolicy, LatticeRecurrentActorCriticPolicy, LatticeSACPolicy

ENVS = ["InvertedPendulum-v5", "Ant-v5", "myoElbowPose1D6MRandom-v0"]
ALGOS = {
    "sac": (SAC, LatticeSACPolicy, dict(learning_starts=100, batch_size=64, buffer_size=1000, gradient_steps=1)),
    "ppo": (PPO, LatticeActorCriticPolicy, dict(n_steps=64, batch_size=32, n_epochs=2)),
    "recurrent_ppo": (RecurrentPPO, LatticeRecurrentActorCriticPolicy, dict(n_steps=64, batch_size=32, n_epochs=2)),
}


class ActionRecorder(gym.Wrapper):
    """Records every action the algorithm sends to the environment."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.actions: list[np.ndarray] = []

    def step(self, action):
        self.actions.append(np.array(action, copy=True))
        return self.env.step(action)


@pytest.mark.parametrize("env_id", ENVS)
@pytest.mark.parametrize("algo", sorted(ALGOS))
@pytest.mark.parametrize("noise", sorted(NOISES))
def test_short_training_run(env_id: str, algo: str, noise: str) -> None:
    cls, policy, kwargs = ALGOS[algo]
    recorders: list[ActionRecorder] = []

    def wrap(env: gym.Env) -> gym.Env:
        recorders.append(ActionRecorder(env))
        return recorders[-1]

    env = make_vec_env(env_id, n_envs=2, seed=0, wrapper_class=wrap)
    policy_kwargs = dict(noise=noise, net_arch=[64, 64])
    model = cls(
        policy,
        env,
        use_sde=NOISES[noise].state_dependent,
        sde_sample_freq=8,
        policy_kwargs=policy_kwargs,
        seed=0,
        device="cpu",
        **kwargs,
    )
    model.learn(256)

    # One more real update, then read the losses it logged.
    if isinstance(model, SAC):
        model.train(gradient_steps=2, batch_size=64)
        losses = ["train/actor_loss", "train/critic_loss", "train/ent_coef_loss"]
    else:
        model.train()
        losses = ["train/loss", "train/policy_gradient_loss", "train/value_loss"]
    for key in losses:
        value = model.logger.name_to_value[key]
        assert math.isfinite(value), (key, value)

    actions = np.concatenate([np.stack(r.actions) for r in recorders])
    assert len(actions) >= 256
    space = env.action_space
    assert np.isfinite(actions).all()
    assert (actions >= space.low).all() and (actions <= space.high).all()

    # The trained policy explores: at a fixed observation, stochastic actions (fresh noise matrices for the
    # state-dependent noises) differ from the deterministic one.
    obs = env.reset()
    deterministic, _ = model.predict(obs, deterministic=True)
    spread = []
    for _ in range(5):
        if NOISES[noise].state_dependent:
            model.policy.reset_noise(env.num_envs)
        spread.append(np.abs(model.predict(obs, deterministic=False)[0] - deterministic).max())
    assert max(spread) > 1e-6, spread

"""Colored noise (``noise="pink"``): the sequences' spectrum and variance, exact likelihoods, per-env sequences that
restart with episodes, save/load, seeded repeats and real rollouts of SB3's PPO and SAC."""

import numpy as np
import pytest
import torch as th
from gymnasium.wrappers import TimeLimit
from scipy import signal, stats
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.distributions import DiagGaussianDistribution, SquashedDiagGaussianDistribution
from stable_baselines3.common.env_util import make_vec_env

from lattice import (
    ColoredNoiseDistribution,
    EpisodicNoiseCallback,
    LatticeActorCriticPolicy,
    LatticeSACPolicy,
    SquashedColoredNoiseDistribution,
)
from lattice.colored import ColoredNoise, colored_noise

pytestmark = pytest.mark.fast

ENV_ID = "Pendulum-v1"


def spectral_slope(x: np.ndarray) -> float:
    """Slope of log power vs log frequency, from Welch's estimate averaged over sequences (time last)."""
    freqs, power = signal.welch(x, nperseg=256, axis=-1)
    power = power.reshape(-1, power.shape[-1]).mean(axis=0)
    band = (freqs >= 4 / 256) & (freqs <= 0.25)  # away from the window's lowest bins and from Nyquist
    return float(np.polyfit(np.log(freqs[band]), np.log(power[band]), 1)[0])


@pytest.mark.parametrize("beta", [0.0, 0.5, 1.0, 2.0])
def test_spectrum_has_slope_minus_beta(beta: float) -> None:
    th.manual_seed(0)
    x = colored_noise(beta, 2048, (200, 3), dtype=th.float64).numpy()
    assert spectral_slope(x) == pytest.approx(-beta, abs=0.1)


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
@pytest.mark.parametrize("horizon", [7, 10, 100, 1000])
def test_every_step_has_unit_variance(beta: float, horizon: int) -> None:
    """Var(ε_t) = 1 at every t (the likelihood assumes N(μ, σ²) marginals), for odd and even horizons; the
    packaged generator it replaces gives 1.11 for β = 1 over 100 steps."""
    th.manual_seed(1)
    x = colored_noise(beta, horizon, (40_000,), dtype=th.float64)
    per_step = x.var(dim=0)
    assert per_step.mean().item() == pytest.approx(1.0, abs=0.015)
    assert per_step.min().item() > 0.95 and per_step.max().item() < 1.05
    assert x.mean().abs().item() < 0.02


def test_white_when_beta_is_zero() -> None:
    """β = 0 is i.i.d. N(0, 1): no correlation between steps, Gaussian marginals."""
    th.manual_seed(2)
    x = colored_noise(0.0, 64, (5000,), dtype=th.float64).numpy()
    correlation = np.corrcoef(x, rowvar=False)
    off_diagonal = correlation[~np.eye(64, dtype=bool)]
    assert np.abs(off_diagonal).max() < 0.06  # 5000 samples: one correlation's std is 0.014
    assert stats.kstest(x[:, 10], "norm").pvalue > 0.01


def test_pink_is_correlated_in_time() -> None:
    th.manual_seed(3)
    x = colored_noise(1.0, 100, (5000,), dtype=th.float64).numpy()
    lag1 = np.mean([np.corrcoef(x[:, t], x[:, t + 1])[0, 1] for t in range(0, 99, 7)])
    red = colored_noise(2.0, 100, (5000,), dtype=th.float64).numpy()
    red_lag1 = np.mean([np.corrcoef(red[:, t], red[:, t + 1])[0, 1] for t in range(0, 99, 7)])
    assert 0.3 < lag1 < red_lag1 and red_lag1 > 0.9


@pytest.mark.parametrize("squashed", [False, True])
def test_log_prob_is_the_diagonal_gaussians(squashed: bool) -> None:
    th.manual_seed(4)
    mean, log_std = th.randn(6, 3), 0.3 * th.randn(6, 3)
    ours = SquashedColoredNoiseDistribution(3, exponent=1.0, horizon=50) if squashed else ColoredNoiseDistribution(3)
    sb3 = SquashedDiagGaussianDistribution(3) if squashed else DiagGaussianDistribution(3)
    ours.proba_distribution(mean, log_std)
    sb3.proba_distribution(mean, log_std)
    ours.exploring = True
    actions = ours.sample()
    if squashed:
        assert th.equal(actions, th.tanh(ours.gaussian_actions))
        expected = sb3.log_prob(actions, ours.gaussian_actions)
        assert th.allclose(ours.log_prob(actions, ours.gaussian_actions), expected)
    else:
        normal = th.distributions.Normal(mean, log_std.exp())
        assert th.allclose(ours.log_prob(actions), normal.log_prob(actions).sum(-1))
        assert th.allclose(ours.log_prob(actions), sb3.log_prob(actions))
        assert th.allclose(ours.entropy(), sb3.entropy())
    assert th.equal(ours.mode(), sb3.mode())


def test_sample_uses_the_sequences_only_while_exploring() -> None:
    """Exploring: a = μ + σ ⊙ ε_t with ε_t the sequences' next step; otherwise SB3's white reparameterised sample
    (SAC's updates differentiate through it), which leaves the sequences where they were."""
    dist = ColoredNoiseDistribution(2, exponent=1.0, horizon=20)
    mean, log_std = th.zeros(3, 2, requires_grad=True), th.full((3, 2), -1.0)
    dist.proba_distribution(mean, log_std)
    dist.exploring = True
    first = dist.sample()
    assert dist.noise.sequences is not None
    sequences = dist.noise.sequences.clone()
    assert th.allclose(first, log_std.exp() * sequences[:, 0])
    dist.exploring = False
    white = dist.sample()
    white.sum().backward()
    assert mean.grad is not None and th.equal(mean.grad, th.ones(3, 2))
    assert list(dist.noise.position) == [1, 1, 1]
    dist.exploring = True
    assert th.allclose(dist.sample(), log_std.exp() * sequences[:, 1])


def test_sequences_are_independent_across_envs() -> None:
    th.manual_seed(5)
    noise = ColoredNoise(action_dim=2, exponent=1.0, horizon=50)
    steps = th.stack([noise.next(2000, th.device("cpu"), th.float64) for _ in range(50)])  # (t, env, dim)
    x = steps.permute(1, 2, 0).reshape(2000, -1).numpy()  # each env's two sequences, one row per env
    env_a, env_b = x[0::2], x[1::2]  # pairs of envs drawn together
    cross = np.mean([np.corrcoef(env_a[:, t], env_b[:, t])[0, 1] for t in range(0, 100, 9)])
    dims = np.mean([np.corrcoef(x[:, t], x[:, 50 + t])[0, 1] for t in range(0, 50, 7)])  # dimension 0 vs 1
    assert abs(cross) < 0.05 and abs(dims) < 0.05


def test_reset_starts_new_sequences_for_the_ended_envs_only() -> None:
    noise = ColoredNoise(action_dim=1, exponent=1.0, horizon=10)
    cpu = th.device("cpu")
    for _ in range(3):
        noise.next(3, cpu, th.float32)
    assert noise.sequences is not None
    before = noise.sequences.clone()
    noise.reset([1])
    step = noise.next(3, cpu, th.float32)
    assert th.equal(step[0], before[0, 3]) and th.equal(step[2], before[2, 3])  # envs 0 and 2 go on
    assert not th.equal(noise.sequences[1], before[1])  # env 1: a new sequence, from its first step
    assert th.equal(step[1], noise.sequences[1, 0])
    assert list(noise.position) == [4, 1, 4]
    for _ in range(6):
        noise.next(3, cpu, th.float32)
    assert list(noise.position) == [10, 7, 10]
    kept = noise.sequences.clone()
    noise.next(3, cpu, th.float32)  # envs 0 and 2 ran out: new sequences
    assert list(noise.position) == [1, 8, 1]
    assert th.equal(noise.sequences[1], kept[1]) and not th.equal(noise.sequences[0], kept[0])


def _vec_env_with_episode_lengths(lengths: list[int]):
    envs = iter(lengths)
    return make_vec_env(ENV_ID, n_envs=len(lengths), seed=0, wrapper_class=lambda env: TimeLimit(env, next(envs)))


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_sequences_follow_each_envs_episodes_in_real_rollouts(algo: str) -> None:
    """Two envs whose episodes end at different steps (7 and 11): with EpisodicNoiseCallback each env's position in
    its sequence is the step count of its current episode; SAC's gradient steps consume none of it."""
    env = _vec_env_with_episode_lengths([7, 11])
    kwargs = dict(n_steps=32, batch_size=16, n_epochs=1) if algo == "ppo" else dict(learning_starts=0, batch_size=16)
    cls, policy = (PPO, LatticeActorCriticPolicy) if algo == "ppo" else (SAC, LatticeSACPolicy)
    model = cls(policy, env, policy_kwargs=dict(noise="pink", noise_horizon=100, net_arch=[8]), seed=0, **kwargs)
    model.learn(64, callback=EpisodicNoiseCallback())
    dist = model.policy.action_dist if algo == "ppo" else model.actor.action_dist
    per_env = model.num_timesteps // 2
    assert list(dist.noise.position) == [per_env % 7, per_env % 11]
    assert not dist.exploring  # left in training mode by the last update


def test_rollout_actions_follow_the_colored_sequence() -> None:
    """The actions PPO takes in the env are μ + σ ⊙ ε with ε strongly correlated in time for red noise (β = 2),
    and uncorrelated for white (β = 0)."""
    lag1 = {}
    for beta in (0.0, 2.0):
        model = PPO(
            LatticeActorCriticPolicy,
            _vec_env_with_episode_lengths([200]),
            learning_rate=0.0,  # the policy stays the one that acted, to recover ε from the buffer
            n_steps=200,
            batch_size=50,
            n_epochs=1,
            policy_kwargs=dict(noise="pink", noise_exponent=beta, noise_horizon=200, net_arch=[8]),
            seed=0,
        )
        model.learn(200, callback=EpisodicNoiseCallback())
        buffer = model.rollout_buffer
        obs = th.as_tensor(buffer.observations.reshape(200, -1))
        with th.no_grad():
            normal = model.policy.get_distribution(obs).distribution
            eps = (th.as_tensor(buffer.actions.reshape(200, -1)) - normal.mean) / normal.stddev
        eps_np = eps[:, 0].numpy()
        lag1[beta] = np.corrcoef(eps_np[:-1], eps_np[1:])[0, 1]
        if beta == 0.0:
            assert eps_np.std() == pytest.approx(1.0, abs=0.15)  # σ = exp(log_std_init) = 1
    assert abs(lag1[0.0]) < 0.2 and lag1[2.0] > 0.8


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_save_load_keeps_the_noise_settings(algo: str, tmp_path) -> None:
    cls, policy = (PPO, LatticeActorCriticPolicy) if algo == "ppo" else (SAC, LatticeSACPolicy)
    settings = dict(noise="pink", noise_exponent=1.7, noise_horizon=123, net_arch=[8])
    model = cls(policy, ENV_ID, policy_kwargs=settings, seed=0)
    model.save(tmp_path / "model")
    loaded = cls.load(tmp_path / "model")
    dist = loaded.policy.action_dist if algo == "ppo" else loaded.actor.action_dist
    assert type(dist) is (ColoredNoiseDistribution if algo == "ppo" else SquashedColoredNoiseDistribution)
    assert (dist.noise.exponent, dist.noise.horizon) == (1.7, 123)
    obs = np.zeros((1, 3), dtype=np.float32)
    assert np.array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_seeded_runs_repeat_exactly(algo: str) -> None:
    cls, policy = (PPO, LatticeActorCriticPolicy) if algo == "ppo" else (SAC, LatticeSACPolicy)
    kwargs = dict(n_steps=64, batch_size=32, n_epochs=2) if algo == "ppo" else dict(learning_starts=16, batch_size=16)
    params = []
    for _ in range(2):
        model = cls(
            policy,
            _vec_env_with_episode_lengths([30, 45]),
            seed=3,
            **kwargs,
            policy_kwargs=dict(noise="pink", noise_horizon=50, net_arch=[8]),
        )
        model.learn(128, callback=EpisodicNoiseCallback())
        params.append(th.nn.utils.parameters_to_vector(model.policy.parameters()).detach())
    assert th.equal(params[0], params[1])


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="noise_exponent must be a finite number"):
        PPO(LatticeActorCriticPolicy, ENV_ID, policy_kwargs=dict(noise="pink", noise_exponent=float("nan")))
    with pytest.raises(ValueError, match=r"noise_horizon must be an integer >= 2 .*got 1$"):
        SAC(LatticeSACPolicy, ENV_ID, policy_kwargs=dict(noise="pink", noise_horizon=1))
    with pytest.raises(ValueError, match="noise_horizon must be an integer"):
        PPO(LatticeActorCriticPolicy, ENV_ID, policy_kwargs=dict(noise="pink", noise_horizon=10.5))

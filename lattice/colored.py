"""Colored action noise (Eberhard et al., "Pink Noise Is All You Need", ICLR 2023) as SB3 distributions.

The policy is SB3's diagonal Gaussian π(a|s) = N(μ(s), diag σ²) (squashed by tanh for SAC); only how exploration
samples are drawn changes. An action taken in the env at step t of an episode is

    a_t = μ(s_t) + σ(s_t) ⊙ ε_t,   ε_t = e[t] of a sequence e ∈ R^{T×n} drawn per env at the start of its episode,

where each action dimension of e is a stationary Gaussian sequence with power spectrum S(f) ∝ 1/f^β (β = 0:
white, β = 1: pink, β = 2: red / Brownian) and unit variance at every step. So each step's marginal is exactly
N(μ, σ²): ``log_prob`` is the policy's per-step Gaussian density, and consecutive steps are correlated, the more
the larger β. As with any time-correlated noise (gSDE, Lattice with T > 1), ε_t depends on the earlier noise that
shaped s_t, so a_t given s_t is not a fresh draw from ``π(·|s_t)``: PPO's ratio of Gaussian densities then treats the
samples as on-policy, an approximation. Reparameterised samples for a loss (SAC's actor and target updates,
taken with the policy in training mode) are SB3's white ones, one per sample of the batch.

Why not the maintained packages: ``colorednoise.powerlaw_psd_gaussian`` normalises by a variance that leaves out
the zero-frequency term, so its samples have variance 1.11 (β = 1, 100 steps) to 1.31 (β = 2), not 1, which would
make ``log_prob`` wrong; pink-noise-rl's SB3 distribution draws one sequence for the whole batch (every env, every
sample of SAC's actor update), is set on a built model (so ``load`` loses it) and has SAC only.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.distributions import DiagGaussianDistribution, SquashedDiagGaussianDistribution

DEFAULT_HORIZON = 1000  # Gymnasium's MuJoCo episode length; set noise_horizon to the task's own


def colored_noise(
    exponent: float, horizon: int, size: tuple[int, ...], device: th.device | str = "cpu", dtype: th.dtype = th.float32
) -> th.Tensor:
    """Gaussian sequences with power spectrum ∝ 1/f^β and unit variance at every step (Timmer & König, 1995).

    In the frequency domain, f_k = k/T for k = 0 .. ⌊T/2⌋, draw X_k = s_k (a_k + i b_k) with a, b ~ N(0, 1) and
    amplitude s_k = max(f_k, 1/T)^(-β/2) (the zero frequency takes the lowest one's amplitude); X_0 and, for even
    T, X_{T/2} must be real: X = √2 s a, the same power E|X|² = 2s². Then y = irfft(X) is stationary with

        Var(y_t) = (1/T²) Σ_k c_k s_k²,   c_k = 2 for the real terms, 4 for the complex ones,

    and y / √Var(y_t) has unit variance exactly (for β = 0 it is i.i.d. N(0, 1)).

    :param exponent: β, the power-law exponent of the spectrum.
    :param horizon: T, the length of each sequence (≥ 2).
    :param size: The leading shape; the result has shape ``(*size, horizon)``, time last.
    :param device: Where the result goes (it is drawn on the CPU, with torch's global generator).
    :param dtype: The floating-point type of the result.
    """
    n_freq = horizon // 2 + 1
    freqs = th.arange(n_freq, dtype=th.float64) / horizon
    amplitude = freqs.clamp(min=1.0 / horizon).pow(-exponent / 2.0)
    real = th.zeros(n_freq, dtype=th.bool)
    real[0] = True
    if horizon % 2 == 0:
        real[-1] = True
    weight = th.where(real, 2.0, 4.0)
    std = th.sqrt((weight * amplitude**2).sum()) / horizon
    # The real terms' √2 keeps their power equal to the complex terms'.
    scale_re = amplitude * th.where(real, math.sqrt(2.0), 1.0)
    scale_im = th.where(real, 0.0, amplitude)
    # Drawn and transformed on the CPU in float64 (MPS has no float64), with torch's CPU generator (seeded by SB3).
    draws = th.randn((*size, 2, n_freq), dtype=th.float64)
    spectrum = th.complex(draws[..., 0, :] * scale_re, draws[..., 1, :] * scale_im)
    return (th.fft.irfft(spectrum, n=horizon) / std).to(device=device, dtype=dtype)


class ColoredNoise:
    """The exploration noise of a vectorised env: one sequence per env (and action dimension), consumed a step at a
    time; a new sequence starts when the env's episode ends (``reset``) or the sequence runs out.

    The state is one set of sequences, for the envs of the last call: a stochastic evaluation (``predict`` with
    ``deterministic=False``) on other envs between rollouts starts the training envs on new sequences mid-episode,
    and on as many envs it consumes the training envs' sequences. The marginals stay N(0, 1) either way; evaluate
    deterministically (as SB3's ``EvalCallback`` and the experiment layer do) to leave them alone. Neither is the
    state saved with a model: a loaded model starts every env on a new sequence.

    :param action_dim: n, the number of action dimensions.
    :param exponent: β of the spectrum 1/f^β.
    :param horizon: T, the sequence length: the task's episode length (longer episodes continue on a new sequence).
    """

    def __init__(self, action_dim: int, exponent: float, horizon: int):
        self.action_dim = action_dim
        self.exponent = exponent
        self.horizon = horizon
        self.sequences: th.Tensor | None = None  # (n_envs, T, n)
        self.position = np.zeros(0, dtype=np.int64)  # the next step of each env's sequence

    def next(self, n_envs: int, device: th.device, dtype: th.dtype) -> th.Tensor:
        """ε_t for each env, shape (n_envs, n); advances every env by one step.

        A call with another number of envs than the last (an env count changed, e.g. a stochastic evaluation on
        other envs) starts every env on a new sequence."""
        if self.sequences is None or len(self.position) != n_envs or self.sequences.device != device:
            self.sequences = self._draw(n_envs, device, dtype)
            self.position = np.zeros(n_envs, dtype=np.int64)
        expired = np.flatnonzero(self.position >= self.horizon)
        if len(expired):
            self.sequences[expired] = self._draw(len(expired), device, dtype)
            self.position[expired] = 0
        noise = self.sequences[np.arange(n_envs), self.position]
        self.position += 1
        return noise

    def reset(self, env_indices: Any = None) -> None:
        """Start these envs (all: None) on a new sequence at their next step (their episode ended)."""
        if self.sequences is None:  # nothing drawn yet: every env starts on a new sequence anyway
            return
        if env_indices is None:
            self.position[:] = self.horizon
        else:
            indices = np.asarray(env_indices, dtype=np.int64)
            self.position[indices[indices < len(self.position)]] = self.horizon  # envs drawn for: the others start anew

    def _draw(self, n_envs: int, device: th.device, dtype: th.dtype) -> th.Tensor:
        return colored_noise(self.exponent, self.horizon, (n_envs, self.action_dim), device, dtype).transpose(1, 2)


class ColoredNoiseDistribution(DiagGaussianDistribution):
    """SB3's ``DiagGaussianDistribution`` (PPO, A2C, RecurrentPPO) whose exploration samples are colored noise.

    ``log_prob``, ``entropy`` and ``mode`` are the diagonal Gaussian's (each step's marginal is N(μ, σ²)).
    ``sample`` draws colored noise while ``exploring`` (set by the policy: while it is not in training mode, as in
    SB3's rollouts and ``predict``), one sequence per row of the batch (env); otherwise white noise, as SB3's.

    :param action_dim: Dimension of the action space.
    :param exponent: β of the noise spectrum 1/f^β (0: white, 1: pink, 2: red).
    :param horizon: Length of each env's noise sequence: the episode length.
    """

    def __init__(self, action_dim: int, exponent: float = 1.0, horizon: int = DEFAULT_HORIZON):
        super().__init__(action_dim)
        self.noise = ColoredNoise(action_dim, exponent, horizon)
        self.exploring = False

    def sample(self) -> th.Tensor:
        if not self.exploring:
            return super().sample()
        mean, std = self.distribution.mean, self.distribution.stddev
        batch = mean.reshape(-1, self.action_dim)
        eps = self.noise.next(batch.shape[0], batch.device, batch.dtype)
        return mean + std * eps.reshape(mean.shape)


class SquashedColoredNoiseDistribution(SquashedDiagGaussianDistribution, ColoredNoiseDistribution):
    """SB3's ``SquashedDiagGaussianDistribution`` (SAC) with colored exploration samples: the Gaussian action
    μ + σ ⊙ ε_t is squashed by tanh as for isotropic noise (see ``ColoredNoiseDistribution``).

    :param action_dim: Dimension of the action space.
    :param exponent: β of the noise spectrum 1/f^β.
    :param horizon: Length of each env's noise sequence: the episode length.
    :param epsilon: SB3's guard of the tanh correction's log.
    """

    def __init__(self, action_dim: int, exponent: float = 1.0, horizon: int = DEFAULT_HORIZON, epsilon: float = 1e-6):
        super().__init__(action_dim, epsilon)  # through SquashedDiagGaussianDistribution to ColoredNoiseDistribution
        self.noise = ColoredNoise(action_dim, exponent, horizon)


def set_exploring(distribution: Any, exploring: bool) -> None:
    """Switch colored noise on for rollouts (a policy out of training mode) and off for training updates."""
    if isinstance(distribution, ColoredNoiseDistribution):
        distribution.exploring = exploring


def reset_episodes(distribution: Any, env_indices: Any) -> None:
    """Start a new noise sequence for envs whose episode ended (a no-op for distributions without sequences)."""
    if isinstance(distribution, ColoredNoiseDistribution):
        distribution.noise.reset(env_indices)

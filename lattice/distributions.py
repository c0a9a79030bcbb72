"""Lattice action distributions for Stable-Baselines3.

Lattice (Chiappa, Marin Vargas, Huang, Mathis, "Latent Exploration for Reinforcement Learning", NeurIPS 2023,
https://arxiv.org/abs/2305.20065) perturbs the policy's last hidden layer x (dimension d) as well as its
actions (dimension n). With the action layer ``mean = W x + b`` and two random matrices P_x (d×d), P_a (d×n):

    a = W (x + α · P_xᵀ x) + b + P_aᵀ x + ε                                    (noise drawn every T steps)

(ε ~ N(0, std_reg² I) is an optional floor on the action noise), so that, for a given x, a ~ N(W x + b, Σ(x))
with the full covariance

    Σ(x) = α² · W diag((x∘x)·σ_x²) Wᵀ + diag((x∘x)·σ_a² + std_reg²).

``LatticeNoiseDistribution`` is the state-dependent version (a subclass of SB3's gSDE distribution, with the
same verbs, so SB3's ``use_sde`` / ``sde_sample_freq`` / ``reset_noise`` machinery drives it unchanged).
``LatticeIIDNoiseDistribution`` is the non-state-dependent version (fresh latent and action noise at every
step, Σ = α² W diag(σ_lat²) Wᵀ + diag(σ_act²)), a subclass of SB3's ``DiagGaussianDistribution``.

Both compute ``log_prob`` and ``entropy`` with this Σ exactly (see ``lattice.linalg``).
"""

from __future__ import annotations

import math
from typing import Any

import torch as th
from stable_baselines3.common.distributions import (
    DiagGaussianDistribution,
    StateDependentNoiseDistribution,
    TanhBijector,
)
from torch import nn

from lattice.linalg import gram_eigh, lowrank_covariance, lowrank_terms, scalar_lowrank_terms

LOG_2PI = math.log(2.0 * math.pi)
LOG2_E = 1.0 / math.log(2.0)


class _ClippedExp(th.autograd.Function):
    """exp(k·(clamp(l, l_min, l_max) − c)) in one autograd node: σ (k = 1) or σ² (k = 2) from ``log_std``.

    With ``full_std`` the std matrix is d × (d + n); as a chain of clamp, shift, scale and exp it cost about 0.3 ms
    per use on a CPU (d = 256), mostly in the backward pass, and Lattice uses it twice per step. The exponential is
    computed as 2^(x·log₂e): the same value to float rounding, and torch's exp2 is about 4× faster than its exp on a
    CPU (AVX-512).
    """

    @staticmethod
    def forward(ctx: Any, log_std: th.Tensor, l_min: float, l_max: float, shift: float, k: float) -> th.Tensor:
        clipped = log_std.clamp(l_min, l_max)
        inside = clipped == log_std  # where the clip passes the gradient (its bounds included, as torch's clamp)
        out = th.exp2(clipped.mul_(k * LOG2_E).sub_(k * shift * LOG2_E))
        ctx.save_for_backward(out * inside * k)  # d out / d log_std: k·out inside the clip, 0 outside
        return out

    @staticmethod
    def backward(ctx: Any, grad: th.Tensor) -> tuple[th.Tensor | None, ...]:
        (derivative,) = ctx.saved_tensors
        return grad * derivative, None, None, None, None


def _clipped_exp(log_std: th.Tensor, l_min: float, l_max: float, shift: float, k: float) -> th.Tensor:
    """exp(k·(clamp(l, l_min, l_max) − c)), through ``_ClippedExp`` when a gradient will flow, else directly (e.g.
    in rollouts, under ``th.no_grad()``)."""
    if th.is_grad_enabled() and log_std.requires_grad:
        return _ClippedExp.apply(log_std, l_min, l_max, shift, k)
    return th.exp2(log_std.clamp(l_min, l_max).mul_(k * LOG2_E).sub_(k * shift * LOG2_E))


class _LatticeGaussian:
    """What both Lattice distributions share: the Gaussian N(μ, Σ), Σ = α² W diag(u) Wᵀ + diag(v).

    The variances are stored either in general form (``u``: (B|1, d), ``v``: (B|1, n)) or, when both are one
    scalar per sample (``full_std=False``), as ``s``, ``t``: (B|1, 1) with Σ = α² s WWᵀ + t I.
    """

    action_dim: int
    alpha: float
    bijector: TanhBijector | None
    mean_actions_net: nn.Linear | None
    mean_actions: th.Tensor
    _var_latent: th.Tensor  # u (B|1, d), or s (B|1, 1) when _scalar_variances
    _var_action: th.Tensor  # v (B|1, n), or t (B|1, 1) when _scalar_variances
    _scalar_variances: bool
    _logdet: th.Tensor | None
    _gaussian_actions: th.Tensor | None
    _eig_cache: tuple[th.Tensor, tuple[th.Tensor, th.Tensor]] | None  # (W it was computed for, (λ, Q))

    def _init_gaussian(self, alpha: float) -> None:
        if not 0.0 <= alpha < math.inf:
            raise ValueError(f"alpha must be a finite number >= 0 (the latent noise scale), got {alpha}")
        self.alpha = float(alpha)
        self.mean_actions_net = None
        self._logdet = None
        self._gaussian_actions = None
        self._eig_cache = None

    @property
    def weight(self) -> th.Tensor:
        """W, the weight of the action layer (n × d), through which the latent noise reaches the actions."""
        if self.mean_actions_net is None:
            raise RuntimeError("Call proba_distribution_net() first: it creates the action layer W.")
        return self.mean_actions_net.weight

    def _set_gaussian(self, mean_actions: th.Tensor, var_latent: th.Tensor, var_action: th.Tensor) -> None:
        self.mean_actions = mean_actions
        self._var_latent = var_latent
        self._var_action = var_action
        self._logdet = None
        self._gaussian_actions = None

    def _eig(self, W: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """Eigendecomposition of WWᵀ, recomputed only when W's values changed (e.g. not during a PPO rollout)."""
        if self.alpha == 0.0:  # Σ = t I: no latent term, any orthonormal basis will do
            n = W.shape[0]
            return W.new_zeros(n), th.eye(n, dtype=W.dtype, device=W.device)
        if th.compiler.is_compiling():  # traced by torch.compile: no cache (th.equal reads values, a graph break)
            return gram_eigh(W)
        cached = self._eig_cache
        # Compared by value (n·d entries, cheap next to eigh): a version counter misses writes through .data.
        if cached is None or cached[0].shape != W.shape or cached[0].dtype != W.dtype or not th.equal(cached[0], W):
            cached = self._eig_cache = (W.detach().clone(), gram_eigh(W))
        return cached[1]

    def _terms(self, gaussian_actions: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """(log det Σ, rᵀΣ⁻¹r) for r = a − μ, exactly."""
        r = gaussian_actions - self.mean_actions
        W = self.weight
        if self._scalar_variances:
            return scalar_lowrank_terms(r, W, self._var_latent, self._var_action, self.alpha, eig=self._eig(W))
        return lowrank_terms(r, W, self._var_latent, self._var_action, self.alpha)

    def _gaussian_log_prob(self, gaussian_actions: th.Tensor) -> th.Tensor:
        logdet, quad = self._terms(gaussian_actions)
        self._logdet = logdet  # reused by entropy(): same Σ, same graph
        # log N(a; μ, Σ) = −½ (n log 2π + log det Σ + rᵀΣ⁻¹r)
        return -0.5 * (self.action_dim * LOG_2PI + logdet + quad)

    def log_prob(self, actions: th.Tensor, gaussian_actions: th.Tensor | None = None) -> th.Tensor:
        """Exact log-likelihood of ``actions``.

        With tanh squashing, log π(a) = log N(atanh a; μ, Σ) − Σᵢ log(1 − aᵢ² + ε).

        :param actions: actions, shape (batch, n) (squashed ones when ``squash_output``)
        :param gaussian_actions: the pre-squash actions, when known (avoids the lossy atanh)
        :return: log-probabilities, shape (batch,)
        """
        if gaussian_actions is None:
            gaussian_actions = actions if self.bijector is None else self.bijector.inverse(actions)
        log_prob = self._gaussian_log_prob(gaussian_actions)
        if self.bijector is not None:
            log_prob = log_prob - th.sum(self.bijector.log_prob_correction(gaussian_actions), dim=1)
        return log_prob

    def entropy(self) -> th.Tensor | None:
        """Entropy ½ (n (1 + log 2π) + log det Σ); None with tanh squashing (no closed form), as in SB3."""
        if self.bijector is not None:
            return None
        if self._logdet is None:
            self._logdet, _ = self._terms(self.mean_actions.detach())
        return 0.5 * (self.action_dim * (1.0 + LOG_2PI) + self._logdet)

    def mode(self) -> th.Tensor:
        if self.bijector is not None:
            return self.bijector.forward(self.mean_actions)
        return self.mean_actions

    def _squash(self, gaussian_actions: th.Tensor) -> th.Tensor:
        self._gaussian_actions = gaussian_actions
        if self.bijector is not None:
            return self.bijector.forward(gaussian_actions)
        return gaussian_actions

    def covariance(self) -> th.Tensor:
        """Σ for every sample of the current distribution (pre-squash), shape (batch, n, n)."""
        batch = self.mean_actions.shape[0]
        u, v = self._var_latent, self._var_action
        if self._scalar_variances:
            u = u.expand(-1, self.weight.shape[1])
            v = v.expand(-1, self.action_dim)
        return lowrank_covariance(self.weight, u.expand(batch, -1), v.expand(batch, -1), self.alpha)

    @property
    def distribution(self) -> th.distributions.MultivariateNormal:
        """The (pre-squash) Gaussian as a torch ``MultivariateNormal``, for inspection; slow for large n."""
        return th.distributions.MultivariateNormal(self.mean_actions, covariance_matrix=self.covariance())

    @distribution.setter
    def distribution(self, value: Any) -> None:  # SB3's base constructor assigns None; nothing to store
        pass


class LatticeNoiseDistribution(_LatticeGaussian, StateDependentNoiseDistribution):  # type: ignore[misc]
    """Lattice: latent, time-correlated exploration (state-dependent, like gSDE).

    Noise matrices P = [P_x | P_a] (d × (d+n), independent N(0, σ²) entries) are drawn by ``sample_weights``
    (SB3's ``reset_noise``, every ``sde_sample_freq`` steps) and held fixed in between, so the noise is a
    fixed linear function of the latent state: time-correlated along a trajectory.

    A draw that is used for one step only (``sde_sample_freq=1``) needs none of the matrices: for each env, its
    noise is Gaussian with independent coordinates, P_xᵀx ~ N(0, diag(u)) and P_aᵀx + ε ~ N(0, diag(v)), so it
    is drawn from d + n standard normals instead of d(d + n) (``fresh_draws``). Should the draw be used again, its
    matrices are then drawn conditionally on the noise already given (Matheron's rule), so every sequence of
    actions has exactly the distribution of the matrix path.

    Paper: https://arxiv.org/abs/2305.20065

    :param action_dim: Dimension of the action space (n).
    :param full_std: One std per entry of P (``log_std`` of shape (d, d+n)); else one std per latent row of
        P_x and one of P_a (shape (d, 2)), which makes Σ = α² s WWᵀ + t I and the likelihood much cheaper.
    :param use_expln: Use ``expln`` (exp for l ≤ 0, log1p(l) + 1 above) instead of ``exp`` for the std.
    :param squash_output: Squash actions with tanh (SAC).
    :param learn_features: Let the noise variance back-propagate into the latent features x.
    :param epsilon: Small value in the tanh correction log(1 − a² + ε), as in SB3.
    :param std_clip: (σ_min, σ_max): ``log_std`` is clipped to [log σ_min, log σ_max] before the
        −½ log d correction.
    :param std_reg: A floor on the action noise: an N(0, std_reg² I) term, drawn with P and held with it, whose
        variance std_reg² is on the diagonal of Σ.
    :param alpha: Scale α of the latent noise; α = 0 gives gSDE's action noise (with the clip and √d correction).
    """

    bijector: TanhBijector | None
    # Draw once-used noise from its marginal (see the class docstring). False: always draw the matrices, the plain
    # reference path (same distribution; the same random stream as before this shortcut existed).
    fresh_draws: bool = True

    def __init__(
        self,
        action_dim: int,
        full_std: bool = True,
        use_expln: bool = False,
        squash_output: bool = False,
        learn_features: bool = False,
        epsilon: float = 1e-6,
        std_clip: tuple[float, float] = (1e-3, 1.0),
        std_reg: float = 0.0,
        alpha: float = 1.0,
    ):
        super().__init__(
            action_dim,
            full_std=full_std,
            use_expln=use_expln,
            squash_output=squash_output,
            learn_features=learn_features,
            epsilon=epsilon,
        )
        self._init_gaussian(alpha)
        if len(std_clip) != 2 or not 0.0 < std_clip[0] < std_clip[1] < math.inf:
            raise ValueError(f"std_clip must be (min, max) with 0 < min < max < inf, got {tuple(std_clip)}")
        std_min, std_max = float(std_clip[0]), float(std_clip[1])
        if not 0.0 <= std_reg < math.inf:
            raise ValueError(f"std_reg must be a finite number >= 0, got {std_reg}")
        self.std_clip = (std_min, std_max)
        self.std_reg = float(std_reg)
        self._scalar_variances = not full_std
        self._weights_std: th.Tensor | None = None
        self._weights_batch_size = 1
        # (P_x, P_a, ε): the shared draw, and one per parallel env; drawn on first use. ε (n,) is the std_reg part
        # of the action noise, held with the matrices so that the noise stays fixed between redraws.
        self._shared_mats: tuple[th.Tensor, th.Tensor, th.Tensor | None] | None = None
        self._env_mats: tuple[th.Tensor, th.Tensor, th.Tensor | None] | None = None
        # A draw given from its marginal before any matrix existed: (per env?, x, P_xᵀx, P_aᵀx + ε), kept until the
        # draw is replaced so that matrices drawn later agree with it.
        self._fresh: tuple[bool, th.Tensor, th.Tensor, th.Tensor] | None = None
        # Steps that used the current draw one row per env, and whether the last draw used so was used once: the
        # guess that the next draw will be used once too (SB3 redraws at a fixed period).
        self._row_uses = 0
        self._used_once = False

    def _log_std_bounds(self) -> tuple[float, float, float]:
        """(log σ_min, log σ_max, ½ log d): log σ is ``log_std`` clipped to the bounds, minus ½ log d (the noise must
        not grow with the latent width)."""
        assert self.latent_sde_dim is not None, "Call proba_distribution_net() first"
        return math.log(self.std_clip[0]), math.log(self.std_clip[1]), 0.5 * math.log(self.latent_sde_dim)

    def _std(self, log_std: th.Tensor) -> th.Tensor:
        """σ in the shape of ``log_std``: exp (or expln) of the clipped, shifted log std."""
        log_min, log_max, shift = self._log_std_bounds()
        if self.use_expln:
            log_sigma = log_std.clamp(log_min, log_max) - shift
            # expln(l) = exp(l) for l <= 0, log1p(l) + 1 for l > 0 (gSDE paper), exactly: each branch sees only its
            # own half-line, so neither can overflow or give a NaN gradient (SB3 instead adds ε inside log1p).
            return th.where(log_sigma <= 0, th.exp(log_sigma.clamp_max(0.0)), th.log1p(log_sigma.clamp_min(0.0)) + 1.0)
        return _clipped_exp(log_std, log_min, log_max, shift, 1.0)

    def _variance(self, log_std: th.Tensor) -> th.Tensor:
        """σ² in the shape of ``log_std``: exp(2 log σ), one exponential (or expln², with ``use_expln``)."""
        if self.use_expln:
            return self._std(log_std).square()
        return _clipped_exp(log_std, *self._log_std_bounds(), 2.0)

    def _split_std(self, std: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """(σ of P_x, σ of P_a), each broadcastable to its matrix: with ``full_std`` one std per entry (columns
        :d and d:), else one per latent row (column 0 for P_x, column 1 for P_a)."""
        d = self.latent_sde_dim
        return (std[:, :d], std[:, d:]) if self.full_std else (std[:, :1], std[:, 1:])

    def get_std(self, log_std: th.Tensor) -> th.Tensor:
        """Std of every entry of P = [P_x | P_a], shape (d, d + n)."""
        std_x, std_a = self._split_std(self._std(log_std))
        d = std_x.shape[0]
        return th.cat([std_x.expand(d, d), std_a.expand(d, self.action_dim)], dim=1)

    def sample_weights(self, log_std: th.Tensor, batch_size: int = 1) -> None:
        """Draw new noise matrices P_x, P_a (one shared pair, and ``batch_size`` pairs for parallel envs).

        The draws happen on first use (reparametrised, so gradients reach ``log_std``), and only the kind that is
        used: the shared matrices, or one pair per env (SB3's gSDE always draws both).
        """
        self._weights_std = self._std(log_std)  # in log_std's shape; broadcast where a draw is scaled
        self._weights_batch_size = batch_size
        self._forget_draw()
        if self._row_uses > 0:  # a draw never used (SB3 redraws twice at a rollout's start) says nothing
            self._used_once = self._row_uses == 1
        self._row_uses = 0

    def _forget_draw(self) -> None:
        self._shared_mats = None
        self._env_mats = None
        self._fresh = None

    def _draw(self, *batch_shape: int) -> tuple[th.Tensor, th.Tensor, th.Tensor | None]:
        """P_x (*batch_shape, d, d) and P_a (*batch_shape, d, n) with independent N(0, σ²) entries, and the
        std_reg part of the action noise, ε ~ N(0, std_reg² I) (*batch_shape, n), or None when std_reg = 0."""
        assert self._weights_std is not None and self.latent_sde_dim is not None, "Call sample_weights() first"
        std, d, n = self._weights_std, self.latent_sde_dim, self.action_dim
        std_x, std_a = self._split_std(std)
        P_x = th.randn(*batch_shape, d, d, dtype=std.dtype, device=std.device) * std_x
        P_a = th.randn(*batch_shape, d, n, dtype=std.dtype, device=std.device) * std_a
        eps = None  # std_reg = 0: no draw, so the random stream is as without this term
        if self.std_reg > 0:
            eps = th.randn(*batch_shape, n, dtype=std.dtype, device=std.device) * self.std_reg
        return P_x, P_a, eps

    def _variances(self, x: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """(u, v) for latent states x (B, d) under the current draw's σ: the variances of P_xᵀx and P_aᵀx + ε,
        (B, d) and (B, n), or (B, 1) each without ``full_std``. Row j of P is multiplied by x_j, so
        Var[(xᵀP)_k] = Σ_j x_j² σ_jk², one product for all columns."""
        assert self._weights_std is not None, "Call sample_weights() first"
        var_x, var_a = self._split_std(self._weights_std.to(x).square())
        x_sq = x.square()
        return x_sq @ var_x, x_sq @ var_a + self.std_reg**2

    def _fresh_noise(self, x: th.Tensor, per_env: bool) -> tuple[th.Tensor, th.Tensor]:
        """(P_xᵀx, P_aᵀx + ε) for one step of a draw that has no matrices yet, from their exact marginals: the
        columns of P are independent, so the coordinates of each are independent Gaussians of variances u and v
        (``_variances``). d + n standard normals per row; remembered in case the draw is used again."""
        u, v = self._variances(x)
        batch, d, n = x.shape[0], x.shape[1], self.action_dim
        latent_noise = th.randn(batch, d, dtype=x.dtype, device=x.device) * u.sqrt()
        action_noise = th.randn(batch, n, dtype=x.dtype, device=x.device) * v.sqrt()
        self._fresh = (per_env, x, latent_noise, action_noise)
        return latent_noise, action_noise

    def _conditioned_draw(self, per_env: bool) -> tuple[th.Tensor, th.Tensor, th.Tensor | None]:
        """Matrices for a draw whose noise at x was already given (``_fresh_noise``): a draw conditioned on
        P_xᵀx = y_x and P_aᵀx + ε = y_a, by Matheron's rule. Column k of P, of covariance D_k = diag(σ²_:k), given
        y_k = xᵀP_:k (+ ε_k) is P'_:k + D_k x (y_k − y'_k) / (xᵀD_k x (+ std_reg²)) for an unconditioned draw P'
        (and ε') with y'_k its own value at x; ε likewise moves by std_reg² (y_k − y'_k) / (...)."""
        assert self._fresh is not None and self._weights_std is not None
        _, x, y_x, y_a = self._fresh
        drawn = self._draw(self._weights_batch_size) if per_env else self._draw()
        P_x, P_a = drawn[0].to(x), drawn[1].to(x)
        eps = None if drawn[2] is None else drawn[2].to(x)
        u, v = self._variances(x)  # xᵀ D_k x for every column k (+ std_reg² for the action noise)
        if not per_env:  # one shared draw, given for one row
            x, y_x, y_a, u, v = x[0], y_x[0], y_a[0], u[0], v[0]
        var_x, var_a = self._split_std(self._weights_std.to(x).square())  # (d, d | 1), (d, n | 1)
        column = x.unsqueeze(-1)  # x as a column, (..., d, 1)
        gain_x, gain_a = var_x * column, var_a * column  # D_k x for every column k
        # A zero variance (x = 0, no std_reg) means the value is certain and y = y' exactly: no correction.
        tiny = th.finfo(x.dtype).tiny
        shift_x = (y_x - (column * P_x).sum(-2)) / u.clamp_min(tiny)
        shift_a = (y_a - (column * P_a).sum(-2) - (0.0 if eps is None else eps)) / v.clamp_min(tiny)
        P_x = P_x + gain_x * shift_x.unsqueeze(-2)
        P_a = P_a + gain_a * shift_a.unsqueeze(-2)
        if eps is not None:
            eps = eps + self.std_reg**2 * shift_a
        return P_x, P_a, eps

    def _matrices(self, per_env: bool, like: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor | None]:
        """The current draw (shared or per env), on ``like``'s device and dtype (the policy may have moved)."""
        mats = self._env_mats if per_env else self._shared_mats
        if mats is not None and mats[0].dtype == like.dtype and mats[0].device == like.device:
            return mats
        if mats is None and self._fresh is not None and self._fresh[0] == per_env:
            mats = self._conditioned_draw(per_env)
        elif mats is None:
            mats = self._draw(self._weights_batch_size) if per_env else self._draw()
        if mats[0].dtype != like.dtype or mats[0].device != like.device:
            P_x, P_a, eps = mats
            mats = (P_x.to(like), P_a.to(like), None if eps is None else eps.to(like))
        # Keep the new (or converted) draw: converted once, not at every step.
        if per_env:
            self._env_mats = mats
        else:
            self._shared_mats = mats
        return mats

    @property
    def exploration_mat(self) -> th.Tensor:
        """The shared noise matrix [P_x | P_a], shape (d, d + n)."""
        assert self._weights_std is not None, "Call sample_weights() first"
        return th.cat(self._matrices(False, self._weights_std)[:2], dim=-1)

    @exploration_mat.setter
    def exploration_mat(self, value: th.Tensor | None) -> None:
        """Replace the shared draw by a given [P_x | P_a] (for experiments and tests; no std_reg term then).
        ``None`` forgets the draw (SB3 < 2.2 assigns it in its constructor)."""
        self._fresh = None
        if value is None:
            self._shared_mats = None
            return
        d = self.latent_sde_dim
        self._shared_mats = (value[..., :d], value[..., d:], None)

    @property
    def exploration_matrices(self) -> th.Tensor:
        """One noise matrix [P_x | P_a] per parallel environment, shape (batch_size, d, d + n)."""
        assert self._weights_std is not None, "Call sample_weights() first"
        return th.cat(self._matrices(True, self._weights_std)[:2], dim=-1)

    @exploration_matrices.setter
    def exploration_matrices(self, value: th.Tensor | None) -> None:
        """Replace the per-env draws by given [P_x | P_a] matrices (no std_reg term then); ``None`` forgets them."""
        self._fresh = None
        if value is None:
            self._env_mats = None
            return
        d = self.latent_sde_dim
        self._env_mats = (value[..., :d], value[..., d:], None)

    def proba_distribution_net(
        self, latent_dim: int, log_std_init: float = -2.0, latent_sde_dim: int | None = None
    ) -> tuple[nn.Module, nn.Parameter]:
        """Create the action layer (mean = W x + b) and the ``log_std`` parameter.

        :param latent_dim: Dimension d of the last layer of the policy network.
        :param log_std_init: Initial value of every entry of ``log_std``.
        :param latent_sde_dim: Must equal ``latent_dim``: Lattice perturbs the latent x that W multiplies.
        :return: (mean_actions_net, log_std) with log_std of shape (d, d+n) if ``full_std`` else (d, 2)
        """
        if latent_sde_dim is not None and latent_sde_dim != latent_dim:
            raise ValueError(
                f"Lattice perturbs the latent features that the action layer reads, so latent_sde_dim "
                f"({latent_sde_dim}) must equal latent_dim ({latent_dim})."
            )
        self.mean_actions_net = nn.Linear(latent_dim, self.action_dim)
        self.latent_sde_dim = latent_dim
        shape = (latent_dim, latent_dim + self.action_dim) if self.full_std else (latent_dim, 2)
        log_std = nn.Parameter(th.ones(shape) * log_std_init, requires_grad=True)
        self.sample_weights(log_std)
        return self.mean_actions_net, log_std

    def proba_distribution(
        self, mean_actions: th.Tensor, log_std: th.Tensor, latent_sde: th.Tensor
    ) -> LatticeNoiseDistribution:
        """Set the distribution for latent features x: N(mean_actions, Σ(x)).

        :param mean_actions: W x + b (clipped by SAC's ``clip_mean`` when set), shape (batch, n)
        :param log_std: the ``log_std`` parameter
        :param latent_sde: the latent features x, shape (batch, d)
        """
        # The latent is detached unless learn_features: the noise should not shape the features (as gSDE).
        self._latent_sde = latent_sde if self.learn_features else latent_sde.detach()
        # Row j of P_x, P_a is multiplied by x_j: Var[(xᵀP)_k] = Σ_j x_j² σ_jk², one product for all columns.
        var = (self._latent_sde**2) @ self._variance(log_std)
        if self.full_std:  # u = (x∘x)·σ_x² (batch, d), v = (x∘x)·σ_a² + std_reg² (batch, n)
            d = self.latent_sde_dim
            self._set_gaussian(mean_actions, var[:, :d], var[:, d:] + self.std_reg**2)
        else:  # one scalar each: u = s·1, v = t·1
            self._set_gaussian(mean_actions, var[:, :1], var[:, 1:] + self.std_reg**2)
        return self

    def get_noise(self, latent_sde: th.Tensor) -> th.Tensor:
        """The action noise α W (P_xᵀ x) + P_aᵀ x + ε for every sample, shape (batch, n).

        One draw per env when the batch matches ``sample_weights``' batch size, else the shared one.
        """
        x = latent_sde if self.learn_features else latent_sde.detach()
        W = self.weight
        one_row_each = len(x) == self._weights_batch_size  # every row has a draw of its own (or the shared one)
        if one_row_each:
            self._row_uses += 1
            per_env = len(x) > 1
            unused = (self._env_mats if per_env else self._shared_mats) is None and self._fresh is None
            if unused and self._used_once and self.fresh_draws:
                latent_noise, action_noise = self._fresh_noise(x, per_env)
                return th.addmm(action_noise, latent_noise, W.T, alpha=self.alpha)
        if len(x) == 1 or len(x) != self._weights_batch_size:
            P_x, P_a, eps = self._matrices(False, x)
            if len(x) > self.action_dim:
                # A large batch (training): compose the map first, xᵀ(α P_x Wᵀ + P_a), which costs d²n + Bdn
                # multiply-adds instead of Bd² + Bdn.
                noise = x @ th.addmm(P_a, P_x, W.T, alpha=self.alpha)
                return noise if eps is None else noise + eps
            latent_noise, action_noise = x @ P_x, x @ P_a
        else:  # one draw per env
            P_x, P_a, eps = self._matrices(True, x)
            latent_noise = th.bmm(x.unsqueeze(1), P_x).squeeze(1)
            action_noise = th.bmm(x.unsqueeze(1), P_a).squeeze(1)
        if eps is not None:
            action_noise = action_noise + eps
        return th.addmm(action_noise, latent_noise, W.T, alpha=self.alpha)

    def sample(self) -> th.Tensor:
        # a = μ + α W (P_xᵀ x) + P_aᵀ x + ε. The latent noise enters through the same W as the mean; it is added
        # after SAC's mean clip, so the sample follows exactly the N(μ, Σ) that log_prob evaluates.
        return self._squash(self.mean_actions + self.get_noise(self._latent_sde))

    def log_prob_from_params(
        self, mean_actions: th.Tensor, log_std: th.Tensor, latent_sde: th.Tensor
    ) -> tuple[th.Tensor, th.Tensor]:
        actions = self.actions_from_params(mean_actions, log_std, latent_sde)
        return actions, self.log_prob(actions, self._gaussian_actions)


class LatticeIIDNoiseDistribution(_LatticeGaussian, DiagGaussianDistribution):  # type: ignore[misc]
    """Lattice without time correlation: fresh latent and action noise at every step.

    Σ = α² W diag(σ_lat²) Wᵀ + diag(σ_act²), with σ = exp(log_std) either a free parameter (PPO) or a
    state-dependent output of the policy network (SAC, ``state_dependent_std=True``). ``log_std`` holds the
    d latent entries first, then the n action entries. This is the variant used by the MyoChallenge 2023
    winning entry with PPO.

    :param action_dim: Dimension of the action space (n).
    :param alpha: Scale α of the latent noise; α = 0 gives SB3's diagonal Gaussian.
    :param squash_output: Squash actions with tanh (SAC).
    :param epsilon: Small value for the tanh correction.
    """

    def __init__(self, action_dim: int, alpha: float = 1.0, squash_output: bool = False, epsilon: float = 1e-6):
        super().__init__(action_dim)
        self._init_gaussian(alpha)
        self.bijector = TanhBijector(epsilon) if squash_output else None
        self._scalar_variances = False

    def proba_distribution_net(  # type: ignore[override]
        self, latent_dim: int, log_std_init: float = 0.0, state_dependent_std: bool = False
    ) -> tuple[nn.Module, nn.Module | nn.Parameter]:
        """Create the action layer and ``log_std``: a parameter of shape (d + n,), or a layer giving it from
        the latent features when ``state_dependent_std``.
        """
        self.mean_actions_net = nn.Linear(latent_dim, self.action_dim)
        size = latent_dim + self.action_dim
        log_std: nn.Module | nn.Parameter
        if state_dependent_std:
            log_std = nn.Linear(latent_dim, size)
        else:
            log_std = nn.Parameter(th.ones(size) * log_std_init, requires_grad=True)
        return self.mean_actions_net, log_std

    def proba_distribution(self, mean_actions: th.Tensor, log_std: th.Tensor) -> LatticeIIDNoiseDistribution:
        """:param log_std: shape (d + n,) (shared by the batch) or (batch, d + n)"""
        var = th.exp(2.0 * log_std).reshape(-1, log_std.shape[-1])
        d = var.shape[1] - self.action_dim
        self._set_gaussian(mean_actions, var[:, :d], var[:, d:])
        return self

    def sample(self) -> th.Tensor:
        # a = μ + α W ε_x + ε_a with fresh ε_x ~ N(0, diag σ_lat²), ε_a ~ N(0, diag σ_act²).
        batch = self.mean_actions.shape[0]
        eps_latent = th.randn_like(self._var_latent.expand(batch, -1)) * self._var_latent.sqrt()
        eps_action = th.randn_like(self._var_action.expand(batch, -1)) * self._var_action.sqrt()
        gaussian_actions = self.mean_actions + self.alpha * eps_latent @ self.weight.T + eps_action
        return self._squash(gaussian_actions)

    def log_prob_from_params(self, mean_actions: th.Tensor, log_std: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        actions = self.actions_from_params(mean_actions, log_std)
        return actions, self.log_prob(actions, self._gaussian_actions)

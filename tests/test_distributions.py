"""Lattice distributions against closed forms (MultivariateNormal from the paper's formula) and Monte-Carlo."""

import math

import pytest
import torch as th
from stable_baselines3.common.distributions import StateDependentNoiseDistribution
from torch.distributions import MultivariateNormal

from lattice.distributions import LatticeIIDNoiseDistribution, LatticeNoiseDistribution, _ClippedExp

pytestmark = pytest.mark.fast

D_LATENT, N_ACT = 6, 3


def paper_std(log_std: th.Tensor, d: int, std_clip: tuple[float, float], use_expln: bool) -> th.Tensor:
    """σ as the mission states it: clip, subtract ½ log d, then exp or expln (written out independently)."""
    ls = log_std.clamp(math.log(std_clip[0]), math.log(std_clip[1])) - 0.5 * math.log(d)
    if not use_expln:
        return ls.exp()
    return th.where(ls <= 0, ls.exp(), th.log1p(ls.clamp_min(0)) + 1.0)


def paper_covariance(dist: LatticeNoiseDistribution, log_std: th.Tensor, x: th.Tensor) -> th.Tensor:
    """Σ(x) = α² W diag((x∘x)·σ_x²) Wᵀ + diag((x∘x)·σ_a² + std_reg²), one sample at a time."""
    d, n = x.shape[1], dist.action_dim
    std = paper_std(log_std, d, dist.std_clip, dist.use_expln)
    if not dist.full_std:  # one std per latent row of P_x and of P_a
        std = th.cat([std[:, :1].expand(d, d), std[:, 1:].expand(d, n)], dim=1)
    sigma_x, sigma_a = std[:, :d], std[:, d:]
    W = dist.mean_actions_net.weight
    covs = []
    for xi in x:
        latent_var = (xi**2) @ sigma_x**2
        action_var = (xi**2) @ sigma_a**2 + dist.std_reg**2
        covs.append(dist.alpha**2 * W @ th.diag(latent_var) @ W.T + th.diag(action_var))
    return th.stack(covs)


def make_dist(
    full_std: bool = True,
    use_expln: bool = False,
    alpha: float = 1.0,
    std_reg: float = 0.0,
    squash: bool = False,
    seed: int = 0,
    dtype: th.dtype = th.float64,
) -> tuple[LatticeNoiseDistribution, th.nn.Module, th.nn.Parameter]:
    th.manual_seed(seed)
    dist = LatticeNoiseDistribution(
        N_ACT, full_std=full_std, use_expln=use_expln, squash_output=squash, std_reg=std_reg, alpha=alpha,
        std_clip=(1e-3, 3.0),
    )  # fmt: skip
    net, log_std = dist.proba_distribution_net(D_LATENT, log_std_init=0.3)
    net.to(dtype)
    with th.no_grad():  # spread the entries so that the clip is active for some of them
        log_std.data = (th.randn_like(log_std) * 1.5).to(dtype)
        net.weight.normal_()
    dist.sample_weights(log_std)
    return dist, net, log_std


@pytest.mark.parametrize("full_std", [True, False])
@pytest.mark.parametrize("use_expln", [False, True])
@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("std_reg", [0.0, 0.1])
@pytest.mark.parametrize("squash", [False, True])
def test_log_prob_matches_multivariate_normal(
    full_std: bool, use_expln: bool, alpha: float, std_reg: float, squash: bool
) -> None:
    dist, net, log_std = make_dist(full_std, use_expln, alpha, std_reg, squash)
    x = th.randn(5, D_LATENT, dtype=th.float64)
    dist.proba_distribution(net(x), log_std, x)
    gaussian_actions = net(x) + th.randn(5, N_ACT, dtype=th.float64)
    reference = MultivariateNormal(net(x), covariance_matrix=paper_covariance(dist, log_std, x))
    expected = reference.log_prob(gaussian_actions)
    if squash:
        actions = th.tanh(gaussian_actions)
        expected = expected - th.log(1 - actions**2 + dist.epsilon).sum(1)
        th.testing.assert_close(dist.log_prob(actions, gaussian_actions), expected)
        assert dist.entropy() is None
    else:
        th.testing.assert_close(dist.log_prob(gaussian_actions), expected)
        th.testing.assert_close(dist.entropy(), reference.entropy())
    th.testing.assert_close(dist.covariance(), paper_covariance(dist, log_std, x))


@pytest.mark.parametrize("full_std", [True, False])
def test_monte_carlo_covariance_and_entropy(full_std: bool) -> None:
    """Actions over many independent noise draws (fixed x) have covariance Σ(x); entropy ≈ −E[log π]."""
    dist, net, log_std = make_dist(full_std=full_std, alpha=0.8, std_reg=1.0)  # std_reg: noise, not only variance
    x = th.randn(1, D_LATENT, dtype=th.float64)
    n_draws = 40_000
    with th.no_grad():
        # One noise matrix per row: every row is an independent draw of (P_x, P_a) for the same x.
        dist.sample_weights(log_std, batch_size=n_draws)
        xs = x.expand(n_draws, -1)
        dist.proba_distribution(net(xs), log_std, xs)
        actions = dist.sample()
        sigma = paper_covariance(dist, log_std, x)[0]
        empirical = th.cov(actions.T)
        # Standard error of a sample covariance entry: sqrt((Σ_ii Σ_jj + Σ_ij²) / N); allow 5 of them.
        tolerance = 5 * th.sqrt((sigma.diag()[:, None] * sigma.diag()[None, :] + sigma**2) / n_draws)
        assert (empirical - sigma).abs().le(tolerance).all(), (empirical, sigma)
        th.testing.assert_close(actions.mean(0), net(x)[0], atol=5 * sigma.diag().max().sqrt() / n_draws**0.5, rtol=0)
        entropy = dist.entropy()[0]
        neg_log_prob = -dist.log_prob(actions)
        assert abs(neg_log_prob.mean() - entropy) < 5 * neg_log_prob.std() / n_draws**0.5


def test_noise_fixed_until_reset() -> None:
    dist, net, log_std = make_dist(std_reg=0.3)
    x = th.randn(4, D_LATENT, dtype=th.float64)
    dist.proba_distribution(net(x), log_std, x)
    first, again = dist.sample(), dist.sample()
    th.testing.assert_close(first, again)  # same matrices: same (deterministic) noise for the same state
    dist.sample_weights(log_std)
    dist.proba_distribution(net(x), log_std, x)
    assert not th.allclose(first, dist.sample())


def test_noise_is_linear_in_the_latent_state() -> None:
    """Between redraws, the noise is the fixed linear map a − μ = xᵀ(α P_x Wᵀ + P_a)."""
    dist, net, _log_std = make_dist(alpha=0.7)
    x = th.randn(4, D_LATENT, dtype=th.float64)
    noise = dist.get_noise(x)
    P = dist.exploration_mat
    expected = x @ (0.7 * P[:, :D_LATENT] @ net.weight.T + P[:, D_LATENT:])
    th.testing.assert_close(noise, expected)
    th.testing.assert_close(dist.get_noise(2 * x), 2 * noise)


def test_parallel_envs_get_their_own_noise_matrices() -> None:
    dist, _net, log_std = make_dist()
    dist.sample_weights(log_std, batch_size=3)
    x = th.randn(1, D_LATENT, dtype=th.float64).expand(3, -1)
    noise = dist.get_noise(x)
    assert not th.allclose(noise[0], noise[1])  # same state, different envs


def test_alpha_zero_gives_gsde_action_noise() -> None:
    """With α = 0, Lattice's noise and covariance are gSDE's (after Lattice's clip and −½ log d)."""
    dist, net, log_std = make_dist(alpha=0.0)
    gsde = StateDependentNoiseDistribution(N_ACT, full_std=True)
    _, gsde_log_std = gsde.proba_distribution_net(D_LATENT)
    with th.no_grad():  # the same per-entry std for the action noise
        gsde_log_std.data = paper_std(log_std[:, D_LATENT:], D_LATENT, dist.std_clip, False).log()
    gsde.sample_weights(gsde_log_std)
    dist.exploration_mat = th.cat([th.randn(D_LATENT, D_LATENT, dtype=th.float64), gsde.exploration_mat], dim=1)
    x = th.randn(5, D_LATENT, dtype=th.float64)
    mean = net(x)
    dist.proba_distribution(mean, log_std, x)
    gsde.proba_distribution(mean, gsde_log_std, x)
    th.testing.assert_close(dist.sample(), gsde.sample())
    gsde_variance = gsde.distribution.variance - gsde.epsilon  # gSDE adds ε to its variance
    th.testing.assert_close(dist.covariance(), th.diag_embed(gsde_variance))


@pytest.mark.parametrize("full_std", [True, False])
@pytest.mark.parametrize("learn_features", [True, False])
def test_gradients_reach_weights_bias_log_std_and_features(full_std: bool, learn_features: bool) -> None:
    dist, net, log_std = make_dist(full_std=full_std)
    dist.learn_features = learn_features
    x = th.randn(4, D_LATENT, dtype=th.float64, requires_grad=True)
    dist.proba_distribution(net(x), log_std, x)
    actions = dist.sample()
    # As in SAC's actor loss: the log-density of the (reparametrised) sample plus a term in the action itself,
    # which is how the bias b is reached (log π(a) of a reparametrised sample does not depend on b).
    (dist.log_prob(actions).sum() + dist.entropy().sum() - (actions**2).sum()).backward()
    for name, tensor in [("W", net.weight), ("b", net.bias), ("log_std", log_std), ("x", x)]:
        assert tensor.grad is not None and th.isfinite(tensor.grad).all(), name
        assert tensor.grad.abs().sum() > 0, name


def test_log_std_gradient_through_the_likelihood_matches_dense_autograd() -> None:
    """W and log_std get the same gradient as autograd through MultivariateNormal (rank-deficient n > d too)."""
    for d, full_std in [(6, True), (2, True), (2, False)]:
        th.manual_seed(1)
        dist = LatticeNoiseDistribution(N_ACT, full_std=full_std, std_reg=0.0, alpha=0.9, std_clip=(1e-3, 3.0))
        net, log_std = dist.proba_distribution_net(d, log_std_init=-0.2)
        net.double()
        log_std.data = log_std.data.double() + 0.3 * th.randn_like(log_std, dtype=th.float64)
        log_std.data[0, :2] = th.tensor([-8.0, 2.0])  # beyond both ends of the clip: no gradient there
        x = th.randn(5, d, dtype=th.float64)
        actions = net(x).detach() + 0.3 * th.randn(5, N_ACT, dtype=th.float64)
        dist.proba_distribution(net(x), log_std, x)
        ours = th.autograd.grad(dist.log_prob(actions).sum(), [net.weight, log_std])
        dense = MultivariateNormal(net(x), covariance_matrix=paper_covariance(dist, log_std, x))
        ref = th.autograd.grad(dense.log_prob(actions).sum(), [net.weight, log_std])
        for a, b in zip(ours, ref, strict=True):
            th.testing.assert_close(a, b)


@pytest.mark.parametrize("k", [1.0, 2.0])
def test_clipped_exponential_matches_the_chain_of_torch_ops(k: float) -> None:
    """σ = exp(clamp(l) − c) and σ² in one autograd node: values and gradients as clamp, shift, scale and exp,
    inside the clip, outside it and on its bounds (where torch's clamp passes the gradient)."""
    l_min, l_max, shift = math.log(1e-3), math.log(2.0), 0.5 * math.log(64)
    values = [l_min - 1.0, l_min, -1.0, 0.0, l_max, l_max + 0.5]
    log_std = th.tensor(values, dtype=th.float64, requires_grad=True)
    grad = th.linspace(0.5, 2.0, len(values), dtype=th.float64)
    ours = _ClippedExp.apply(log_std, l_min, l_max, shift, k)
    ref = th.exp(k * (log_std.clamp(l_min, l_max) - shift))
    th.testing.assert_close(ours, ref)
    th.testing.assert_close(th.autograd.grad(ours, log_std, grad)[0], th.autograd.grad(ref, log_std, grad)[0])


def test_float32_matches_float64() -> None:
    dist64, net, log_std = make_dist()
    x = th.randn(8, D_LATENT, dtype=th.float64)
    actions = net(x).detach() + 0.1 * th.randn(8, N_ACT, dtype=th.float64)
    expected = dist64.proba_distribution(net(x), log_std, x).log_prob(actions)
    net32 = net.float()
    got = dist64.proba_distribution(net32(x.float()), log_std.float(), x.float()).log_prob(actions.float())
    th.testing.assert_close(got.double(), expected, rtol=1e-4, atol=1e-4)


def test_zero_latent_state_stays_finite() -> None:
    """x = 0 with std_reg = 0 makes Σ = 0; log_prob and its gradients stay finite (diagonal jitter)."""
    for full_std in (True, False):
        dist, net, log_std = make_dist(full_std=full_std)
        x = th.zeros(2, D_LATENT, dtype=th.float64)
        dist.proba_distribution(net(x), log_std, x)
        log_prob = dist.log_prob(dist.sample())
        log_prob.sum().backward()
        assert th.isfinite(log_prob).all() and th.isfinite(net.weight.grad).all()


def test_nan_parameters_raise_instead_of_propagating() -> None:
    dist, net, log_std = make_dist()
    x = th.randn(2, D_LATENT, dtype=th.float64)
    with th.no_grad():
        log_std[0, 0] = float("nan")
    dist.proba_distribution(net(x), log_std, x)
    with pytest.raises(ValueError, match="NaN"):
        dist.log_prob(net(x))


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="std_clip"):
        LatticeNoiseDistribution(2, std_clip=(1.0, 0.1))
    with pytest.raises(ValueError, match="alpha"):
        LatticeNoiseDistribution(2, alpha=-1.0)
    with pytest.raises(ValueError, match="latent_sde_dim"):
        LatticeNoiseDistribution(2).proba_distribution_net(8, latent_sde_dim=4)


def test_shapes_of_log_std_and_get_std() -> None:
    for full_std, shape in [(True, (D_LATENT, D_LATENT + N_ACT)), (False, (D_LATENT, 2))]:
        dist = LatticeNoiseDistribution(N_ACT, full_std=full_std)
        _, log_std = dist.proba_distribution_net(D_LATENT)
        assert log_std.shape == shape
        assert dist.get_std(log_std).shape == (D_LATENT, D_LATENT + N_ACT)


class TestIID:
    """The non-state-dependent variant: fresh noise every step, Σ = α² W diag(σ_lat²) Wᵀ + diag(σ_act²)."""

    @staticmethod
    def make(alpha: float = 1.0, squash: bool = False, state_dependent: bool = False):
        th.manual_seed(0)
        dist = LatticeIIDNoiseDistribution(N_ACT, alpha=alpha, squash_output=squash)
        net, log_std = dist.proba_distribution_net(D_LATENT, log_std_init=-0.5, state_dependent_std=state_dependent)
        return dist, net.double(), log_std.double() if state_dependent else log_std

    @staticmethod
    def covariance(net, log_std_values: th.Tensor, alpha: float) -> th.Tensor:
        var = (2 * log_std_values).exp()
        W = net.weight
        return alpha**2 * W @ th.diag(var[:D_LATENT]) @ W.T + th.diag(var[D_LATENT:])

    @pytest.mark.parametrize("alpha", [0.0, 1.0])
    @pytest.mark.parametrize("squash", [False, True])
    def test_log_prob_matches_multivariate_normal_free_std(self, alpha: float, squash: bool) -> None:
        dist, net, log_std = self.make(alpha, squash)
        log_std.data = (log_std.data + 0.3 * th.randn_like(log_std)).double()
        x = th.randn(4, D_LATENT, dtype=th.float64)
        dist.proba_distribution(net(x), log_std)
        gaussian = net(x) + th.randn(4, N_ACT, dtype=th.float64)
        expected = MultivariateNormal(net(x), self.covariance(net, log_std, alpha)).log_prob(gaussian)
        if squash:
            expected = expected - th.log(1 - th.tanh(gaussian) ** 2 + dist.bijector.epsilon).sum(1)
            th.testing.assert_close(dist.log_prob(th.tanh(gaussian), gaussian), expected)
        else:
            th.testing.assert_close(dist.log_prob(gaussian), expected)
            th.testing.assert_close(
                dist.entropy(), MultivariateNormal(net(x), self.covariance(net, log_std, alpha)).entropy()
            )

    def test_state_dependent_std_per_sample(self) -> None:
        dist, net, log_std_net = self.make(squash=True, state_dependent=True)
        x = th.randn(3, D_LATENT, dtype=th.float64)
        log_std = log_std_net(x)
        actions, log_prob = dist.log_prob_from_params(net(x), log_std)
        gaussian = dist._gaussian_actions
        for i in range(3):
            ref = MultivariateNormal(net(x)[i], self.covariance(net, log_std[i], 1.0)).log_prob(gaussian[i])
            ref = ref - th.log(1 - actions[i] ** 2 + dist.bijector.epsilon).sum()
            th.testing.assert_close(log_prob[i], ref)
        assert (actions.abs() < 1).all()

    def test_monte_carlo_covariance_and_fresh_noise(self) -> None:
        dist, net, log_std = self.make(alpha=0.6)
        log_std.data = log_std.data.double()
        x = th.randn(1, D_LATENT, dtype=th.float64).expand(40_000, -1)
        with th.no_grad():
            dist.proba_distribution(net(x), log_std)
            actions = dist.sample()
            assert not th.allclose(actions[0], dist.sample()[0])  # fresh every call
            sigma = self.covariance(net, log_std, 0.6)
            tolerance = 5 * th.sqrt((sigma.diag()[:, None] * sigma.diag()[None, :] + sigma**2) / len(x))
            assert (th.cov(actions.T) - sigma).abs().le(tolerance).all()


def test_eigendecomposition_cache_follows_in_place_writes() -> None:
    """full_std=False caches the eigendecomposition of WWᵀ; writes through .data (no version bump) must not
    leave it stale."""
    dist, net, log_std = make_dist(full_std=False)
    x = th.randn(4, D_LATENT, dtype=th.float64)
    actions = th.randn(4, N_ACT, dtype=th.float64)
    dist.proba_distribution(net(x), log_std, x).log_prob(actions)
    net.weight.data.mul_(3.0)
    got = dist.proba_distribution(net(x), log_std, x).log_prob(actions)
    expected = MultivariateNormal(net(x), paper_covariance(dist, log_std, x)).log_prob(actions)
    th.testing.assert_close(got, expected)


def test_noise_follows_the_policy_to_another_dtype() -> None:
    """Matrices drawn in float32 are used in float64 after the policy is converted (no reset in between)."""
    th.manual_seed(0)
    dist = LatticeNoiseDistribution(N_ACT, std_reg=0.1)
    net, log_std = dist.proba_distribution_net(D_LATENT)
    dist.sample_weights(log_std)
    net.double()
    log_std.data = log_std.data.double()
    x = th.randn(3, D_LATENT, dtype=th.float64)
    actions = dist.proba_distribution(net(x), log_std, x).sample()
    assert actions.dtype == th.float64 and th.isfinite(actions).all()


# -- a draw used once: its noise from the marginal (d + n normals), the matrices only if it is used again ---------


def cross_covariance(dist: LatticeNoiseDistribution, log_std: th.Tensor, x1: th.Tensor, x2: th.Tensor) -> th.Tensor:
    """Cov[noise(x1), noise(x2)] under one draw of (P_x, P_a, ε): α² W diag((x1∘x2)·σ_x²) Wᵀ + diag((x1∘x2)·σ_a² +
    std_reg²), from the paper's σ (Σ(x) when x1 = x2)."""
    d, n = x1.shape[-1], dist.action_dim
    std = paper_std(log_std, d, dist.std_clip, dist.use_expln)
    if not dist.full_std:
        std = th.cat([std[:, :1].expand(d, d), std[:, 1:].expand(d, n)], dim=1)
    W = dist.mean_actions_net.weight
    latent = (x1 * x2) @ std[:, :d] ** 2
    action = (x1 * x2) @ std[:, d:] ** 2 + dist.std_reg**2
    return dist.alpha**2 * W @ th.diag(latent) @ W.T + th.diag(action)


def assert_covariance(samples_1: th.Tensor, samples_2: th.Tensor, expected: th.Tensor, var_1, var_2) -> None:
    """The sample cross-covariance of two (N, n) sets is ``expected``, within 5 standard errors of each entry,
    sqrt((Var₁ᵢ Var₂ⱼ + expectedᵢⱼ²) / N)."""
    n_draws = len(samples_1)
    centred_1, centred_2 = samples_1 - samples_1.mean(0), samples_2 - samples_2.mean(0)
    empirical = centred_1.T @ centred_2 / (n_draws - 1)
    tolerance = 5 * th.sqrt((var_1[:, None] * var_2[None, :] + expected**2) / n_draws)
    assert (empirical - expected).abs().le(tolerance).all(), (empirical, expected)


def next_draw_used_once(dist: LatticeNoiseDistribution, log_std: th.Tensor, x: th.Tensor) -> None:
    """Use one draw for one step, then redraw: the distribution now expects each draw to serve one step (as SB3's
    ``sde_sample_freq=1`` does)."""
    dist.sample_weights(log_std, batch_size=len(x))
    dist.get_noise(x)
    dist.sample_weights(log_std, batch_size=len(x))


@pytest.mark.parametrize("full_std", [True, False])
def test_a_draw_used_once_comes_from_its_marginal_with_the_covariance_and_likelihood_of_the_matrices(
    full_std: bool,
) -> None:
    """40,000 envs in one state, each with its own draw used once: no matrix is drawn, the actions have covariance
    Σ(x) and mean μ, and their mean −log π is the entropy (the samples follow the N(μ, Σ) that log_prob evaluates)."""
    dist, net, log_std = make_dist(full_std=full_std, alpha=0.8, std_reg=0.7)
    n_draws = 40_000
    xs = th.randn(1, D_LATENT, dtype=th.float64).expand(n_draws, -1)
    with th.no_grad():
        next_draw_used_once(dist, log_std, xs)
        dist.proba_distribution(net(xs), log_std, xs)
        actions = dist.sample()
        assert dist._env_mats is None and dist._fresh is not None  # the marginal path, not the matrices
        sigma = paper_covariance(dist, log_std, xs[:1])[0]
        assert_covariance(actions, actions, sigma, sigma.diag(), sigma.diag())
        th.testing.assert_close(
            actions.mean(0), net(xs[:1])[0], atol=5 * sigma.diag().max().sqrt() / n_draws**0.5, rtol=0
        )
        neg_log_prob = -dist.log_prob(actions)
        assert abs(neg_log_prob.mean() - dist.entropy()[0]) < 5 * neg_log_prob.std() / n_draws**0.5


@pytest.mark.parametrize("full_std", [True, False])
def test_a_fresh_draw_used_again_has_the_joint_law_of_one_pair_of_matrices(full_std: bool) -> None:
    """The matrices drawn when a fresh draw is used a second time (at another state) are conditioned on its first
    noise: over 40,000 envs, (noise(x₁), noise(x₂)) has the covariances of one draw of P (closed form)."""
    dist, _net, log_std = make_dist(full_std=full_std, alpha=0.8, std_reg=0.7)
    n_draws = 40_000
    x1 = th.randn(1, D_LATENT, dtype=th.float64)
    x2 = 0.5 * x1 + th.randn(1, D_LATENT, dtype=th.float64)  # correlated with x1, as successive states are
    with th.no_grad():
        next_draw_used_once(dist, log_std, x1.expand(n_draws, -1))
        first = dist.get_noise(x1.expand(n_draws, -1))
        second = dist.get_noise(x2.expand(n_draws, -1))
        assert dist._env_mats is not None  # materialised for the second step
    var_1, var_2 = (cross_covariance(dist, log_std, x, x).diag() for x in (x1[0], x2[0]))
    assert_covariance(first, second, cross_covariance(dist, log_std, x1[0], x2[0]), var_1, var_2)
    assert_covariance(second, second, cross_covariance(dist, log_std, x2[0], x2[0]), var_2, var_2)


@pytest.mark.parametrize("n_envs", [1, 3])
@pytest.mark.parametrize("std_reg", [0.0, 0.4])
def test_the_matrices_of_a_fresh_draw_give_back_its_first_noise(n_envs: int, std_reg: float) -> None:
    """Conditioned matrices reproduce the noise already given at the first state exactly (to rounding), and are a
    linear map: the draw acts as one draw of (P_x, P_a, ε) from then on. One env uses the shared draw."""
    dist, _net, log_std = make_dist(std_reg=std_reg)
    x1, x2 = th.randn(2, n_envs, D_LATENT, dtype=th.float64)
    next_draw_used_once(dist, log_std, x1)
    first = dist.get_noise(x1)
    assert dist._shared_mats is None and dist._env_mats is None
    second = dist.get_noise(x2)
    th.testing.assert_close(dist.get_noise(x1), first)
    th.testing.assert_close(dist.get_noise(x1 + x2) + dist.get_noise(0 * x1), first + second)  # affine in x
    assert dist._fresh is not None and (dist._env_mats if n_envs > 1 else dist._shared_mats) is not None


def test_the_marginal_path_is_taken_only_for_draws_used_once_and_is_off_without_fresh_draws() -> None:
    """T = 4: every draw is matrices, the random stream exactly as the plain path's (fresh_draws = False). T = 1:
    after the first draw, no matrix is drawn. A draw never used (SB3 redraws twice at a rollout's start) changes
    nothing."""

    def noises(period: int, fresh: bool, steps: int = 12) -> tuple[th.Tensor, list[bool]]:
        dist, _net, log_std = make_dist(std_reg=0.2, seed=3)
        dist.fresh_draws = fresh
        out, marginal = [], []
        for step in range(steps):
            if step % period == 0:
                dist.sample_weights(log_std, batch_size=2)
                if step == 8:  # a redraw never used
                    dist.sample_weights(log_std, batch_size=2)
            out.append(dist.get_noise(th.full((2, D_LATENT), 0.1 * step + 0.1, dtype=th.float64)))
            marginal.append(dist._env_mats is None)
        return th.stack(out), marginal

    plain, plain_marginal = noises(4, fresh=False)
    fresh, fresh_marginal = noises(4, fresh=True)
    assert th.equal(plain, fresh) and not any(plain_marginal + fresh_marginal)
    _, marginal = noises(1, fresh=True)
    assert marginal == [False] + [True] * 11
    _, marginal = noises(1, fresh=False)
    assert not any(marginal)

"""The exact likelihood terms against dense linear algebra, in float64 (values and gradients)."""

import re

import pytest
import torch as th

from lattice import linalg
from lattice.linalg import lowrank_covariance, lowrank_terms, safe_cholesky, scalar_lowrank_terms

pytestmark = pytest.mark.fast


def dense_terms(r: th.Tensor, sigma: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    """log det Σ and rᵀΣ⁻¹r by torch's own (autograd-differentiable) Cholesky."""
    L = th.linalg.cholesky(sigma)
    logdet = 2.0 * L.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    quad = (r * th.cholesky_solve(r.unsqueeze(-1), L).squeeze(-1)).sum(-1)
    return logdet.expand(r.shape[0]), quad


def weighted_sum_and_grads(fn, inputs, g_logdet, g_quad):
    logdet, quad = fn(*inputs)
    total = (logdet * g_logdet + quad * g_quad).sum()
    grads = th.autograd.grad(total, inputs)
    return logdet.detach(), quad.detach(), grads


@pytest.mark.parametrize("n,d", [(3, 5), (6, 4), (1, 3)])  # n > d: W Wᵀ is rank-deficient
@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("alpha", [0.0, 0.7, 1.0])
@pytest.mark.parametrize(
    "mode", ["triangle", "triangle-chunked", "triangle-blocks", "triangle-lapack", "dense-chunked"]
)
def test_lowrank_terms_match_dense(
    n: int, d: int, shared: bool, alpha: float, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every assembly the implementation picks by size: the lower-triangle products (small n) and the dense
    products (large n), with the batch in one piece or in chunks of a few samples; the triangles factorised by the
    batched CPU kernel (in one call, or in calls of 4 samples) or, as on a GPU, by torch's batched Cholesky."""
    if mode.endswith("chunked"):
        monkeypatch.setattr(linalg, "CHUNK_ENTRIES", 2 * n * n)
    if mode.endswith("blocks"):
        monkeypatch.setattr(linalg, "BLOCK", 4)  # batch 6: calls of 4 and 2 samples
    if mode.endswith("lapack"):
        monkeypatch.setattr(linalg, "_use_kernel", lambda sigma_t: False)
    if mode.startswith("dense"):
        monkeypatch.setattr(linalg, "DENSE_FROM_N", 1)
    gen = th.Generator().manual_seed(n * 10 + d)
    batch = 6
    n_var = 1 if shared else batch
    r = th.randn(batch, n, generator=gen, dtype=th.float64).requires_grad_()
    W = th.randn(n, d, generator=gen, dtype=th.float64).requires_grad_()
    u = th.rand(n_var, d, generator=gen, dtype=th.float64).requires_grad_()
    v = (0.1 + th.rand(n_var, n, generator=gen, dtype=th.float64)).requires_grad_()
    g_logdet, g_quad = (
        th.randn(batch, generator=gen, dtype=th.float64),
        th.randn(batch, generator=gen, dtype=th.float64),
    )

    def dense(r, W, u, v):
        return dense_terms(r, lowrank_covariance(W, u.expand(batch, -1), v.expand(batch, -1), alpha))

    ours = weighted_sum_and_grads(lambda *a: lowrank_terms(*a, alpha=alpha), (r, W, u, v), g_logdet, g_quad)
    ref = weighted_sum_and_grads(dense, (r, W, u, v), g_logdet, g_quad)
    th.testing.assert_close(ours[0], ref[0])
    th.testing.assert_close(ours[1], ref[1])
    for name, a, b in zip("rWuv", ours[2], ref[2], strict=True):
        th.testing.assert_close(a, b, msg=lambda m, name=name: f"gradient of {name}: {m}")


@pytest.mark.parametrize("n,d", [(3, 5), (7, 4)])  # n > d: zero eigenvalues, repeated
@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_scalar_lowrank_terms_match_cholesky_form(n: int, d: int, shared: bool, alpha: float) -> None:
    """The eigenbasis path (full_std=False) against the Cholesky form of Σ = α² s WWᵀ + t I."""
    gen = th.Generator().manual_seed(n + 100 * d)
    batch = 5
    n_var = 1 if shared else batch
    r = th.randn(batch, n, generator=gen, dtype=th.float64).requires_grad_()
    W = th.randn(n, d, generator=gen, dtype=th.float64).requires_grad_()
    s = th.rand(n_var, 1, generator=gen, dtype=th.float64).requires_grad_()
    t = (0.05 + th.rand(n_var, 1, generator=gen, dtype=th.float64)).requires_grad_()
    g_logdet, g_quad = (
        th.randn(batch, generator=gen, dtype=th.float64),
        th.randn(batch, generator=gen, dtype=th.float64),
    )

    def dense(r, W, s, t):
        sigma = alpha**2 * s.expand(batch, 1)[:, :, None] * (W @ W.T) + t.expand(batch, 1)[:, :, None] * th.eye(n)
        return dense_terms(r, sigma)

    ours = weighted_sum_and_grads(lambda *a: scalar_lowrank_terms(*a, alpha=alpha), (r, W, s, t), g_logdet, g_quad)
    ref = weighted_sum_and_grads(dense, (r, W, s, t), g_logdet, g_quad)
    th.testing.assert_close(ours[0], ref[0])
    th.testing.assert_close(ours[1], ref[1])
    for name, a, b in zip(["r", "W", "s", "t"], ours[2], ref[2], strict=True):
        th.testing.assert_close(a, b, msg=lambda m, name=name: f"gradient of {name}: {m}")


def test_gradcheck_lowrank_terms() -> None:
    gen = th.Generator().manual_seed(3)
    inputs = (
        th.randn(3, 4, generator=gen, dtype=th.float64, requires_grad=True),
        th.randn(4, 3, generator=gen, dtype=th.float64, requires_grad=True),
        th.rand(3, 3, generator=gen, dtype=th.float64, requires_grad=True),
        (0.2 + th.rand(3, 4, generator=gen, dtype=th.float64)).requires_grad_(),
    )
    assert th.autograd.gradcheck(lambda r, W, u, v: lowrank_terms(r, W, u, v, 0.8), inputs)


def test_singular_covariance_gets_jitter_not_nan() -> None:
    """x = 0 and std_reg = 0 make Σ = 0: the result is finite (jittered), never NaN."""
    W = th.randn(3, 2, dtype=th.float64)
    r = th.zeros(2, 3, dtype=th.float64)
    u = th.tensor([[0.0, 0.0], [1.0, 0.5]], dtype=th.float64)  # sample 0: Σ = 0; sample 1: rank 2 < 3
    v = th.zeros(2, 3, dtype=th.float64)
    logdet, quad = lowrank_terms(r, W, u, v)
    assert th.isfinite(logdet).all() and th.isfinite(quad).all()
    logdet_s, quad_s = scalar_lowrank_terms(r, W, th.zeros(2, 1, dtype=th.float64), th.zeros(2, 1, dtype=th.float64))
    assert th.isfinite(logdet_s).all() and th.isfinite(quad_s).all()


def test_safe_cholesky_only_jitters_failing_samples() -> None:
    good = th.eye(3, dtype=th.float64) * 2.0
    bad = th.zeros(3, 3, dtype=th.float64)
    L = safe_cholesky(th.stack([good, bad]))
    th.testing.assert_close(L[0], th.linalg.cholesky(good))
    assert (L[1].diagonal() > 0).all()


def test_kernel_fallback_matches_torch_path_on_singular_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    """Samples the batched kernel reports as not positive definite get the jittered factorisation of the torch
    path, values and gradients, and the others are untouched by it."""
    gen = th.Generator().manual_seed(11)
    W = th.randn(4, 3, generator=gen, dtype=th.float64, requires_grad=True)
    u = th.rand(5, 3, generator=gen, dtype=th.float64)
    u[1] = 0.0  # Σ_1 = 0
    u[3, :2] = 0.0  # Σ_3 of rank 1
    v = (0.3 + th.rand(5, 4, generator=gen, dtype=th.float64)) * th.tensor([1.0, 0.0, 1.0, 0.0, 1.0])[:, None]
    r = th.randn(5, 4, generator=gen, dtype=th.float64)
    inputs = (r.requires_grad_(), W, u.requires_grad_(), v.requires_grad_())
    g = th.randn(5, generator=gen, dtype=th.float64)
    kernel = weighted_sum_and_grads(lowrank_terms, inputs, g, g)
    monkeypatch.setattr(linalg, "_use_kernel", lambda sigma_t: False)
    torch_path = weighted_sum_and_grads(lowrank_terms, inputs, g, g)
    assert th.isfinite(kernel[0]).all() and th.isfinite(kernel[1]).all()
    for a, b in zip((*kernel[:2], *kernel[2]), (*torch_path[:2], *torch_path[2]), strict=True):
        th.testing.assert_close(a, b)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("batch", [1, 2])  # 2: through the batched kernel, which reports the sample
def test_non_finite_covariance_raises_clear_error(bad: float, batch: int) -> None:
    W = th.randn(3, 2)
    u = th.tensor([[bad, 1.0], [1.0, 1.0]])[:batch]
    # The message says what was non-finite and how much of it, and lists the causes without picking one.
    counts = r"\((\d+) NaN and (\d+) inf of (\d+) entries\)"
    with pytest.raises(ValueError, match=rf"Non-finite values in the [a-z ]+ of the Lattice covariance {counts}") as e:
        lowrank_terms(th.zeros(batch, 3), W, u, th.ones(batch, 3))
    nan, inf, total = map(int, re.search(counts, str(e.value)).groups())
    assert 0 < nan + inf <= total
    assert "Possible causes: training that diverged" in str(e.value) and "observations" in str(e.value)
    with pytest.raises(ValueError, match="Non-finite"):
        scalar_lowrank_terms(th.zeros(1, 3), W, th.tensor([[bad]]), th.ones(1, 1))


@pytest.mark.parametrize("batched", ["first", "second"])
def test_mixed_shared_and_per_sample_variances(batched: str) -> None:
    """One of (u, v) / (s, t) shared by the batch, the other per sample: values and gradients."""
    gen = th.Generator().manual_seed(7)
    batch, n, d = 5, 3, 4
    r = th.randn(batch, n, generator=gen, dtype=th.float64).requires_grad_()
    W = th.randn(n, d, generator=gen, dtype=th.float64).requires_grad_()
    rows_first, rows_second = (batch, 1) if batched == "first" else (1, batch)
    u = th.rand(rows_first, d, generator=gen, dtype=th.float64).requires_grad_()
    v = (0.1 + th.rand(rows_second, n, generator=gen, dtype=th.float64)).requires_grad_()
    s = th.rand(rows_first, 1, generator=gen, dtype=th.float64).requires_grad_()
    t = (0.1 + th.rand(rows_second, 1, generator=gen, dtype=th.float64)).requires_grad_()
    g = th.randn(batch, generator=gen, dtype=th.float64)

    def dense_general(r, W, u, v):
        return dense_terms(r, lowrank_covariance(W, u.expand(batch, -1), v.expand(batch, -1)))

    def dense_scalar(r, W, s, t):
        sigma = s.expand(batch, 1)[:, :, None] * (W @ W.T) + t.expand(batch, 1)[:, :, None] * th.eye(n)
        return dense_terms(r, sigma)

    for ours_fn, dense_fn, inputs in [
        (lowrank_terms, dense_general, (r, W, u, v)),
        (scalar_lowrank_terms, dense_scalar, (r, W, s, t)),
    ]:
        ours = weighted_sum_and_grads(ours_fn, inputs, g, g)
        ref = weighted_sum_and_grads(dense_fn, inputs, g, g)
        for a, b in zip((*ours[:2], *ours[2]), (*ref[:2], *ref[2]), strict=True):
            th.testing.assert_close(a, b)


def test_jitter_is_the_smallest_that_works() -> None:
    """A rank-deficient Σ gets exactly JITTERS[0]·mean(diag Σ)·I, the first jitter tried."""
    # rank 2 of 4, in exact arithmetic: the third pivot is exactly 0 (a random rank-deficient Σ sometimes passes the
    # factorisation with a rounding-error pivot, and then gets no jitter)
    A = th.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0]], dtype=th.float64)
    sigma = A @ A.T
    L = safe_cholesky(sigma.unsqueeze(0))[0]
    expected = sigma + linalg.JITTERS[0] * sigma.diagonal().mean() * th.eye(4, dtype=th.float64)
    th.testing.assert_close(L @ L.T, expected)

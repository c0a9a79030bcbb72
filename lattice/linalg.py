"""Exact, fast Gaussian log-densities for the structured covariances of Lattice exploration.

Lattice's action distribution, for one latent state x, is N(μ, Σ) with

    Σ = α² · W diag(u) Wᵀ + diag(v)          (W: n×d, u ≥ 0: d latent variances, v ≥ 0: n action variances)

Everything a policy needs from N(μ, Σ) (``log_prob``, ``entropy``) is built from two numbers per sample:

    log det Σ        and        q = rᵀ Σ⁻¹ r,   r = a − μ.

This module computes both, exactly, with hand-written backward passes (``torch.autograd.Function``):

* ``lowrank_terms`` (general u, v per sample; Lattice with ``full_std=True`` and the non-state-dependent
  variant): the lower triangles of all Σ_b come from one matrix product over the samples (about batch·d·n²/2
  multiply-adds; from ``DENSE_FROM_N`` actions on, plain dense products, which avoid large gathers), Σ is
  factorised by a batched Cholesky (on a CPU by the kernel of ``lattice.spd``, vectorised across the samples;
  elsewhere by torch), and the gradient is the closed form of the Gaussian log-density,
  ∂/∂Σ [−½ log det Σ − ½ rᵀΣ⁻¹r] = ½(Σ⁻¹rrᵀΣ⁻¹ − Σ⁻¹), instead of autograd through the Cholesky factorisation
  (about 4× the factorisation's own cost on a CPU). Its rank-one part is never formed per sample. Large batches
  go through in chunks of samples.
* ``scalar_lowrank_terms`` (u = s·1, v = t·1, one scalar each per sample; Lattice with ``full_std=False``):
  Σ = α² s WWᵀ + t I. One eigendecomposition WWᵀ = Q Λ Qᵀ serves the whole batch, since then
  Σ = Q diag(α² s λ + t) Qᵀ for every sample. The backward pass is written in the eigenbasis and never
  differentiates the eigendecomposition, so it stays exact when WWᵀ is rank-deficient (n > d, repeated zero
  eigenvalues), where autograd through ``eigh`` would divide by λᵢ − λⱼ = 0.

Both functions take u/v (or s/t) either per sample (first dimension = batch) or shared by the batch
(first dimension 1), and return tensors of shape (batch,).

A covariance that is not numerically positive definite (e.g. x = 0 with ``std_reg = 0``) gets the smallest
diagonal jitter from ``JITTERS`` (relative to its mean variance) that makes it so; a non-finite covariance
raises ``ValueError``. No NaN is ever passed on silently.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import torch as th

from lattice import spd
from lattice.spd import BLOCK, factorise_packed_

# Relative diagonal jitters tried, in order, when a covariance is not numerically positive definite.
JITTERS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


def _check_finite(tensor: th.Tensor, what: str) -> None:
    """Raise ValueError if ``tensor`` has NaN or inf, saying how many of which, and the possible causes."""
    finite = th.isfinite(tensor)
    if bool(finite.all()):
        return
    nan, total = int(th.isnan(tensor).sum()), tensor.numel()
    inf = total - int(finite.sum()) - nan
    raise ValueError(
        f"Non-finite values in the {what} of the Lattice covariance ({nan} NaN and {inf} inf of {total} entries): "
        "the policy's parameters (log_std, action_net) or its latent features are NaN/inf. Possible causes: "
        "training that diverged (learning rate, PPO's n_epochs without target_kl, SAC's tau or ent_coef), a noise "
        "std that grew without bound (std_clip, use_expln), or NaN/inf in the observations (the env, or "
        "normalisation statistics)."
    )


def _jitter_scale(mean_variance: th.Tensor) -> th.Tensor:
    """Jitter unit per sample: its mean variance, or 1 for an all-zero covariance."""
    return th.where(mean_variance > 0, mean_variance, th.ones_like(mean_variance))


def safe_cholesky(sigma: th.Tensor) -> th.Tensor:
    """Lower Cholesky factor of a batch of covariance matrices, adding jitter only where needed.

    Only the lower triangle of ``sigma`` is read. Samples that fail get ``JITTERS[k] · mean(diag Σ)`` added to
    the diagonal, smallest k first.

    :param sigma: covariances, shape (..., n, n)
    :return: L with L Lᵀ = Σ (+ jitter where it was needed)
    """
    L, info = th.linalg.cholesky_ex(sigma)
    if not bool((info > 0).any()):
        return L
    _check_finite(sigma, "assembled matrix")
    scale = _jitter_scale(sigma.diagonal(dim1=-2, dim2=-1).mean(-1))
    eye = th.eye(sigma.shape[-1], dtype=sigma.dtype, device=sigma.device)
    for jitter in JITTERS:
        failed = info > 0
        if not bool(failed.any()):
            return L
        retry = sigma[failed] + (jitter * scale[failed])[..., None, None] * eye
        L_retry, info_retry = th.linalg.cholesky_ex(retry)
        L[failed], info[failed] = L_retry, info_retry
    if bool((info > 0).any()):
        raise ValueError(
            "The Lattice covariance is not positive definite even with a relative diagonal jitter of "
            f"{JITTERS[-1]}; its variances are degenerate. Set std_reg > 0 to add a variance floor."
        )
    return L


@functools.lru_cache(maxsize=32)
def _tril_layout(n: int, device: th.device) -> tuple[th.Tensor, th.Tensor, th.Tensor, th.Tensor, th.Tensor]:
    """Lower-triangle bookkeeping for n×n matrices: row and column of each of the m = n(n+1)/2 entries
    (row-major), their flat positions k·n + l, their weight (1 on the diagonal, 2 off it: an off-diagonal entry of a
    symmetric matrix stands for both (k, l) and (l, k)), and where the diagonal entries sit. Cached: read-only."""
    rows, cols = th.tril_indices(n, n, device=device)
    weights = th.where(rows == cols, 1.0, 2.0)
    diagonal = th.arange(n, device=device) * (th.arange(n, device=device) + 3) // 2  # i(i+1)/2 + i
    return rows, cols, rows * n + cols, weights, diagonal


# Samples per chunk: about this many matrix entries (n² per sample) at a time. Temporaries of that size
# (8 MB in float32) stay below glibc's mmap threshold and are reused from the heap instead of page-faulted in
# afresh on every call, which otherwise dominates at large n; small n is a single chunk.
CHUNK_ENTRIES = 1 << 21


# From this action dimension on, Σ and the gradient contractions are formed by plain dense products over each
# chunk, (W∘u_b) Wᵀ and G_b W: twice the multiply-adds of the lower-triangle form, but no gathers or scatters of
# the m × d matrix K, which cost more than the saved arithmetic for large n (measured crossover ≈ 180 on a CPU).
DENSE_FROM_N = 192


_scratch = threading.local()
# Largest workspace buffer kept (three are used: n(n+1)/2 × d each, 0.8 MB at n = 39, d = 256 in float32).
WORKSPACE_BYTES = 8 << 20


def _workspace(name: str, shape: tuple[int, ...], like: th.Tensor) -> th.Tensor:
    """A buffer kept between calls (per thread) for a temporary that does not outlive the call. Temporaries of
    about a megabyte are otherwise handed back to the system by glibc's allocator after every step and page-faulted
    in afresh at the next (measured: a few hundred faults per Lattice-SAC gradient step at n = 39, as much time as
    the kernel that factorises Σ)."""
    numel = th.Size(shape).numel()
    if numel * like.element_size() > WORKSPACE_BYTES:  # rare and large: its arithmetic dwarfs the page faults
        return like.new_empty(shape)
    buffers: dict[str, th.Tensor] = _scratch.__dict__.setdefault("buffers", {})
    buffer = buffers.get(name)
    if buffer is None or buffer.numel() < numel or buffer.dtype != like.dtype or buffer.device != like.device:
        buffer = buffers[name] = like.new_empty(numel)
    return buffer[:numel].view(shape)


def _products(W: th.Tensor, rows: th.Tensor, cols: th.Tensor) -> th.Tensor:
    """K[(k, l), j] = W[k, j]·W[l, j] over the lower triangle (m × d), in a workspace buffer."""
    K = th.index_select(W, 0, rows, out=_workspace("K", (len(rows), W.shape[1]), W))
    return K.mul_(th.index_select(W, 0, cols, out=_workspace("gather", K.shape, K)))


def _chunks(n_sigma: int, n: int, max_size: int) -> list[slice]:
    size = max(1, min(max_size, CHUNK_ENTRIES // (n * n)))
    return [slice(start, min(start + size, n_sigma)) for start in range(0, n_sigma, size)]


def _use_kernel(sigma_t: th.Tensor) -> bool:
    """Whether the packed triangles ``sigma_t`` go through the batched CPU kernel of ``lattice.spd`` (else LAPACK or
    the accelerator's solver, through torch; also on a CPU without numba, and while torch.compile traces, which
    cannot trace into numba)."""
    return (
        not th.compiler.is_compiling()
        and sigma_t.device.type == "cpu"
        and sigma_t.dtype in (th.float32, th.float64)
        and sigma_t.shape[1] > 1
        and spd.available()
    )


def _dense_terms(sigma: th.Tensor, r: th.Tensor, want_inverse: bool) -> tuple[th.Tensor, th.Tensor, th.Tensor | None]:
    """log det Σ, y = Σ⁻¹ r and (if ``want_inverse``) Σ⁻¹ from dense covariances (only their lower triangles are
    read), through torch's batched Cholesky factorisation. One Σ (first dimension 1) serves every row of r."""
    L = safe_cholesky(sigma)
    logdet = 2.0 * L.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    if not want_inverse:
        if len(L) == 1:  # a shared Σ: all residuals at once, as columns of one right-hand side
            return logdet, th.cholesky_solve(r.T.unsqueeze(0), L)[0].T, None
        return logdet, th.cholesky_solve(r.unsqueeze(-1), L).squeeze(-1), None
    # The backward pass needs Σ⁻¹: form it and multiply for y = Σ⁻¹ r, instead of a triangular solve now and the
    # inverse later. LAPACK returns Σ⁻¹ column-major; it is symmetric, so its transpose is the same matrix, contiguous.
    inverse = th.cholesky_inverse(L).mT
    y = r @ inverse[0] if len(L) == 1 else th.matmul(r.unsqueeze(1), inverse).squeeze(1)
    return logdet, y, inverse


def _packed_terms(
    K: th.Tensor,
    u: th.Tensor,
    v: th.Tensor,
    r: th.Tensor,
    want_inverse: bool,
    flat: th.Tensor,
    weights: th.Tensor,
) -> tuple[th.Tensor, th.Tensor, th.Tensor | None]:
    """``_dense_terms`` for Σ_b = K u_bᵀ + diag(v_b), whose lower triangles, packed, are the columns of K uᵀ
    (n(n+1)/2 × c). Σ⁻¹ is returned the same way, its entries times ``weights`` (off-diagonal ones doubled): the form
    in which a symmetric matrix contracts with another, ⟨A, B⟩ = Σ_{k≥l} weight_kl A_kl B_kl."""
    n = v.shape[1]

    def unpack(columns: th.Tensor, diagonals: th.Tensor) -> th.Tensor:
        # scatter the lower triangles (the upper stays zero: the Cholesky factorisation reads the lower)
        sigma = columns.new_zeros(columns.shape[1], n * n).index_copy_(1, flat, columns.T).view(-1, n, n)
        sigma.diagonal(dim1=-2, dim2=-1).add_(diagonals)
        return sigma

    sigma_t = K @ u.T
    if not _use_kernel(sigma_t):
        logdet, y, inverse = _dense_terms(unpack(sigma_t, v), r, want_inverse)
        if inverse is None:
            return logdet, y, None
        return logdet, y, inverse.reshape(-1, n * n).index_select(1, flat).T.mul_(weights[:, None])
    logdet, y_t, info = factorise_packed_(sigma_t, v.T, r.T, want_inverse)  # Σ⁻¹ now in sigma_t
    if bool(info.any()):  # not numerically positive definite, or not finite: the jittering path decides for those
        failed = (info > 0).nonzero().squeeze(1)
        sigma_f = unpack(K @ u[failed].T, v[failed])
        logdet_f, y_f, inverse_f = _dense_terms(sigma_f, r[failed], want_inverse)
        logdet[failed], y_t[:, failed] = logdet_f, y_f.T
        if inverse_f is not None:
            sigma_t[:, failed] = inverse_f.reshape(-1, n * n)[:, flat].T
    return logdet, y_t.T, sigma_t.mul_(weights[:, None]) if want_inverse else None


class _LowRankTerms(th.autograd.Function):
    """(log det Σ, rᵀΣ⁻¹r) for Σ = α² W diag(u) Wᵀ + diag(v); see ``lowrank_terms``."""

    @staticmethod
    def forward(
        ctx: Any, r: th.Tensor, W: th.Tensor, u: th.Tensor, v: th.Tensor, alpha: float, covariance_grad: bool
    ) -> tuple[th.Tensor, th.Tensor]:
        n, d = W.shape
        n_sigma = max(u.shape[0], v.shape[0])  # 1 when Σ is shared by the batch
        u_all, v_all = (alpha**2 * u).expand(n_sigma, -1), v.expand(n_sigma, -1)
        rows, cols, flat, weights, _ = _tril_layout(n, W.device)
        K = None
        if n < DENSE_FROM_N:
            # K[(k, l), j] = W[k, j]·W[l, j] over the lower triangle (m × d): the lower triangles of all
            # α² W diag(u_b) Wᵀ of a chunk of samples are then one matrix product, K (α² u)ᵀ, one sample per column.
            K = _products(W, rows, cols)
        logdet = W.new_empty(n_sigma)
        # When gradients are needed, Σ⁻¹ is kept per chunk for the backward pass: dense where Σ is, else its weighted
        # lower triangles as columns (m × samples), the form and layout the backward pass's matrix products read.
        inverses: list[th.Tensor] = []
        y = th.empty_like(r)
        # The batched CPU kernel takes at most BLOCK samples at a time (lattice.spd).
        chunks = _chunks(n_sigma, n, BLOCK if K is not None and W.device.type == "cpu" else n_sigma)
        for chunk in chunks:
            r_chunk = r if n_sigma == 1 else r[chunk]
            if K is None:  # dense: one product (chunk·n × d) @ (d × n)
                sigma = ((W * u_all[chunk].unsqueeze(1)).reshape(-1, d) @ W.T).view(-1, n, n)
                sigma.diagonal(dim1=-2, dim2=-1).add_(v_all[chunk])  # + diag(v)
                logdet[chunk], y_chunk, inverse = _dense_terms(sigma, r_chunk, covariance_grad)
            else:
                logdet[chunk], y_chunk, inverse = _packed_terms(
                    K, u_all[chunk], v_all[chunk], r_chunk, covariance_grad, flat, weights
                )
            if n_sigma == 1:
                y = y_chunk
            else:
                y[chunk] = y_chunk
            if inverse is not None:
                inverses.append(inverse)
        quad = (r * y).sum(-1)
        ctx.save_for_backward(W, u, v, y, rows, cols, *inverses)
        ctx.alpha, ctx.chunks, ctx.triangle = alpha, chunks, K is not None
        return logdet.expand(r.shape[0]).clone(), quad

    @staticmethod
    def backward(ctx: Any, g_logdet: th.Tensor, g_quad: th.Tensor) -> tuple[th.Tensor | None, ...]:
        W, u, v, y, rows, cols, *inverses = ctx.saved_tensors
        K = _products(W, rows, cols) if ctx.triangle else None  # recomputed: cheaper than keeping it
        alpha = ctx.alpha
        n_sigma, (n, d) = max(u.shape[0], v.shape[0]), W.shape
        grad_r = (2.0 * g_quad[:, None]) * y if ctx.needs_input_grad[0] else None
        if not inverses:  # only r needs a gradient
            return grad_r, None, None, None, None, None
        # Gradient with respect to each Σ (symmetric), in closed form instead of through the Cholesky:
        #   G = ∂/∂Σ = g_logdet Σ⁻¹ − g_quad y yᵀ   (∂ log det Σ/∂Σ = Σ⁻¹, ∂ rᵀΣ⁻¹r/∂Σ = −Σ⁻¹rrᵀΣ⁻¹ = −y yᵀ).
        # Σ_b = α² W diag(u_b) Wᵀ + diag(v_b), so
        #   ∂/∂u_b[j] = α² w_jᵀ G_b w_j,   ∂/∂v_b = diag(G_b),   ∂/∂W = 2α² Σ_b G_b W diag(u_b).
        y_scaled = -(y * g_quad[:, None])
        u_all = u.expand(n_sigma, -1)
        grad_u = W.new_empty(n_sigma, d)
        grad_v = W.new_empty(n_sigma, n)
        need_W = ctx.needs_input_grad[1]
        # dense: Σ_b G_b W diag(u_b), accumulated (n × d); triangle: C_j = Σ_b u_b[j] G_b by its lower triangle (m × d)
        acc = W.new_zeros(n, d) if need_W and K is None else None
        diagonal = _tril_layout(n, W.device)[4]  # where the diagonal entries sit in a lower triangle
        for chunk, inverse in zip(ctx.chunks, inverses, strict=True):
            if K is None:  # dense: G_b W for the chunk in one product, then w_jᵀ (G_b W)_j
                if n_sigma == 1:
                    G = (inverse[0] * g_logdet.sum()).addmm_(y_scaled.T, y).unsqueeze(0)
                else:
                    G = (inverse * g_logdet[chunk, None, None]).addcmul_(
                        y_scaled[chunk].unsqueeze(2), y[chunk].unsqueeze(1)
                    )
                grad_v[chunk] = G.diagonal(dim1=-2, dim2=-1)
                GW = (G.reshape(-1, n) @ W).view(-1, n, d)
                grad_u[chunk] = (GW * W).sum(1)
                if acc is not None:
                    acc += (GW * u_all[chunk].unsqueeze(1)).sum(0)
                continue
            # triangle, one sample per column: the g_logdet Σ⁻¹ part of G (its rank-one part follows the loop), with Σ⁻¹
            # weighted, so that w_jᵀ Σ⁻¹ w_j = Σ_{k≥l} weight_kl Σ⁻¹[k, l] K[(k, l), j], a matrix product
            g = (g_logdet.sum() if n_sigma == 1 else g_logdet[chunk]).reshape(-1, 1)
            grad_v[chunk] = inverse.index_select(0, diagonal).T * g
            th.matmul(inverse.T, K, out=grad_u[chunk]).mul_(g)
            if need_W:
                if acc is None:  # C_j, the first chunk's share
                    acc = th.matmul(inverse, u_all[chunk] * g, out=_workspace("C", K.shape, K))
                else:
                    acc.addmm_(inverse, u_all[chunk] * g)
        rank1_W = None
        if K is not None:
            # The rank-one part −g_quad y yᵀ of G, never formed: w_jᵀ(y yᵀ)w_j = (yᵀw_j)², its diagonal is y∘y, and
            # its term of Σ_b G_b W diag(u_b) is Σ_b (−g_quad_b) y_b (y_bᵀW ∘ u_b), one (n × batch)(batch × d) product.
            yW = y @ W
            rank1_u, rank1_v = yW.square().mul_(-g_quad[:, None]), y.square().mul_(-g_quad[:, None])
            if n_sigma == 1:  # Σ shared by the batch: sum over the samples
                rank1_u, rank1_v = rank1_u.sum(0, keepdim=True), rank1_v.sum(0, keepdim=True)
            grad_u.add_(rank1_u)
            grad_v.add_(rank1_v)
            if need_W:
                rank1_W = y_scaled.T @ yW.mul_(u.expand(len(y), -1))
        grad_u.mul_(alpha**2)
        if u.shape[0] == 1 and n_sigma > 1:
            grad_u = grad_u.sum(0, keepdim=True)
        if v.shape[0] == 1 and n_sigma > 1:
            grad_v = grad_v.sum(0, keepdim=True)
        grad_W = None
        if acc is not None and K is None:
            grad_W = acc.mul_(2.0 * alpha**2)
        elif acc is not None:
            # Column j of ∂/∂W is 2α² C_j w_j. Entry (k, l) of C_j adds C_j[k,l]·W[l,j] to row k and C_j[k,l]·W[k,j]
            # to row l (the diagonal, weighted 1, gets both): hence α², not 2α².
            rows_of_W = th.index_select(W, 0, cols, out=_workspace("gather", acc.shape, acc)).mul_(acc)
            grad_W = th.zeros_like(W).index_add_(0, rows, rows_of_W)
            grad_W.index_add_(0, cols, th.index_select(W, 0, rows, out=rows_of_W).mul_(acc))  # same buffer, reused
            assert rank1_W is not None
            grad_W.add_(rank1_W, alpha=2.0).mul_(alpha**2)
        return (
            grad_r,
            grad_W,
            grad_u if ctx.needs_input_grad[2] else None,
            grad_v if ctx.needs_input_grad[3] else None,
            None,
            None,
        )


def lowrank_terms(
    r: th.Tensor, W: th.Tensor, u: th.Tensor, v: th.Tensor, alpha: float = 1.0
) -> tuple[th.Tensor, th.Tensor]:
    """log det Σ and rᵀ Σ⁻¹ r for Σ = α² · W diag(u) Wᵀ + diag(v), exactly, with a closed-form backward.

    :param r: residuals a − μ, shape (batch, n)
    :param W: the action layer's weight, shape (n, d)
    :param u: latent variances, shape (batch, d) or (1, d) when shared by the batch
    :param v: action variances, shape (batch, n) or (1, n) when shared by the batch
    :param alpha: the latent noise scale α
    :return: (log det Σ, rᵀΣ⁻¹r), each of shape (batch,)
    """
    if r.ndim != 2 or W.ndim != 2 or u.ndim != 2 or v.ndim != 2:
        raise ValueError("lowrank_terms expects 2-d r (batch, n), W (n, d), u (batch|1, d), v (batch|1, n)")
    # Σ⁻¹ is formed (in the forward pass) only when a gradient will flow into Σ: not under th.no_grad(), e.g.
    # for SAC's target actions.
    covariance_grad = th.is_grad_enabled() and (W.requires_grad or u.requires_grad or v.requires_grad)
    return _LowRankTerms.apply(r, W, u, v, float(alpha), covariance_grad)


def lowrank_covariance(W: th.Tensor, u: th.Tensor, v: th.Tensor, alpha: float = 1.0) -> th.Tensor:
    """The full covariance Σ = α² · W diag(u) Wᵀ + diag(v), shape (batch, n, n) (for inspection and tests)."""
    return alpha**2 * (W * u[:, None, :]) @ W.T + th.diag_embed(v)


def gram_eigh(W: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    """Eigendecomposition W Wᵀ = Q diag(λ) Qᵀ, without gradient, eigenvalues clamped at 0 (WWᵀ is PSD)."""
    with th.no_grad():
        lam, Q = th.linalg.eigh(W @ W.T)
    return lam.clamp_min(0.0), Q


def _scalar_lowrank_forward(
    r: th.Tensor, s: th.Tensor, t: th.Tensor, alpha: float, lam: th.Tensor, Q: th.Tensor
) -> tuple[th.Tensor, th.Tensor, th.Tensor, th.Tensor]:
    """log det Σ, rᵀΣ⁻¹r, and the eigenbasis quantities D, y that the backward pass reuses."""
    # In the eigenbasis of WWᵀ every Σ_b is diagonal: D_b = α² s_b λ + t_b.
    D = alpha**2 * s * lam + t  # (n_sigma, n)
    logdet = D.log().sum(-1)  # finite exactly when every D is positive and finite: one cheap check
    if th.compiler.is_compiling():
        # Traced by torch.compile, where reading a value is a graph break: D = 0 is jittered without a branch (the same
        # D elsewhere), and NaN/inf pass on instead of raising.
        scale = _jitter_scale(D.mean(-1, keepdim=True))
        D = th.where((D > 0).all(-1, keepdim=True), D, D + JITTERS[0] * scale)
        logdet = D.log().sum(-1)
    elif not bool(th.isfinite(logdet).all()):
        _check_finite(D, "eigenvalues")
        # D = 0: only possible with t = 0 (x = 0 and std_reg = 0) on a rank-deficient WWᵀ; jitter as Cholesky does.
        scale = _jitter_scale(D.mean(-1, keepdim=True))
        D = th.where((D > 0).all(-1, keepdim=True), D, D + JITTERS[0] * scale)
        logdet = D.log().sum(-1)
    z = r @ Q  # Qᵀ r for every sample
    y = z / D  # Qᵀ Σ⁻¹ r
    return logdet.expand(r.shape[0]).clone(), (z * y).sum(-1), D, y


class _ScalarLowRankTerms(th.autograd.Function):
    """(log det Σ, rᵀΣ⁻¹r) for Σ = α² s W Wᵀ + t I; see ``scalar_lowrank_terms``."""

    @staticmethod
    def forward(
        ctx: Any,
        r: th.Tensor,
        W: th.Tensor,
        s: th.Tensor,
        t: th.Tensor,
        alpha: float,
        lam: th.Tensor,
        Q: th.Tensor,
    ) -> tuple[th.Tensor, th.Tensor]:
        logdet, quad, D, y = _scalar_lowrank_forward(r, s, t, alpha, lam, Q)
        ctx.save_for_backward(W, s, t, lam, Q, D, y)
        ctx.alpha = alpha
        return logdet, quad

    @staticmethod
    def backward(ctx: Any, g_logdet: th.Tensor, g_quad: th.Tensor) -> tuple[th.Tensor | None, ...]:
        W, s, t, lam, Q, D, y = ctx.saved_tensors
        alpha = ctx.alpha
        # Gradient with respect to Σ_b in the eigenbasis: H_b = g_logdet·diag(1/D_b) − g_quad·y_b y_bᵀ.
        inv_D = 1.0 / D
        grad_r = (2.0 * g_quad[:, None] * y) @ Q.T if ctx.needs_input_grad[0] else None
        grad_s = grad_t = grad_W = None
        if ctx.needs_input_grad[2] or ctx.needs_input_grad[3]:
            y2 = y * y
            # ∂Σ/∂t = I:      tr(H_b)   = g_logdet Σᵢ 1/Dᵢ − g_quad Σᵢ yᵢ²
            # ∂Σ/∂s = α²WWᵀ:  tr(H_b Λ) = g_logdet Σᵢ λᵢ/Dᵢ − g_quad Σᵢ λᵢ yᵢ²
            grad_t = g_logdet[:, None] * inv_D - g_quad[:, None] * y2  # per-eigenvalue terms
            grad_s = alpha**2 * (grad_t * lam).sum(-1, keepdim=True)
            grad_t = grad_t.sum(-1, keepdim=True)
            if s.shape[0] == 1 and grad_s.shape[0] > 1:  # s shared by the batch
                grad_s = grad_s.sum(0, keepdim=True)
            if t.shape[0] == 1 and grad_t.shape[0] > 1:  # t shared by the batch
                grad_t = grad_t.sum(0, keepdim=True)
        if ctx.needs_input_grad[1]:
            # ∂Σ_b/∂(WWᵀ) = α² s_b, so ∂/∂(WWᵀ) = α² Q [Σ_b s_b H_b] Qᵀ and ∂/∂W = 2 (∂/∂(WWᵀ)) W.
            s_b = s.expand(y.shape[0], 1) if s.shape[0] == 1 else s
            H = (
                th.diag_embed(((g_logdet[:, None] * s_b) * inv_D.expand_as(y)).sum(0))
                - (y * (g_quad[:, None] * s_b)).T @ y
            )
            grad_W = 2.0 * alpha**2 * (Q @ H @ Q.T) @ W
        return grad_r, grad_W, grad_s, grad_t, None, None, None


def scalar_lowrank_terms(
    r: th.Tensor,
    W: th.Tensor,
    s: th.Tensor,
    t: th.Tensor,
    alpha: float = 1.0,
    eig: tuple[th.Tensor, th.Tensor] | None = None,
) -> tuple[th.Tensor, th.Tensor]:
    """log det Σ and rᵀ Σ⁻¹ r for Σ = α² · s · W Wᵀ + t · I, exactly, with one eigendecomposition per batch.

    :param r: residuals a − μ, shape (batch, n)
    :param W: the action layer's weight, shape (n, d)
    :param s: latent variance scale, shape (batch, 1) or (1, 1)
    :param t: action variance, shape (batch, 1) or (1, 1)
    :param alpha: the latent noise scale α
    :param eig: a precomputed ``gram_eigh(W)`` for this very W (e.g. cached while W does not change)
    :return: (log det Σ, rᵀΣ⁻¹r), each of shape (batch,)
    """
    lam, Q = gram_eigh(W) if eig is None else eig
    if not (th.is_grad_enabled() and any(x.requires_grad for x in (r, W, s, t))):
        return _scalar_lowrank_forward(r, s, t, float(alpha), lam, Q)[:2]  # no graph to record (e.g. rollouts)
    return _ScalarLowRankTerms.apply(r, W, s, t, float(alpha), lam, Q)

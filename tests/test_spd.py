"""The batched CPU kernel for small SPD systems against torch.linalg (LAPACK), sample by sample."""

import pytest
import torch as th

pytest.importorskip("numba", reason="the compiled kernel needs numba (without it lattice.linalg uses torch)")

from lattice.spd import factorise_packed_

pytestmark = pytest.mark.fast


def random_spd(batch: int, n: int, dtype: th.dtype, gen: th.Generator) -> th.Tensor:
    A = th.randn(batch, n, 2 * n, generator=gen, dtype=dtype)
    return A @ A.mT / (2 * n) + 0.05 * th.eye(n, dtype=dtype)


def packed(sigma: th.Tensor) -> th.Tensor:
    """Lower triangles, row-major packed, as columns (n(n+1)/2, batch)."""
    rows, cols = th.tril_indices(sigma.shape[-1], sigma.shape[-1])
    return sigma[:, rows, cols].T.contiguous()


@pytest.mark.parametrize("dtype", [th.float32, th.float64])
@pytest.mark.parametrize("n", [1, 2, 7, 39])
@pytest.mark.parametrize("batch", [2, 33, 300])
def test_matches_lapack(dtype: th.dtype, n: int, batch: int) -> None:
    gen = th.Generator().manual_seed(n * 1000 + batch)
    S = random_spd(batch, n, dtype, gen)
    v = th.rand(batch, n, generator=gen, dtype=dtype)
    r = th.randn(batch, n, generator=gen, dtype=dtype)
    sigma = S + th.diag_embed(v)
    L = th.linalg.cholesky(sigma)
    inverse = th.cholesky_inverse(L)
    tol = {"rtol": 2e-4, "atol": 2e-5} if dtype == th.float32 else {}

    sigma_t = packed(S)
    logdet, y_t, info = factorise_packed_(sigma_t, v.T, r.T, want_inverse=True)
    assert (info == 0).all()
    th.testing.assert_close(logdet, th.logdet(sigma), **tol)
    th.testing.assert_close(y_t.T, (inverse @ r.unsqueeze(-1)).squeeze(-1), **tol)
    th.testing.assert_close(sigma_t, packed(inverse), **tol)

    sigma_t = packed(S)  # without the inverse: the Cholesky factor is left in place
    logdet_only, y_t_only, _ = factorise_packed_(sigma_t, v.T, r.T, want_inverse=False)
    th.testing.assert_close(sigma_t, packed(L), **tol)
    th.testing.assert_close(logdet_only, logdet)
    th.testing.assert_close(y_t_only, y_t)


def test_reports_samples_that_are_not_positive_definite() -> None:
    gen = th.Generator().manual_seed(0)
    n, batch = 5, 6
    S = random_spd(batch, n, th.float64, gen)
    S[1] = 0.0  # zero matrix: first pivot 0
    S[2, 3, :] = S[2, :, 3] = 0.0  # row and column 3 zero: pivot 4 is 0
    S[4, 2, 2] = float("nan")
    v = th.zeros(batch, n, dtype=th.float64)
    r = th.randn(batch, n, generator=gen, dtype=th.float64)
    sigma_t = packed(S)
    logdet, _, info = factorise_packed_(sigma_t, v.T, r.T, want_inverse=True)
    assert info.tolist() == [0, 1, 4, 0, 3, 0]
    good = info == 0
    th.testing.assert_close(logdet[good], th.logdet(S[good]))
    th.testing.assert_close(sigma_t[:, good], packed(th.linalg.inv(S[good])))


def test_rejects_what_it_cannot_work_in_place_on() -> None:
    S = random_spd(3, 2, th.float64, th.Generator().manual_seed(0))
    v, r = th.zeros(2, 3, dtype=th.float64), th.zeros(2, 3, dtype=th.float64)
    with pytest.raises(ValueError, match="contiguous"):
        factorise_packed_(packed(S).T.contiguous().T, v, r, True)
    with pytest.raises(ValueError, match="shapes"):
        factorise_packed_(packed(S), v[:1], r, True)

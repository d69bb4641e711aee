"""The test-side yardstick: the default problem, rebuilt here, and an exact solver for it.

The blur is linear in the kernel, ``A_x k = M^T k`` where the rows of ``M`` are the shifted
crops of ``x`` that each kernel entry multiplies.  So ``1/2 ||A_x k - y||^2`` is the quadratic
``1/2 k^T G k - b^T k + c`` with ``G = M M^T`` and ``b = M y``, and its minimiser over the simplex
(the *floor*: nothing fitted to this data can be expected to do better) is computed here in float64.
"""

from __future__ import annotations

import functools

import torch

import deepinv as dinv

import suite

KERNEL_SIZE = 25
SIGMA = 0.02
KERNEL_SEED = 123
NOISE_SEED = 0
FULL_SIZE = 256
FAST_SIZE = 64


def default_problem(size: int = FULL_SIZE):
    """(x, y, k_true) exactly as the gallery pages build them, on the CPU."""
    x = suite.photo("grace_hopper", size)  # the test-side photograph loader
    generator = dinv.physics.generator.MotionBlurGenerator(
        psf_size=(KERNEL_SIZE, KERNEL_SIZE), rng=torch.Generator("cpu")
    )
    k_true = generator.step(1, seed=KERNEL_SEED)["filter"]
    noise = dinv.physics.GaussianNoise(
        sigma=SIGMA, rng=torch.Generator("cpu").manual_seed(NOISE_SEED)
    )
    y = dinv.physics.Blur(filter=k_true, padding="valid", noise_model=noise)(x)
    return x, y, k_true


def shift_matrix(x: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """M (K^2 x n) in float64 with ``Blur(filter=k, padding="valid").A(x) == (M^T k).view(...)``."""
    x = x.double()[0]
    _, height, width = x.shape
    out_h, out_w = height - kernel_size + 1, width - kernel_size + 1
    crops = [
        x[:, i : i + out_h, j : j + out_w].reshape(-1)
        for i in range(kernel_size)
        for j in range(kernel_size)
    ]
    # deepinv convolves (flips the kernel): entry (i, j) multiplies the crop at (K-1-i, K-1-j)
    return torch.stack(crops).flip(0)


def quadratic(x: torch.Tensor, y: torch.Tensor, kernel_size: int = KERNEL_SIZE):
    """G and b of ``1/2 ||A_x k - y||^2 = 1/2 k^T G k - b^T k + 1/2 ||y||^2`` (float64)."""
    m = shift_matrix(x, kernel_size)
    return m @ m.T, m @ y.double().reshape(-1)


def project_simplex_1d(v: torch.Tensor) -> torch.Tensor:
    """Projection of a vector onto the simplex by bisection on the threshold (independent of
    sorting).

    Computed in float64 on ``v - max(v)``: the projection does not change when a constant is added,
    and entries more than 1 below the maximum end at 0, so the bisection works on [-1, 0] whatever
    the magnitude of ``v``.
    """
    w = v.double() - v.double().max()
    lo, hi = torch.tensor(-1.0, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64)
    for _ in range(200):
        mid = (lo + hi) / 2
        if (w - mid).clamp_min(0).sum() > 1:
            lo = mid
        else:
            hi = mid
    return (w - (lo + hi) / 2).clamp_min(0)


def _project_sorted(v: torch.Tensor) -> torch.Tensor:
    u = torch.sort(v, descending=True).values
    css = u.cumsum(0) - 1
    j = torch.arange(1, v.numel() + 1, dtype=v.dtype)
    rho = int(torch.nonzero(u - css / j > 0).max()) + 1
    return (v - css[rho - 1] / rho).clamp_min(0)


def sum_zero_lipschitz(g: torch.Tensor) -> float:
    """Largest eigenvalue of G restricted to the plane sum(d) = 0."""
    n = g.shape[0]
    p = torch.eye(n, dtype=g.dtype) - 1.0 / n
    return torch.linalg.eigvalsh(p @ g @ p)[-1].item()


def pg_residual(k, g, b, lipschitz):
    """||k - P(k - grad f(k) / L)|| / ||k||: zero exactly at the minimiser."""
    return ((k - _project_sorted(k - (g @ k - b) / lipschitz)).norm() / k.norm()).item()


def solve_simplex_qp(g: torch.Tensor, b: torch.Tensor, tol: float = 1e-9, max_iter: int = 200_000):
    """Minimise 1/2 k^T G k - b^T k over the simplex: FISTA with restart, then an active-set polish.

    Returns (k, residual) with the projected-gradient residual <= tol (or raises).
    """
    n = g.shape[0]
    lipschitz = sum_zero_lipschitz(g)
    k = torch.full((n,), 1.0 / n, dtype=torch.float64)
    z, t = k.clone(), 1.0
    for it in range(max_iter):
        k_next = _project_sorted(z - (g @ z - b) / lipschitz)
        if (k_next - k) @ (z - k_next) > 0:
            t, z = 1.0, k_next.clone()
        else:
            t_next = (1 + (1 + 4 * t * t) ** 0.5) / 2
            z = k_next + (t - 1) / t_next * (k_next - k)
            t = t_next
        k = k_next
        if it % 50 == 0 and pg_residual(k, g, b, lipschitz) <= tol:
            break
        if it % 500 == 499:
            k = _polish(k, g, b)
            z, t = k.clone(), 1.0
    k = _polish(k, g, b)
    residual = pg_residual(k, g, b, lipschitz)
    if residual > tol:
        raise RuntimeError(f"reference solver did not converge: residual {residual:.2e}")
    return k, residual


def _polish(k, g, b):
    """Solve the KKT system on the current support; keep the result only if it is better and
    feasible."""
    support = torch.nonzero(k > 0).flatten()
    s = support.numel()
    kkt = torch.zeros(s + 1, s + 1, dtype=g.dtype)
    kkt[:s, :s] = g[support][:, support]
    kkt[:s, s] = 1
    kkt[s, :s] = 1
    rhs = torch.cat([b[support], torch.ones(1, dtype=g.dtype)])
    try:
        sol = torch.linalg.solve(kkt, rhs)
    except RuntimeError:
        return k
    if (sol[:s] < 0).any():
        return k
    candidate = torch.zeros_like(k)
    candidate[support] = sol[:s]

    def f(v):
        return 0.5 * v @ g @ v - b @ v

    return candidate if f(candidate) <= f(k) else k


def floor_error(x, y, k_true, kernel_size: int = KERNEL_SIZE) -> float:
    """Relative kernel error of the exact least-squares minimiser over the simplex."""
    g, b = quadratic(x, y, kernel_size)
    k_star, _ = solve_simplex_qp(g, b)
    truth = k_true.double().reshape(-1)
    return ((k_star - truth).norm() / truth.norm()).item()


@functools.cache
def default_floor() -> float:
    """``floor_error`` of the pages' default problem at full size, computed once per session."""
    return floor_error(*default_problem())

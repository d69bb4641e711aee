r"""
The exact least-squares kernel
==============================

After this page you can compute the best kernel that least squares can give — the exact
minimiser over the simplex, in a few hundredths of a second — without autograd and without a
step size, and use it as the :term:`floor` that tells how far any other calibration method still
is from convergence.

The previous page wrote the loss as a quadratic, :math:`\frac12 k^\top G k - b^\top k` plus a
constant (:func:`~calibration_helpers.blur_quadratic`).  Calibrating is then a small quadratic
programme over the simplex :math:`\simplex`:

.. math::

    k^\star = \argmin_{k \in \simplex} \; \frac{1}{2} k^\top G k - b^\top k.

Run it in fast mode (a small image, as the test-suite does) with the environment variable
``CALIBRATION_GALLERY_FAST=1``.
"""

# %%
# The default problem
# -------------------
# Grace Hopper's portrait (shipped with matplotlib) at 256×256, a 25×25 motion-blur kernel drawn
# with seed 123, valid convolution, Gaussian noise of standard deviation 0.02 drawn with seed 0.
# Every random draw happens on the CPU; the tensors move to the device afterwards.

import os
import time

import torch
from matplotlib.colors import Normalize

import deepinv as dinv

from calibration_helpers import blur_quadratic, load_photo, print_table

FAST = os.environ.get("CALIBRATION_GALLERY_FAST") == "1"  # smoke-test mode: a small image
IMG_SIZE = 64 if FAST else 256  # side of the square test image, in pixels
KERNEL_SIZE = 25  # side of the square blur kernel, in pixels
SIGMA = 0.02  # standard deviation of the measurement noise
device = dinv.utils.get_device(verbose=False)

x = load_photo(IMG_SIZE)
generator = dinv.physics.generator.MotionBlurGenerator(
    (KERNEL_SIZE, KERNEL_SIZE), rng=torch.Generator("cpu")
)
k_true = generator.step(1, seed=123)["filter"]
noise = dinv.physics.GaussianNoise(sigma=SIGMA, rng=torch.Generator("cpu").manual_seed(0))
y = dinv.physics.Blur(filter=k_true, padding="valid", noise_model=noise)(x)
x, y, k_true = x.to(device), y.to(device), k_true.to(device)
start = time.perf_counter()
G, b = blur_quadratic(x, y, KERNEL_SIZE)
time_build = time.perf_counter() - start
print(f"G {tuple(G.shape)} and b {tuple(b.shape)} built in {time_build:.3f} s")

# %%
# Solving over the simplex: an active set
# ---------------------------------------
# The minimiser is sparse — a motion-blur kernel lights a few dozen of its 625 pixels — so we
# look for its *support* instead of iterating on all entries.  On a given support :math:`S` the
# problem with the single constraint :math:`\sum_i k_i = 1` is solved exactly by its optimality
# conditions, a linear system of size :math:`|S| + 1`:
#
# .. math::
#
#     G_{SS}\, k_S + \lambda \mathbf{1} = b_S, \qquad \mathbf{1}^\top k_S = 1.
#
# Many problems of different supports are solved at once, each system padded to the largest, by
# one batched call of :func:`torch.linalg.solve_ex` (which reports a singular system instead of
# raising).


def minimise_on_support(G, b, support):
    """For each ``i``: the minimiser of ``1/2 kᵀ G[i] k - b[i]ᵀ k`` with ``sum(k) = 1`` and
    ``k = 0`` off ``support[i]`` (no sign constraint), from its optimality conditions.

    One small linear system per problem (the supports' size, padded to the largest); ``G`` may
    be one matrix (1, n, n) shared by every problem.
    """
    B, dev, rows = b.shape[0], b.device, torch.arange(b.shape[0], device=b.device)
    G = G.expand(B, -1, -1)
    count = support.sum(1)
    s = int(count.max())
    index = torch.argsort((~support).to(torch.int8), dim=1, stable=True)[:, :s]
    valid = torch.arange(s, device=dev) < count[:, None]
    kkt = torch.zeros(B, s + 1, s + 1, dtype=b.dtype, device=dev)
    kkt[:, :s, :s] = torch.where(
        valid[:, :, None] & valid[:, None, :],
        G[rows[:, None, None], index[:, :, None], index[:, None, :]],
        torch.eye(s, dtype=b.dtype, device=dev),
    )
    kkt[:, :s, s] = kkt[:, s, :s] = valid.to(b.dtype)
    rhs = torch.cat([torch.where(valid, b.gather(1, index), 0.0), torch.ones_like(b[:, :1])], 1)
    solution, info = torch.linalg.solve_ex(kkt, rhs)
    if (info != 0).any():  # G singular on a support: a tiny ridge picks one of its minimisers
        ridge = torch.eye(s + 1, dtype=b.dtype, device=dev) * 1e-13 * kkt.abs().amax((1, 2), True)
        ridge[:, s, s] = 0.0
        solution = torch.linalg.solve(kkt + ridge, rhs)
    return torch.zeros_like(b).scatter(1, index, torch.where(valid, solution[:, :s], 0.0))


# %%
# The primal active-set method (Lawson and Hanson's, with the sum constraint) [#Lawson1974]_
# starts at the best single pixel and alternates two moves.  If the minimiser on the current
# support has a negative entry, it steps from the current kernel towards it only until the first
# entry reaches zero, and drops that entry.  Otherwise the kernel is that minimiser, and the
# gradient :math:`Gk - b` says whether an entry off the support would lower the loss: it is
# added if its gradient undercuts the common value :math:`-\lambda` on the support.  When no
# entry does, the optimality conditions of the whole problem hold, and the kernel is exact.


def solve_simplex_ls(G, b, tol=1e-12):
    """The exact minimiser of ``1/2 kᵀ G[i] k - b[i]ᵀ k`` over the simplex, for every ``i``.

    ``G`` (B, n, n) symmetric positive semi-definite, or (1, n, n) shared by all, ``b`` (B, n);
    returns ``k`` (B, n).  A primal active-set method: from the best vertex, minimise on the
    support (sum(k) = 1); if that leaves the simplex, step towards it until an entry reaches zero
    and drop it; else add the entry whose gradient most undercuts the others', until none does.
    """
    n = b.shape[-1]
    if G.dim() != 3 or b.dim() != 2 or G.shape[1:] != (n, n) or len(G) not in (1, len(b)):
        raise ValueError(f"expected G (B, n, n) or (1, n, n) and b (B, n): {G.shape}, {b.shape}")
    if not (G.is_floating_point() and b.is_floating_point()):
        raise TypeError(f"expected floating-point G and b, got {G.dtype} and {b.dtype}")
    if not (torch.isfinite(G).all() and torch.isfinite(b).all()):
        raise ValueError("solve_simplex_ls got NaN or infinite values")
    G, rows = G.to(b.dtype), torch.arange(b.shape[0], device=b.device)
    diagonal = G.diagonal(dim1=-2, dim2=-1)
    scale = diagonal.abs().amax(-1) + b.abs().amax(-1)  # the size of the gradient's entries
    k = torch.zeros_like(b)
    k[rows, (0.5 * diagonal - b).argmin(1)] = 1.0  # the best vertex
    support, done = k > 0, torch.zeros_like(rows, dtype=torch.bool)
    for _ in range(3 * n + 100):
        z = torch.where(support & ~done[:, None], minimise_on_support(G, b, support), k)
        # Step towards z, stopping where the first entry of the support reaches zero.
        negative = support & (z <= 0)
        ratio = torch.where(
            negative, k / (k - z).clamp_min(torch.finfo(b.dtype).tiny), float("inf")
        )
        step = ratio.amin(1, keepdim=True).clamp(max=1.0)
        k = torch.where(support, k + step * (z - k), 0.0)
        blocked = negative.any(1)
        support &= ~(blocked[:, None] & (negative & (ratio <= step) | (k <= 0)))
        k = torch.where(support, k.clamp_min(0.0), 0.0)
        # Where z was feasible: is some entry off the support worth adding?
        gradient = (k @ G[0] if len(G) == 1 else torch.einsum("bij,bj->bi", G, k)) - b
        multiplier = (gradient * support).sum(1) / support.sum(1)
        worst, entry = torch.where(support, float("inf"), gradient - multiplier[:, None]).min(1)
        add = ~blocked & ~done & (worst < -tol * scale)
        support[rows[add], entry[add]] = True
        done |= ~blocked & ~add
        if done.all():
            break
    return k


start = time.perf_counter()
k_flat = solve_simplex_ls(G, b)
time_solve = time.perf_counter() - start
k_hat = k_flat.float().reshape(k_true.shape)
error = dinv.metric.NRMSE()(k_hat, k_true).item()
print(
    f"solved in {time_solve:.3f} s: {(k_flat > 0).sum().item()} non-zero entries, "
    f"sum {k_flat.sum().item():.12f}, relative kernel error {error:.4f}"
)

# %%
# The floor
# ---------
# The exact minimiser next to the truth, on one colour scale (from zero to the largest true
# entry).  Its error is not zero — the noise
# moves the minimiser away from the true kernel — and no method fitted to the same data by least
# squares can be expected to do better: this error is the **floor** against which every other
# page measures its result.

dinv.utils.plot(
    [k_hat, k_true, (k_hat - k_true).abs()],
    titles=[f"exact — {100 * error:.2f} % error", "true kernel", "difference"],
    cmap="viridis",
    rescale_mode=None,
    norm=Normalize(0, k_true.max().item()),
    figsize=(9, 3.4),
)

# %%
# Results
# -------

results = {
    "exact minimiser": {
        "kernel error": error,
        "non-zero entries": int((k_flat > 0).sum()),
        "build G, b": f"{time_build:6.3f} s",
        "solve": f"{time_solve:6.3f} s",
    }
}
print_table(results)

# %%
# References
# ----------
# .. [#Lawson1974] C. L. Lawson and R. J. Hanson, *Solving Least Squares Problems*,
#    Prentice-Hall, 1974, chapter 23 (the active-set method for non-negative least squares).

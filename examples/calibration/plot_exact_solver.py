r"""
The exact least-squares kernel
==============================

After this page you can compute the best kernel that least squares can give — the exact
minimiser over the simplex, in a tenth of a second — without autograd and without a step size,
and use it as the *floor* that tells how far any other calibration method still is from
convergence.

The blur is linear in its kernel: :math:`\forw{x, k} = M_x^\top k`, where each row of
:math:`M_x` is the crop of :math:`x` that one kernel entry multiplies.  The least-squares loss is
therefore a quadratic in :math:`k`,

.. math::

    \frac{1}{2}\|\forw{x, k} - y\|^2 = \frac{1}{2} k^\top G k - b^\top k + \frac{1}{2}\|y\|^2,
    \qquad G = M_x M_x^\top, \quad b = M_x y,

with a :math:`625 \times 625` matrix :math:`G` for a 25×25 kernel (summed over the colour
channels), and the calibration is a small quadratic programme over the simplex :math:`\simplex`.

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

import matplotlib.pyplot as plt
import torch
from matplotlib.colors import Normalize
from torch.fft import irfft, irfft2, rfft, rfft2
from torch.nn.functional import pad

import deepinv as dinv

from calibration_helpers import load_photo, print_table

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

# %%
# Sums of shifted products
# ------------------------
# Entry :math:`(p, q)` of :math:`G` is the inner product of two crops of :math:`x`: the sum, over
# the window :math:`W_p` of pixels the valid blur reads from kernel entry :math:`p`, of
# :math:`x(u)\,x(u + q - p)`.  It depends on the *lag* :math:`d = q - p` and on where the window
# sits.  Forming all 625 crops of 3×232×232 values and multiplying them (63 billion products)
# is wasteful: each window is the whole image minus a frame 24 pixels wide, so
#
# .. math::
#
#     \sum_{u \in W_p} x(u)\,x(u + d) = \sum_{\text{image}} - \sum_{\text{frame rows}} -
#     \sum_{\text{frame columns}} + \sum_{\text{frame corners}},
#
# where the sum over the whole image is one autocorrelation — every lag at once by FFT
# (:func:`torch.fft.rfft2`) — the frame rows and columns are one-dimensional correlations along
# 24 lines at each edge, and the corners, which both removed, are small enough to multiply
# directly.  Prefix sums (``before``/``after``) turn the frame's lines into the frame of each
# window.


def lagged_window_sums(x, kernel_size):
    """``S[i, j, di, dj + K - 1]``: the sum of ``x(u) x(u + (di, dj))`` over the window of ``u``
    that the valid blur reads from kernel entry ``(i, j)``, for one image ``x`` (1, C, H, W).

    Lags: ``0 <= di < K``, ``-K < dj < K``.  The window is the image minus a frame of width
    ``K - 1``: sum over the whole image (one FFT for every lag), subtract the frame's rows and
    columns (1-D FFTs along them), add back the corners that both removed.
    """
    K, (H, W), dev, m = kernel_size, x.shape[-2:], x.device, kernel_size - 1
    di, dj = torch.arange(K, device=dev), torch.arange(-m, K, device=dev)
    n = (H + K, W + 2 * K)  # FFT sizes with no wrap-around at these lags
    X = rfft2(x, s=n)
    total = irfft2((X.conj() * X).sum(1), s=n)[0, di][:, dj % n[1]]

    def lines(z, rows, offsets, lags, length):  # sum_v z(r, v) z(r + o, v + t), zero beyond z
        Z = rfft(pad(z[0], (0, 0, K, K)), n=length)
        pairs = Z[:, rows + K, None].conj() * Z[:, rows[:, None] + offsets + K]
        return irfft(pairs.sum(0), n=length)[..., lags % length]

    def corner(r0, c0):  # x(u) x(u + d), u in the m×m corner at (r0, c0)
        near = pad(x[0], (K, K, K, K))[:, r0 + K : r0 + 2 * K + m - 1, c0 + K - m :]
        shifted = near[..., : m + 2 * K - 2].unfold(1, K, 1).unfold(2, 2 * K - 1, 1)
        return (x[0, :, r0 : r0 + m, c0 : c0 + m, None, None] * shifted).sum(0)

    def before(t, dim):  # entry i: the sum of the entries < i along dim
        return pad(t.cumsum(dim), (0, 0) * (t.dim() - 1 - dim) + (1, 0))

    def after(t, dim):  # entry i: the sum of the entries >= i along dim
        return t.sum(dim, keepdim=True) - before(t, dim)

    if m == 0:  # a 1×1 kernel: the window is the whole image
        return total.view(1, 1, 1, 1)
    edge, xt = torch.arange(m, device=dev), x.transpose(-1, -2)
    top, bottom = lines(x, edge, di, dj, n[1]), lines(x, edge + H - m, di, dj, n[1])
    left = lines(xt, edge, dj, di, n[0]).transpose(-1, -2)
    right = lines(xt, edge + W - m, dj, di, n[0]).transpose(-1, -2)
    return (
        total
        - (before(top, 0) + after(bottom, 0))[:, None]
        - (before(left, 0) + after(right, 0))[None, :]
        + before(before(corner(0, 0), 0), 1)
        + after(before(corner(0, W - m), 0), 1)
        + before(after(corner(H - m, 0), 0), 1)
        + after(after(corner(H - m, W - m), 0), 1)
    )


# %%
# :math:`b` is a single cross-correlation of :math:`x` with :math:`y`, again by FFT, for one
# measurement or a whole batch of them (many noise draws of one image share :math:`G`).  deepinv's
# :class:`~deepinv.physics.Blur` convolves, that is, it flips the kernel: entry :math:`(i, j)`
# multiplies the crop at :math:`(K-1-i, K-1-j)`, hence the flips.


def linear_terms(x, y, kernel_size):
    """``b`` (B, K²) of the quadratic of ``blur_quadratic``, one image x, measurements y[i]."""
    H, W = x.shape[-2:]
    spectrum = torch.fft.rfft2(y.double(), s=(H, W)).conj() * torch.fft.rfft2(x.double(), s=(H, W))
    b = torch.fft.irfft2(spectrum.sum(1), s=(H, W))[:, :kernel_size, :kernel_size]
    return b.reshape(-1, kernel_size * kernel_size).flip(-1)


# %%
# :math:`G` collects the window sums, one per pair of kernel entries, and is symmetric.
# Everything is in float64.


def blur_quadratic(x, y, kernel_size):
    """``G`` (B, K², K²) and ``b`` (B, K²), in float64, of each pair ``(x[i], y[i])``:

    ``1/2 ||Blur(k, padding="valid")(x[i]) - y[i]||² = 1/2 kᵀ G[i] k - b[i]ᵀ k + 1/2 ||y[i]||²``
    for every K×K kernel ``k`` (flattened), summed over the colour channels.
    """
    if x.dim() != 4 or y.dim() != 4 or x.shape[:2] != y.shape[:2]:
        raise ValueError(
            f"expected x (B, C, H, W) and y (B, C, h, w), got {tuple(x.shape)}, {tuple(y.shape)}"
        )
    K, (H, W), dev = kernel_size, x.shape[-2:], x.device
    if tuple(y.shape[-2:]) != (H - K + 1, W - K + 1):
        raise ValueError(
            f"y must be the valid blur of x by a {K}×{K} kernel: {tuple(y.shape[-2:])}"
        )
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise ValueError("blur_quadratic got NaN or infinite values")
    G = x.new_zeros(x.shape[0], K, K, K, K, dtype=torch.float64)
    r = torch.arange(K, device=dev)
    i, j, di, s = torch.meshgrid(r, r, r, torch.arange(2 * K - 1, device=dev), indexing="ij")
    keep = (i + di < K) & (j + s - K + 1 >= 0) & (j + s - K + 1 < K)
    i, j, di, s = i[keep], j[keep], di[keep], s[keep]
    for image, sums in zip(
        G, (lagged_window_sums(x[n : n + 1].double(), K) for n in range(len(x)))
    ):
        image[i, j, i + di, j + s - K + 1] = sums[i, j, di, s]  # entry (i, j) with (i + di, j + dj)
        image[i + di, j + s - K + 1, i, j] = sums[i, j, di, s]  # G is symmetric
    # deepinv convolves (flips the kernel): entry (i, j) multiplies the crop at (K-1-i, K-1-j)
    return G.reshape(-1, K * K, K * K).flip(-1, -2), linear_terms(x, y, K)


start = time.perf_counter()
G, b = blur_quadratic(x, y, KERNEL_SIZE)
time_build = time.perf_counter() - start
print(f"G {tuple(G.shape)} and b {tuple(b.shape)} built in {time_build:.3f} s")

# %%
# The quadratic must agree with deepinv's loss, :class:`deepinv.optim.L2` on
# :class:`deepinv.physics.Blur`, and its gradient :math:`Gk - b` with what autograd computes, at
# any kernel.  We check both at a random kernel on the simplex.

k_test = torch.rand(k_true.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
k_test = (k_test / k_test.sum()).to(device).requires_grad_(True)
physics = dinv.physics.Blur(filter=k_test, padding="valid", device=device)
loss = dinv.optim.L2()(x=x.double(), y=y.double(), physics=physics).sum()
(grad_autograd,) = torch.autograd.grad(loss, k_test)
kv = k_test.detach().flatten()
loss_quadratic = 0.5 * kv @ G[0] @ kv - b[0] @ kv + 0.5 * y.double().pow(2).sum()
loss_gap = ((loss_quadratic - loss).abs() / loss.abs()).item()
grad_gap = ((G[0] @ kv - b[0] - grad_autograd.flatten()).norm() / grad_autograd.norm()).item()
print(f"relative difference of the loss: {loss_gap:.1e}, of the gradient: {grad_gap:.1e}")

# %%
# The matrix is large but structured: along each diagonal block the entries change slowly, since
# neighbouring windows share almost all their pixels.  Its eigenvalues spread over many orders of
# magnitude, which is why gradient methods on this problem need thousands of iterations.

eigenvalues = torch.linalg.eigvalsh(G[0])
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), layout="constrained")
image = axes[0].imshow(G[0].cpu().numpy(), cmap="magma")
axes[0].set(title="G (625 × 625)", xlabel="kernel entry q", ylabel="kernel entry p")
fig.colorbar(image, ax=axes[0], shrink=0.85)
axes[1].semilogy(eigenvalues.flip(0).cpu().numpy())
axes[1].set(
    title=f"eigenvalues of G: condition number {eigenvalues[-1] / eigenvalues[0]:.1e}",
    xlabel="index",
    ylabel="eigenvalue",
)
axes[1].grid(True, which="both", alpha=0.3)
plt.show()

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
# Many problems of different supports are solved at once, each system padded to the largest.


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
        ratio = torch.where(negative, k / (k - z).clamp_min(torch.finfo(b.dtype).tiny), torch.inf)
        step = ratio.amin(1, keepdim=True).clamp(max=1.0)
        k = torch.where(support, k + step * (z - k), 0.0)
        blocked = negative.any(1)
        support &= ~(blocked[:, None] & (negative & (ratio <= step) | (k <= 0)))
        k = torch.where(support, k.clamp_min(0.0), 0.0)
        # Where z was feasible: is some entry off the support worth adding?
        gradient = (k @ G[0] if len(G) == 1 else torch.einsum("bij,bj->bi", G, k)) - b
        multiplier = (gradient * support).sum(1) / support.sum(1)
        worst, entry = torch.where(support, torch.inf, gradient - multiplier[:, None]).min(1)
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

# sphinx_gallery_thumbnail_number = 2
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

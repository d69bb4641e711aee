r"""
The loss as a quadratic in the kernel
=====================================

After this page you can turn the least-squares loss of a blur calibration into a small quadratic
— a :math:`625 \times 625` matrix and a vector for a 25×25 kernel — built in a fraction of a
second by FFT, and check it against deepinv's own loss and autograd.  The next page solves it
exactly.

The blur is linear in its kernel: :math:`\forw{x, k} = M_x^\top k`, where each row of
:math:`M_x` is the crop of :math:`x` that one kernel entry multiplies.  The least-squares loss is
therefore a quadratic in :math:`k`,

.. math::

    \frac{1}{2}\|\forw{x, k} - y\|^2 = \frac{1}{2} k^\top G k - b^\top k + \frac{1}{2}\|y\|^2,
    \qquad G = M_x M_x^\top, \quad b = M_x y,

summed over the colour channels.  Once :math:`G` and :math:`b` are known, evaluating the loss or
its gradient costs a small matrix-vector product instead of a convolution of the whole image.

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
# Results
# -------

results = {
    "quadratic": {
        "build G, b": f"{time_build:6.3f} s",
        "loss vs deepinv": loss_gap,
        "gradient vs autograd": grad_gap,
        "condition number": (eigenvalues[-1] / eigenvalues[0]).item(),
    }
}
print_table(results)

r"""
The exact least-squares kernel
==============================

After this page you can compute the best kernel that least squares can give — the exact
minimiser over the simplex — without autograd and without tuning a step size, and use it as the
yardstick that tells how far any other calibration method still is from convergence.

The blur is linear in its kernel: :math:`\forw{x, k} = M_x^\top k`, where each row of
:math:`M_x` is the crop of :math:`x` that one kernel entry multiplies.  The least-squares loss is
therefore a quadratic in :math:`k`,

.. math::

    \frac{1}{2}\|\forw{x, k} - y\|^2 = \frac{1}{2} k^\top G k - b^\top k + \frac{1}{2}\|y\|^2,
    \qquad G = M_x M_x^\top, \quad b = M_x y,

with a :math:`625 \times 625` matrix :math:`G` for a 25×25 kernel (summed over the colour
channels).  Once :math:`G` and :math:`b` are known, each iteration costs a small matrix-vector
product instead of a convolution of the whole image, and the problem can be solved to machine
precision.

Run it in fast mode (a small image, as the test-suite does) with the environment variable
``CALIBRATION_GALLERY_FAST=1``.
"""

# %%
# The default problem
# -------------------
# Every page of this section uses the same data: Grace Hopper's portrait, shipped with matplotlib,
# centre-cropped and resized to 256×256; a 25×25 motion-blur kernel drawn with seed 123; valid
# convolution; Gaussian noise of standard deviation 0.02 drawn with seed 0.  All random draws happen
# on the CPU, then the tensors move to the device, so the numbers are the same on a GPU.

import os
import time

import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
import torch
from matplotlib.cbook import get_sample_data

import deepinv as dinv

FAST = os.environ.get("CALIBRATION_GALLERY_FAST") == "1"  # smoke-test mode
IMG_SIZE = 64 if FAST else 256  # side of the square test image, in pixels
KERNEL_SIZE = 25  # side of the square blur kernel, in pixels
SIGMA = 0.02  # standard deviation of the measurement noise
device = dinv.utils.get_device(verbose=False)


def load_photo(size):
    """Grace Hopper's portrait, centre-cropped to a square, as a (1, 3, size, size) tensor in [0, 1]."""
    with get_sample_data("grace_hopper.jpg") as file:
        image = PIL.Image.open(file).convert("RGB")
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    image = image.resize((size, size), PIL.Image.Resampling.BICUBIC)
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)
    return pixels.permute(2, 0, 1).unsqueeze(0).clamp(0.0, 1.0)


x = load_photo(IMG_SIZE)
kernel_generator = dinv.physics.generator.MotionBlurGenerator(
    psf_size=(KERNEL_SIZE, KERNEL_SIZE), rng=torch.Generator("cpu")
)
k_true = kernel_generator.step(1, seed=123)["filter"]
noise = dinv.physics.GaussianNoise(sigma=SIGMA, rng=torch.Generator("cpu").manual_seed(0))
y = dinv.physics.Blur(filter=k_true, padding="valid", noise_model=noise)(x)
x, y, k_true = x.to(device), y.to(device), k_true.to(device)
print(f"image {tuple(x.shape)}, measurement {tuple(y.shape)}, kernel {tuple(k_true.shape)}")
print(f"device: {device}, torch threads: {torch.get_num_threads()}")

# %%
# Helpers shared by the calibration pages: the kernel error, and one figure style for kernels.

KERNEL_CMAP = "viridis"


def kernel_errors(k_hat, k_ref):
    """Relative error ||k_hat - k_ref|| / ||k_ref|| and the kernel PSNR in dB."""
    diff = (k_hat - k_ref).flatten()
    relative = (diff.norm() / k_ref.flatten().norm()).item()
    mse = diff.pow(2).mean().item()
    psnr = 10 * np.log10(k_ref.max().item() ** 2 / max(mse, 1e-30))
    return relative, psnr


def show_kernels(kernels, titles, suptitle):
    """Kernels side by side on one colour scale, with a shared colour bar."""
    vmax = max(k.max().item() for k in kernels)
    fig, axes = plt.subplots(1, len(kernels), figsize=(3.2 * len(kernels), 3.4), layout="constrained")
    for ax, k, title in zip(axes, kernels, titles):
        im = ax.imshow(k.squeeze().cpu().numpy(), cmap=KERNEL_CMAP, vmin=0.0, vmax=vmax)
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
    fig.colorbar(im, ax=axes, shrink=0.8, label="kernel value")
    fig.suptitle(suptitle)
    plt.show()


# %%
# The sharp image, its measurement and the kernel we will try to recover.  With valid padding the
# measurement is smaller than the image by the kernel size minus one.

fig, axes = plt.subplots(1, 3, figsize=(11, 4), layout="constrained")
axes[0].imshow(x.squeeze(0).permute(1, 2, 0).cpu().numpy())
axes[0].set_title(f"sharp image x, {x.shape[-1]}×{x.shape[-2]}")
axes[1].imshow(y.squeeze(0).permute(1, 2, 0).clamp(0, 1).cpu().numpy())
axes[1].set_title(f"measurement y, {y.shape[-1]}×{y.shape[-2]}")
im = axes[2].imshow(k_true.squeeze().cpu().numpy(), cmap=KERNEL_CMAP, vmin=0)
axes[2].set_title("true kernel k")
fig.colorbar(im, ax=axes[2], shrink=0.8)
for ax in axes:
    ax.set_axis_off()
plt.show()

# %%
# Building :math:`G` and :math:`b` from the image
# ------------------------------------------------
# Forming :math:`M_x` explicitly (one crop of 3×232×232 values per kernel entry, 625 of them)
# and multiplying it by its transpose is wasteful: entries of :math:`G` for kernel offsets that
# differ by the same shift are sums of the same products over windows that slide by one pixel.
# We exploit that structure one image row at a time: for every pair of rows ``r`` and ``r + di``
# a small matrix product gives the correlations of all horizontal shifts, and a running sum over
# ``r`` turns them into the window sums that :math:`G` needs.  :math:`b` is a single
# cross-correlation of :math:`x` with :math:`y`.  Everything is in float64.


def blur_quadratic(x, y, kernel_size):
    """G (K²×K²) and b (K²) with 1/2 ||Blur(k, valid).A(x) - y||² = 1/2 kᵀGk - bᵀk + 1/2 ||y||²."""
    x, y = x.double()[0], y.double()
    channels, height, width = x.shape
    out_h, out_w = height - kernel_size + 1, width - kernel_size + 1
    # rows[r, j] = x[:, r, j : j + out_w] for all channels: the row segments kernel column j multiplies
    rows = x.unfold(2, out_w, 1).permute(1, 2, 0, 3).reshape(height, kernel_size, channels * out_w)
    gram = torch.empty((kernel_size,) * 4, dtype=torch.float64, device=x.device)
    for di in range(kernel_size):
        pairs = torch.matmul(rows[: height - di], rows[di:].transpose(-1, -2))
        running = torch.nn.functional.pad(pairs.cumsum(0), (0, 0, 0, 0, 1, 0))
        i = torch.arange(kernel_size - di, device=x.device)
        window = running[i + out_h] - running[i]  # crops (i, j) and (i + di, j')
        gram[i, :, i + di, :] = window
        gram[i + di, :, i, :] = window.transpose(-1, -2)
    n = kernel_size * kernel_size
    # deepinv convolves, i.e. flips the kernel: entry (i, j) multiplies crop (K-1-i, K-1-j)
    gram = gram.reshape(n, n).flip(0).flip(1)
    b = torch.nn.functional.conv2d(x.unsqueeze(0), y).flatten().flip(0)
    return gram, b


start = time.perf_counter()
G, b = blur_quadratic(x, y, KERNEL_SIZE)
time_build = time.perf_counter() - start
print(f"G is {G.shape[0]}×{G.shape[1]}, built in {time_build:.3f} s on {torch.get_num_threads()} threads")

# %%
# Checking the quadratic against deepinv
# --------------------------------------
# The quadratic must agree with :class:`deepinv.optim.L2` on :class:`deepinv.physics.Blur`, and
# its gradient :math:`Gk - b` with what autograd computes, at any kernel.  We check both at a
# random kernel on the simplex, in float64.

k_test = torch.rand(k_true.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
k_test = (k_test / k_test.sum()).to(device).requires_grad_(True)
physics = dinv.physics.Blur(filter=k_test, padding="valid", device=device)
loss = dinv.optim.L2()(x=x.double(), y=y.double(), physics=physics).sum()
(grad_autograd,) = torch.autograd.grad(loss, k_test)
kv = k_test.detach().flatten()
loss_quadratic = 0.5 * kv @ G @ kv - b @ kv + 0.5 * y.double().pow(2).sum()
grad_quadratic = G @ kv - b
loss_gap = ((loss_quadratic - loss).abs() / loss.abs()).item()
grad_gap = ((grad_quadratic - grad_autograd.flatten()).norm() / grad_autograd.norm()).item()
print(f"relative difference of the loss: {loss_gap:.1e}, of the gradient: {grad_gap:.1e}")

# %%
# Solving over the simplex
# ------------------------
# Accelerated projected gradient with adaptive restart, as on the projected-gradient page, but
# on the quadratic: the step is :math:`1/L` with :math:`L` the largest eigenvalue of :math:`G` on
# the plane :math:`\sum_i d_i = 0`, computed exactly.  The solution is sparse, and once its support
# has settled an *active-set polish* finishes the job: on the support the minimiser solves a small
# linear system (the optimality conditions with the constraint :math:`\sum_i k_i = 1`), which we
# accept when it is non-negative and lowers the objective.  We stop when the projected-gradient
# residual :math:`\|k - P_\simplex(k - \nabla f(k)/L)\|` is below :math:`10^{-9}\|k\|`.
#
# The projection is the sort-based one of the other pages [#Blondel2014]_.


def project_simplex(v):
    """Euclidean projection of each ``v[b]`` onto {k : k >= 0, sum(k) = 1}.

    ``v`` has shape ``(B, ...)``; the result has the same shape, dtype and device.
    """
    if not isinstance(v, torch.Tensor):
        raise TypeError(f"project_simplex expects a torch.Tensor, got {type(v).__name__}")
    if not v.is_floating_point():
        raise TypeError(f"project_simplex expects a floating-point tensor, got dtype {v.dtype}")
    if v.dim() < 2 or v.shape[0] == 0 or v[0].numel() == 0:
        raise ValueError(
            f"project_simplex expects a non-empty batch of shape (B, ...), got shape {tuple(v.shape)}"
        )
    if not torch.isfinite(v).all():
        raise ValueError("project_simplex got NaN or infinite values; check the step size")
    with torch.no_grad():
        flat = v.reshape(v.shape[0], -1)  # reshape copies when the layout requires it
        u = torch.sort(flat, dim=1, descending=True).values
        cumsum = u.cumsum(dim=1) - 1.0
        index = torch.arange(1, flat.shape[1] + 1, device=v.device, dtype=v.dtype)
        positive = u - cumsum / index > 0
        rho = torch.where(positive, index, torch.zeros_like(index)).amax(dim=1, keepdim=True)
        threshold = cumsum.gather(1, rho.long() - 1) / rho
        return (flat - threshold).clamp_min(0.0).reshape(v.shape)


def objective(k, G, b):
    return 0.5 * k @ G @ k - b @ k


def residual(k, G, b, lipschitz):
    """Relative projected-gradient residual; zero exactly at the minimiser."""
    step = project_simplex((k - (G @ k - b) / lipschitz).unsqueeze(0)).squeeze(0)
    return ((k - step).norm() / k.norm()).item()


def polish(k, G, b):
    """Solve the optimality conditions on the support of k; keep the result if it is better."""
    support = torch.nonzero(k > 0).flatten()
    s = support.numel()
    system = torch.zeros(s + 1, s + 1, dtype=G.dtype, device=G.device)
    system[:s, :s] = G[support][:, support]
    system[:s, s] = 1.0
    system[s, :s] = 1.0
    rhs = torch.cat([b[support], torch.ones(1, dtype=G.dtype, device=G.device)])
    solution = torch.linalg.solve(system, rhs)[:s]
    if (solution < 0).any():
        return k
    candidate = torch.zeros_like(k)
    candidate[support] = solution
    return candidate if objective(candidate, G, b) <= objective(k, G, b) else k


def solve_exact(G, b, tol=1e-9, max_iter=20_000, polish_every=50):
    """Minimise 1/2 kᵀGk - bᵀk over the simplex; returns k, the residual history and L."""
    n = G.shape[0]
    centring = torch.eye(n, dtype=G.dtype, device=G.device) - 1.0 / n
    lipschitz = torch.linalg.eigvalsh(centring @ G @ centring)[-1].item()
    k = torch.full((n,), 1.0 / n, dtype=G.dtype, device=G.device)
    z, momentum, history = k.clone(), 1.0, []
    for it in range(1, max_iter + 1):
        k_next = project_simplex((z - (G @ z - b) / lipschitz).unsqueeze(0)).squeeze(0)
        if (k_next - k) @ (z - k_next) > 0:  # restart
            momentum, z = 1.0, k_next.clone()
        else:
            momentum_next = (1 + (1 + 4 * momentum**2) ** 0.5) / 2
            z = k_next + (momentum - 1) / momentum_next * (k_next - k)
            momentum = momentum_next
        k = k_next
        if it % polish_every == 0:
            polished = polish(k, G, b)
            if polished is not k:  # the polish moved k: restart the momentum from there
                k, z, momentum = polished, polished.clone(), 1.0
        if it % 10 == 0:
            history.append((it, residual(k, G, b, lipschitz)))
            if history[-1][1] <= tol:
                break
    return k, history, lipschitz


err_init, _ = kernel_errors(torch.full_like(k_true, 1.0 / k_true.numel()), k_true)
print(f"initial kernel: relative error {err_init:.4f} (the flat kernel the solver starts from)")

start = time.perf_counter()
k_flat, history, lipschitz = solve_exact(G, b)
time_solve = time.perf_counter() - start
k_hat = k_flat.float().reshape(k_true.shape)
err_hat, psnr_hat = kernel_errors(k_hat, k_true)
print(f"L = {lipschitz:.4g} (unnormalised loss), {history[-1][0]} iterations, "
      f"residual {history[-1][1]:.1e}, {(k_flat > 0).sum().item()} non-zero entries")
print(f"exact minimiser: relative error {err_hat:.4f}, PSNR {psnr_hat:.2f} dB")
print(f"time: build {time_build:.3f} s + solve {time_solve:.3f} s = {time_build + time_solve:.3f} s "
      f"on {torch.get_num_threads()} threads")

# %%
# The residual falls slowly while the support is being found, then drops to machine precision at
# the first polish on the right support.

its, residuals = zip(*history)
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
ax.semilogy(its, residuals)
ax.axhline(1e-9, color="gray", linestyle="--", label="tolerance")
ax.set(xlabel="iteration", ylabel="relative projected-gradient residual",
       title="Convergence of the exact solver")
ax.grid(True, which="both", alpha=0.3)
ax.legend()
plt.show()

# %%
# The exact minimiser next to the truth, on one colour scale.  Its error is not zero — the noise
# moves the minimiser away from the true kernel — and no method fitted to the same data by least
# squares can be expected to do better: this is the *floor* against which the other pages are
# measured.

show_kernels(
    [k_hat, k_true, (k_hat - k_true).abs()],
    [f"exact minimiser — {100 * err_hat:.2f} % error", "true kernel", "absolute difference"],
    "The exact least-squares kernel",
)

# %%
# Summary
# -------

# sphinx_gallery_thumbnail_number = 3
print(f"final relative kernel error: {err_hat:.4f}")

# %%
# References
# ----------
# .. [#Blondel2014] M. Blondel, A. Fujino and N. Ueda, "Large-scale Multiclass Support Vector
#    Machine Training via Euclidean Projection onto the Simplex", *ICPR* 2014.

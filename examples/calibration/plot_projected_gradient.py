r"""
Projected gradient descent on the simplex
=========================================

After this page you can estimate a blur kernel from a sharp image and its blurry measurement with
nothing but autograd and a projection, bound the step size by the loss's curvature, and let the
step follow the curvature along the steps actually taken, which makes the same method several
times faster on every problem of this site's test-suite.

The kernel :math:`k` of a :class:`deepinv.physics.Blur` operator is the parameter
:math:`\theta` of the forward model :math:`y = \noise{\forw{x, \theta}}`.  Given :math:`x` and
:math:`y` we solve

.. math::

    \hat k \in \argmin_{k \in \simplex} f(k), \qquad
    f(k) = \frac{1}{2n}\|\forw{x, k} - y\|^2,

where :math:`n` is the number of measured values and :math:`\simplex` is the simplex of
non-negative kernels that sum to one.  Projected gradient descent alternates a gradient step and
the Euclidean projection :math:`P_\simplex`:

.. math::

    k_{t+1} = P_\simplex\big(k_t - \tau_t \nabla f(k_t)\big).

Run it in fast mode (a small image and few iterations, as the test-suite does) with the
environment variable ``CALIBRATION_GALLERY_FAST=1``.
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
import torch
from matplotlib.colors import Normalize

import deepinv as dinv

from calibration_helpers import blur_quadratic, load_photo, print_table, solve_simplex_ls

FAST = os.environ.get("CALIBRATION_GALLERY_FAST") == "1"  # smoke-test mode
IMG_SIZE = 64 if FAST else 256  # side of the square test image, in pixels
KERNEL_SIZE = 25  # side of the square blur kernel, in pixels
SIGMA = 0.02  # standard deviation of the measurement noise
N_ITER = 60 if FAST else 250  # iterations of the recipe
N_SAFE = 30 if FAST else 100  # iterations with the safe constant step, for comparison
N_POWER = 10 if FAST else 20  # power iterations for the curvature bound
device = dinv.utils.get_device(verbose=False)

x = load_photo(IMG_SIZE)
kernel_generator = dinv.physics.generator.MotionBlurGenerator(
    psf_size=(KERNEL_SIZE, KERNEL_SIZE), rng=torch.Generator("cpu")
)
k_true = kernel_generator.step(1, seed=123)["filter"]
noise = dinv.physics.GaussianNoise(sigma=SIGMA, rng=torch.Generator("cpu").manual_seed(0))
y = dinv.physics.Blur(filter=k_true, padding="valid", noise_model=noise)(x)
x, y, k_true = x.to(device), y.to(device), k_true.to(device)
print(f"image {tuple(x.shape)}, measurement {tuple(y.shape)}, kernel {tuple(k_true.shape)}")

# %%
# Projecting onto the simplex
# ---------------------------
# The Euclidean projection of a vector :math:`v \in \mathbb{R}^m` onto the simplex is
# :math:`\max(v - \lambda, 0)` for the unique threshold :math:`\lambda` that makes the result sum
# to one.  Sorting :math:`v` in decreasing order, :math:`u_1 \ge \dots \ge u_m`, the threshold is
# :math:`\lambda = (\sum_{i \le \rho} u_i - 1)/\rho` where :math:`\rho` is the largest index with
# :math:`u_\rho - (\sum_{i \le \rho} u_i - 1)/\rho > 0` [#Blondel2014]_.
#
# Adding the same constant to every entry moves :math:`\lambda` by that constant and leaves the
# projection unchanged.  The function below uses it: it subtracts each row's maximum first, and
# clips what lies more than 1 below it (such entries end at zero anyway), so that no sum can
# overflow or swallow the 1 in float32.  It projects every element of a batch onto its own simplex
# (a batch of kernels of shape ``(B, 1, h, w)`` gives ``B`` independent projections), accepts
# tensors in any memory layout, and refuses inputs it cannot project with a message that says why.


def project_simplex(v):
    """Euclidean projection of each ``v[b]`` onto {k : k >= 0, sum(k) = 1}.

    ``v`` has shape ``(B, ...)`` and any layout; the result has the same shape, dtype and device.
    """
    if not isinstance(v, torch.Tensor):
        raise TypeError(f"project_simplex expects a torch.Tensor, got {type(v).__name__}")
    if not v.is_floating_point():
        raise TypeError(f"project_simplex expects a floating-point tensor, got dtype {v.dtype}")
    if v.dim() < 2 or v.shape[0] == 0 or v[0].numel() == 0:
        raise ValueError(
            f"project_simplex expects a non-empty batch (B, ...), got shape {tuple(v.shape)}"
        )
    if not torch.isfinite(v).all():
        raise ValueError("project_simplex got NaN or infinite values; check the step size")
    with torch.no_grad():
        flat = v.reshape(v.shape[0], -1)  # reshape copies when the layout requires it
        # Entries more than 1 below the row's maximum end at 0 whatever their value: shifting by
        # the maximum and clipping at -1 changes nothing and keeps every sum small (no overflow,
        # no large value swallowing the 1 in float32).
        shifted = (flat - flat.amax(dim=1, keepdim=True)).clamp_min(-1.0)
        u = torch.sort(shifted, dim=1, descending=True).values
        cumsum = u.cumsum(dim=1) - 1.0
        index = torch.arange(1, flat.shape[1] + 1, device=v.device, dtype=v.dtype)
        positive = u - cumsum / index > 0  # always true for the largest entry
        rho = torch.where(positive, index, torch.zeros_like(index)).amax(dim=1, keepdim=True)
        threshold = cumsum.gather(1, rho.long() - 1) / rho
        return (shifted - threshold).clamp_min(0.0).reshape(v.shape)


# A batch of two kernels, one of them a non-contiguous (transposed) view: each is projected alone.
v = torch.randn(2, 1, KERNEL_SIZE, KERNEL_SIZE, generator=torch.Generator().manual_seed(1))
p = project_simplex(v.transpose(-1, -2))
print("sums per kernel:", [f"{s:.6f}" for s in p.flatten(1).sum(dim=1).tolist()])
print(
    f"smallest entry: {p.min().item():.3g}, non-zero entries: {(p > 0).flatten(1).sum(1).tolist()}"
)
shift = (project_simplex(v + 10.0) - project_simplex(v)).abs().max().item()
print(f"largest change when 10 is added to every entry: {shift:.1e} (float32 rounding)")

# %%
# The gradient and the curvature
# ------------------------------
# :class:`deepinv.optim.L2` evaluates :math:`\tfrac12\|\forw{x,k}-y\|^2`; we divide it by the number
# of measured values so that the scale does not depend on the image size, and autograd
# differentiates it through the convolution.  Since the blur is linear in :math:`k`, :math:`f` is a
# quadratic whose Hessian is :math:`A_x^\top A_x / n`: its curvature along a direction :math:`d`
# is :math:`\|\forw{x, d}\|^2 / (n\|d\|^2)`, one application of the operator with :math:`d` as the
# filter.  Iterates stay on the simplex, so the directions between them sum to zero; the largest
# curvature :math:`L` over that plane, found by power iteration on Hessian-vector products, bounds
# the step: with :math:`\tau \le 1/L` every projected step decreases :math:`f` [#Beck2009]_.


def gradient_of_f(physics, x, y, k):
    """The gradient of f at k, by autograd through the Blur operator."""
    k = k.detach().requires_grad_(True)
    physics.update(filter=k)
    loss = dinv.optim.L2()(x=x, y=y, physics=physics).sum() / y.numel()
    return torch.autograd.grad(loss, k)[0]


def curvature_along(physics, x, d, n):
    """The curvature of f along d: ||A_x d||² / (n ||d||²)."""
    with torch.no_grad():
        physics.update(filter=d)
        return (physics.A(x).pow(2).sum() / (n * d.pow(2).sum())).item()


physics = dinv.physics.Blur(filter=k_true.clone(), padding="valid", device=device)
d = torch.randn(k_true.shape, generator=torch.Generator().manual_seed(2)).to(device)
for _ in range(N_POWER):
    d = (d - d.mean()) / (d - d.mean()).norm()  # stay in the sum-zero plane
    d_ = d.clone().requires_grad_(True)
    physics.update(filter=d_)
    energy = 0.5 * physics.A(x).pow(2).sum() / y.numel()  # its gradient is the Hessian times d
    d = torch.autograd.grad(energy, d_)[0]
lipschitz = curvature_along(physics, x, (d - d.mean()) / (d - d.mean()).norm(), y.numel())
print(f"largest curvature on the sum-zero plane: L = {lipschitz:.3f}, so 1/L = {1 / lipschitz:.3f}")

# %%
# Accelerated projected gradient with a step that follows the curvature
# ---------------------------------------------------------------------
# FISTA [#Beck2009]_ adds momentum to the projected step; restarting the momentum whenever it
# points uphill [#ODonoghue2015]_ keeps it fast near the solution.  The step :math:`1/L` is safe,
# but :math:`L` is the curvature along the worst direction of the whole plane; once the projection
# has made the kernel sparse, the steps move a few dozen entries, along which the curvature is
# much smaller.  So the recipe measures the curvature along the step :math:`d = k_{t+1} - z_t` it
# is about to take, accepts the step :math:`\tau` if :math:`\tau\,\|\forw{x, d}\|^2/(n\|d\|^2)
# \le 1` (then :math:`f` stays below the quadratic bound of FISTA's backtracking [#Beck2009]_) and
# halves it otherwise; before each iteration the step grows by 10 %.  The test costs one more
# application of the operator, without autograd, and subtracts no two nearly equal losses, so it
# holds in float32 to the end.  The recipe starts from the flat kernel, which favours no entry.


def calibrate_pgd(x, y, kernel_size, n_iter, step=1.0, grow=1.1, callback=None):
    """FISTA with restart on the simplex, the step backtracking on the curvature along the step."""
    k = torch.full((1, 1, kernel_size, kernel_size), 1.0 / kernel_size**2, device=x.device)
    physics = dinv.physics.Blur(filter=k.clone(), padding="valid", device=x.device)
    z, momentum = k.clone(), 1.0
    for _ in range(n_iter):
        grad = gradient_of_f(physics, x, y, z)
        step = step * grow
        while True:
            k_next = project_simplex(z - step * grad)
            d = k_next - z
            if d.abs().max() == 0 or step * curvature_along(physics, x, d, y.numel()) <= 1:
                break
            step = step / 2
        if ((k_next - k) * (z - k_next)).sum() > 0:  # momentum points uphill: restart
            momentum, z = 1.0, k_next.clone()
        else:
            momentum_next = (1 + (1 + 4 * momentum**2) ** 0.5) / 2
            z = k_next + (momentum - 1) / momentum_next * (k_next - k)
            momentum = momentum_next
        k = k_next
        if callback is not None:
            callback(k, step)
    return k


# %%
# The same function runs with the safe constant step (start ``1/L``, ``grow=1``) and as the
# recipe.  After each iteration we record the step, the kernel error (the truth only measures) and
# how far :math:`f` is above its exact minimum over the simplex, which needs only :math:`x` and
# :math:`y` (``blur_quadratic`` and ``solve_simplex_ls``, see the pages on the loss as a quadratic
# and on the exact solver): a reader without the truth can check convergence that way.

nrmse = dinv.metric.NRMSE()
G, b = blur_quadratic(x, y, KERNEL_SIZE)
k_star = solve_simplex_ls(G, b)
floor_error = nrmse(k_star.reshape(k_true.shape).to(k_true.dtype), k_true).item()


def f_above_minimum(k):
    """f(k) - f(k_star), from the quadratic in float64 (the constant ||y||² cancels)."""
    d, k = (k.reshape(1, -1) - k_star).to(k_star.dtype), k.reshape(1, -1).to(k_star.dtype)
    return (d @ G[0] @ (k + k_star).mT / 2 - b @ d.mT).item() / y.numel()


def run_pgd(label, **settings):
    """Run the recipe, recording the step, the kernel error and f - f* after each iteration."""
    history, start = {"step": [], "error": [], "excess": []}, time.perf_counter()

    def record(k, step):
        history["step"].append(step)
        history["error"].append(nrmse(k, k_true).item())
        history["excess"].append(f_above_minimum(k))

    k_hat = calibrate_pgd(x, y, KERNEL_SIZE, callback=record, **settings)
    seconds, error = time.perf_counter() - start, history["error"][-1]
    print(f"{label}: kernel error {error:.4f}, {error / floor_error:.2f}× the floor")
    row = {"iterations": len(history["error"]), "kernel error": error, "floor": floor_error}
    row |= {"ratio": error / floor_error, "f - f*": history["excess"][-1]}
    return k_hat, history, row | {"time": f"{seconds:6.2f} s"}


k_safe, safe, row_safe = run_pgd("safe step 1/L", n_iter=N_SAFE, step=1 / lipschitz, grow=1.0)
k_hat, recipe, row_recipe = run_pgd("step following the curvature", n_iter=N_ITER)
steps = np.array(recipe["step"]) * lipschitz
print(f"recipe's steps: median {np.median(steps):.1f}/L, largest {steps.max():.1f}/L")
print(
    f"kernel error after {N_SAFE} iterations: safe step {safe['error'][-1]:.4f}, "
    f"recipe {recipe['error'][N_SAFE - 1]:.4f}"
)

# %%
# Kernel error along the iterations
# ---------------------------------
# After the same number of iterations the recipe's kernel error is already far below the safe
# step's (printed above), and the recipe goes on to the floor.

fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
for label, history in (("safe step 1/L", safe), ("step following the curvature", recipe)):
    ax.semilogy(np.arange(1, len(history["error"]) + 1), history["error"], label=label)
ax.axhline(floor_error, color="gray", linestyle="--", label=f"exact floor {floor_error:.4f}")
ax.set(
    xlabel="iteration",
    ylabel="relative kernel error",
    title=f"safe {safe['error'][-1]:.3f}, recipe {recipe['error'][-1]:.4f}",
)
ax.grid(True, which="both", alpha=0.3)
ax.legend()
plt.show()

# %%
# What the recipe measured, without the truth
# -------------------------------------------
# Left, the accepted steps in units of :math:`1/L`: after the first iterations they are several
# times the safe step (the median and the largest are printed above).  Right, the loss above its
# exact minimum, a signal that needs no truth: it falls by orders of magnitude together with the
# kernel error.

fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
axes[0].semilogy(np.arange(1, len(steps) + 1), steps)
axes[0].set(xlabel="iteration", ylabel="step × L", title="accepted step, in units of 1/L")
for label, history in (("safe step 1/L", safe), ("step following the curvature", recipe)):
    excess = np.maximum(history["excess"], 1e-16)  # float64 rounding can reach zero
    axes[1].semilogy(np.arange(1, len(excess) + 1), excess, label=label)
axes[1].set(xlabel="iteration", ylabel="f(k) − f(k*)", title="loss above its exact minimum")
axes[1].legend()
for ax in axes:
    ax.grid(True, which="both", alpha=0.3)
plt.show()

# %%
# The kernels on one colour scale: the safe step's, the recipe's, the exact least-squares kernel
# and the true one.

kernels = [k_safe, k_hat, k_star.reshape(k_true.shape).to(k_true.dtype), k_true]
scale = Normalize(0.0, max(kernel.max().item() for kernel in kernels))
style = {"cmap": "viridis", "rescale_mode": None, "show": False, "return_fig": True}
titles = ["safe step 1/L", "recipe", "exact least squares", "true"]
fig = dinv.utils.plot(kernels, titles=titles, norm=scale, figsize=(10.5, 3), **style)
fig.colorbar(plt.cm.ScalarMappable(scale, "viridis"), ax=fig.axes, shrink=0.8, label="kernel value")
plt.show()

# %%
# Results
# -------
# sphinx_gallery_thumbnail_number = 1

results = {"safe step 1/L": row_safe, "recipe": row_recipe}
print_table(results)

# %%
# References
# ----------
# .. [#Blondel2014] M. Blondel, A. Fujino and N. Ueda, "Large-scale Multiclass Support Vector
#    Machine Training via Euclidean Projection onto the Simplex", *ICPR* 2014.
# .. [#Beck2009] A. Beck and M. Teboulle, "A Fast Iterative Shrinkage-Thresholding Algorithm for
#    Linear Inverse Problems", *SIAM Journal on Imaging Sciences* 2(1), 2009.
# .. [#ODonoghue2015] B. O'Donoghue and E. Candès, "Adaptive Restart for Accelerated Gradient
#    Schemes", *Foundations of Computational Mathematics* 15, 2015.

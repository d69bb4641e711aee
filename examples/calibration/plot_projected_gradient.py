r"""
Projected gradient descent on the simplex
=========================================

After this page you can estimate a blur kernel from a sharp image and its blurry measurement with
nothing but autograd and a projection, choose the step size from a curvature bound instead of by
trial, and tell a converged calibration from one whose loss curve merely looks flat.

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

    k_{t+1} = P_\simplex\big(k_t - \tau \nabla f(k_t)\big).

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
import PIL.Image
import torch
from matplotlib.cbook import get_sample_data
from tqdm import tqdm

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


def show_images(images, titles):
    """RGB images side by side."""
    fig, axes = plt.subplots(1, len(images), figsize=(3.6 * len(images), 3.8), layout="constrained")
    for ax, image, title in zip(axes, images, titles):
        ax.imshow(image.squeeze(0).permute(1, 2, 0).clamp(0, 1).cpu().numpy())
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
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
# Projecting onto the simplex
# ---------------------------
# The Euclidean projection of a vector :math:`v \in \mathbb{R}^m` onto the simplex is
# :math:`\max(v - \lambda, 0)` for the unique threshold :math:`\lambda` that makes the result sum
# to one.  Sorting :math:`v` in decreasing order, :math:`u_1 \ge \dots \ge u_m`, the threshold is
# :math:`\lambda = (\sum_{i \le \rho} u_i - 1)/\rho` where :math:`\rho` is the largest index with
# :math:`u_\rho - (\sum_{i \le \rho} u_i - 1)/\rho > 0` [#Blondel2014]_.
#
# The function below projects every element of a batch onto its own simplex (a batch of kernels
# of shape ``(B, 1, h, w)`` gives ``B`` independent projections), accepts tensors in any memory
# layout, and refuses inputs it cannot project with a message that says why.


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


# A batch of two kernels, one of them a non-contiguous (transposed) view: each is projected alone.
v = torch.randn(2, 1, KERNEL_SIZE, KERNEL_SIZE, generator=torch.Generator().manual_seed(1))
p = project_simplex(v.transpose(-1, -2))
print("sums per kernel:", [f"{s:.6f}" for s in p.flatten(1).sum(dim=1).tolist()])
print(f"smallest entry: {p.min().item():.3g}, non-zero entries: {(p > 0).flatten(1).sum(1).tolist()}")

# %%
# The loss and its gradient
# -------------------------
# :class:`deepinv.optim.L2` evaluates :math:`\tfrac12\|\forw{x,k}-y\|^2`; we divide it by the number
# of measured values so that the scale does not depend on the image size.  The kernel is swapped
# into the operator with ``physics.update(filter=k)``; autograd differentiates through the
# convolution.  All methods start from the same flat 15×15 square.

physics = dinv.physics.Blur(filter=k_true.clone(), padding="valid", device=device)
data_fidelity = dinv.optim.L2()


def loss_and_grad(k):
    """f(k) and its gradient, by autograd through the Blur operator."""
    k = k.detach().requires_grad_(True)
    physics.update(filter=k)
    loss = data_fidelity(x=x, y=y, physics=physics).sum() / y.numel()
    (grad,) = torch.autograd.grad(loss, k)
    return loss.item(), grad


k_init = torch.zeros_like(k_true)
k_init[..., 5:-5, 5:-5] = 1.0
k_init = project_simplex(k_init)
err_init, psnr_init = kernel_errors(k_init, k_true)
print(f"initial kernel: relative error {err_init:.4f}, PSNR {psnr_init:.2f} dB")

# %%
# The plain setting: a fixed step of 0.7
# --------------------------------------
# A fixed step and a fixed number of iterations is the most common first attempt.

N_ITER_PLAIN = 60 if FAST else 1000  # iterations of plain projected gradient descent
STEP_PLAIN = 0.7  # fixed step size


def projected_gradient(k0, step, n_iter, label="plain PGD"):
    """Plain projected gradient descent; returns the kernel, losses and kernel errors."""
    k, losses, errors = k0.clone(), [], []
    for _ in tqdm(range(n_iter), desc=label):
        loss, grad = loss_and_grad(k)
        k = project_simplex(k - step * grad)
        losses.append(loss)
        errors.append(kernel_errors(k, k_true)[0])
    return k, losses, errors


start = time.perf_counter()
k_plain, losses_plain, errors_plain = projected_gradient(k_init, STEP_PLAIN, N_ITER_PLAIN)
time_plain = time.perf_counter() - start
err_plain, psnr_plain = kernel_errors(k_plain, k_true)
print(f"plain PGD, {N_ITER_PLAIN} iterations, step {STEP_PLAIN}: "
      f"relative error {err_plain:.4f}, PSNR {psnr_plain:.2f} dB, "
      f"{time_plain:.1f} s on {torch.get_num_threads()} threads")
print(f"loss went from {losses_plain[0]:.4e} to {losses_plain[-1]:.4e}")

# %%
# The loss has dropped by orders of magnitude and looks flat on a log scale, yet the printed kernel
# error says the estimate is still far from the truth.  A loss curve alone cannot tell how close
# the solution is: the last digits of the loss carry the kernel's fine structure.
#
# How large may the step be?
# --------------------------
# :math:`f` is quadratic in :math:`k`, so its gradient is Lipschitz with constant :math:`L`, the
# largest eigenvalue of its Hessian.  Every iterate stays on the simplex, so differences of
# iterates sum to zero and only the curvature along the plane :math:`\sum_i d_i = 0` matters.  We
# measure it with a power iteration on Hessian-vector products, which autograd gives by
# differentiating the gradient once more; the step :math:`1/L` then guarantees that every
# projected gradient step decreases :math:`f` [#Beck2009]_.

N_POWER = 10 if FAST else 50  # power iterations for the curvature bound


def hessian_vector_product(d):
    """Hessian of f applied to d (f is quadratic, so the point does not matter)."""
    k = k_init.detach().requires_grad_(True)
    physics.update(filter=k)
    loss = data_fidelity(x=x, y=y, physics=physics).sum() / y.numel()
    (grad,) = torch.autograd.grad(loss, k, create_graph=True)
    (hd,) = torch.autograd.grad(grad, k, grad_outputs=d)
    return hd.detach()


d = torch.randn(k_init.shape, generator=torch.Generator().manual_seed(2)).to(device)
for _ in range(N_POWER):
    d = d - d.mean()  # stay in the sum-zero plane
    d = d / d.norm()
    hd = hessian_vector_product(d)
    hd = hd - hd.mean()
    lipschitz = (d * hd).sum().item()
    d = hd
print(f"curvature bound on the sum-zero plane: L = {lipschitz:.3f}, so 1/L = {1 / lipschitz:.3f}")
print(f"the plain step {STEP_PLAIN} is {STEP_PLAIN * lipschitz:.1f}/L")

# %%
# The plain step is larger than :math:`2/L`: it only works because the projection quickly makes the
# kernel sparse, and along the few directions that remain the curvature is smaller.  Nothing
# guarantees descent.  The safe step :math:`1/L`, on the other hand, is tiny along the flat
# directions of this badly conditioned problem, where plain gradient descent crawls.
#
# Acceleration with restart
# -------------------------
# FISTA [#Beck2009]_ adds momentum to the projected step and converges as :math:`1/t^2` instead of
# :math:`1/t`; restarting the momentum whenever it points uphill [#ODonoghue2015]_ keeps it fast on
# problems that are strongly convex near the solution, as this one is.  We stop when the
# projected-gradient step moves the kernel by less than a relative tolerance: unlike the loss, that
# measure goes to zero only at the minimiser.

N_ITER_MAX = 150 if FAST else 2000  # cap on accelerated iterations
TOL = 2e-7  # relative size of the projected-gradient step at which we stop


def accelerated_projected_gradient(k0, step, n_iter, tol, label="accelerated PGD"):
    """FISTA with adaptive restart on the simplex; returns the kernel, losses and kernel errors."""
    k, z, momentum = k0.clone(), k0.clone(), 1.0
    losses, errors = [], []
    for _ in tqdm(range(n_iter), desc=label):
        loss, grad = loss_and_grad(z)
        k_next = project_simplex(z - step * grad)
        moved = (k_next - z).norm() / k_next.norm()
        if ((k_next - k) * (z - k_next)).sum() > 0:  # momentum points uphill: restart
            momentum, z = 1.0, k_next.clone()
        else:
            momentum_next = (1 + (1 + 4 * momentum**2) ** 0.5) / 2
            z = k_next + (momentum - 1) / momentum_next * (k_next - k)
            momentum = momentum_next
        k = k_next
        losses.append(loss)
        errors.append(kernel_errors(k, k_true)[0])
        if moved < tol:
            break
    return k, losses, errors


start = time.perf_counter()
k_fista, losses_fista, errors_fista = accelerated_projected_gradient(
    k_init, 1.0 / lipschitz, N_ITER_MAX, TOL
)
time_fista = time.perf_counter() - start
err_fista, psnr_fista = kernel_errors(k_fista, k_true)
print(f"accelerated PGD with restart, step 1/L, {len(losses_fista)} iterations: "
      f"relative error {err_fista:.4f}, PSNR {psnr_fista:.2f} dB, "
      f"{time_fista:.1f} s on {torch.get_num_threads()} threads")

# %%
# Loss and kernel error along the iterations
# ------------------------------------------
# Both curves on log axes.  The plain method's loss flattens early while its kernel error stays
# high; the accelerated method keeps improving the kernel until it stops.

fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
for label, losses, errors in (
    (f"plain PGD, step {STEP_PLAIN}", losses_plain, errors_plain),
    ("accelerated PGD with restart, step 1/L", losses_fista, errors_fista),
):
    iterations = np.arange(1, len(losses) + 1)
    axes[0].loglog(iterations, losses, label=label)
    axes[1].loglog(iterations, errors, label=label)
axes[0].set(xlabel="iteration", ylabel="loss f(k)", title="loss")
axes[1].set(xlabel="iteration", ylabel="relative kernel error", title="kernel error")
for ax in axes:
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
plt.show()

# %%
# Initial, estimated and true kernels on one colour scale; each title carries the measured error.

show_kernels(
    [k_init, k_plain, k_fista, k_true],
    [
        f"initial — {100 * err_init:.1f} % error",
        f"plain PGD — {100 * err_plain:.1f} % error",
        f"accelerated — {100 * err_fista:.1f} % error",
        "true kernel",
    ],
    "Projected gradient descent on the simplex",
)

# %%
# Deblurring with the estimated kernel
# ------------------------------------
# The test of a calibration is what it lets us do.  We deblur :math:`y` with a total-variation
# prior (:class:`deepinv.optim.TVPrior`, proximal gradient from
# :func:`deepinv.optim.optim_builder`), once with the estimated kernel and once with the true one,
# with identical settings.  PSNR is measured on the part of the image that the valid convolution
# observes.

N_ITER_DEBLUR = 10 if FAST else 50  # iterations of the TV deconvolution
crop = KERNEL_SIZE // 2


def deblur(k):
    """TV-regularised deconvolution of y with kernel k."""
    solver = dinv.optim.optim_builder(
        iteration="PGD",
        prior=dinv.optim.TVPrior(n_it_max=20),
        data_fidelity=dinv.optim.L2(),
        params_algo={"stepsize": 1.0, "lambda": 0.01},
        max_iter=N_ITER_DEBLUR,
        early_stop=False,
    )
    blur = dinv.physics.Blur(filter=k, padding="valid", device=device)
    start_image = torch.nn.functional.pad(y, (crop,) * 4, mode="replicate")
    with torch.no_grad():
        return solver(y, blur, init=start_image).clamp(0, 1)


def interior_psnr(image):
    inner = (..., slice(crop, -crop), slice(crop, -crop))
    return dinv.metric.PSNR()(image[inner], x[inner]).item()


x_hat_estimated, x_hat_true = deblur(k_fista), deblur(k_true)
psnr_estimated, psnr_true = interior_psnr(x_hat_estimated), interior_psnr(x_hat_true)
print(f"deblurred PSNR: {psnr_estimated:.2f} dB with the estimated kernel, "
      f"{psnr_true:.2f} dB with the true kernel")
show_images(
    [y, x_hat_estimated, x_hat_true],
    [
        "measurement y",
        f"deblurred, estimated kernel — {psnr_estimated:.2f} dB",
        f"deblurred, true kernel — {psnr_true:.2f} dB",
    ],
)

# %%
# Summary
# -------
# The numbers this page measured when it was built:

# sphinx_gallery_thumbnail_number = 3
print(f"plain PGD ({len(losses_plain)} iterations, step {STEP_PLAIN}): "
      f"relative kernel error {err_plain:.4f}")
print(f"accelerated PGD ({len(losses_fista)} iterations, step 1/L): "
      f"relative kernel error {err_fista:.4f}")
print(f"final relative kernel error: {err_fista:.4f}")

# %%
# References
# ----------
# .. [#Blondel2014] M. Blondel, A. Fujino and N. Ueda, "Large-scale Multiclass Support Vector
#    Machine Training via Euclidean Projection onto the Simplex", *ICPR* 2014.
# .. [#Beck2009] A. Beck and M. Teboulle, "A Fast Iterative Shrinkage-Thresholding Algorithm for
#    Linear Inverse Problems", *SIAM Journal on Imaging Sciences* 2(1), 2009.
# .. [#ODonoghue2015] B. O'Donoghue and E. Candès, "Adaptive Restart for Accelerated Gradient
#    Schemes", *Foundations of Computational Mathematics* 15, 2015.

r"""
Adam with a projection after each step
======================================

After this page you can calibrate a blur kernel with a stock :class:`torch.optim.Adam`
optimiser, keep the kernel on the simplex by projecting after each step, and pick a learning-rate
schedule that lets Adam settle on the minimiser instead of wandering around it.

We estimate the kernel :math:`k` of a :class:`deepinv.physics.Blur` operator from a sharp image
:math:`x` and its measurement :math:`y = \noise{\forw{x, k}}` by solving

.. math::

    \hat k \in \argmin_{k \in \simplex} \frac{1}{2n}\|\forw{x, k} - y\|^2,

with :math:`n` the number of measured values and :math:`\simplex` the simplex of non-negative
kernels that sum to one.  Adam [#Kingma2015]_ scales each coordinate's step by a running estimate
of its gradient's magnitude; after every optimiser step we project the kernel back onto
:math:`\simplex`.

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
# Projection and loss
# -------------------
# The sort-based Euclidean projection onto the simplex [#Blondel2014]_, batch by batch (see the
# page on projected gradient descent for how it works), and the least-squares loss of
# :class:`deepinv.optim.L2` divided by the number of measured values.


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


physics = dinv.physics.Blur(filter=k_true.clone(), padding="valid", device=device)
data_fidelity = dinv.optim.L2()

k_init = torch.zeros_like(k_true)
k_init[..., 5:-5, 5:-5] = 1.0
k_init = project_simplex(k_init)
err_init, psnr_init = kernel_errors(k_init, k_true)
print(f"initial kernel: relative error {err_init:.4f}, PSNR {psnr_init:.2f} dB")

# %%
# One optimiser loop for every setting
# ------------------------------------
# The kernel is an ordinary tensor with ``requires_grad=True`` handed to the optimiser.  Each
# iteration swaps it into the operator, back-propagates the loss, lets Adam step, and projects the
# kernel's data in place (inside :func:`torch.no_grad`, so autograd does not record the
# projection).  An optional scheduler changes the learning rate after each step.

LR = 0.1  # Adam's learning rate (its largest step per kernel entry)
N_ITER_PLAIN = 40 if FAST else 200  # iterations of the plain setting
N_ITER = 60 if FAST else 300  # iterations of the scheduled settings


def calibrate_with_adam(n_iter, lr, betas=(0.9, 0.999), cosine=False, label="Adam"):
    """Adam + projection; returns the kernel, losses and kernel errors along the iterations."""
    k = k_init.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([k], lr=lr, betas=betas)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=n_iter) if cosine else None
    losses, errors = [], []
    for _ in tqdm(range(n_iter), desc=label):
        optimizer.zero_grad()
        physics.update(filter=k)
        loss = data_fidelity(x=x, y=y, physics=physics).sum() / y.numel()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        with torch.no_grad():
            k.copy_(project_simplex(k))
        losses.append(loss.item())
        errors.append(kernel_errors(k.detach(), k_true)[0])
    return k.detach(), losses, errors


def run(label, **settings):
    start = time.perf_counter()
    k, losses, errors = calibrate_with_adam(label=label, **settings)
    seconds = time.perf_counter() - start
    err, psnr = kernel_errors(k, k_true)
    print(f"{label}: {len(losses)} iterations, relative error {err:.4f}, PSNR {psnr:.2f} dB, "
          f"{seconds:.1f} s on {torch.get_num_threads()} threads")
    return k, losses, errors, err


# %%
# The plain setting: constant learning rate
# -----------------------------------------
# Adam's step on each entry is close to the learning rate whatever the gradient's size, so with a
# constant learning rate the kernel keeps moving by about that much: near the minimiser it hops
# around it instead of converging, and where it stops depends on when we stop.  The spikes in
# the curves further down are such hops.

k_plain, losses_plain, errors_plain, err_plain = run(
    "Adam, constant lr", n_iter=N_ITER_PLAIN, lr=LR
)

# %%
# A schedule that lets Adam settle
# --------------------------------
# :class:`torch.optim.lr_scheduler.CosineAnnealingLR` lowers the learning rate smoothly to zero
# over the run, so the steps shrink as the kernel approaches the minimiser.  We also try a short
# memory for the squared gradients, ``betas=(0.9, 0.9)``: the gradient shrinks by orders of
# magnitude during the run, and with the default :math:`\beta_2 = 0.999` the step normaliser still
# remembers the large early gradients, which makes the late steps needlessly small.

k_cos, losses_cos, errors_cos, err_cos = run(
    "Adam, cosine schedule", n_iter=N_ITER, lr=LR, cosine=True
)
k_hat, losses_hat, errors_hat, err_hat = run(
    "Adam, cosine schedule, betas (0.9, 0.9)", n_iter=N_ITER, lr=LR, betas=(0.9, 0.9), cosine=True
)
psnr_hat = kernel_errors(k_hat, k_true)[1]

# %%
# Loss and kernel error along the iterations, on log axes.

fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
for label, losses, errors in (
    ("constant lr", losses_plain, errors_plain),
    ("cosine schedule", losses_cos, errors_cos),
    ("cosine schedule, betas (0.9, 0.9)", losses_hat, errors_hat),
):
    iterations = np.arange(1, len(losses) + 1)
    axes[0].loglog(iterations, losses, label=label)
    axes[1].loglog(iterations, errors, label=label)
axes[0].set(xlabel="iteration", ylabel="loss", title="loss")
axes[1].set(xlabel="iteration", ylabel="relative kernel error", title="kernel error")
for ax in axes:
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
plt.show()

# %%
# Initial, estimated and true kernels on one colour scale.

show_kernels(
    [k_init, k_plain, k_hat, k_true],
    [
        f"initial — {100 * err_init:.1f} % error",
        f"constant lr — {100 * err_plain:.1f} % error",
        f"cosine, betas (0.9, 0.9) — {100 * err_hat:.1f} % error",
        "true kernel",
    ],
    "Adam with a projection after each step",
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


x_hat_estimated, x_hat_true = deblur(k_hat), deblur(k_true)
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
print(f"constant lr ({len(losses_plain)} iterations): relative kernel error {err_plain:.4f}")
print(f"cosine schedule ({len(losses_cos)} iterations): relative kernel error {err_cos:.4f}")
print(f"cosine schedule, betas (0.9, 0.9) ({len(losses_hat)} iterations): "
      f"relative kernel error {err_hat:.4f}")
print(f"final relative kernel error: {err_hat:.4f}")

# %%
# References
# ----------
# .. [#Kingma2015] D. P. Kingma and J. Ba, "Adam: A Method for Stochastic Optimization",
#    *ICLR* 2015.
# .. [#Blondel2014] M. Blondel, A. Fujino and N. Ueda, "Large-scale Multiclass Support Vector
#    Machine Training via Euclidean Projection onto the Simplex", *ICPR* 2014.

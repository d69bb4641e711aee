r"""
AdamW and an L1 loss: the filter as a network weight
====================================================

After this page you can calibrate a physics operator exactly as you would train a layer of a
network: the blur filter becomes the parameter of :class:`torch.optim.AdamW`, the loss is a stock
:class:`torch.nn.L1Loss`, and a projection after each step keeps the filter a valid kernel.  You
will also see what the choice of loss costs in accuracy.

The filter :math:`k` of a :class:`deepinv.physics.Blur` operator is fitted to a sharp image
:math:`x` and its measurement :math:`y = \noise{\forw{x, k}}` by

.. math::

    \hat k \in \argmin_{k \in \simplex} \frac{1}{n}\|\forw{x, k} - y\|_1,

with :math:`n` the number of measured values and :math:`\simplex` the simplex of non-negative
kernels that sum to one.

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
# Projection
# ----------
# The sort-based Euclidean projection onto the simplex [#Blondel2014]_, batch by batch (the page
# on projected gradient descent explains it).


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


k_init = torch.zeros_like(k_true)
k_init[..., 5:-5, 5:-5] = 1.0
k_init = project_simplex(k_init)
err_init, psnr_init = kernel_errors(k_init, k_true)
print(f"initial kernel: relative error {err_init:.4f}, PSNR {psnr_init:.2f} dB")

# %%
# The training loop
# -----------------
# The operator owns its filter: we build a :class:`deepinv.physics.Blur` whose ``filter`` is a
# tensor with ``requires_grad=True`` and give that tensor to the optimiser, as we would give it a
# network's weights.  The loop is the usual one — forward, loss, backward, step — followed by the
# projection of the filter's data onto the simplex.  AdamW [#Loshchilov2019]_ also shrinks the
# weights by a small factor at each step (weight decay); the projection re-normalises the filter
# right after, so the decay only nudges small entries towards zero.

LR = 0.1  # AdamW's learning rate
N_ITER_PLAIN = 30 if FAST else 100  # iterations of the plain setting
N_ITER = 60 if FAST else 300  # iterations of the scheduled settings


def train_filter(loss_fn, n_iter, lr, betas=(0.9, 0.999), cosine=False, label="AdamW"):
    """AdamW on the operator's filter + projection; returns the filter, losses and kernel errors."""
    physics = dinv.physics.Blur(filter=k_init.clone().requires_grad_(True), padding="valid", device=device)
    optimizer = torch.optim.AdamW([physics.filter], lr=lr, betas=betas)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=n_iter) if cosine else None
    losses, errors = [], []
    for _ in tqdm(range(n_iter), desc=label):
        optimizer.zero_grad()
        loss = loss_fn(physics.A(x), y)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        with torch.no_grad():
            physics.filter.copy_(project_simplex(physics.filter))
        losses.append(loss.item())
        errors.append(kernel_errors(physics.filter.detach(), k_true)[0])
    return physics.filter.detach().clone(), losses, errors


def run(label, **settings):
    start = time.perf_counter()
    k, losses, errors = train_filter(label=label, **settings)
    seconds = time.perf_counter() - start
    err, psnr = kernel_errors(k, k_true)
    print(f"{label}: {len(losses)} iterations, relative error {err:.4f}, PSNR {psnr:.2f} dB, "
          f"{seconds:.1f} s on {torch.get_num_threads()} threads")
    return k, losses, errors, err


# %%
# The plain setting, then a schedule
# ----------------------------------
# First a short run at a constant learning rate, then the same recipe that makes Adam settle on
# the least-squares page: a cosine decay of the learning rate to zero
# (:class:`torch.optim.lr_scheduler.CosineAnnealingLR`) and a short second-moment memory.

l1 = torch.nn.L1Loss()
k_plain, losses_plain, errors_plain, err_plain = run(
    "AdamW + L1, constant lr", loss_fn=l1, n_iter=N_ITER_PLAIN, lr=LR
)
k_hat, losses_hat, errors_hat, err_hat = run(
    "AdamW + L1, cosine schedule, betas (0.9, 0.9)",
    loss_fn=l1, n_iter=N_ITER, lr=LR, betas=(0.9, 0.9), cosine=True,
)
psnr_hat = kernel_errors(k_hat, k_true)[1]

# %%
# The price of the L1 loss
# ------------------------
# The noise here is Gaussian.  Least squares is then the maximum-likelihood criterion, while the L1
# loss is the maximum-likelihood criterion for Laplace noise: it weighs every residual by its sign
# only, throws away the size of the residuals, and so averages the noise less efficiently.  For a
# single location parameter the L1 estimate (the median) has :math:`\pi/2 \approx 1.57` times the
# variance of the least-squares one (the mean), about 25 % more error; a kernel fit behaves much
# the same way.  So even a perfectly converged L1 calibration ends above the least-squares floor,
# whatever the optimiser.  The same loop with :class:`torch.nn.MSELoss` shows the difference:

k_mse, losses_mse, errors_mse, err_mse = run(
    "AdamW + MSE, cosine schedule, betas (0.9, 0.9)",
    loss_fn=torch.nn.MSELoss(), n_iter=N_ITER, lr=LR, betas=(0.9, 0.9), cosine=True,
)
print(f"L1 / MSE kernel error ratio: {err_hat / err_mse:.2f}")

# %%
# Loss and kernel error along the iterations, on log axes (the L1 and MSE losses are in different
# units; compare their shapes, and compare the kernel errors directly).

fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
for label, losses, errors in (
    ("L1, constant lr", losses_plain, errors_plain),
    ("L1, cosine schedule", losses_hat, errors_hat),
    ("MSE, cosine schedule", losses_mse, errors_mse),
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
        f"L1, constant lr — {100 * err_plain:.1f} % error",
        f"L1, cosine — {100 * err_hat:.1f} % error",
        "true kernel",
    ],
    "AdamW on the operator's filter",
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
print(f"L1, constant lr ({len(losses_plain)} iterations): relative kernel error {err_plain:.4f}")
print(f"MSE, cosine schedule ({len(losses_mse)} iterations): relative kernel error {err_mse:.4f}")
print(f"L1, cosine schedule ({len(losses_hat)} iterations): relative kernel error {err_hat:.4f}")
print(f"final relative kernel error: {err_hat:.4f}")

# %%
# References
# ----------
# .. [#Loshchilov2019] I. Loshchilov and F. Hutter, "Decoupled Weight Decay Regularization",
#    *ICLR* 2019.
# .. [#Blondel2014] M. Blondel, A. Fujino and N. Ueda, "Large-scale Multiclass Support Vector
#    Machine Training via Euclidean Projection onto the Simplex", *ICPR* 2014.

r"""
Generating motion-blur kernels
==============================

After this page you can draw random, reproducible motion-blur kernels with
:class:`deepinv.physics.generator.MotionBlurGenerator`, know what its ``psf_size``, ``l`` and
``sigma`` arguments do, generate a batch in one call, and build the blurry, noisy measurement
that every calibration page of this gallery starts from.

A motion-blur kernel is the path a camera traces during the exposure, drawn as light on a small
grid.  The generator samples the two coordinates of that path from a Gaussian process and
rasterises it, so every kernel :math:`k` lies on the simplex

.. math::

    \simplex = \Big\{k \in \mathbb{R}^{h \times w} : k_{ij} \ge 0,\ \sum_{ij} k_{ij} = 1\Big\}.

The measurement of a sharp image :math:`x` is then :math:`y = \noise{\forw{x, k}} = k * x +
\varepsilon` with Gaussian noise :math:`\varepsilon`.

Run it in fast mode (a small image, as the test-suite does) with the environment variable
``CALIBRATION_GALLERY_FAST=1``.
"""

# %%
# Setup
# -----

import os

import matplotlib.pyplot as plt
import torch

import deepinv as dinv

from calibration_helpers import load_photo, print_table

FAST = os.environ.get("CALIBRATION_GALLERY_FAST") == "1"  # smoke-test mode: a small image
IMG_SIZE = 64 if FAST else 256  # side of the square test image, in pixels
KERNEL_SIZE = 25  # side of the square blur kernel, in pixels
SIGMA = 0.02  # standard deviation of the measurement noise
KERNEL_CMAP = "viridis"  # one colour map for kernels on every page

# %%
# One kernel, reproducibly
# ------------------------
# The generator draws from the :class:`torch.Generator` it is given; ``step(batch, seed=...)``
# re-seeds it first, so the same seed always gives the same kernel.  We draw on the CPU: a CUDA
# generator produces a different stream for the same seed.

generator = dinv.physics.generator.MotionBlurGenerator(
    psf_size=(KERNEL_SIZE, KERNEL_SIZE), rng=torch.Generator("cpu")
)
k_true = generator.step(1, seed=123)["filter"]
k_again = generator.step(1, seed=123)["filter"]
print(f"kernel shape {tuple(k_true.shape)}, same kernel re-drawn: {torch.equal(k_true, k_again)}")
print(
    f"sum {k_true.sum().item():.6f}, smallest entry {k_true.min().item():.3g}, "
    f"non-zero entries {(k_true > 0).sum().item()} of {k_true.numel()}"
)

fig, ax = plt.subplots(figsize=(4, 3.6), layout="constrained")
im = ax.imshow(k_true.squeeze().numpy(), cmap=KERNEL_CMAP, vmin=0)
ax.set_title("the default kernel (seed 123)")
ax.set_axis_off()
fig.colorbar(im, ax=ax, shrink=0.8, label="kernel value")
plt.show()

# %%
# What ``l`` and ``sigma`` do
# ---------------------------
# The path's coordinates are Gaussian processes with a Matérn covariance: ``sigma`` is their
# standard deviation (how far the camera travels, as a fraction of the grid) and ``l`` their
# length scale (how smooth the path is: a small ``l`` gives a jittery path that turns often, a
# large one a smooth sweep).  Each row below uses one seed, each column one setting; they are
# shown on their own colour scales, since a longer path spreads the same light more thinly.

seeds = [0, 1, 2]
settings = [(0.1, 0.25), (0.3, 0.25), (1.0, 0.25), (0.3, 0.1), (0.3, 0.5)]  # (l, sigma)
fig, axes = plt.subplots(
    len(seeds), len(settings), figsize=(2.2 * len(settings), 2.3 * len(seeds)), layout="constrained"
)
for row, seed in enumerate(seeds):
    for col, (length, sigma) in enumerate(settings):
        k = generator.step(1, l=length, sigma=sigma, seed=seed)["filter"]
        axes[row, col].imshow(k.squeeze().numpy(), cmap=KERNEL_CMAP, vmin=0)
        axes[row, col].set_axis_off()
        if row == 0:
            axes[row, col].set_title(f"l={length}, sigma={sigma}", fontsize=9)
fig.suptitle("Rows: seeds 0, 1, 2.  Columns: length scale l and amplitude sigma")
plt.show()

# %%
# What ``psf_size`` does
# ----------------------
# ``psf_size`` is the grid the path is drawn on.  The path itself is defined relative to the
# grid, so the same seed gives the same shape at any size, sampled more or less finely.

sizes = [15, 25, 41]
fig, axes = plt.subplots(1, len(sizes), figsize=(3.2 * len(sizes), 3.2), layout="constrained")
for ax, size in zip(axes, sizes):
    generator_of_size = dinv.physics.generator.MotionBlurGenerator(
        psf_size=(size, size), rng=torch.Generator("cpu")
    )
    kernel = generator_of_size.step(1, seed=123)["filter"]
    ax.imshow(kernel.squeeze().numpy(), cmap=KERNEL_CMAP, vmin=0)
    ax.set_title(f"psf_size=({size}, {size})")
    ax.set_axis_off()
plt.show()

# %%
# A batch in one call
# -------------------
# ``step(8)`` returns eight different kernels of shape ``(8, 1, 25, 25)``.  We check, kernel by
# kernel, that each is a valid blur: non-negative and summing to one.

batch = generator.step(8, seed=0)["filter"]
sums = batch.flatten(1).sum(dim=1)
print(f"batch shape {tuple(batch.shape)}")
print(f"smallest entry over the batch: {batch.min().item():.3g}")
print(f"largest |sum - 1| over the batch: {(sums - 1).abs().max().item():.2e}")

fig, axes = plt.subplots(2, 4, figsize=(8, 4.4), layout="constrained")
for i, ax in enumerate(axes.flat):
    ax.imshow(batch[i].squeeze().numpy(), cmap=KERNEL_CMAP, vmin=0)
    ax.set_title(f"#{i}, sum {sums[i].item():.4f}", fontsize=9)
    ax.set_axis_off()
plt.show()

# %%
# The default measurement
# -----------------------
# The calibration pages all start from this measurement: Grace Hopper's portrait from
# matplotlib's sample data (nothing is downloaded), centre-cropped and resized to 256×256 by
# :func:`~calibration_helpers.load_photo`, blurred
# by the seed-123 kernel with :class:`deepinv.physics.Blur` and "valid" padding (only the pixels
# where the kernel fits inside the image are measured), plus Gaussian noise of standard deviation
# 0.02 from :class:`deepinv.physics.GaussianNoise` with a seeded generator.


x = load_photo(IMG_SIZE)
noise = dinv.physics.GaussianNoise(sigma=SIGMA, rng=torch.Generator("cpu").manual_seed(0))
physics = dinv.physics.Blur(filter=k_true, padding="valid", noise_model=noise)
y = physics(x)
blurred = physics.A(x)
noise_std = (y - blurred).std().item()
print(f"image {tuple(x.shape)} -> measurement {tuple(y.shape)}")
print(f"measured noise standard deviation: {noise_std:.4f} (asked for {SIGMA})")

fig, axes = plt.subplots(1, 3, figsize=(11, 4), layout="constrained")
axes[0].imshow(x.squeeze(0).permute(1, 2, 0).numpy())
axes[0].set_title(f"sharp image x, {x.shape[-1]}×{x.shape[-2]}")
axes[1].imshow(y.squeeze(0).permute(1, 2, 0).clamp(0, 1).numpy())
axes[1].set_title(f"measurement y, {y.shape[-1]}×{y.shape[-2]}")
im = axes[2].imshow(k_true.squeeze().numpy(), cmap=KERNEL_CMAP, vmin=0)
axes[2].set_title("true kernel k")
fig.colorbar(im, ax=axes[2], shrink=0.8)
for ax in axes:
    ax.set_axis_off()
plt.show()

# %%
# Results
# -------
# The next pages recover ``k_true`` from ``x`` and ``y``.

# sphinx_gallery_thumbnail_number = 1
results = {
    "default kernel (seed 123)": {
        "non-zero entries": int((k_true > 0).sum()),
        "sum": k_true.sum().item(),
    },
    "batch of 8 (seed 0)": {
        "non-zero entries": int((batch > 0).sum()) / 8,
        "sum": sums.mean().item(),
        "largest |sum - 1|": (sums - 1).abs().max().item(),
    },
    "measurement": {"noise std": noise_std},
}
print_table(results)

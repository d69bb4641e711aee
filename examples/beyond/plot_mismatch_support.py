r"""
A wrong model (3): a kernel support of the wrong size
=====================================================

After this page you can choose the size of the free-form kernel from the data: you will see what
a support that is too small or too large costs, and select the smallest support that explains
the measurement.

The calibration pages assume that the measurement is exactly :math:`y = \forw{x, k} + n` with
:math:`k \in \simplex` and the support of :math:`k`, 25×25, known.  Nothing tells us its size.
Too small, and the part of the blur that falls outside is lost: the fit folds it back inside.
Too large, and we estimate entries that should be zero, from a measurement that valid padding
makes smaller.  We fit supports that are too small and too large (*without fix*), then the
support selected from the residuals (*with fix*), and compare them with the *matched floor*: the
exact least-squares kernel of the true 25×25 support on the same data.  The fix should bring the
kernel error back within 1.5 times that floor.
"""

# %%
# The default problem
# -------------------
# Grace Hopper's portrait (shipped with matplotlib) at 256×256 pixels, a 25×25 motion-blur kernel
# drawn with seed 123, valid convolution and Gaussian noise of standard deviation 0.02 drawn with
# seed 0; every random draw is made on the CPU, then moved to the device.
# ``CALIBRATION_GALLERY_FAST=1`` runs the page on a 64×64 image with three sizes.
#
# This kernel occupies only rows 9 to 18 and columns 10 to 14 of its 25×25 array, so a 15×15
# support would still hold it; we take 9×9 as the support that is too small and 41×41 as the one
# that is too large.  Kernels of another size are compared with the truth after centre-padding
# (or centre-cropping) them to 25×25.

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
SIZES = (9, 25, 41) if FAST else (9, 13, 17, 21, 25, 33, 41)  # candidate supports, smallest first
SIZE_TOL = 2e-3  # relative excess of the residual still counted as "no better"
device = dinv.utils.get_device(verbose=False)
# Many small solves: on a busy machine, several threads mostly wait for each other.  One thread
# here; the page restores the setting at its end.
threads_before = torch.get_num_threads()
torch.set_num_threads(1)

x = load_photo(IMG_SIZE)
motion = dinv.physics.generator.MotionBlurGenerator((KERNEL_SIZE,) * 2, rng=torch.Generator("cpu"))
k_true = motion.step(1, seed=123)["filter"]
noise = dinv.physics.GaussianNoise(sigma=SIGMA, rng=torch.Generator("cpu").manual_seed(0))
y = dinv.physics.Blur(filter=k_true, padding="valid", noise_model=noise)(x)
x, y, k_true = x.to(device), y.to(device), k_true.to(device)

# %%
# Fitting a support of any size
# -----------------------------
# A kernel of size :math:`K` and the image :math:`x` explain the measured pixels whose
# :math:`K \times K` neighbourhood lies inside :math:`x`; ``centred_pair`` crops :math:`x` (when
# :math:`K` is smaller than the true size) or :math:`y` (when it is larger) so that the two stay
# centred on each other.  ``centre_to`` pads or crops a kernel about its centre
# (:func:`torch.nn.functional.pad` crops with negative widths).  Every fit is exact
# (``blur_quadratic`` and ``solve_simplex_ls``, from the exact-solver page), so that the
# differences we see come from the model and not from an optimiser stopped early.


def centred_pair(x, y, size):
    """x and y cropped about their centres so that a size×size valid blur maps x onto y."""
    if size % 2 != 1 or size < 1:
        raise ValueError(f"the kernel size must be a positive odd number, got {size}")
    excess = x.shape[-1] - y.shape[-1] - (size - 1)  # > 0: x too large; < 0: y too large
    if excess % 2 or x.shape[-2] - y.shape[-2] != x.shape[-1] - y.shape[-1]:
        raise ValueError(f"x {tuple(x.shape)} and y {tuple(y.shape)} are not centred on each other")
    m = abs(excess) // 2
    if excess > 0:
        x = x[..., m:-m, m:-m]
    elif excess < 0:
        y = y[..., m:-m, m:-m]
    if min(y.shape[-2:]) < 1:
        raise ValueError(f"a {size}×{size} kernel leaves no measured pixel")
    return x, y


def centre_to(k, size):
    """Centre-crop or zero-pad a (1, 1, K, K) kernel to size×size."""
    m = (size - k.shape[-1]) // 2
    return torch.nn.functional.pad(k, (m, m, m, m))


def fit_kernel(x, y, size):
    """The exact least-squares kernel (1, 1, size, size) of a given odd size."""
    G, b = blur_quadratic(*centred_pair(x, y, size), size)
    return solve_simplex_ls(G, b).float().reshape(1, 1, size, size)


# %%
# Selecting the size
# ------------------
# We fit every candidate size to the same measured pixels — those the largest size can explain —
# and keep the smallest size whose residual is within a relative 2e-3 of the best.  The quadratic
# of the largest size is built once: a smaller centred kernel is the same problem restricted to
# the central entries, a principal sub-matrix of :math:`G`.


def select_kernel_size(x, y, sizes, tol=SIZE_TOL):
    """The smallest size whose residual is within (1 + tol) of the best; residuals; kernels."""
    sizes = sorted(sizes)
    if len(sizes) < 2 or any(s % 2 != 1 for s in sizes):
        raise ValueError(f"give at least two odd kernel sizes, got {sizes}")
    largest = sizes[-1]
    x_c, y_c = centred_pair(x, y, largest)
    (G_all,), (b_all,) = blur_quadratic(x_c, y_c, largest)
    half_norm = 0.5 * y_c.double().pow(2).sum()
    residuals, kernels = [], []
    for size in sizes:
        rows = torch.arange(size, device=G_all.device) + (largest - size) // 2
        index = (rows.view(-1, 1) * largest + rows.view(1, -1)).flatten()
        G, b = G_all[index][:, index], b_all[index]
        k = solve_simplex_ls(G[None], b[None])[0]
        residuals.append(2 * (0.5 * k @ G @ k - b @ k + half_norm).item())
        kernels.append(k.float().reshape(1, 1, size, size))
    chosen = next(s for s, r in zip(sizes, residuals) if r <= (1 + tol) * min(residuals))
    return chosen, residuals, kernels


start = time.perf_counter()
size_hat, residuals, size_kernels = select_kernel_size(x, y, SIZES)
k_selected = centre_to(fit_kernel(x, y, size_hat), KERNEL_SIZE)
seconds = time.perf_counter() - start
excess = np.array(residuals) / min(residuals) - 1
print_table(
    {
        f"{s}×{s}": {"residual": r, "excess over the best": e}
        for s, r, e in zip(SIZES, residuals, excess)
    }
)
print(f"selected kernel size: {size_hat}×{size_hat}")
outside = size_kernels[-1].clone()
m = (SIZES[-1] - KERNEL_SIZE) // 2
outside[..., m:-m, m:-m] = 0.0
print(f"{SIZES[-1]}×{SIZES[-1]} fit: kernel mass outside the central 25×25: {outside.sum():.1e}")

# %%
# The residual drops steeply until the support holds the whole kernel and then stays flat: larger
# supports only fit the noise a little better.  A support that is too large costs next to nothing
# here: the simplex keeps the extra entries at zero (the mass printed above).  The selected
# support is the smallest one on the plateau; it need not be 25×25 — any support that holds the
# kernel is the right model — and its kernel, padded to 25×25, is compared with the truth.

fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
ax.semilogy(SIZES, excess + 1e-6, "o-")
ax.axhline(SIZE_TOL, color="gray", linestyle="--", label="tolerance")
ax.axvline(size_hat, color="C1", linestyle=":", label=f"selected: {size_hat}×{size_hat}")
ax.set(xlabel="kernel support (pixels)", ylabel="relative excess of the residual (+1e-6)")
ax.set_title("Residual against the kernel size")
ax.grid(True, which="both", alpha=0.3)
ax.legend()
plt.show()

# %%
# Results
# -------
# The too-small and too-large supports are each fitted on their own centred pair, the selected
# one too; the matched floor is the 25×25 fit of the default problem.  The kernels, shown on
# 25×25 and one colour scale, then their relative errors (:class:`deepinv.loss.metric.NRMSE`)
# with each error over the matched floor.

small, large = SIZES[0], SIZES[-1]
k_small = centre_to(fit_kernel(x, y, small), KERNEL_SIZE)
k_large = centre_to(size_kernels[-1], KERNEL_SIZE)  # fitted on its own centred pair
k_floor = fit_kernel(x, y, KERNEL_SIZE)
kernels = {
    f"without fix: {small}×{small} (too small)": k_small,
    f"without fix: {large}×{large} (too large)": k_large,
    f"with fix: selected {size_hat}×{size_hat}": k_selected,
    "matched floor: 25×25": k_floor,
}
errors = [dinv.metric.NRMSE()(k, k_true).item() for k in kernels.values()]
sizes = [f"{small}×{small}", f"{large}×{large}", f"selected {size_hat}×{size_hat}"]
dinv.utils.plot(
    list(kernels.values())[:3] + [k_true],
    titles=[f"{size}, {100 * e:.1f} %" for size, e in zip(sizes, errors)] + ["true kernel"],
    cmap="viridis",
    rescale_mode=None,
    norm=Normalize(0.0, k_true.max().item()),
    figsize=(10, 3.2),
)
results = {name: {"kernel error": e, "× floor": e / errors[-1]} for name, e in zip(kernels, errors)}
results[f"with fix: selected {size_hat}×{size_hat}"]["time"] = f"{seconds:6.2f} s"
print_table(results)
torch.set_num_threads(threads_before)

# %%
# Truncating the kernel costs a large multiple of the floor (first row).  The too-large support
# differs from the floor mainly because that fit sees a smaller measurement — the error of an
# exact fit moves with the data it is given — and the selected support brings the error back to
# the floor's.

# sphinx_gallery_thumbnail_number = 1

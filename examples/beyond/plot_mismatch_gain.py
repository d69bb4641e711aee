r"""
A wrong model (1): an unknown gain and offset
=============================================

After this page you can calibrate a kernel from a detector that scales and shifts the blurred
image — a gain :math:`a` and an offset :math:`c` (dark current, black level) — by estimating both
together with the kernel, and you know what ignoring them costs.

The calibration pages assume that the measurement is exactly :math:`y = \forw{x, k} + n` with
:math:`k \in \simplex`.  Here the data come from

.. math::

    y = a\,\forw{x, k} + c + n, \qquad a = 0.8, \quad c = 0.05.

We fit the usual model anyway (*without fix*), then a model that contains :math:`a` and
:math:`c` (*with fix*), and compare both with the *matched floor*: the exact least-squares kernel
computed with the true :math:`a` and :math:`c` on the same data.  The fix should bring the kernel
error back within 1.5 times that floor.  The two other pages of this series treat a sub-pixel
misregistration and a kernel support of the wrong size.
"""

# %%
# The problem
# -----------
# Grace Hopper's portrait (shipped with matplotlib) at 256×256 pixels, a 25×25 motion-blur kernel
# drawn with seed 123, valid convolution and Gaussian noise of standard deviation 0.02 drawn with
# seed 0, as on every page; the detector multiplies the blurred image by 0.8 and adds 0.05 before
# the noise.  ``CALIBRATION_GALLERY_FAST=1`` runs the page on a 64×64 image.

import os
import time

import torch
from matplotlib.colors import Normalize

import deepinv as dinv

from calibration_helpers import blur_quadratic, load_photo, print_table, solve_simplex_ls

FAST = os.environ.get("CALIBRATION_GALLERY_FAST") == "1"  # smoke-test mode
IMG_SIZE = 64 if FAST else 256  # side of the square test image, in pixels
KERNEL_SIZE = 25  # side of the square blur kernel, in pixels
SIGMA = 0.02  # standard deviation of the measurement noise
GAIN, OFFSET = 0.8, 0.05  # the detector's true gain and offset
device = dinv.utils.get_device(verbose=False)
# Many small solves: on a busy machine, several threads mostly wait for each other.  One thread
# here; the page restores the setting at its end.
threads_before = torch.get_num_threads()
torch.set_num_threads(1)

x = load_photo(IMG_SIZE)
motion = dinv.physics.generator.MotionBlurGenerator((KERNEL_SIZE,) * 2, rng=torch.Generator("cpu"))
k_true = motion.step(1, seed=123)["filter"]
noise = dinv.physics.GaussianNoise(sigma=SIGMA, rng=torch.Generator("cpu").manual_seed(0))
y = noise(GAIN * dinv.physics.Blur(filter=k_true, padding="valid")(x) + OFFSET)
x, y, k_true = x.to(device), y.to(device), k_true.to(device)

# %%
# Without the fix, and the matched floor
# --------------------------------------
# ``blur_quadratic`` writes the loss as :math:`\frac{1}{2}k^\top G k - b^\top k +
# \frac{1}{2}\|y\|^2` and ``solve_simplex_ls`` returns its exact minimiser over the simplex (the
# exact-solver page explains both): every fit on this page is exact, so that the differences we
# see come from the model and not from an optimiser stopped early.  The usual model is fitted to
# :math:`y`; the matched floor to :math:`(y - c)/a` with the true :math:`a, c`.  A kernel on the
# simplex sums to one, so it cannot scale the image: fitted to :math:`y` it must distort itself
# to explain the missing 20 % of light and the constant background.

G, b = blur_quadratic(torch.cat([x, x]), torch.cat([y, (y - OFFSET) / GAIN]), KERNEL_SIZE)
k_without, k_floor = solve_simplex_ls(G, b).float().reshape(2, 1, KERNEL_SIZE, KERNEL_SIZE).split(1)

# %%
# The fix: the gain is the kernel's sum
# -------------------------------------
# :math:`a\,\forw{x, k} = \forw{x, a k}` because the blur is linear in its kernel, so we fit
# :math:`h = a k` with :math:`h \ge 0` and its sum left free, together with :math:`c`.  The gain
# is then :math:`\hat a = \sum_i h_i` and the kernel :math:`\hat k = h / \hat a`: the kernel's sum
# is no longer a constraint but the gain itself.  The offset enters the loss linearly; minimising
# over it in closed form, :math:`c = (\sum y - s^\top h)/m` with :math:`m` the number of measured
# values and :math:`s = M_x \mathbf{1}` the sums of the image crops (the :math:`b` of a
# measurement made of ones), leaves the quadratic with :math:`G - s s^\top/m` and
# :math:`b - s \sum y/m` in :math:`h` alone.
#
# To minimise it over :math:`h \ge 0` with the same exact solver, we bound the sum of :math:`h` by
# a number :math:`T` far above any plausible gain and add one *slack* entry :math:`t \ge 0`:
# :math:`(h/T, t)` with :math:`\sum h/T + t = 1` is a point of a simplex with one more entry, on
# which the quadratic does not depend on :math:`t`.  As long as the minimiser's sum stays below
# :math:`T` (checked), this is the non-negative least-squares solution.


def solve_nonnegative(G, b, bound=10.0):
    """Minimiser of 1/2 hᵀG[i]h - b[i]ᵀh over h >= 0 with sum(h) < bound: G (B, n, n), b (B, n).

    ``h = bound * k[:n]``, ``k`` the simplex minimiser over n + 1 entries, the last one a slack
    that the quadratic ignores."""
    B, n = b.shape
    G_slack = G.new_zeros(B, n + 1, n + 1)
    G_slack[:, :n, :n] = bound**2 * G
    h = bound * solve_simplex_ls(G_slack, torch.cat([bound * b, b.new_zeros(B, 1)], 1))[:, :n]
    if (h.sum(1) > (1 - 1e-9) * bound).any():
        raise ValueError(f"the sum of h reached its bound {bound}: give a larger bound")
    return h


def fit_gain_offset(x, y, kernel_size):
    """Kernel on the simplex, gain and offset that best explain y = a·Blur(k)(x) + c, jointly."""
    if x.dim() != 4 or y.dim() != 4 or x.shape[:2] != y.shape[:2] or x.shape[0] != 1:
        raise ValueError(f"x and y must be (1, C, H, W) and (1, C, h, w), got {x.shape}, {y.shape}")
    G, b = blur_quadratic(torch.cat([x, x]), torch.cat([y, torch.ones_like(y)]), kernel_size)
    G, (b, s), m, y_sum = G[0], b, y.numel(), y.double().sum()
    h = solve_nonnegative((G - torch.outer(s, s) / m)[None], (b - s * y_sum / m)[None])[0]
    gain = h.sum().item()
    if gain <= 0:
        raise ValueError("the fitted gain is zero: the image does not explain the measurement")
    offset = ((y_sum - s @ h) / m).item()
    return (h / gain).float().reshape(1, 1, kernel_size, kernel_size), gain, offset


start = time.perf_counter()
k_fix, gain_hat, offset_hat = fit_gain_offset(x, y, KERNEL_SIZE)
seconds = time.perf_counter() - start

# %%
# Results
# -------
# The kernels on one colour scale, and their relative errors (:class:`deepinv.loss.metric.NRMSE`)
# with each error over the matched floor.

kernels = {"without fix": k_without, "with fix": k_fix, "matched floor": k_floor}
errors = {name: dinv.metric.NRMSE()(k, k_true).item() for name, k in kernels.items()}
dinv.utils.plot(
    list(kernels.values()) + [k_true],
    titles=[f"{name}, {100 * e:.1f} %" for name, e in errors.items()] + ["true kernel"],
    cmap="viridis",
    rescale_mode=None,
    norm=Normalize(0.0, k_true.max().item()),
    figsize=(10, 3.2),
)
results = {
    name: {"kernel error": e, "× floor": e / errors["matched floor"]} for name, e in errors.items()
}
results["with fix"].update({"gain": gain_hat, "offset": offset_hat, "time": f"{seconds:6.2f} s"})
print_table(results)
torch.set_num_threads(threads_before)

# %%
# The fitted gain and offset land close to the truth, and the joint fit, which has two more
# unknowns to estimate from the same data, pays almost nothing for them (``× floor`` of the
# second row); ignoring the detector costs far more (first row).

# sphinx_gallery_thumbnail_number = 1

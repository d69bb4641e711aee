r"""
A Gaussian blur with unknown widths and angle
=============================================

After this page you can calibrate a blur that is described by three numbers instead of a
free-form kernel: an anisotropic Gaussian with widths :math:`\sigma_1, \sigma_2` and an angle
:math:`\theta`.  You will write the kernel as a differentiable function of its parameters, fit
them by automatic differentiation, and read a loss landscape to see why the fit converges and
which solutions are the same blur under another name.

We estimate :math:`p = (\sigma_1, \sigma_2, \theta)` from a sharp image :math:`x` and its
measurement :math:`y = \noise{\forw{x, k_p}}` by solving

.. math::

    \hat p \in \argmin_{p} \frac{1}{2n}\|\forw{x, k_p} - y\|^2,
    \qquad k_p(u) \propto \exp\Big(-\frac{(e_\theta^\perp \cdot u)^2}{2\sigma_1^2}
    - \frac{(e_\theta \cdot u)^2}{2\sigma_2^2}\Big),

with :math:`n` the number of measured values, :math:`u` the pixel offset from the kernel's
centre, :math:`e_\theta` the unit vector at angle :math:`\theta` and :math:`e_\theta^\perp` the
one at :math:`\theta + 90°`.  The kernel is normalised to sum to one, so it stays on the simplex
whatever the parameters.
"""

# %%
# The problem
# -----------
# Grace Hopper's portrait (shipped with matplotlib) at 256×256 pixels, valid convolution and
# Gaussian noise of standard deviation 0.02 drawn with seed 0, as on every page; the kernel is a
# 25×25 anisotropic Gaussian made by :func:`deepinv.physics.functional.gaussian_blur` with
# ``sigma=(3.0, 1.2)`` and ``angle=30`` degrees.  ``CALIBRATION_GALLERY_FAST=1`` runs the page on
# a small image with few iterations.

import os
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import Normalize

import deepinv as dinv

from calibration_helpers import blur_quadratic, load_photo, print_table

FAST = os.environ.get("CALIBRATION_GALLERY_FAST") == "1"  # smoke-test mode
IMG_SIZE = 64 if FAST else 256  # side of the square test image, in pixels
KERNEL_SIZE = 25  # side of the square blur kernel, in pixels
SIGMA = 0.02  # standard deviation of the measurement noise
SIGMA_TRUE = (3.0, 1.2)  # widths of the true Gaussian, in pixels (deepinv's order)
ANGLE_TRUE = 30.0  # angle of the true Gaussian, in degrees
device = dinv.utils.get_device(verbose=False)
# Many small tensor operations: on a busy machine, several threads mostly wait for each other.
# One thread here; the page restores the setting at its end.
threads_before = torch.get_num_threads()
torch.set_num_threads(1)

x = load_photo(IMG_SIZE)
k_true = dinv.physics.functional.gaussian_blur(
    psf_size=(KERNEL_SIZE, KERNEL_SIZE), sigma=SIGMA_TRUE, angle=ANGLE_TRUE
)
noise = dinv.physics.GaussianNoise(sigma=SIGMA, rng=torch.Generator("cpu").manual_seed(0))
y = dinv.physics.Blur(filter=k_true, padding="valid", noise_model=noise)(x)
x, y, k_true = x.to(device), y.to(device), k_true.to(device)
dinv.utils.plot([x, y, k_true], titles=["sharp x", "measured y", "true kernel"], cmap="viridis")

# %%
# The kernel as a differentiable function of its parameters
# ----------------------------------------------------------
# ``deepinv.physics.blur.gaussian_blur(sigma, angle)`` (deprecated) turns its arguments into
# Python floats, so no gradient reaches them; its replacement in ``deepinv.physics.functional``
# also chooses the kernel size from :math:`\max(\sigma)` unless told otherwise.  So we write the
# kernel with tensor operations and deepinv's conventions, read from its source: the centre is
# the middle pixel, and without a size the side is :math:`2c + 1` with
# :math:`c = \lfloor \max(\sigma) / 0.3 + 1 \rfloor`; the angle is in degrees, counter-clockwise
# as displayed; ``sigma[1]`` is the spread along the angle, ``sigma[0]`` across it; the kernel is
# divided by its sum.


def gaussian_kernel(sigma, angle, size=None):
    """Anisotropic Gaussian kernels, differentiable in ``sigma`` and ``angle``.

    ``sigma`` has shape ``(2,)`` or ``(B, 2)`` (pixels, deepinv's order: across, along the angle),
    ``angle`` shape ``()`` or ``(B,)`` (degrees).  Returns ``(B, 1, size, size)`` kernels summing to
    one, in the dtype of ``sigma``; ``size`` defaults to deepinv's rule.
    """
    if not (isinstance(sigma, torch.Tensor) and isinstance(angle, torch.Tensor)):
        raise TypeError("gaussian_kernel expects tensors sigma and angle (use torch.tensor(...))")
    if not sigma.is_floating_point():
        raise TypeError(f"sigma must be a floating-point tensor, got dtype {sigma.dtype}")
    shapes = f"sigma {tuple(sigma.shape)} and angle {tuple(angle.shape)}"
    if sigma.dim() not in (1, 2) or sigma.shape[-1] != 2 or angle.numel() != sigma.numel() // 2:
        raise ValueError(f"expected sigma (2,) or (B, 2) and angle () or (B,), got {shapes}")
    sigma, angle = sigma.reshape(-1, 2), angle.to(sigma.dtype).reshape(-1)
    if not (sigma.isfinite().all() and angle.isfinite().all() and (sigma > 0).all()):
        raise ValueError("the widths sigma must be positive and finite, the angle finite")
    if size is None:  # deepinv's rule, on the shortest decimals (float32 3.3 counts as 3.3)
        size = 2 * int(max(float(str(v)) for v in sigma.detach().cpu().numpy().flat) / 0.3 + 1) + 1
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    half = (size - 1) / 2
    offsets = torch.linspace(-half, half, size, dtype=sigma.dtype, device=sigma.device)
    rows, cols = torch.meshgrid(offsets, offsets, indexing="ij")  # (vertical, horizontal) offsets
    theta = torch.deg2rad(angle).view(-1, 1, 1)
    along = torch.cos(theta) * cols - torch.sin(theta) * rows
    across = torch.sin(theta) * cols + torch.cos(theta) * rows
    s_across, s_along = sigma[:, 0].view(-1, 1, 1), sigma[:, 1].view(-1, 1, 1)
    kernel = torch.exp(-0.5 * (along / s_along) ** 2 - 0.5 * (across / s_across) ** 2)
    return (kernel / kernel.sum(dim=(-2, -1), keepdim=True)).unsqueeze(1)


# %%
# Our kernel must be deepinv's at the same parameters (at the problem's size for the truth, at
# deepinv's automatic size for the others), and its gradient must match finite differences
# (:func:`torch.autograd.gradcheck`, float64).

checks = [(SIGMA_TRUE, ANGLE_TRUE, KERNEL_SIZE), ((1.0, 2.5), -20.0, None), ((4, 1.5), 135, None)]
worst = 0.0
for s, a, n in checks:
    theirs = dinv.physics.functional.gaussian_blur(psf_size=n and (n, n), sigma=s, angle=a)
    ours = gaussian_kernel(torch.tensor(s, dtype=torch.float32), torch.tensor(a), n)
    worst = max(worst, (ours - theirs).abs().max().item())
print(f"largest difference to deepinv's gaussian_blur: {worst:.1e}")
sigma_check = torch.tensor([[1.3, 0.8]], dtype=torch.float64, requires_grad=True)
angle_check = torch.tensor([25.0], dtype=torch.float64, requires_grad=True)
passed = torch.autograd.gradcheck(lambda s, a: gaussian_kernel(s, a, 9), (sigma_check, angle_check))
print(f"gradcheck against finite differences: {passed}")

# %%
# Which parameters are the same blur
# -----------------------------------
# Turning the Gaussian by 180° changes nothing, and swapping the widths while turning by 90°
# swaps the roles of the two axes: :math:`(\sigma_1, \sigma_2, \theta) \equiv (\sigma_2, \sigma_1,
# \theta + 90°)`.  Errors only make sense after mapping every estimate to one representative; we
# pick :math:`\sigma_1 \geq \sigma_2` and :math:`\theta \in [0°, 180°)`, and compare angles modulo
# 180°.


def canonical_parameters(sigma_1, sigma_2, angle):
    """The representative with sigma_1 >= sigma_2 and angle in [0, 180) (0 if isotropic)."""
    values = [float(v) for v in (sigma_1, sigma_2, angle)]
    if not all(np.isfinite(values)) or min(values[:2]) <= 0:
        raise ValueError(f"expected positive finite widths and a finite angle, got {values}")
    sigma_1, sigma_2, angle = values
    if sigma_1 < sigma_2:
        sigma_1, sigma_2, angle = sigma_2, sigma_1, angle + 90.0
    if sigma_1 == sigma_2:
        return sigma_1, sigma_2, 0.0
    angle = angle % 180.0
    return sigma_1, sigma_2, angle if angle < 180.0 else 0.0  # -1e-20 % 180 rounds to 180


def angle_difference(a, b):
    """Distance between two orientations in degrees, modulo 180 (between 0 and 90)."""
    d = abs(float(a) - float(b)) % 180.0
    return min(d, 180.0 - d)


twin = gaussian_kernel(torch.tensor(SIGMA_TRUE[::-1]), torch.tensor(ANGLE_TRUE + 90.0), KERNEL_SIZE)
print(f"(3.0, 1.2, 30°) vs (1.2, 3.0, 120°): {(twin.to(device) - k_true).abs().max().item():.1e}")
p_true = canonical_parameters(*SIGMA_TRUE, ANGLE_TRUE)

# %%
# The loss as a quadratic in the kernel
# --------------------------------------
# The blur is linear in its kernel, so the loss is a quadratic in :math:`k` (see the page on the
# exact least-squares kernel): with ``G, b = blur_quadratic(x, y, 25)`` computed once,
# :math:`\frac{1}{2n}\|\forw{x, k} - y\|^2 = \frac{1}{n}(\frac{1}{2} k^\top G k - b^\top k +
# \frac{1}{2}\|y\|^2)`: the loss of a kernel costs a :math:`625 \times 625` matrix product
# instead of a convolution of the photo, and its gradient no backward pass through the blur.
# Autograd runs from the loss to the kernel, then through our Gaussian to the three parameters.
# We check the quadratic against :class:`deepinv.optim.L2`.

G, b = (t[0] for t in blur_quadratic(x, y, KERNEL_SIZE))
half_y2 = 0.5 * y.double().pow(2).sum()


def losses_of(kernels):
    """The loss 1/(2n) ||A(x, k) - y||² of a batch of kernels (B, 1, K, K), from G and b."""
    flat = kernels.double().reshape(kernels.shape[0], -1)
    return (0.5 * ((flat @ G) * flat).sum(1) - flat @ b + half_y2) / y.numel()


physics = dinv.physics.Blur(filter=k_true, padding="valid", device=device)
loss_deepinv = dinv.optim.L2()(x=x, y=y, physics=physics).sum().item() / y.numel()
gap = abs(losses_of(k_true).item() / loss_deepinv - 1)
print(f"quadratic vs deepinv's loss at the true kernel: relative difference {gap:.1e}")

# %%
# Fitting the three parameters
# ----------------------------
# The optimiser works on :math:`\log\sigma_1, \log\sigma_2` (the widths stay positive) and on the
# angle in radians, so that one learning rate suits all three (a step of 0.05 changes a width by
# about 5 % and the angle by about 3°): :class:`torch.optim.Adam` [#Kingma2015]_ with a cosine
# schedule (:class:`torch.optim.lr_scheduler.CosineAnnealingLR`).  We start far from the truth:
# in canonical form the initial kernel is narrower in both directions and turned by 30°, and as
# given its longer width is ``sigma[1]``, where the truth's is ``sigma[0]``.
# The fit is a function of the data, so that the test-suite runs the same code on its other
# photographs and noise levels (``make suite``).

N_ITER = 50 if FAST else 150  # Adam iterations
LR = 0.05  # Adam's learning rate, in log-width and radian units
SIGMA_INIT = (1.0, 2.0)  # initial widths, in pixels
ANGLE_INIT = 150.0  # initial angle, in degrees


def calibrate_gaussian(x, y, kernel_size, n_iter, callback=None):
    """Adam on (log sigma, angle) of a Gaussian kernel fitted to (x, y), from SIGMA_INIT and
    ANGLE_INIT: the widths (pixels) and the angle (degrees).  ``callback(sigma, angle)`` sees every
    iterate."""
    G, b = (t[0] for t in blur_quadratic(x, y, kernel_size))
    p = torch.tensor([*np.log(SIGMA_INIT), np.deg2rad(ANGLE_INIT)], dtype=torch.float32)
    p = p.to(x.device).requires_grad_(True)
    optimizer = torch.optim.Adam([p], lr=LR)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=n_iter)
    for _ in range(n_iter):
        optimizer.zero_grad()
        sigma, angle = p[:2].exp(), torch.rad2deg(p[2])  # widths in pixels, angle in degrees
        k = gaussian_kernel(sigma, angle, kernel_size).double().reshape(1, -1)
        ((0.5 * ((k @ G) * k).sum() - (k @ b).sum()) / y.numel()).backward()  # f, less a constant
        if callback is not None:
            callback(sigma.detach(), angle.detach())
        optimizer.step()
        scheduler.step()
    return p[:2].detach().exp(), torch.rad2deg(p[2].detach())


history = []
start = time.perf_counter()
sigma_hat, angle_hat = calibrate_gaussian(
    x, y, KERNEL_SIZE, N_ITER, callback=lambda sigma, angle: history.append(sigma.tolist())
)
seconds = time.perf_counter() - start
history = np.array(history)
raw = (*sigma_hat.tolist(), angle_hat.item())
estimate = canonical_parameters(*raw)
print("raw estimate (sigma[0], sigma[1], angle) = ({:.3f}, {:.3f}, {:.2f}°)".format(*raw))
print("canonical estimate = ({:.3f}, {:.3f}, {:.2f}°)".format(*estimate))

# %%
# The loss landscape
# ------------------
# The fit kept the longer axis in ``sigma[1]``, as in the initial guess, and reached the truth
# under its other name, with the angle 90° away: only the canonical form compares with the truth.
# A slice through the landscape shows why: the widths at 120°, where the truth's twin lives,
# with the Adam path (its angle settles near 120° and its widths never swap).  The slice at the
# true angle, 30°, is the mirror image of this one across its diagonal, since
# :math:`(\sigma_1, \sigma_2, 30°)` and :math:`(\sigma_2, \sigma_1, 120°)` are the same kernel.

N_GRID = 31 if FAST else 81  # grid points per axis of the landscape
widths = torch.linspace(0.5, 4.5, N_GRID, device=device)
grid = torch.cartesian_prod(widths, widths)  # (sigma[0], sigma[1]) pairs
angle_twin = grid.new_full((len(grid),), ANGLE_TRUE + 90.0)
landscape = losses_of(gaussian_kernel(grid, angle_twin, KERNEL_SIZE)).reshape(N_GRID, N_GRID)
fig, ax = plt.subplots(figsize=(6, 4.6), layout="constrained")
levels = np.geomspace(landscape.min().item(), landscape.max().item(), 30)
w = widths.cpu()
contour = ax.contourf(w, w, landscape.T.cpu(), levels, norm="log", cmap="magma")
fig.colorbar(contour, ax=ax, label="loss", ticks=levels[::5], format="%.2e")
ax.plot(*SIGMA_TRUE[::-1], "wX", markersize=10, label="(1.2, 3.0, 120°): the truth's twin")
ax.plot(*history.T, color="cyan", label="Adam path (its angle varies)")
ax.plot(*SIGMA_INIT, "o", color="cyan", label="initial guess (150°)")
ax.set(xlabel="sigma[0] (pixels)", ylabel="sigma[1] (pixels)", title="loss over the widths, 120°")
ax.legend(fontsize=8)
plt.show()

# %%
# The loss over the angle, at the true widths, at the initial widths and for an isotropic kernel:

angles = torch.linspace(0.0, 180.0, 4 * N_GRID + 1, device=device)
fig, ax = plt.subplots(figsize=(6, 4.2), layout="constrained")
for pair in (SIGMA_TRUE, SIGMA_INIT, (2.0, 2.0)):  # true, initial and isotropic widths
    sigmas = torch.tensor(pair, device=device).expand(len(angles), 2)
    curve = losses_of(gaussian_kernel(sigmas, angles, KERNEL_SIZE)).cpu()
    ax.semilogy(angles.cpu(), curve, label=f"widths {pair}")
ax.axvline(ANGLE_TRUE, color="gray", linestyle="--", label="true angle")
ax.axvline(ANGLE_TRUE + 90.0, color="gray", linestyle=":", label="true angle + 90°")
ax.set(xlabel="angle (degrees)", ylabel="loss", title="loss over the angle, at three widths")
ax.grid(True, which="both", alpha=0.3)
ax.legend(fontsize=8)
plt.show()

# %%
# The width slice has a single smooth valley, around the truth's twin (and so, mirrored, the slice
# at 30° has one around the truth).  Over the angle every curve has one minimum per 180°, so
# there is no spurious minimum in :math:`\theta` to fall into, and its depth grows with the
# anisotropy.  The initial guess has its longer width in ``sigma[1]``, and for such widths the
# best angle is near 120°: the data pin down the kernel's long axis, which points along 120° when
# ``sigma[1]`` is the long width.  So Adam turns the angle towards 120° while it widens
# ``sigma[1]`` to 3.0 — it converges to the truth's twin, the same blur, and the canonical form
# maps it back.  For an isotropic kernel the curve is flat: the gradient in the angle vanishes
# there, and a fit started from :math:`\sigma_1 = \sigma_2` could not turn until the widths
# separate.  That is why the initial guess is anisotropic.

# %%
# Results
# -------
# The initial and estimated kernels next to the truth, on one colour scale; below, the errors of
# the canonical parameters (relative, in per cent, for the widths; in degrees for the angle), the
# relative kernel error (:class:`deepinv.loss.metric.NRMSE`, :math:`\|\hat k - k\| / \|k\|`)
# and the time of the fit.

k_init = gaussian_kernel(torch.tensor(SIGMA_INIT), torch.tensor(ANGLE_INIT), KERNEL_SIZE).to(device)
k_hat = gaussian_kernel(sigma_hat, angle_hat, KERNEL_SIZE)
nrmse = dinv.metric.NRMSE()
results = {}
for name, params, k in (
    ("initial guess", canonical_parameters(*SIGMA_INIT, ANGLE_INIT), k_init),
    (f"Adam, {N_ITER} steps", estimate, k_hat),
):
    results[name] = {
        "σ1 (%)": 100 * abs(params[0] / p_true[0] - 1),
        "σ2 (%)": 100 * abs(params[1] / p_true[1] - 1),
        "angle (°)": angle_difference(params[2], p_true[2]),
        "kernel": nrmse(k, k_true).item(),
    }
results[f"Adam, {N_ITER} steps"]["time"] = f"{seconds:6.2f} s"
errors = [100 * row["kernel"] for row in results.values()]
dinv.utils.plot(
    [k_init, k_hat, k_true],
    titles=[f"initial, {errors[0]:.1f} % error", f"estimated, {errors[1]:.2f} % error", "true"],
    cmap="viridis",
    rescale_mode=None,
    norm=Normalize(0.0, k_true.max().item()),
    figsize=(9, 3.4),
)
print_table(results)
torch.set_num_threads(threads_before)

# %%
# Three numbers fitted to the whole measurement: the widths and the angle come back to a fraction
# of a per cent and of a degree (last row), far below the initial errors (first row).
#
# References
# ----------
# .. [#Kingma2015] D. P. Kingma and J. Ba, "Adam: A Method for Stochastic Optimization",
#    *ICLR* 2015.

# sphinx_gallery_thumbnail_number = 2

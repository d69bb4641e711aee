r"""
A diffraction-limited blur with unknown Zernike coefficients
============================================================

After this page you can calibrate an optical blur through the physics that makes it: the
aberrations of a lens, written as a handful of Zernike coefficients, fitted by automatic
differentiation through deepinv's diffraction model.  You will also see which coefficient vectors
describe the same blur, how to measure an error despite them, and how to get past the local
minima of this non-convex fit.

:class:`deepinv.physics.generator.DiffractionBlurGenerator` builds the point-spread function
(PSF) from the coefficients :math:`a = (a_4, \dots, a_{11})` of the Zernike polynomials
:math:`z_j` (Noll's numbering [#Noll1976]_) as

.. math::

    k_a = \frac{|\mathcal{F}[P e^{-2i\pi \phi_a}]|^2}{\sum |\mathcal{F}[P e^{-2i\pi \phi_a}]|^2},
    \qquad \phi_a = \sum_{j=4}^{11} a_j z_j,

with :math:`P` the indicator of the pupil disc and :math:`\phi_a` the wavefront error in waves.
We estimate :math:`a` from a sharp image :math:`x` and its measurement
:math:`y = \noise{\forw{x, k_a}}` by solving

.. math::

    \hat a \in \argmin_{a \in \mathbb{R}^8} \frac{1}{2n}\|\forw{x, k_a} - y\|^2,

with :math:`n` the number of measured values.
"""

# %%
# The problem
# -----------
# Grace Hopper's portrait (shipped with matplotlib) at 256×256 pixels, valid convolution and
# Gaussian noise of standard deviation 0.02 drawn with seed 0, as on every page; the kernel is a
# 25×25 diffraction PSF with cut-off frequency 0.2 cycles per pixel and eight Zernike terms
# (Noll 4 to 11: defocus, two astigmatisms, two comas, two trefoils, spherical aberration), whose
# coefficients the generator draws uniformly in :math:`[-0.2, 0.2]` waves with seed 0.  The pupil
# is sampled on a 64×64 grid (deepinv's default, 256×256, is sixteen times more expensive per PSF;
# the truth and the fit use the same model).  ``CALIBRATION_GALLERY_FAST=1`` runs the page on a
# small image with few starts and iterations.

import itertools
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
FC = 0.2  # cut-off frequency of the optics, in cycles per pixel
AMPLITUDE = 0.4  # the coefficients are drawn in [-AMPLITUDE / 2, AMPLITUDE / 2] waves
device = dinv.utils.get_device(verbose=False)
# Many small solves: on a busy machine, several threads mostly wait for each other.  One thread
# here; the page restores the setting at its end.
threads_before = torch.get_num_threads()
torch.set_num_threads(1)

x = load_photo(IMG_SIZE)
optics = dict(psf_size=(KERNEL_SIZE, KERNEL_SIZE), fc=FC, pupil_size=(64, 64))
drawn = dinv.physics.generator.DiffractionBlurGenerator(
    **optics, max_zernike_amplitude=AMPLITUDE, rng=torch.Generator("cpu")
).step(1, seed=0)
k_true, a_true = drawn["filter"], drawn["coeff"].reshape(1, -1)
noise = dinv.physics.GaussianNoise(sigma=SIGMA, rng=torch.Generator("cpu").manual_seed(0))
y = dinv.physics.Blur(filter=k_true, padding="valid", noise_model=noise)(x)
x, y, k_true, a_true = x.to(device), y.to(device), k_true.to(device), a_true.to(device)
psf_generator = dinv.physics.generator.DiffractionBlurGenerator(**optics, device=device)
NOLL = psf_generator.zernike_index
dinv.utils.plot([x, y, k_true], titles=["sharp x", "measured y", "true PSF"], cmap="viridis")

# %%
# PSFs from coefficients, many at a time
# --------------------------------------
# ``step(coeff=...)`` accepts a batch of coefficient vectors of shape ``(B, 8)`` and keeps the
# autograd graph from the coefficients to the PSFs.  By default the generator re-evaluates the
# Zernike polynomials once per batch element; passing the cut-off frequency as a ``(1, 1)``
# tensor makes the whole batch share one evaluation, which matters when we evaluate thousands of
# PSFs below.  We check that both calls agree.

fc_shared = torch.tensor([[FC]], device=device)


def psfs_of(coeff):
    """PSFs (B, 1, K, K) of the coefficient vectors ``coeff`` (B, 8), differentiable."""
    if not isinstance(coeff, torch.Tensor) or coeff.dim() != 2 or coeff.shape[1] != len(NOLL):
        shape = tuple(coeff.shape) if isinstance(coeff, torch.Tensor) else type(coeff).__name__
        raise ValueError(f"expected coefficients of shape (B, {len(NOLL)}), got {shape}")
    if not torch.isfinite(coeff).all():
        raise ValueError("psfs_of got NaN or infinite coefficients")
    return psf_generator.step(coeff=coeff, fc=fc_shared)["filter"]


difference = (psfs_of(a_true) - psf_generator.step(coeff=a_true)["filter"]).abs().max().item()
print(f"largest difference between the shared and the default evaluation: {difference:.1e}")

# %%
# Which coefficient vectors give the same PSF
# -------------------------------------------
# The sensor sees :math:`|\mathcal{F}[\cdot]|^2`, which forgets a global phase and cannot tell a
# pupil function :math:`g(\rho)` from :math:`\overline{g(-\rho)}`: both have Fourier transforms of
# the same modulus.  Replacing :math:`\phi(\rho)` by :math:`-\phi(-\rho)` therefore leaves the PSF
# unchanged, and since :math:`z_j(-\rho) = (-1)^{n_j} z_j(\rho)` for a Zernike polynomial of radial
# order :math:`n_j`, this flips the sign of every even-order term and keeps the odd ones.  Rather
# than trust the argument, we try all :math:`2^8 = 256` sign patterns on the true coefficients and
# keep those whose PSF equals the true one to float32 precision.

patterns = torch.tensor(list(itertools.product([1.0, -1.0], repeat=len(NOLL))), device=device)
with torch.no_grad():
    differences = (psfs_of(patterns * a_true) - k_true).flatten(1).norm(dim=1) / k_true.norm()
same = differences < 1e-5
SIGN_GROUP = patterns[same]
flips = [[j for j, s in zip(NOLL, signs) if s < 0] for signs in SIGN_GROUP.tolist()]
print(f"sign patterns that give the true PSF (relative difference < 1e-5): {same.sum()} of 256")
print(f"  flipped terms: {flips}, relative differences {[f'{d:.1e}' for d in differences[same]]}")
print(f"smallest relative difference among the other patterns: {differences[~same].min():.3f}")


def coefficient_errors(a_hat, a_ref):
    """For each row of a_hat (B, 8): min over the sign group of ||s * a_hat - a_ref|| / ||a_ref||,
    and the sign pattern (B, 8) that reaches it."""
    candidates = SIGN_GROUP * a_hat.reshape(-1, 1, a_ref.numel())  # (B, group, 8)
    errors = (candidates - a_ref.reshape(1, 1, -1)).norm(dim=2) / a_ref.norm()
    best = errors.argmin(dim=1)
    return errors.gather(1, best[:, None])[:, 0], SIGN_GROUP[best]


# %%
# The loss as a quadratic, and the free-form floor
# ------------------------------------------------
# The blur is linear in its kernel, so the loss is a quadratic in :math:`k` (see the page on the
# exact least-squares kernel): with ``G, b = blur_quadratic(x, y, 25)`` computed once,
# :math:`\frac{1}{2n}\|\forw{x, k} - y\|^2 = \frac{1}{n}(\frac{1}{2} k^\top G k - b^\top k +
# \frac{1}{2}\|y\|^2)`, a :math:`625 \times 625` matrix product per PSF instead of a convolution
# of the photo.  Autograd runs from the loss to the PSF, then through deepinv's diffraction model
# to the coefficients.  We check the quadratic against :class:`deepinv.optim.L2`.
#
# How good can a calibration of this PSF be?  The exact minimiser of the same loss over all
# 625-entry kernels on the simplex (``solve_simplex_ls``, the page on the exact least-squares
# kernel) is the *free-form floor*: the best any method that fits a free-form kernel to these data
# can do.  A parametric model with eight numbers should do better, because it cannot fit the noise
# with 625 degrees of freedom.

start = time.perf_counter()
G, b = blur_quadratic(x, y, KERNEL_SIZE)
k_free = solve_simplex_ls(G, b).float().reshape(k_true.shape)
time_floor = time.perf_counter() - start
G, b, half_y2 = G[0], b[0], 0.5 * y.double().pow(2).sum()


def losses_of(kernels):
    """The loss 1/(2n) ||A(x, k) - y||² of a batch of kernels (B, 1, K, K), from G and b."""
    flat = kernels.double().reshape(kernels.shape[0], -1)
    return (0.5 * ((flat @ G) * flat).sum(1) - flat @ b + half_y2) / y.numel()


physics = dinv.physics.Blur(filter=k_true, padding="valid", device=device)
loss_deepinv = dinv.optim.L2()(x=x, y=y, physics=physics).sum().item() / y.numel()
gap = abs(losses_of(k_true).item() / loss_deepinv - 1)
print(f"quadratic vs deepinv's loss at the true PSF: relative difference {gap:.1e}")

# %%
# Fitting: screen, then refine
# ----------------------------
# A single start falls into whichever valley it starts in.  Since a PSF and its loss are cheap,
# we first *screen*: draw many coefficient vectors uniformly in the box the truth was drawn from
# (seeded), evaluate their losses in batches, and keep the few best.  Each of them is then refined
# with :class:`torch.optim.Adam` [#Kingma2015]_ and a cosine schedule
# (:class:`torch.optim.lr_scheduler.CosineAnnealingLR`); all starts run as one batch, which is
# exact because the loss is a sum over the batch and each start's gradient only depends on its own
# coefficients; the fit, ``calibrate_zernike``, is a function of the data, which the test-suite runs
# on other photographs and noise levels. The answer is the start with the lowest final loss — chosen
# by the loss, which is all we would know without the truth. Below, for each start: its coefficient
# error (best sign pattern, in per cent) at the start and at the end, and its final loss; then the
# loss of the true coefficients.

N_CANDIDATES = 256 if FAST else 1024  # random coefficient vectors screened
N_STARTS = 2 if FAST else 4  # best candidates refined
N_ITER = 30 if FAST else 80  # Adam iterations per start
LR = 0.01  # Adam's learning rate, in waves


def calibrate_zernike(x, y, kernel_size, n_iter):
    """Screen N_CANDIDATES seeded coefficient vectors on the loss of (x, y), then refine the
    N_STARTS best with Adam for n_iter steps: the starts and their end points, (N_STARTS, 8)."""
    G, b = (t[0] for t in blur_quadratic(x, y, kernel_size))

    def loss(a):  # 1/(2n) ||A(x, k) - y||² of the PSFs of a, less the constant ||y||² / (2n)
        flat = psfs_of(a).double().reshape(a.shape[0], -1)
        return (0.5 * ((flat @ G) * flat).sum(1) - flat @ b) / y.numel()

    draws = torch.rand(N_CANDIDATES, len(NOLL), generator=torch.Generator().manual_seed(1))
    candidates = (AMPLITUDE * (draws - 0.5)).to(x.device)
    with torch.no_grad():
        screen = torch.cat([loss(chunk) for chunk in candidates.split(256)])
    a_starts = candidates[screen.argsort()[:N_STARTS]]
    a = a_starts.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([a], lr=LR)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=n_iter)
    for _ in range(n_iter):
        optimizer.zero_grad()
        loss(a).sum().backward()
        optimizer.step()
        scheduler.step()
    return a_starts, a.detach()


start = time.perf_counter()
a_starts, a_fits = calibrate_zernike(x, y, KERNEL_SIZE, N_ITER)
with torch.no_grad():
    final_losses = losses_of(psfs_of(a_fits))
best, worst = final_losses.argmin().item(), final_losses.argmax().item()
a_hat = a_fits[best : best + 1]
time_fit = time.perf_counter() - start
errors_start, errors_end = (100 * coefficient_errors(a, a_true)[0] for a in (a_starts, a_fits))
starts = {
    f"start {i}" + (" (best)" if i == best else ""): {
        "start (%)": errors_start[i].item(),
        "end (%)": errors_end[i].item(),
        "final loss": f"{final_losses[i].item():.8e}",
    }
    for i in range(N_STARTS)
}
starts["true coefficients"] = {"final loss": f"{losses_of(k_true).item():.8e}"}
print_table(starts)

# %%
# The starts that end in another valley stop at a higher loss, which is how the best one is
# recognised without knowing the truth.

# %%
# The loss landscape
# ------------------
# Why did some starts stop elsewhere?  We draw the loss on the plane through three points of the
# eight-dimensional space: the true coefficients :math:`a`, their twin :math:`s \odot a` (the other
# member of the sign group) and the end point of the start that stopped at the highest loss.
# The first axis runs from :math:`a` (0) to the twin (1); the second, orthogonal to it, reaches
# the stuck start's end point at 1.  (When every start reaches the same valley, a seeded random
# direction replaces the stuck start.)

N_GRID = 15 if FAST else 41  # grid points per axis of the plane
direction_1 = SIGN_GROUP[(SIGN_GROUP < 0).any(dim=1)][0] * a_true[0] - a_true[0]
stuck = a_fits[worst] - a_true[0]
direction_2 = stuck - (stuck @ direction_1) / (direction_1 @ direction_1) * direction_1
if direction_2.norm() < 1e-3 * direction_1.norm():
    direction_2 = torch.randn(8, generator=torch.Generator().manual_seed(2)).to(device)
    direction_2 = 0.5 * direction_1.norm() * direction_2 / direction_2.norm()
coordinates = torch.linspace(-0.5, 1.5, N_GRID, device=device)
u, v = torch.meshgrid(coordinates, coordinates, indexing="ij")
plane = a_true + u.reshape(-1, 1) * direction_1 + v.reshape(-1, 1) * direction_2
with torch.no_grad():
    plane_losses = torch.cat([losses_of(psfs_of(chunk)) for chunk in plane.split(256)])
plane_losses = plane_losses.reshape(N_GRID, N_GRID).T.cpu()
stuck_u = ((stuck @ direction_1) / (direction_1 @ direction_1)).item()
stuck_v = ((stuck - stuck_u * direction_1) @ direction_2 / (direction_2 @ direction_2)).item()
print(f"start {worst} (highest final loss) ends at ({stuck_u:.2f}, {stuck_v:.2f}) on this plane")

fig, ax = plt.subplots(figsize=(6.5, 5), layout="constrained")
levels = np.geomspace(plane_losses.min().item(), plane_losses.max().item(), 30)
c = coordinates.cpu()
contour = ax.contourf(c, c, plane_losses, levels, norm="log", cmap="magma")
fig.colorbar(contour, ax=ax, label="loss", ticks=levels[::5], format="%.2e")
ax.plot(0, 0, "w*", markersize=14, label="true a")
ax.plot(1, 0, "X", color="cyan", markersize=10, label="twin s·a, same PSF")
ax.plot(stuck_u, stuck_v, "^", color="lime", markersize=10, label=f"end of start {worst}")
ax.set(xlabel="towards the twin", ylabel="towards the stuck start (orthogonal part)")
ax.set_title("loss on a plane through the coefficient space")
ax.legend(fontsize=8, loc="upper right")
plt.show()

# %%
# Two valleys of equal depth hold the truth and its twin, separated by a ridge: a fit started near
# one converges to it, and either answer is right, since both give the same PSF.  The stuck start
# sits in a third, shallower valley — a genuine local minimum of this non-convex problem (phase
# retrieval, in the optics literature [#Fienup1982]_), which the refinement does not leave.
# Screening many random candidates before refining a few is a cheap way to start inside one of the
# deep valleys, and the final loss tells which refined start got there.

# %%
# Results
# -------
# The fitted PSF next to the truth and the free-form floor, on one colour scale, and the fitted
# coefficients after choosing the member of the sign group closest to the truth.  Below, the
# relative PSF errors (:class:`deepinv.loss.metric.NRMSE`, :math:`\|\hat k - k\| / \|k\|`, which
# needs no choice of sign), each over the floor, the coefficient error in per cent (best sign
# pattern) and the time: screening and refinement for the fit, :math:`G` and the exact solve for
# the floor.

with torch.no_grad():
    k_hat = psfs_of(a_hat)
error_coeff, signs = coefficient_errors(a_hat, a_true)
nrmse = dinv.metric.NRMSE()
error, floor = nrmse(k_hat, k_true).item(), nrmse(k_free, k_true).item()
dinv.utils.plot(
    [k_hat, k_true, k_free],
    titles=[f"fit, {100 * error:.2f} % error", "true PSF", f"floor, {100 * floor:.1f} % error"],
    cmap="viridis",
    rescale_mode=None,
    norm=Normalize(0.0, k_true.max().item()),
    figsize=(9, 3.4),
)
fitted = (signs * a_hat)[0].tolist()
print_table(
    {f"Noll {j}": {"true": t, "fitted": f} for j, t, f in zip(NOLL, a_true[0].tolist(), fitted)}
)
results = {
    "Zernike fit": {
        "PSF error": error,
        "× floor": error / floor,
        "coeff. (%)": 100 * error_coeff.item(),
        "time": f"{time_fit:6.2f} s",
    },
    "free-form floor": {"PSF error": floor, "× floor": 1.0, "time": f"{time_floor:6.2f} s"},
}
print_table(results)
torch.set_num_threads(threads_before)

# %%
# Eight numbers fitted through the physics of the lens recover the PSF far better than the 625
# free entries of the floor, which fit part of the noise: compare the ``× floor`` column.
#
# References
# ----------
# .. [#Noll1976] R. J. Noll, "Zernike polynomials and atmospheric turbulence", *Journal of the
#    Optical Society of America* 66(3), 1976.
# .. [#Fienup1982] J. R. Fienup, "Phase retrieval algorithms: a comparison", *Applied Optics*
#    21(15), 1982.
# .. [#Kingma2015] D. P. Kingma and J. Ba, "Adam: A Method for Stochastic Optimization",
#    *ICLR* 2015.

# sphinx_gallery_thumbnail_number = 3

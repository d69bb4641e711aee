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

    k_a = \frac{|\mathcal{F}[P\, e^{-2i\pi \phi_a}]|^2}{\sum |\mathcal{F}[P\, e^{-2i\pi \phi_a}]|^2},
    \qquad \phi_a = \sum_{j=4}^{11} a_j z_j,

with :math:`P` the indicator of the pupil disc and :math:`\phi_a` the wavefront error in waves.
We estimate :math:`a` from a sharp image :math:`x` and its measurement
:math:`y = \noise{\forw{x, k_a}}` by solving

.. math::

    \hat a \in \argmin_{a \in \mathbb{R}^8} \frac{1}{2n}\|\forw{x, k_a} - y\|^2,

with :math:`n` the number of measured values.

Run it in fast mode (a small image, few starts and iterations, as the test-suite does) with the
environment variable ``CALIBRATION_GALLERY_FAST=1``.
"""

# %%
# The problem
# -----------
# The same data as the calibration pages, except for the kernel: Grace Hopper's portrait, shipped
# with matplotlib, centre-cropped and resized to 256×256; valid convolution; Gaussian noise of
# standard deviation 0.02 drawn with seed 0.  The kernel is a 25×25 diffraction PSF with cut-off
# frequency 0.2 cycles per pixel and eight Zernike terms (Noll 4 to 11: defocus, two
# astigmatisms, two comas, two trefoils, spherical aberration), whose coefficients the generator
# draws uniformly in :math:`[-0.2, 0.2]` waves with seed 0.  The pupil is sampled on a 64×64 grid
# (deepinv's default, 256×256, is sixteen times more expensive per PSF; the truth and the fit use
# the same model).  All random draws happen on the CPU, then the tensors move to the device.

import itertools
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
FC = 0.2  # cut-off frequency of the optics, in cycles per pixel
PUPIL_SIZE = 64  # side of the grid the pupil is sampled on
AMPLITUDE = 0.4  # the coefficients are drawn in [-AMPLITUDE / 2, AMPLITUDE / 2] waves
COEFF_SEED = 0  # seed of the true coefficients
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
psf_generator = dinv.physics.generator.DiffractionBlurGenerator(
    psf_size=(KERNEL_SIZE, KERNEL_SIZE), fc=FC, pupil_size=(PUPIL_SIZE, PUPIL_SIZE),
    max_zernike_amplitude=AMPLITUDE, rng=torch.Generator("cpu"),
)
drawn = psf_generator.step(1, seed=COEFF_SEED)
k_true, a_true = drawn["filter"], drawn["coeff"].reshape(1, -1)
noise = dinv.physics.GaussianNoise(sigma=SIGMA, rng=torch.Generator("cpu").manual_seed(0))
y = dinv.physics.Blur(filter=k_true, padding="valid", noise_model=noise)(x)
x, y, k_true, a_true = x.to(device), y.to(device), k_true.to(device), a_true.to(device)
psf_generator = dinv.physics.generator.DiffractionBlurGenerator(  # the same model, for the fit
    psf_size=(KERNEL_SIZE, KERNEL_SIZE), fc=FC, pupil_size=(PUPIL_SIZE, PUPIL_SIZE), device=device
)
print(f"image {tuple(x.shape)}, measurement {tuple(y.shape)}, kernel {tuple(k_true.shape)}")
print(f"device: {device}, torch threads: {torch.get_num_threads()}")
NOLL = psf_generator.zernike_index
for j, name, value in zip(NOLL, psf_generator.zernike_polynomials, a_true[0].tolist()):
    print(f"  Noll {j:2d}  {name.split(' -- ')[-1]:<22s} a = {value:+.4f} waves")

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
# The sharp image, its measurement and the kernel we will try to recover.

fig, axes = plt.subplots(1, 3, figsize=(11, 4), layout="constrained")
axes[0].imshow(x.squeeze(0).permute(1, 2, 0).cpu().numpy())
axes[0].set_title(f"sharp image x, {x.shape[-1]}×{x.shape[-2]}")
axes[1].imshow(y.squeeze(0).permute(1, 2, 0).clamp(0, 1).cpu().numpy())
axes[1].set_title(f"measurement y, {y.shape[-1]}×{y.shape[-2]}")
im = axes[2].imshow(k_true.squeeze().cpu().numpy(), cmap=KERNEL_CMAP, vmin=0)
axes[2].set_title("true PSF k")
fig.colorbar(im, ax=axes[2], shrink=0.8)
for ax in axes:
    ax.set_axis_off()
plt.show()

# %%
# PSFs from coefficients, many at a time
# --------------------------------------
# ``step(coeff=...)`` accepts a batch of coefficient vectors of shape ``(B, 8)`` and keeps the
# autograd graph from the coefficients to the PSFs.  By default the generator re-evaluates the
# Zernike polynomials once per batch element; passing the cut-off frequency as a ``(1, 1)``
# tensor makes the whole batch share one evaluation, which matters when we evaluate thousands of
# PSFs below.  We check that both calls agree.

FC_SHARED = torch.tensor([[FC]], device=device)


def psfs_of(coeff):
    """PSFs (B, 1, K, K) of the coefficient vectors ``coeff`` (B, 8), differentiable."""
    if not isinstance(coeff, torch.Tensor) or coeff.dim() != 2 or coeff.shape[1] != len(NOLL):
        shape = tuple(coeff.shape) if isinstance(coeff, torch.Tensor) else type(coeff).__name__
        raise ValueError(f"expected coefficients of shape (B, {len(NOLL)}), got {shape}")
    if not torch.isfinite(coeff).all():
        raise ValueError("psfs_of got NaN or infinite coefficients")
    return psf_generator.step(coeff=coeff, fc=FC_SHARED)["filter"]


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
    flipped = psfs_of(patterns * a_true)
differences = (flipped - k_true).flatten(1).norm(dim=1) / k_true.norm()
same = differences < 1e-5
SIGN_GROUP = patterns[same]
print(f"sign patterns that give the true PSF (relative difference < 1e-5): "
      f"{same.sum().item()} of {len(patterns)}")
for signs, diff in zip(SIGN_GROUP, differences[same]):
    flipped_terms = [j for j, s in zip(NOLL, signs.tolist()) if s < 0]
    print(f"  flip Noll {flipped_terms if flipped_terms else 'none'}: relative difference {diff.item():.1e}")
print(f"smallest relative difference among the other patterns: {differences[~same].min().item():.3f}")


def coefficient_errors(a_hat, a_ref):
    """For each row of a_hat (B, 8): min over the sign group of ||s * a_hat - a_ref|| / ||a_ref||."""
    candidates = SIGN_GROUP.unsqueeze(0) * a_hat.reshape(-1, 1, a_ref.numel())  # (B, group, 8)
    return (candidates - a_ref.reshape(1, 1, -1)).norm(dim=2).amin(dim=1) / a_ref.norm()


def coefficient_error(a_hat, a_ref):
    """min over the sign group of ||s * a_hat - a_ref|| / ||a_ref||, and the best sign pattern."""
    errors = (SIGN_GROUP * a_hat.reshape(1, -1) - a_ref.reshape(1, -1)).norm(dim=1) / a_ref.norm()
    best = errors.argmin()
    return errors[best].item(), SIGN_GROUP[best]


# %%
# The loss as a quadratic in the kernel
# -------------------------------------
# Each step of a fit needs the loss and its gradient.  The blur is linear in its kernel, so the
# loss is a quadratic in :math:`k` (see the page on the exact least-squares kernel): with
# :math:`G = M_x M_x^\top` and :math:`b = M_x y` computed once from :math:`(x, y)`,
# :math:`\frac{1}{2n}\|\forw{x, k} - y\|^2 = \frac{1}{n}(\frac{1}{2} k^\top G k - b^\top k +
# \frac{1}{2}\|y\|^2)`, which costs a :math:`625 \times 625` matrix product per kernel instead of
# a convolution of the photo and its backward pass.  Autograd runs from the loss to the PSF, then
# through deepinv's diffraction model to the coefficients.  We check the quadratic against
# :class:`deepinv.optim.L2` at the true PSF.


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
half_y2 = 0.5 * y.double().pow(2).sum()


def losses_of(kernels):
    """The loss 1/(2n) ||A(x, k) - y||² of each kernel of a batch (B, 1, K, K), from G and b."""
    flat = kernels.double().reshape(kernels.shape[0], -1)
    return (0.5 * ((flat @ G) * flat).sum(1) - flat @ b + half_y2) / y.numel()


physics = dinv.physics.Blur(filter=k_true, padding="valid", device=device)
loss_deepinv = (dinv.optim.L2()(x=x, y=y, physics=physics).sum() / y.numel()).item()
gap = abs(losses_of(k_true).item() - loss_deepinv) / loss_deepinv
print(f"G built in {time_build:.2f} s; relative difference between the quadratic and deepinv's "
      f"loss at the true PSF: {gap:.1e}")

# %%
# The free-form floor
# -------------------
# How good can a calibration of this PSF be?  The page on the exact least-squares kernel computes
# the best *free-form* kernel, the exact minimiser of the loss over all 625 non-negative entries
# summing to one.  Its error is the floor of any method that fits a free-form kernel to these
# data; a parametric model with eight numbers should do better, because it cannot fit the noise
# with 625 degrees of freedom.  The solver below is that page's, unchanged.


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


start = time.perf_counter()
k_flat, solver_history, _ = solve_exact(G, b)
time_solve = time.perf_counter() - start
k_free = k_flat.float().reshape(k_true.shape)
floor, _ = kernel_errors(k_free, k_true)
print(f"exact free-form kernel: {solver_history[-1][0]} iterations, residual {solver_history[-1][1]:.1e}, "
      f"{time_solve:.2f} s")
print(f"free-form floor (relative PSF error of the exact simplex least-squares kernel): {floor:.4f}")

# %%
# Fitting: screen, then refine
# ----------------------------
# A single start falls into whichever valley it starts in.  Since a PSF and its loss are cheap,
# we first *screen*: draw many coefficient vectors uniformly in the box the truth was drawn from
# (seeded), evaluate their losses in batches, and keep the few best.  Each of them is then refined
# with :class:`torch.optim.Adam` [#Kingma2015]_ and a cosine schedule
# (:class:`torch.optim.lr_scheduler.CosineAnnealingLR`); all starts run as one batch, which is
# exact because the loss is a sum over the batch and each start's gradient only depends on its
# own coefficients.  The answer is the start with the lowest final loss — chosen by the loss,
# which is all we would know without the truth.

N_CANDIDATES = 256 if FAST else 1024  # random coefficient vectors screened
N_STARTS = 2 if FAST else 4  # best candidates refined
N_ITER = 30 if FAST else 80  # Adam iterations per start
LR = 0.01  # Adam's learning rate, in waves
SCREEN_SEED = 1  # seed of the screened candidates

start = time.perf_counter()
screen_rng = torch.Generator("cpu").manual_seed(SCREEN_SEED)
candidates = AMPLITUDE * (torch.rand(N_CANDIDATES, len(NOLL), generator=screen_rng) - 0.5)
candidates = candidates.to(device)
with torch.no_grad():
    screen_losses = torch.cat([losses_of(psfs_of(chunk)) for chunk in candidates.split(256)])
a_starts = candidates[screen_losses.argsort()[:N_STARTS]]
time_screen = time.perf_counter() - start


def fit_coefficients(a_init, n_iter, lr):
    """Adam from each row of a_init at once; returns the coefficients and the history."""
    a = a_init.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([a], lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=n_iter)
    loss_history, error_history = [], []
    for _ in range(n_iter):
        optimizer.zero_grad()
        losses = losses_of(psfs_of(a))
        losses.sum().backward()
        loss_history.append(losses.detach().cpu().numpy())
        error_history.append(coefficient_errors(a.detach(), a_true).cpu().numpy())
        optimizer.step()
        scheduler.step()
    return a.detach(), np.array(loss_history), np.array(error_history)


start = time.perf_counter()
a_fits, loss_history, error_history = fit_coefficients(a_starts, N_ITER, LR)
time_fit = time.perf_counter() - start
with torch.no_grad():
    final_losses = losses_of(psfs_of(a_fits))
print(f"screened {N_CANDIDATES} candidates in {time_screen:.2f} s; refined {N_STARTS} starts "
      f"with {N_ITER} Adam iterations in {time_fit:.1f} s")
for index in range(N_STARTS):
    print(f"  start {index}: coefficient error {100 * coefficient_error(a_starts[index], a_true)[0]:.1f} % "
          f"-> {100 * coefficient_error(a_fits[index], a_true)[0]:.2f} %, "
          f"final loss {final_losses[index].item():.8e}")
best = final_losses.argmin().item()
a_hat = a_fits[best : best + 1]
print(f"lowest final loss: start {best}; loss at the true coefficients {losses_of(k_true).item():.8e}")

# %%
# The loss (above the lowest value any start reached) and the coefficient error of every start
# along the iterations.  The starts that end in another valley stop at a higher loss, which is
# how the best one is recognised without knowing the truth.

iterations = np.arange(1, N_ITER + 1)
lowest = loss_history.min()
fig, axes = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
for index in range(N_STARTS):
    label = f"start {index}" + (" (lowest loss)" if index == best else "")
    axes[0].semilogy(iterations, np.maximum(loss_history[:, index] - lowest, 1e-12), label=label)
    axes[1].semilogy(iterations, 100 * error_history[:, index], label=label)
axes[0].set(xlabel="iteration", ylabel="loss − lowest loss reached", title="excess loss")
axes[1].set(xlabel="iteration", ylabel="coefficient error (%)", title="coefficient error, best sign")
for ax in axes:
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
plt.show()

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
twin = SIGN_GROUP[(SIGN_GROUP < 0).any(dim=1)][0] * a_true[0]
worst = final_losses.argmax().item()
direction_1 = twin - a_true[0]
direction_2 = a_fits[worst] - a_true[0]
direction_2 = direction_2 - (direction_2 @ direction_1) / (direction_1 @ direction_1) * direction_1
if direction_2.norm() < 1e-3 * direction_1.norm():
    direction_2 = torch.randn(len(NOLL), generator=torch.Generator("cpu").manual_seed(2)).to(device)
    direction_2 = 0.5 * direction_1.norm() * direction_2 / direction_2.norm()
coordinates = torch.linspace(-0.5, 1.5, N_GRID, device=device)
u, v = torch.meshgrid(coordinates, coordinates, indexing="ij")
plane = a_true + u.reshape(-1, 1) * direction_1 + v.reshape(-1, 1) * direction_2
with torch.no_grad():
    plane_losses = torch.cat([losses_of(psfs_of(chunk)) for chunk in plane.split(256)])
plane_losses = plane_losses.reshape(N_GRID, N_GRID)
stuck = a_fits[worst] - a_true[0]
stuck_u = ((stuck @ direction_1) / (direction_1 @ direction_1)).item()
stuck_v = ((stuck - stuck_u * direction_1) @ direction_2 / (direction_2 @ direction_2)).item()
print(f"start {worst} (the highest final loss) ends at ({stuck_u:.2f}, {stuck_v:.2f}) on this plane")

fig, ax = plt.subplots(figsize=(6.5, 5), layout="constrained")
levels = np.geomspace(plane_losses.min().item(), plane_losses.max().item(), 30)
contour = ax.contourf(coordinates.cpu(), coordinates.cpu(), plane_losses.T.cpu().numpy(), levels=levels,
                      norm="log", cmap="magma")
fig.colorbar(contour, ax=ax, label="loss", ticks=levels[::5], format="%.2e")
ax.plot(0, 0, marker="*", color="white", markersize=14, linestyle="none", label="true a")
ax.plot(1, 0, marker="X", color="cyan", markersize=10, linestyle="none", label="twin s·a, same PSF")
ax.plot(stuck_u, stuck_v, marker="^", color="lime", markersize=10, linestyle="none",
        label=f"end of start {worst}")
ax.set(xlabel="towards the twin", ylabel="towards the stuck start (orthogonal part)",
       title="loss on a plane through the coefficient space")
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
# Result
# ------
# The fitted PSF next to the truth and the free-form floor, on one colour scale.  The error of the
# coefficients is measured after choosing the member of the sign group closest to the truth; the
# error of the PSF needs no such choice.

with torch.no_grad():
    k_hat = psfs_of(a_hat)
err_psf, psnr_psf = kernel_errors(k_hat, k_true)
err_coeff, signs = coefficient_error(a_hat, a_true)
show_kernels(
    [k_hat, k_true, k_free, (k_hat - k_true).abs()],
    [f"Zernike fit — {100 * err_psf:.2f} % error", "true PSF",
     f"free-form floor — {100 * floor:.1f} % error", "|fit − truth|"],
    "Diffraction PSF: parametric fit, truth and free-form floor",
)
for j, value, sign, truth in zip(NOLL, a_hat[0].tolist(), signs.tolist(), a_true[0].tolist()):
    print(f"  Noll {j:2d}: fitted {value:+.4f}, with the best sign {sign * value:+.4f}, true {truth:+.4f}")
print(f"coefficient vector relative error (best sign pattern): {100 * err_coeff:.2f} %")
print(f"PSF relative error of the Zernike fit: {err_psf:.4f}")
print(f"free-form floor: {floor:.4f}")
print(f"ratio of the fit's PSF error to the free-form floor: {err_psf / floor:.3f}")

# sphinx_gallery_thumbnail_number = 4

# %%
# References
# ----------
# .. [#Noll1976] R. J. Noll, "Zernike polynomials and atmospheric turbulence", *Journal of the
#    Optical Society of America* 66(3), 1976.
# .. [#Fienup1982] J. R. Fienup, "Phase retrieval algorithms: a comparison", *Applied Optics*
#    21(15), 1982.
# .. [#Kingma2015] D. P. Kingma and J. Ba, "Adam: A Method for Stochastic Optimization", *ICLR* 2015.

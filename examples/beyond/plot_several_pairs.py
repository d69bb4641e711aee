r"""
One kernel from several image pairs
===================================

After this page you can calibrate one blur kernel from several pairs of sharp images and
measurements taken with the same camera, know how its error falls with the number of pairs, and
calibrate a whole batch of *different* kernels in one optimiser call without mixing them up.

Each pair :math:`(x_i, y_i)`, :math:`i = 1, \dots, m`, is measured with the same kernel,
:math:`y_i = \forw{x_i, k} + \sigma\varepsilon_i`.  The least-squares loss of all pairs is a sum,
and so is its quadratic form:

.. math::

    \frac{1}{2}\sum_{i=1}^m \|\forw{x_i, k} - y_i\|^2
    = \frac{1}{2} k^\top \Big(\sum_i G_i\Big) k - \Big(\sum_i b_i\Big)^\top k + \mathrm{const},

with :math:`G_i` and :math:`b_i` the Gram matrix and correlation vector of pair :math:`i` (see the
exact-solver page).  Adding a pair costs one more :math:`625 \times 625` matrix added to a sum;
the exact minimiser over the simplex :math:`\simplex` is then found as cheaply as for one pair.

Run it in fast mode (a small image and three seeds, as the test-suite does) with the environment
variable ``CALIBRATION_GALLERY_FAST=1``.
"""

# %%
# Sixteen pairs from the default image
# ------------------------------------
# Every page of this section uses the same data: Grace Hopper's portrait, shipped with matplotlib,
# centre-cropped and resized to 256×256; a 25×25 motion-blur kernel drawn with seed 123; valid
# convolution; Gaussian noise of standard deviation 0.02.  Here the image is cut into its sixteen
# non-overlapping 64×64 tiles, and each tile is blurred and gets its own noise draw: sixteen pairs
# measured with the same kernel.  All random draws happen on the CPU, then the tensors move to the
# device, so the numbers are the same on a GPU.

import os
import time

import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
import torch
from matplotlib.cbook import get_sample_data

import deepinv as dinv

FAST = os.environ.get("CALIBRATION_GALLERY_FAST") == "1"  # smoke-test mode
IMG_SIZE = 128 if FAST else 256  # side of the square image, in pixels, cut into 4×4 tiles
KERNEL_SIZE = 25  # side of the square blur kernel, in pixels
SIGMA = 0.02  # standard deviation of the measurement noise
N_PAIRS = (1, 2, 4, 8, 16)  # numbers of pairs to calibrate from
N_SEEDS = 3 if FAST else 10  # repetitions (tile order and noise) of the experiment
N_BATCH = 4  # different kernels calibrated together at the end
N_ITER_ADAM = 60 if FAST else 300  # Adam iterations for the batch of kernels
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


photo = load_photo(IMG_SIZE)
TILE = IMG_SIZE // 4
tiles = [
    photo[..., row * TILE : (row + 1) * TILE, col * TILE : (col + 1) * TILE].to(device)
    for row in range(4)
    for col in range(4)
]
kernel_generator = dinv.physics.generator.MotionBlurGenerator(
    psf_size=(KERNEL_SIZE, KERNEL_SIZE), rng=torch.Generator("cpu")
)
k_true = kernel_generator.step(1, seed=123)["filter"].to(device)


def measure(x, k, seed):
    """Blur(k, valid)(x) plus Gaussian noise of standard deviation SIGMA, drawn with ``seed``."""
    noise = dinv.physics.GaussianNoise(sigma=SIGMA, rng=torch.Generator("cpu").manual_seed(seed))
    physics = dinv.physics.Blur(filter=k.cpu(), padding="valid", noise_model=noise)
    return physics(x.cpu()).to(x.device)


def noise_seed(seed, tile):
    """Seed of the noise on ``tile`` in repetition ``seed`` of the experiment."""
    return 100 * seed + tile


print(f"{len(tiles)} tiles {tuple(tiles[0].shape)}, measurements {tuple(measure(tiles[0], k_true, 0).shape)}, "
      f"kernel {tuple(k_true.shape)}")
print(f"device: {device}, torch threads: {torch.get_num_threads()}")

fig, axes = plt.subplots(4, 8, figsize=(11, 6), layout="constrained")
for tile, (ax_x, ax_y) in enumerate(zip(axes[:, ::2].flat, axes[:, 1::2].flat)):
    ax_x.imshow(tiles[tile][0].permute(1, 2, 0).cpu().numpy())
    ax_x.set_title(f"x{tile}", fontsize=8)
    ax_y.imshow(measure(tiles[tile], k_true, noise_seed(0, tile))[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy())
    ax_y.set_title(f"y{tile}", fontsize=8)
for ax in axes.flat:
    ax.set_axis_off()
fig.suptitle("The sixteen pairs (sharp tile, blurred and noisy measurement), noise seed 0")
plt.show()

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
# The quadratic of one pair, and of several
# -----------------------------------------
# :math:`G_i` depends on the sharp image only, :math:`b_i` on the image and its measurement; both
# come from the exact-solver page (:math:`b_i` is computed here with the FFT, much faster than a
# float64 convolution on the CPU).


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
    b = correlation_vector(x.unsqueeze(0), y, kernel_size)
    return gram, b


def correlation_vector(x, y, kernel_size):
    """b (K²): the valid cross-correlation of x with y, summed over channels, in float64.

    Computed with the FFT: a float64 ``conv2d`` with a measurement-sized weight is slow on the CPU.
    No wrap-around: y is K - 1 pixels smaller than x, exactly the largest shift needed.
    """
    size = x.shape[-2:]
    spectrum = torch.fft.rfft2(x.double(), s=size) * torch.fft.rfft2(y.double(), s=size).conj()
    correlation = torch.fft.irfft2(spectrum, s=size).sum(dim=(0, 1))
    return correlation[:kernel_size, :kernel_size].flatten().flip(0)


def pairs_quadratic(xs, ys, kernel_size):
    """Sum of the quadratics of the pairs (xs[i], ys[i]): G = sum G_i and b = sum b_i."""
    if len(xs) != len(ys) or len(xs) == 0:
        raise ValueError(f"expected as many measurements as images (at least one), got {len(xs)} and {len(ys)}")
    G, b = 0.0, 0.0
    for x, y in zip(xs, ys):
        if x.dim() != 4 or x.shape[0] != 1 or y.shape[-2:] != tuple(s - kernel_size + 1 for s in x.shape[-2:]):
            raise ValueError(f"pair of shapes {tuple(x.shape)} and {tuple(y.shape)} does not fit a "
                             f"{kernel_size}×{kernel_size} valid blur")
        G_i, b_i = blur_quadratic(x, y, kernel_size)
        G, b = G + G_i, b + b_i
    return G, b


# %%
# The summed quadratic must agree with deepinv's loss summed over the pairs.  We check it on four
# pairs at a random kernel on the simplex.

check_tiles = tiles[:4]
check_ys = [measure(x, k_true, noise_seed(0, tile)) for tile, x in enumerate(check_tiles)]
G_check, b_check = pairs_quadratic(check_tiles, check_ys, KERNEL_SIZE)
k_test = torch.rand(k_true.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
k_test = (k_test / k_test.sum()).to(device)
physics = dinv.physics.Blur(filter=k_test, padding="valid", device=device)
loss_deepinv = sum(dinv.optim.L2()(x=x.double(), y=y.double(), physics=physics).sum()
                   for x, y in zip(check_tiles, check_ys))
kv = k_test.flatten()
loss_quadratic = 0.5 * kv @ G_check @ kv - b_check @ kv + 0.5 * sum(y.double().pow(2).sum() for y in check_ys)
print(f"four pairs: relative difference between the summed quadratic and deepinv's loss "
      f"{((loss_quadratic - loss_deepinv).abs() / loss_deepinv).item():.1e}")

# %%
# The exact minimiser over the simplex
# ------------------------------------
# We fit a hundred kernels below, so we use the active-set method of Lawson and Hanson
# [#LawsonHanson1974]_ adapted to the simplex: the *polish* of the exact-solver page run from the
# start, which finds the support of the minimiser itself.  Starting from the best single-entry
# kernel, it repeats: solve the optimality conditions on the current support; if some entries come
# out negative, walk towards that solution until the first entry reaches zero and drop it;
# otherwise add the entry whose gradient most undercuts the common value the gradient takes on the
# support, and stop when none does.  The projected-gradient residual (zero exactly at the
# minimiser) certifies each answer.


def solve_simplex_least_squares(G, b, tol=1e-10, max_iter=10_000):
    """Exact minimiser of 1/2 kᵀGk - bᵀk over the simplex (active set); returns k and the steps."""
    if G.dim() != 2 or G.shape[0] != G.shape[1] or b.shape != G.shape[:1]:
        raise ValueError(f"expected G (m, m) and b (m,), got {tuple(G.shape)} and {tuple(b.shape)}")
    if not (torch.isfinite(G).all() and torch.isfinite(b).all()):
        raise ValueError("G and b must be finite")
    one = torch.ones(1, dtype=G.dtype, device=G.device)
    support = [torch.argmin(0.5 * G.diagonal() - b).item()]  # the best single-entry kernel
    k = torch.zeros_like(b)
    k[support] = 1.0
    scale = G.diagonal().max()
    for step in range(1, max_iter + 1):
        s, idx = len(support), torch.tensor(support, device=G.device)
        system = torch.zeros(s + 1, s + 1, dtype=G.dtype, device=G.device)
        system[:s, :s] = G[idx[:, None], idx]
        system[:s, s] = 1.0
        system[s, :s] = 1.0
        solution = torch.linalg.solve(system, torch.cat([b[idx], one]))[:s]
        if (solution > 0).all():
            k = torch.zeros_like(b)
            k[idx] = solution
            gradient = G[:, idx] @ solution - b
            slack = gradient - gradient[idx].mean()  # >= 0 off the support at the minimiser
            slack[idx] = float("inf")
            entry = torch.argmin(slack)
            if slack[entry] >= -tol * scale:
                return k, step
            support.append(entry.item())
        else:  # walk from k towards the solution until an entry reaches zero, and drop it
            current, negative = k[idx], solution <= 0
            ratios = current[negative] / (current[negative] - solution[negative])
            moved = current + ratios.min() * (solution - current)
            moved[negative.nonzero().flatten()[torch.argmin(ratios)]] = 0.0
            k = torch.zeros_like(b)
            k[idx] = moved.clamp_min(0.0)
            support = [i for i, value in zip(support, moved.tolist()) if value > 0]
    raise RuntimeError(f"active set did not converge in {max_iter} steps")


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


def residual(k, G, b):
    """Relative projected-gradient residual ||k - P(k - (Gk - b)/L)|| / ||k||; zero at the minimiser."""
    lipschitz = G.diagonal().sum()  # the trace bounds the largest eigenvalue: a safe step 1/L
    step = project_simplex((k - (G @ k - b) / lipschitz).unsqueeze(0)).squeeze(0)
    return ((k - step).norm() / k.norm()).item()


# %%
# More pairs, smaller error
# -------------------------
# For each seed we shuffle the sixteen tiles, draw their noise, and fit the kernel from the first
# :math:`m` tiles for :math:`m` = 1, 2, 4, 8, 16 (so the smaller sets are contained in the larger
# ones).  :math:`G_i` is computed once per tile: it does not depend on the noise.

start = time.perf_counter()
grams = [blur_quadratic(x, measure(x, k_true, 0), KERNEL_SIZE)[0] for x in tiles]
time_grams = time.perf_counter() - start
print(f"16 Gram matrices built in {time_grams:.2f} s")

errors = np.zeros((N_SEEDS, len(N_PAIRS)))
kernels_seed0 = {}
worst_residual = 0.0
start = time.perf_counter()
for seed in range(N_SEEDS):
    order = torch.randperm(len(tiles), generator=torch.Generator().manual_seed(seed)).tolist()
    bs = {t: correlation_vector(tiles[t], measure(tiles[t], k_true, noise_seed(seed, t)), KERNEL_SIZE)
          for t in order}
    for j, m in enumerate(N_PAIRS):
        G = sum(grams[t] for t in order[:m])
        b = sum(bs[t] for t in order[:m])
        k_flat, _ = solve_simplex_least_squares(G, b)
        worst_residual = max(worst_residual, residual(k_flat, G, b))
        k_hat = k_flat.reshape(k_true.shape)
        errors[seed, j] = kernel_errors(k_hat, k_true)[0]
        if seed == 0:
            kernels_seed0[m] = k_hat
time_fits = time.perf_counter() - start
print(f"{N_SEEDS * len(N_PAIRS)} kernels fitted in {time_fits:.2f} s; "
      f"largest projected-gradient residual {worst_residual:.1e}")

# %%
# The relative kernel error of every fit, one row per seed:

i1, i8 = N_PAIRS.index(1), N_PAIRS.index(8)
print("seed  " + "  ".join(f"{f'm={m}':>7}" for m in N_PAIRS) + "  m=8 < m=1")
for seed in range(N_SEEDS):
    row = "  ".join(f"{e:>7.4f}" for e in errors[seed])
    print(f"{seed:>4}  {row}  {'yes' if errors[seed, i8] < errors[seed, i1] else 'no'}")
mean_errors = errors.mean(axis=0)
print("mean  " + "  ".join(f"{e:>7.4f}" for e in mean_errors))
wins = int((errors[:, i8] < errors[:, i1]).sum())
slope = np.polyfit(np.log(N_PAIRS), np.log(mean_errors), 1)[0]
print(f"n=8 beats n=1 in {wins} of {N_SEEDS} seeds")
print(f"slope of log(mean error) against log(m): {slope:.2f} (a 1/sqrt(m) decay has slope -0.5)")

# %%
# On log axes, with a :math:`1/\sqrt{m}` line through the mean error of one pair.  Each pair adds
# independent noise, which alone would make the error fall like :math:`1/\sqrt{m}`, the standard
# error of an average.  The measured slope printed above is steeper than that at first: a single
# tile may be nearly flat and pin the kernel down poorly (the worst rows of the table), and more
# tiles also bring more varied image content.

fig, ax = plt.subplots(figsize=(6, 4.5), layout="constrained")
for seed in range(N_SEEDS):
    ax.loglog(N_PAIRS, errors[seed], color="tab:blue", alpha=0.25, linewidth=1,
              label="one seed" if seed == 0 else None)
ax.loglog(N_PAIRS, mean_errors, "o-", color="tab:blue", linewidth=2, label=f"mean over {N_SEEDS} seeds")
reference = mean_errors[0] / np.sqrt(np.array(N_PAIRS))
ax.loglog(N_PAIRS, reference, "--", color="gray", label="1/√m reference")
ax.set(xlabel="number of image pairs m", ylabel="relative kernel error",
       title="One kernel from m pairs (exact least squares)")
ax.set_xticks(N_PAIRS, [str(m) for m in N_PAIRS])
ax.grid(True, which="both", alpha=0.3)
ax.legend()
plt.show()

# %%
# The kernels of seed 0 from one pair and from all sixteen, next to the truth.

show_kernels(
    [kernels_seed0[1], kernels_seed0[16], k_true],
    [f"1 pair — {100 * errors[0, 0]:.1f} % error", f"16 pairs — {100 * errors[0, -1]:.1f} % error",
     "true kernel"],
    "More pairs, one kernel",
)

# %%
# A batch of different kernels
# ----------------------------
# The opposite situation: :math:`B` cameras, each with its own kernel, all photographing the same
# calibration target — here the whole 256×256 image.  The kernels are independent problems, but
# we can solve them in one optimiser call on a ``(B, 1, 25, 25)`` tensor, the shape deepinv uses
# for a batch of filters.  The measurements come from a single :class:`deepinv.physics.Blur` whose
# filter is the whole batch.  The pairs share one Gram matrix :math:`G` (it depends on the image
# only); each has its own :math:`b`.

x = photo.to(device)
k_batch = kernel_generator.step(N_BATCH, seed=2024)["filter"].to(device)
x_batch = x.expand(N_BATCH, -1, -1, -1)
batch_noise = dinv.physics.GaussianNoise(sigma=SIGMA, rng=torch.Generator("cpu").manual_seed(7))
batch_physics = dinv.physics.Blur(filter=k_batch.cpu(), padding="valid", noise_model=batch_noise)
y_batch = batch_physics(x_batch.cpu()).to(device)
G_image, _ = blur_quadratic(x, y_batch[:1], KERNEL_SIZE)
b_batch = torch.stack([correlation_vector(x, y[None], KERNEL_SIZE) for y in y_batch])
print(f"kernels {tuple(k_batch.shape)}, images {tuple(x_batch.shape)}, measurements {tuple(y_batch.shape)}")

floors = [
    kernel_errors(solve_simplex_least_squares(G_image, b_i)[0].reshape(k_i.shape), k_i)[0]
    for b_i, k_i in zip(b_batch, k_batch)
]

# %%
# The projection has to treat each kernel on its own: every kernel must be non-negative and sum
# to one.  ``project_simplex`` above (the sort-based projection [#Blondel2014]_) projects each
# batch element onto its own simplex.  A version that flattens the whole batch into one vector
# before projecting — an easy slip when code written for one kernel meets a batch — puts all
# :math:`B` kernels on *one* simplex, where only their total is one.


def project_simplex_whole_batch(v):
    """The slip: the whole batch flattened onto ONE simplex (kernels share a total of one)."""
    return project_simplex(v.reshape(1, -1)).reshape(v.shape)


# %%
# One Adam loop for the batch, as on the Adam page (box start, cosine schedule,
# ``betas=(0.9, 0.9)``).  The loss is the sum over the batch of each kernel's quadratic, so each
# kernel receives only its own gradient :math:`G k_i - b_i`; we hand that gradient to
# :class:`torch.optim.Adam` directly instead of asking autograd for it.

LR = 0.1  # Adam's learning rate


def calibrate_batch(project, n_iter=N_ITER_ADAM, lr=LR):
    """Batched Adam on a (B, 1, K, K) kernel, projecting with ``project`` after each step."""
    k = torch.zeros_like(k_batch, dtype=torch.float64)
    k[..., 5:-5, 5:-5] = 1.0
    k = project_simplex(k)
    optimizer = torch.optim.Adam([k], lr=lr, betas=(0.9, 0.9))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=n_iter)
    for _ in range(n_iter):
        flat = k.reshape(k.shape[0], -1)
        k.grad = (flat @ G_image - b_batch).reshape(k.shape)  # G is symmetric
        optimizer.step()
        scheduler.step()
        k.copy_(project(k))
    return k.float()


start = time.perf_counter()
k_per_kernel = calibrate_batch(project_simplex)
time_adam = time.perf_counter() - start
k_whole_batch = calibrate_batch(project_simplex_whole_batch)
print(f"{N_ITER_ADAM} batched Adam iterations in {time_adam:.2f} s")

# %%
# The quadratic route agrees with deepinv's batched operator: the loss of each kernel through
# :class:`deepinv.physics.Blur` with the whole batch as its filter, against the quadratic.

physics_batch = dinv.physics.Blur(filter=k_per_kernel.double(), padding="valid", device=device)
loss_deepinv = dinv.optim.L2()(x=x_batch.double(), y=y_batch.double(), physics=physics_batch)
flat = k_per_kernel.double().reshape(N_BATCH, -1)
loss_quadratic = (0.5 * ((flat @ G_image) * flat).sum(1) - (b_batch * flat).sum(1)
                  + 0.5 * y_batch.double().pow(2).sum((1, 2, 3)))
print(f"batched loss: largest relative difference quadratic vs deepinv "
      f"{((loss_quadratic - loss_deepinv).abs() / loss_deepinv).max().item():.1e}")

# %%
# Each kernel's error, against the exact floor of its own pair:

print("kernel  floor    per-kernel projection (× floor)   whole-batch projection   its sum")
results = []
for i in range(N_BATCH):
    err_own = kernel_errors(k_per_kernel[i], k_batch[i])[0]
    err_whole = kernel_errors(k_whole_batch[i], k_batch[i])[0]
    results.append((err_own, err_whole))
    print(f"{i:>6}  {floors[i]:.4f}   {err_own:.4f} ({err_own / floors[i]:.2f} ×){'':>14}"
          f"{err_whole:.4f}{'':>16}{k_whole_batch[i].sum().item():.3f}")
err_own_mean = np.mean([r[0] for r in results])
err_whole_mean = np.mean([r[1] for r in results])
print(f"mean relative kernel error over the batch: per-kernel projection {err_own_mean:.4f}, "
      f"whole-batch projection {err_whole_mean:.4f}")

# %%
# The kernels on one colour scale per column: the whole-batch projection leaves each kernel with
# only part of its mass (the sums in the table above), shared out by how well each one fits.

vmax = [k.max().item() for k in k_batch]
fig, axes = plt.subplots(3, N_BATCH, figsize=(2.6 * N_BATCH, 8), layout="constrained")
for i in range(N_BATCH):
    for row, (k, title) in enumerate((
        (k_batch[i], f"true kernel {i}"),
        (k_per_kernel[i], f"per-kernel projection\n{100 * results[i][0]:.1f} % error"),
        (k_whole_batch[i], f"whole-batch projection\n{100 * results[i][1]:.1f} % error"),
    )):
        axes[row, i].imshow(k.squeeze().cpu().numpy(), cmap=KERNEL_CMAP, vmin=0.0, vmax=vmax[i])
        axes[row, i].set_title(title, fontsize=9)
        axes[row, i].set_axis_off()
fig.suptitle("A batch of four kernels calibrated in one call")
plt.show()

# %%
# Summary
# -------
# The numbers this page measured when it was built:

# sphinx_gallery_thumbnail_number = 3
for m, e in zip(N_PAIRS, mean_errors):
    print(f"{m:>2} pairs: mean relative kernel error {e:.4f} over {N_SEEDS} seeds")
print(f"n=8 beats n=1 in {wins} of {N_SEEDS} seeds")
print(f"batch of {N_BATCH} kernels: per-kernel projection {err_own_mean:.4f}, "
      f"whole-batch projection {err_whole_mean:.4f}")

# %%
# References
# ----------
# .. [#LawsonHanson1974] C. L. Lawson and R. J. Hanson, *Solving Least Squares Problems*,
#    Prentice-Hall, 1974, chapter 23 (the non-negative least-squares algorithm).
# .. [#Blondel2014] M. Blondel, A. Fujino and N. Ueda, "Large-scale Multiclass Support Vector
#    Machine Training via Euclidean Projection onto the Simplex", *ICPR* 2014.

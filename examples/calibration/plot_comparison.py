r"""
Benchmark: every method against the exact floor
===============================================

After this page you can tell how good a calibration is — by its distance to the best kernel that
the data allow, not by how flat its loss curve looks — and pick the method that gets there
fastest, for one kernel or for many at once.

All the methods of this section calibrate the same 25×25 motion-blur kernel from the same sharp
photograph :math:`x` and measurement :math:`y = \noise{\forw{x, k}}`.  The exact least-squares
minimiser over the simplex :math:`\simplex`,

.. math::

    k^\star \in \argmin_{k \in \simplex} \frac{1}{2}\|\forw{x, k} - y\|^2,

is the :term:`floor`: no least-squares calibration of these data can be expected to come closer
to the true kernel.  Every iterative method runs until its relative kernel error is within 10 % of
the floor's, or until it has spent its budget of autograd iterations.

Run it in fast mode (a small image and short runs, as the test-suite does) with the environment
variable ``CALIBRATION_GALLERY_FAST=1``.  From a checkout of the gallery, ``make bench`` runs this
page at full size outside Sphinx, then the study of how the costs grow with the image and kernel
sizes.
"""

# %%
# The default problem
# -------------------
# Grace Hopper's portrait (shipped with matplotlib) at 256×256, a 25×25 motion-blur kernel drawn
# with seed 123, valid convolution, Gaussian noise of standard deviation 0.02 drawn with seed 0.
# Every random draw happens on the CPU; the tensors move to the device afterwards.

import os
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import deepinv as dinv

from calibration_helpers import (
    blur_quadratic,
    calibrate_adam,
    calibrate_adamw,
    calibrate_pgd,
    load_photo,
    print_table,
    project_simplex,
    solve_simplex_ls,
)

FAST = os.environ.get("CALIBRATION_GALLERY_FAST") == "1"  # smoke-test mode: a small image
IMG_SIZE = 64 if FAST else 256  # side of the square test image, in pixels
KERNEL_SIZE = 25  # side of the square blur kernel, in pixels
SIGMA = 0.02  # standard deviation of the measurement noise
device = dinv.utils.get_device(verbose=False)

x = load_photo(IMG_SIZE)
generator = dinv.physics.generator.MotionBlurGenerator(
    (KERNEL_SIZE, KERNEL_SIZE), rng=torch.Generator("cpu")
)
k_true = generator.step(1, seed=123)["filter"]
noise = dinv.physics.GaussianNoise(sigma=SIGMA, rng=torch.Generator("cpu").manual_seed(0))
y = dinv.physics.Blur(filter=k_true, padding="valid", noise_model=noise)(x)
x, y, k_true = x.to(device), y.to(device), k_true.to(device)
device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
print(f"device: {device_name}, torch threads: {torch.get_num_threads()}")


def synchronize():
    """Wait for queued GPU work, so that wall-clock times measure the work itself."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# %%
# The floor, by the exact route
# -----------------------------
# Build the quadratic :math:`\frac12 k^\top G k - b^\top k` of the loss and solve it over the
# simplex with an active-set method [#Lawson1974]_, as on the exact-solver page.  Its time —
# building *and* solving — is the exact route's time to the floor.

synchronize()
start = time.perf_counter()
G, b = blur_quadratic(x, y, KERNEL_SIZE)
synchronize()
time_build = time.perf_counter() - start
k_exact = solve_simplex_ls(G, b).float().reshape(k_true.shape)
synchronize()
time_exact = time.perf_counter() - start
floor = dinv.metric.NRMSE()(k_exact, k_true).item()
TARGET_RATIO = 1.1  # a method has converged once its error is within 10 % of the floor
target = TARGET_RATIO * floor
print(f"floor {floor:.4f}, target {target:.4f}; exact route {time_exact:.3f} s")

# %%
# The contestants
# ---------------
# The gallery's recipes, from their own pages — projected gradient, Adam and AdamW with the L1
# loss (:func:`~calibration_helpers.calibrate_pgd`, :func:`~calibration_helpers.calibrate_adam`,
# :func:`~calibration_helpers.calibrate_adamw`) — and the three methods of the
# :term:`deepinv example` as its page sets them: projected gradient with the fixed step 0.7,
# :class:`torch.optim.Adam` and :class:`torch.optim.AdamW` (with the L1 loss) at a constant
# learning rate of 0.1, all three from a flat 15×15 square.  Each takes the data and calls
# ``callback(k, ...)`` after every iteration.

BUDGET = 20 if FAST else 200  # autograd iterations per method


def box_start(kernel_size, device):
    """The deepinv example's initial kernel: a flat square, 10 pixels in from each edge."""
    k = torch.zeros(1, 1, kernel_size, kernel_size, device=device)
    k[..., 5:-5, 5:-5] = 1.0
    return project_simplex(k)


def example_pgd(x, y, kernel_size, n_iter, callback, step=0.7):
    """The deepinv example's projected gradient: a fixed step on the mean squared loss."""
    k = box_start(kernel_size, x.device)
    physics = dinv.physics.Blur(filter=k, padding="valid", device=x.device)
    for _ in range(n_iter):
        k = k.detach().requires_grad_(True)
        physics.update(filter=k)
        loss = dinv.optim.L2()(x=x, y=y, physics=physics).sum() / y.numel()
        (grad,) = torch.autograd.grad(loss, k)
        k = project_simplex(k.detach() - step * grad)
        callback(k)
    return k


def example_adam(x, y, kernel_size, n_iter, callback, optimizer=torch.optim.Adam, l1=False):
    """The deepinv example's Adam (or AdamW on the L1 loss): constant learning rate 0.1."""
    k = box_start(kernel_size, x.device).requires_grad_(True)
    physics = dinv.physics.Blur(filter=k, padding="valid", device=x.device)
    steps = optimizer([k], lr=0.1)
    for _ in range(n_iter):
        steps.zero_grad()
        if l1:
            loss = torch.nn.L1Loss()(physics.A(x), y)
        else:
            loss = dinv.optim.L2()(x=x, y=y, physics=physics).sum() / y.numel()
        loss.backward()
        steps.step()
        with torch.no_grad():
            k.copy_(project_simplex(k))
        callback(k.detach())
    return k.detach()


# %%
# One race for every method
# -------------------------
# Each method runs its budget; the clock counts its iterations only, not the kernel error that
# the callback measures after each of them.  A method's *time to the target* is the clock when its
# error first comes within 1.1× the floor.  That stopping rule is an oracle — it needs the true
# kernel, which only a benchmark has — and it flatters methods whose iterates wander: a constant
# learning rate may pass the target on its way and end further off.


def race(method, **settings):
    """Run ``method`` on the default problem; its errors and clock after every iteration."""
    errors, seconds, clock = [], [], [0.0, time.perf_counter()]

    def record(k, *_):
        synchronize()
        clock[0] += time.perf_counter() - clock[1]
        errors.append(dinv.metric.NRMSE()(k.reshape(k_true.shape), k_true).item())
        seconds.append(clock[0])
        clock[1] = time.perf_counter()

    method(x, y, KERNEL_SIZE, callback=record, **settings)
    reached = [t for t, e in zip(seconds, errors) if e <= target]
    return {"errors": errors, "seconds": seconds, "to target": reached[0] if reached else None}


runs = {
    "gallery PGD": race(calibrate_pgd, n_iter=BUDGET),
    "gallery Adam": race(calibrate_adam, n_iter=BUDGET),
    "gallery AdamW + L1": race(calibrate_adamw, n_iter=BUDGET),
    "example PGD (0.7)": race(example_pgd, n_iter=BUDGET),
    "example Adam (0.1)": race(example_adam, n_iter=BUDGET),
    "example AdamW + L1": race(example_adam, n_iter=BUDGET, optimizer=torch.optim.AdamW, l1=True),
}

# %%
# Kernel error against iterations and against seconds, on log axes.  The dashed line is the
# target, the dotted one the floor; the exact route is the star.

fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), layout="constrained")
for name, run in runs.items():
    style = "--" if name.startswith("example") else "-"
    (line,) = axes[0].loglog(np.arange(1, len(run["errors"]) + 1), run["errors"], style, label=name)
    axes[1].loglog(run["seconds"], run["errors"], style, color=line.get_color())
axes[1].loglog([time_exact], [floor], "k*", markersize=14, label="exact route")
for ax in axes:
    ax.axhline(target, color="gray", linestyle="--", linewidth=1)
    ax.axhline(floor, color="gray", linestyle=":", linewidth=1)
    ax.grid(True, which="both", alpha=0.3)
axes[0].set(xlabel="iteration", ylabel="relative kernel error", title="against iterations")
axes[1].set(xlabel="wall-clock seconds", ylabel="relative kernel error", title="against time")
fig.legend(loc="outside right center", fontsize=9)
plt.show()

# %%
# The long run of the example's projected gradient
# ------------------------------------------------
# Its budget ends far above the target.  How long would it need?  Its iterations only need the
# gradient, :math:`(Gk - b)/n` with :math:`n` the number of measured values, so we can follow
# them for many more iterations on the quadratic, at the cost of a 625×625 matrix-vector product
# each — the same mathematics, checked against the autograd run's first iterations.

LONG_RUN = 200 if FAST else 40_000  # iterations on the quadratic
n_measured = y.numel()
k = box_start(KERNEL_SIZE, device).double().reshape(1, -1)
truth = k_true.double().reshape(1, -1)
long_errors, first = [], []
example_pgd(x, y, KERNEL_SIZE, 10, callback=lambda k_auto: first.append(k_auto.reshape(1, -1)))
for it in range(LONG_RUN):
    k = project_simplex(k - 0.7 * (k @ G[0] - b) / n_measured)
    if it < len(first):
        first[it] = ((k - first[it]).abs().max() / k.abs().max()).item()
    long_errors.append(((k - truth).norm() / truth.norm()).item())
reached_at = next((i + 1 for i, e in enumerate(long_errors) if e <= target), None)
seconds_per_iteration = runs["example PGD (0.7)"]["seconds"][-1] / BUDGET
print(f"largest relative difference, quadratic vs autograd, first 10 iterations: {max(first):.1e}")
if reached_at is None:
    print(f"the example's PGD has not reached the target after {LONG_RUN} iterations")
else:
    print(
        f"the example's PGD reaches the target after {reached_at} iterations: about "
        f"{reached_at * seconds_per_iteration:.0f} s at its {1000 * seconds_per_iteration:.1f} ms "
        f"per autograd iteration, {reached_at * seconds_per_iteration / time_exact:.0f}× the "
        "exact route's time"
    )

# %%
# The race's table comes with the page's results, at the end: each method's error at the end of
# its budget, as a multiple of the floor, its seconds, and its time to the target ("—" where the
# budget ended first).  The last column is how many times sooner the exact route got there,
# measured in this run; where a method never reached the target, its time at the end of the
# budget gives a lower bound ("≥").


def speed_up(run):
    if run["to target"] is not None:
        return f"{run['to target'] / time_exact:.0f}×"
    return f"≥ {run['seconds'][-1] / time_exact:.0f}×"


race_table = {
    name: {
        "error": run["errors"][-1],
        "× floor": run["errors"][-1] / floor,
        "seconds": f"{run['seconds'][-1]:6.2f} s",
        "to target": "—" if run["to target"] is None else f"{run['to target']:6.2f} s",
        "exact is": speed_up(run),
    }
    for name, run in runs.items()
}
race_table["exact route"] = {"error": floor, "× floor": 1.0, "seconds": f"{time_exact:6.2f} s"}

# %%
# Many kernels at once
# --------------------
# Calibrating a whole batch of pairs — a field of windows, a stack of instruments, the frames of
# a video — is where speed matters.  Both steps of the exact route take a batch: ``blur_quadratic``
# builds one quadratic per pair, ``solve_simplex_ls`` solves all of them in the same loop.  Here
# ``N_PAIRS`` independent pairs: crops of the photograph at 512×512, each with its own motion
# kernel and noise.

N_PAIRS = 4 if FAST else (1000 if device.type == "cuda" else 64)  # pairs calibrated at once
big = load_photo(2 * IMG_SIZE)
corners = torch.randint(0, IMG_SIZE + 1, (N_PAIRS, 2), generator=torch.Generator().manual_seed(1))
xs = torch.cat([big[..., i : i + IMG_SIZE, j : j + IMG_SIZE] for i, j in corners.tolist()])
ks = generator.step(N_PAIRS, seed=1)["filter"]
noise = dinv.physics.GaussianNoise(sigma=SIGMA, rng=torch.Generator("cpu").manual_seed(2))
ys = dinv.physics.Blur(filter=ks, padding="valid", noise_model=noise)(xs)
xs, ys, ks = xs.to(device), ys.to(device), ks.to(device)
synchronize()
start = time.perf_counter()
G_batch, b_batch = blur_quadratic(xs, ys, KERNEL_SIZE)
synchronize()
batch_build = time.perf_counter() - start
k_batch = solve_simplex_ls(G_batch, b_batch)
synchronize()
batch_seconds = time.perf_counter() - start
errors = dinv.metric.NRMSE()(k_batch.reshape(ks.shape).float(), ks)
print(
    f"{N_PAIRS} pairs in {batch_seconds:.2f} s (build {batch_build:.2f} s): "
    f"{N_PAIRS / batch_seconds:.1f} kernels per second on {device_name}, "
    f"{torch.get_num_threads()} threads; kernel errors {errors.min():.4f} to {errors.max():.4f}"
)

# %%
# Every kernel of the batch is its own exact minimiser, so each sits at its own floor; the test
# suite checks the batch against one-pair solves.  On a GPU, the same code runs a thousand pairs.
#
# Which method when
# -----------------
# * When the loss is least squares and the operator is linear in its parameter, take the exact
#   route: build :math:`G` and :math:`b` once, and the solution follows in a few dozen small
#   steps.  Use it as the yardstick for everything else, and for batches.
# * When the operator or the loss does not give a quadratic (a parametric PSF, a learned model, a
#   robust loss), use autograd with a recipe that holds: the gallery's projected gradient and Adam
#   reach the floor within their budgets.
# * A flat loss curve is no proof of convergence: only the distance to the floor tells, and
#   without the truth, the distance of :math:`f` to its exact minimum (the projected-gradient page).
# * The L1 loss has its own minimiser, which under Gaussian noise lies further from the truth than
#   the least-squares floor (see the AdamW page).

# %%
# Results
# -------

print(f"{device_name}, {torch.get_num_threads()} threads, budget {BUDGET} iterations")
results = {name: dict(row) for name, row in race_table.items()}
results[f"batch of {N_PAIRS}"] = {
    "error": errors.max().item(),
    "× floor": 1.0,
    "seconds": f"{batch_seconds:6.2f} s",
}
print_table(results)

# %%
# References
# ----------
# .. [#Lawson1974] C. L. Lawson and R. J. Hanson, *Solving Least Squares Problems*,
#    Prentice-Hall, 1974.

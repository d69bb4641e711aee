r"""
What the residual says
======================

After this page you can test whether a calibrated blur explains your measurement: three checks of
the residual, each with a known false-alarm rate, combined into one decision at the 5 % level —
and you know which kinds of model error they catch, measured over many noise draws.

We fit the kernel :math:`\hat k \in \argmin_{k \in \simplex} \|\forw{x, k} - y\|^2` exactly and
study the residual :math:`r = y - \forw{x, \hat k}`, with :math:`n` measured values, :math:`m`
kernel entries and :math:`d = |\mathrm{supp}\,\hat k| - 1` degrees of freedom spent by the fit.
If the model :math:`y = \forw{x, k} + \sigma\varepsilon` is right (:math:`\varepsilon` white and
Gaussian, :math:`\sigma` known), then

.. math::

    \begin{aligned}
    \frac{\|r\|^2}{\sigma^2} &\sim \chi^2_{n-d}, \qquad
    Q = \sum_{\delta \in L} \frac{n^2}{n_\delta}\,\hat\rho(\delta)^2 \sim \chi^2_{|L|}, \\
    F &= \frac{\|P_x r\|^2/(m - d)}{(\|r\|^2 - \|P_x r\|^2)/(n - m)} \sim F_{m-d,\,n-m},
    \end{aligned}

where :math:`\hat\rho(\delta)` is the residual's autocorrelation at the lag :math:`\delta`
(:math:`n_\delta` products) and :math:`P_x r` the part of the residual that *some* kernel —
signed, of any sum — could still explain.  The first checks the noise level, the second that
the residual is white, the third that nothing the image can explain is left in it.

Run it in fast mode (a small image and few noise draws, as the test-suite does) with the
environment variable ``CALIBRATION_GALLERY_FAST=1``.
"""

# %%
# The default problem
# -------------------
# This page uses the data of the calibration section: Grace Hopper's portrait, shipped with
# matplotlib, centre-cropped and resized to 256×256; a 25×25 motion-blur kernel drawn with seed
# 123; valid convolution; Gaussian noise of standard deviation 0.02 drawn with seed 0.  All random
# draws happen on the CPU, then the tensors move to the device, so the numbers are the same on a
# GPU.  Here we need many noise draws of the same measurement: draw ``i`` uses seed ``i``.

import os
import time

import matplotlib.colors
import matplotlib.pyplot as plt
import numpy as np
import scipy.stats
import torch

import deepinv as dinv

from calibration_helpers import (
    blur_quadratic,
    central_indices,
    linear_terms,
    load_photo,
    noise_draws,
    print_table,
    relative_errors,
    shift_image,
    solve_simplex_ls,
)

FAST = os.environ.get("CALIBRATION_GALLERY_FAST") == "1"  # smoke-test mode
IMG_SIZE = 64 if FAST else 256  # side of the square test image, in pixels
KERNEL_SIZE = 25  # side of the square blur kernel, in pixels
SIGMA = 0.02  # standard deviation of the measurement noise
N_NULL = 8 if FAST else 100  # noise draws of the correct model
N_MISMATCH = 4 if FAST else 50  # noise draws of each mismatched model
LEVEL = 0.05  # false-alarm rate of the decision
device = dinv.utils.get_device(verbose=False)

# Many small solves: on a busy machine, several threads mostly wait for each other.  One thread
# here; the page restores the setting at its end.
threads_before = torch.get_num_threads()
torch.set_num_threads(1)
start_page = time.perf_counter()
x = load_photo(IMG_SIZE).to(device)
kernel_generator = dinv.physics.generator.MotionBlurGenerator(
    psf_size=(KERNEL_SIZE, KERNEL_SIZE), rng=torch.Generator("cpu")
)
k_true = kernel_generator.step(1, seed=123)["filter"].to(device)
clean = dinv.physics.Blur(filter=k_true, padding="valid", device=device)(x)


# %%
# Helpers the pages of this section share: many noise draws of one clean measurement, the
# linear term :math:`b = M_x y` of the quadratic of ``blur_quadratic`` for each of them (by FFT,
# without rebuilding :math:`G`), and the relative kernel error
# (:class:`deepinv.metric.NRMSE`).


nrmse = dinv.metric.NRMSE()  # ||k_hat - k|| / ||k||, per batch element


y = noise_draws(clean, SIGMA, [0])
G, b = blur_quadratic(x, y, KERNEL_SIZE)  # G depends on the image only: one G for every draw
G = G[0]
k_hat = solve_simplex_ls(G[None], b)
print(
    f"kernel fitted on {(k_hat > 0).sum().item()} entries, "
    f"error {relative_errors(k_hat, k_true)[0]:.4f}"
)

# %%
# The three checks
# ----------------
# ``linear_terms`` gives :math:`b = M_x y` of many measurements at once: only :math:`b` changes
# with the noise draw, so a hundred draws cost a hundred FFTs and one batched exact solve.
#
# *Level.*  :math:`\hat\sigma_d^2 = \|r\|^2/(n - d)` estimates :math:`\sigma^2` without the bias
# of the fit (see the page on an unknown noise level); a two-sided :math:`\chi^2` test compares it
# with the known :math:`\sigma`.  *Whiteness.*  The autocorrelation at the twelve lags of a
# half-plane with :math:`|\delta|_\infty \le 2` (the other half repeats them), computed with FFTs
# [#LjungBox1978]_.  *What the image can still explain.*  The gradient of the loss at
# :math:`\hat k` is :math:`g = M_x r`, the correlation of the residual with every shifted copy of
# the image, and :math:`\|P_x r\|^2 = g^\top G^{-1} g` is the drop in the residual that the
# unconstrained least-squares kernel would bring.  Under the model it is noise spread over
# :math:`m - d` directions; divided by the residual of that unconstrained fit it needs no
# :math:`\sigma` (an :math:`F` test of the constraints, [#Seber2003]_).  Each check runs at level
# :math:`1 - 0.95^{1/3}`, so that the three together raise a false alarm 5 % of the time when they
# are independent, as they nearly are here.

LAGS = [(0, 1), (0, 2)] + [(dy, dx) for dy in (1, 2) for dx in range(-2, 3)]  # half-plane, |δ| ≤ 2
LEVEL_EACH = 1 - (1 - LEVEL) ** (1 / 3)  # Šidák: three independent checks, 5 % together


def whiteness_statistic(r):
    """Q = Σ_δ n²/n_δ ρ(δ)² over LAGS, pooled over the colour channels, for each r[i]."""
    C, h, w = r.shape[1:]
    spectrum = torch.fft.rfft2(r.double(), s=(h + 2, w + 2))  # padding 2: no wrap-around
    products = torch.fft.irfft2((spectrum.conj() * spectrum).sum(1), s=(h + 2, w + 2))
    statistic = torch.zeros(r.shape[0], dtype=torch.float64, device=r.device)
    for dy, dx in LAGS:
        count = C * (h - abs(dy)) * (w - abs(dx))
        rho = products[:, dy, dx] / products[:, 0, 0]
        statistic += (C * h * w) ** 2 / count * rho**2
    return statistic


def level_p_value(rss, n, d, sigma):
    """Two-sided p-value of ||r||²/σ² against the χ² law with n - d degrees of freedom."""
    below = scipy.stats.chi2.cdf(rss / sigma**2, n - d)
    return 2 * np.minimum(below, 1 - below)


def residual_checks(r, k_hat, b, G, sigma):
    """p-values (level, whiteness, image) of each residual r[i] = y[i] - A(x, k_hat[i])."""
    n, m = r[0].numel(), G.shape[-1]
    d = ((k_hat > 0).sum(1) - 1).cpu().numpy()
    rss = r.double().pow(2).sum((1, 2, 3))
    p_white = scipy.stats.chi2.sf(whiteness_statistic(r).cpu().numpy(), len(LAGS))
    g = b - k_hat @ G  # M_x r: G is symmetric
    explained = (g * torch.cholesky_solve(g.T, torch.linalg.cholesky(G)).T).sum(1).cpu().numpy()
    rss = rss.cpu().numpy()
    ratio = (explained / (m - d)) / ((rss - explained) / (n - m))
    p_image = scipy.stats.f.sf(ratio, m - d, n - m)
    p = np.stack([level_p_value(rss, n, d, sigma), p_white, p_image], 1)
    return {"p": p, "rss": rss, "n": n, "d": d, "sigma_d": (rss / (n - d)) ** 0.5 / sigma}


def fit_and_check(y, support=None):
    """Exact fits of every y[i] (on the centred support×support block if given), their checks."""
    b = linear_terms(x, y, KERNEL_SIZE)
    index = central_indices(support or KERNEL_SIZE, KERNEL_SIZE).to(device)
    k = torch.zeros_like(b)
    k[:, index] = solve_simplex_ls(G[index][:, index].expand(len(y), -1, -1), b[:, index])
    kernels = k.float().reshape(-1, 1, KERNEL_SIZE, KERNEL_SIZE)
    r = y - dinv.physics.Blur(filter=kernels, padding="valid", device=device)(
        x.expand(len(y), -1, -1, -1)
    )
    checks = residual_checks(r, k, b, G, SIGMA)
    checks["error"] = relative_errors(k, k_true)
    checks["r"] = r[0]  # the residual of the first draw, for the figure
    return checks


# %%
# The correct model: how often a false alarm?
# -------------------------------------------
# The data come from the model we fit.  Every rejection is a false alarm.

start = time.perf_counter()
y_null = noise_draws(clean, SIGMA, range(N_NULL))
cases = {"correct model": fit_and_check(y_null)}
null = cases["correct model"]
rates = (null["p"] < LEVEL_EACH).mean(0)
false_alarm = (null["p"] < LEVEL_EACH).any(1).mean()
print(f"{N_NULL} draws fitted and checked in {time.perf_counter() - start:.1f} s")
print(
    f"rejections per check (level {LEVEL_EACH:.4f} each): level {rates[0]:.3f}, whiteness "
    f"{rates[1]:.3f}, image {rates[2]:.3f}; any of the three: {false_alarm:.3f} (target {LEVEL})"
)
print(f"binomial standard error over {N_NULL} draws: {np.sqrt(LEVEL * (1 - LEVEL) / N_NULL):.3f}")

# %%
# The mismatches of the gallery
# -----------------------------
# The page on model mismatch builds data from a slightly different model: a detector gain 0.8 and
# offset 0.05; the sharp image shifted by 0.4 pixel (cubic convolution [#Keys1981]_, with that
# page's ``cubic_weights`` and ``shift_image``); a support of 9×9 that cannot hold the kernel
# (fitted on the draws of the correct model).  A wrong noise level is the fourth: the draws of the
# correct model, checked against an assumed :math:`\sigma` of 0.01 and 0.04 (levels of the page on
# an unknown noise level) instead of 0.02.  We fit the usual model to each and run the same checks.

GAIN, OFFSET = 0.8, 0.05  # the detector's true gain and offset
DELTA = (0.0, 0.4)  # true misregistration (rows, columns), in pixels
SMALL_SUPPORT = 9  # a support that cannot hold the kernel
WRONG_SIGMAS = (0.01, 0.04)  # assumed noise levels; the data have SIGMA


start = time.perf_counter()
seeds = range(N_MISMATCH)
cases[f"gain {GAIN}, offset {OFFSET}"] = fit_and_check(
    noise_draws(GAIN * clean + OFFSET, SIGMA, seeds)
)
shifted = dinv.physics.Blur(filter=k_true, padding="valid", device=device)(shift_image(x, *DELTA))
cases[f"shift {DELTA[1]} px"] = fit_and_check(noise_draws(shifted, SIGMA, seeds))
cases[f"support {SMALL_SUPPORT}×{SMALL_SUPPORT}"] = fit_and_check(
    y_null[:N_MISMATCH], SMALL_SUPPORT
)
for sigma in WRONG_SIGMAS:  # the same fits and residuals; only the level check sees sigma
    wrong = dict(null, p=null["p"].copy(), sigma_d=null["sigma_d"] * SIGMA / sigma)
    wrong["p"][:, 0] = level_p_value(null["rss"], null["n"], null["d"], sigma)
    cases[f"σ assumed {sigma} (true {SIGMA})"] = wrong
print(f"{len(cases) - 1} mismatches × {N_MISMATCH} draws in {time.perf_counter() - start:.1f} s")
rejected = {name: (case["p"] < LEVEL_EACH).any(1).mean() for name, case in cases.items()}
for name, case in cases.items():
    each = ", ".join(f"{v:.2f}" for v in (case["p"] < LEVEL_EACH).mean(0))
    print(
        f"{name:>26}: rejected {rejected[name]:.2f} (level, whiteness, image: {each}); "
        f"kernel error {case['error'].mean():.4f}"
    )

# %%
# Each mismatch is caught in the share of draws printed above, but not by the same check.  The
# shift is the instructive one: the kernel absorbs most of it — its error above is many times the
# correct model's — so the level and whiteness checks catch it in only part of the draws.  What
# gives it away is that the residual still correlates with the image: the shift filter has negative
# lobes that no kernel on the simplex can imitate, while a signed kernel can.  Each dot below is one
# draw; a check rejects above its dashed line.

fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
for j, (check, marker) in enumerate(zip(("level", "whiteness", "image"), "os^")):
    for i, case in enumerate(cases.values()):
        score = -np.log10(np.clip(case["p"][:, j], 1e-300, 1))
        where = i + 0.25 * (j - 1) + np.linspace(-0.08, 0.08, len(score))
        label = check if i == 0 else None
        ax.scatter(where, score, s=8, marker=marker, color=f"C{j}", label=label, alpha=0.6)
ax.axhline(-np.log10(LEVEL_EACH), color="gray", linestyle="--", label=f"p = {LEVEL_EACH:.3f}")
ax.set_yscale("log")
ax.set_ylim(1e-4, 500)
names = [name.replace(" (", "\n(").replace(", ", ",\n") for name in cases]
ax.set_xticks(range(len(cases)), names, fontsize=8)
detected = min(list(rejected.values())[1:])
ax.set(
    ylabel="−log10 p (capped at 300)",
    title=f"False alarms: {100 * false_alarm:.0f} % of draws; lowest detection rate: "
    f"{100 * detected:.0f} %",
)
ax.legend(loc="lower center", ncol=4, fontsize=8)
plt.show()

# %%
# The residual maps
# -----------------
# A map of the residual shows *where* the model fails.  Single pixels are mostly noise, so we sum
# the colour channels and average over 8×8 blocks, scaled so that a correct model leaves values of
# standard deviation one (first draw of each case).


def residual_map(r, sigma, block=8):
    """The residual summed over channels, averaged over block×block tiles, in units of its std."""
    pooled = torch.nn.functional.avg_pool2d(r.double().sum(0, keepdim=True)[None], block)
    return (pooled * block / (sigma * r.shape[0] ** 0.5)).float()


maps = {name: residual_map(case["r"], SIGMA) for name, case in list(cases.items())[:4]}
fig = dinv.utils.plot(
    list(maps.values()),
    titles=[f"{name}\nmax |z| {m.abs().max().item():.1f}" for name, m in maps.items()],
    cmap="RdBu_r",
    rescale_mode=None,
    vmin=-4,
    vmax=4,
    norm=matplotlib.colors.Normalize(-4, 4),
    figsize=(12, 3.4),
    fontsize=9,
    show=False,
    return_fig=True,
)
fig.colorbar(fig.axes[0].images[0], ax=fig.axes, shrink=0.8, label="block residual / its std")
plt.show()

# %%
# With the correct model the map is noise.  The gain and offset leave a copy of the photograph's
# brightness, far above the noise (the largest block value is in each title); the 9×9 support
# leaves the parts of the blur it cannot reach, which follow the edges of the photograph; the
# shift leaves nothing a single block shows above the noise.
#
# Your own measurement
# --------------------
# The decision for the measurement of the default problem (draw 0):

p0 = null["p"][0]
adequate = bool((p0 >= LEVEL_EACH).all())
print(
    f"p-values: level {p0[0]:.3f}, whiteness {p0[1]:.3f}, image {p0[2]:.3f}; "
    f"σ̂_d = {SIGMA * null['sigma_d'][0]:.5f}"
)
print(
    f"decision at the {100 * LEVEL:.0f} % level: model {'adequate' if adequate else 'NOT adequate'}"
)

# %%
# **With your own data:** fit the kernel, compute the three p-values of ``residual_checks`` and
# trust the model only if all three stay above :math:`1 - 0.95^{1/3}`; if the image check alone
# fails, suspect a registration error or a gain before the kernel.
#
# Results
# -------
# Rejection rates over the noise draws (the correct model's is the false-alarm rate), the mean
# noise level the residual implies relative to the assumed one, and the mean kernel error.

# sphinx_gallery_thumbnail_number = 1
results = {
    name: {
        "draws": len(case["p"]),
        "level": float((case["p"][:, 0] < LEVEL_EACH).mean()),
        "whiteness": float((case["p"][:, 1] < LEVEL_EACH).mean()),
        "image": float((case["p"][:, 2] < LEVEL_EACH).mean()),
        "rejected": float(rejected[name]),
        "σ̂_d/σ": float(case["sigma_d"].mean()),
        "kernel error": float(case["error"].mean()),
    }
    for name, case in cases.items()
}
results["page run time"] = {"time": f"{time.perf_counter() - start_page:6.2f} s"}
print_table(results)
torch.set_num_threads(threads_before)

# %%
# References
# ----------
# .. [#LjungBox1978] G. M. Ljung and G. E. P. Box, "On a measure of lack of fit in time series
#    models", *Biometrika* 65(2), 1978.
# .. [#Seber2003] G. A. F. Seber and A. J. Lee, *Linear Regression Analysis*, 2nd edition, Wiley,
#    2003, chapter 4 (the F test of a linear hypothesis).
# .. [#Keys1981] R. Keys, "Cubic convolution interpolation for digital image processing",
#    *IEEE Transactions on Acoustics, Speech, and Signal Processing* 29(6), 1981.

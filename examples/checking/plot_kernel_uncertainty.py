r"""
How sure is the kernel?
=======================

After this page you can put error bars on a calibrated kernel from your data alone: a covariance
that predicts the kernel's expected error and a per-pixel standard deviation, and a bootstrap
over image tiles that needs no model of the noise — both checked here against Monte Carlo.

The exact least-squares kernel :math:`\hat k` lies on a face of the simplex: its support
:math:`S` (the non-zero entries), with :math:`\sum_{i \in S} k_i = 1`.  On that face the
estimate is linear in the data: it solves the equality-constrained problem with the Gram matrix
:math:`G_S` and :math:`b_S = (M_x y)_S`, whose covariance is :math:`\sigma^2 G_S`.  The
Gauss–Markov theorem with a linear constraint [#Seber2003]_ gives its covariance

.. math::

    \Sigma_S = \sigma^2\Big(H - \frac{H\mathbf{1}\mathbf{1}^\top H}
    {\mathbf{1}^\top H \mathbf{1}}\Big),
    \qquad H = G_S^{-1},

zero off :math:`S`, and the predicted expected error
:math:`\mathbb{E}\,\|\hat k - k\| / \|k\|` with :math:`\hat k - k \sim \mathcal{N}(0, \Sigma_S)`.

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
import torch

import deepinv as dinv

from calibration_helpers import (
    blur_quadratic,
    linear_terms,
    load_photo,
    noise_draws,
    print_table,
    relative_errors,
    solve_simplex_ls,
)

FAST = os.environ.get("CALIBRATION_GALLERY_FAST") == "1"  # smoke-test mode
IMG_SIZE = 64 if FAST else 256  # side of the square test image, in pixels
KERNEL_SIZE = 25  # side of the square blur kernel, in pixels
SIGMA = 0.02  # standard deviation of the measurement noise
N_DRAWS = 10 if FAST else 100  # Monte-Carlo noise draws
N_BOOT = 10 if FAST else 100  # bootstrap replicates
TILES = 8  # the measurement is cut into TILES × TILES tiles for the bootstrap
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
G, b = blur_quadratic(x, y, KERNEL_SIZE)
G = G[0]
k_hat = solve_simplex_ls(G[None], b)
k_image = k_hat.float().reshape(1, 1, KERNEL_SIZE, KERNEL_SIZE)
r = y - dinv.physics.Blur(filter=k_image, padding="valid", device=device)(x)
n, d = r.numel(), int((k_hat > 0).sum()) - 1
sigma_d = (r.double().pow(2).sum() / (n - d)).sqrt().item()  # the noise level, from the residual
print(
    f"kernel fitted on {d + 1} entries (the true kernel has {(k_true > 0).sum().item()}); "
    f"σ̂_d = {sigma_d:.5f}; relative error {relative_errors(k_hat, k_true)[0]:.4f}"
)

# %%
# The covariance on the face
# --------------------------
# Why the face, and not the Fisher information of the whole kernel?  The Gaussian model's Fisher
# information is :math:`G/\sigma^2`; inverted on the 625 entries with only the sum constraint, it
# describes an estimator that may take negative values.  :math:`G` is ill-conditioned, so that
# estimator is far noisier than ours: the non-negativity constraint pins most entries at zero, and
# those carry no variance.  On the face the likelihood is exactly Gaussian (a Laplace
# approximation there is exact), so the face covariance is the natural prediction — as long as
# the face does not change from one draw to the next.  :math:`\sigma` is the estimate
# :math:`\hat\sigma_d` from the residual, :math:`\|r\|^2` computed from the quadratic.


def face_covariance(G, k_hat, sigma):
    """Covariance (m × m) of the equality-constrained least-squares kernel on k_hat's support."""
    S = (k_hat > 0).nonzero().flatten()
    H = torch.linalg.inv(G[S][:, S])
    h = H.sum(1)
    cov = torch.zeros_like(G)
    cov[S[:, None], S] = sigma**2 * (H - torch.outer(h, h) / h.sum())
    return cov


def expected_error(cov, k_ref, n_samples=4000):
    """E ||e|| / ||k_ref|| for e ~ N(0, cov), by sampling (seeded)."""
    keep = cov.diagonal() > 0  # the entries of the face; the others do not vary
    values, vectors = torch.linalg.eigh(cov[keep][:, keep])
    seeded = torch.Generator("cpu").manual_seed(0)
    noise = torch.randn(n_samples, len(values), generator=seeded, dtype=cov.dtype).to(cov.device)
    samples = (noise * values.clamp_min(0).sqrt()) @ vectors.T
    return (samples.norm(dim=1).mean() / k_ref.norm()).item()


def predicted_errors(G, b, k, y_norm2, n):
    """The face-covariance prediction of each fit k[i] (of G[i], b[i]), σ̂_d from its residual."""
    rss = y_norm2 - 2 * (b * k).sum(1) + (torch.einsum("bij,bj->bi", G, k) * k).sum(1)
    sigmas = (rss / (n - (k > 0).sum(1) + 1)).sqrt()
    pairs = zip(G, k, sigmas)
    return np.array([expected_error(face_covariance(*p[:2], s.item()), p[1]) for *p, s in pairs])


cov = face_covariance(G, k_hat[0], sigma_d)
predicted = expected_error(cov, k_hat[0])
all_entries = torch.ones_like(k_hat[0])  # the same formula with every entry on the "face"
predicted_fisher = expected_error(face_covariance(G, all_entries, sigma_d), k_hat[0])
print(
    f"predicted expected relative error: face covariance {predicted:.4f}; Fisher information on "
    f"all {G.shape[0]} entries (sum constraint only) {predicted_fisher:.4f}"
)

# %%
# The standard deviation of each entry gives error bars.  Relative to the estimate, they are a
# few per cent on the large entries and wider than the value itself on the faint ones, which the
# data cannot tell from zero.  The truth is drawn for the check only.

std = cov.diagonal().clamp_min(0).sqrt()
S = (k_hat[0] > 0).nonzero().flatten()
order = S[torch.argsort(k_hat[0, S], descending=True)]
value, truth, bars = (v.cpu() for v in (k_hat[0, order], k_true.flatten()[order], 2 * std[order]))
inside = ((value - truth).abs() <= bars).double().mean().item()
fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
pos = np.arange(len(order))
ax.errorbar(
    pos, np.ones(len(pos)), bars / value, fmt="o", ms=4, capsize=2, label="estimate ± 2 std"
)
ax.plot(pos, truth / value, "x", color="C3", label="true value (check only)")
ax.set(
    xlabel="entries of the estimated support, largest first",
    ylabel="value / estimate",
    ylim=(-0.2, 2.2),
    title=f"Error bars from one measurement: {100 * inside:.0f} % hold the truth",
)
ax.grid(True, alpha=0.3)
ax.legend(loc="upper left")
plt.show()

# %%
# Monte Carlo: the prediction against the truth
# ---------------------------------------------
# The same image and kernel, :math:`N` noise draws, one exact fit each (only :math:`b` changes, so
# the fits run as one batch with one :math:`G`).  We also compute the prediction each draw would
# have given, to see how much it depends on the draw's face.

start = time.perf_counter()
y_mc = noise_draws(clean, SIGMA, range(N_DRAWS))
b_mc, G_mc = linear_terms(x, y_mc, KERNEL_SIZE), G.expand(N_DRAWS, -1, -1)
k_mc = solve_simplex_ls(G_mc, b_mc)
errors_mc, mc = relative_errors(k_mc, k_true), relative_errors(k_mc, k_true).mean()
each = predicted_errors(G_mc, b_mc, k_mc, y_mc.double().pow(2).sum((1, 2, 3)), n)
sizes = (k_mc > 0).sum(1)
print(
    f"{N_DRAWS} draws fitted in {time.perf_counter() - start:.1f} s; mean error {mc:.4f} (std "
    f"{errors_mc.std():.4f}); support sizes {sizes.min().item()} to {sizes.max().item()}"
)
print(
    f"predicted / measured expected error: {predicted / mc:.3f} from draw 0; from each draw: "
    f"median {np.median(each) / mc:.3f}, range {each.min() / mc:.3f} to {each.max() / mc:.3f}"
)

# %%
# Per entry, the predicted standard deviation against the spread over the draws.  The entries of
# :math:`\hat k`'s support that the true kernel lacks sit on the simplex boundary: in most draws
# they are exactly zero, so their spread is far smaller than the face predicts.  On the entries of
# the true kernel the two agree much better.  The same entries make the predicted expected error a
# little larger than the measured one, and a draw whose support holds more of them predicts more:
# hence the range of the per-draw predictions printed above.

std_mc = k_mc.std(0)
on_true = (k_true.flatten() > 0)[S]
ratios = (std[S] / std_mc[S]).cpu()
zero = (k_mc[:, S[~on_true]] == 0).double().mean().item() if (~on_true).any() else 0.0
print(
    f"predicted / Monte-Carlo std, median over the {len(S)} entries of the support: "
    f"{ratios.median():.3f}; on the {on_true.sum().item()} true entries "
    f"{ratios[on_true].median():.3f}; on the {(~on_true).sum().item()} others "
    f"{ratios[~on_true].median():.3f} (zero in {100 * zero:.0f} % of the draws)"
)

# %%
# A bootstrap over image tiles
# ----------------------------
# The covariance needs the model of the noise (white, of level :math:`\sigma`).  A bootstrap needs
# neither [#Wu1986]_: cut the measurement into 8×8 tiles, multiply the residual of each tile by a
# random sign, add it back to :math:`\forw{x, \hat k}`, refit.  Tiles keep any correlation of the
# noise within a tile; :math:`G` does not change, so the replicates run as one batch.  The spread
# of the refitted kernels around :math:`\hat k` estimates the spread of :math:`\hat k` around the
# truth.

start = time.perf_counter()
h, w = r.shape[-2:]
coins = torch.randint(0, 2, (N_BOOT, 1, TILES, TILES), generator=torch.Generator().manual_seed(1))
signs = (2.0 * coins - 1).repeat_interleave(h // TILES, 2).repeat_interleave(w // TILES, 3)
y_boot = (y - r) + signs.to(device) * r  # y - r = A(x, k_hat)
k_boot = solve_simplex_ls(G.expand(N_BOOT, -1, -1), linear_terms(x, y_boot, KERNEL_SIZE))
boot = relative_errors(k_boot, k_hat).mean()
std_boot = k_boot.std(0)
print(
    f"{N_BOOT} bootstrap replicates in {time.perf_counter() - start:.1f} s; expected error "
    f"{boot:.4f}, {boot / mc:.3f} × the Monte Carlo; std median ratio on the support "
    f"{(std_boot[S] / std_mc[S]).median().item():.3f}"
)

# %%
# The three standard-deviation maps on one colour scale (centre of the kernel):

centre = slice(KERNEL_SIZE // 2 - 8, KERNEL_SIZE // 2 + 9)
maps = [
    v.reshape(KERNEL_SIZE, KERNEL_SIZE)[centre, centre][None, None] for v in (std, std_boot, std_mc)
]
titles = [
    f"face covariance\n(one measurement)\nexpected error {predicted:.4f}",
    f"tile bootstrap\n(one measurement)\nexpected error {boot:.4f}",
    f"Monte Carlo\n({N_DRAWS} draws, truth known)\nmean error {mc:.4f}",
]
scale = matplotlib.colors.Normalize(0, max(m.max().item() for m in maps))
kwargs = {"cmap": "viridis", "rescale_mode": None, "norm": scale, "show": False, "return_fig": True}
fig = dinv.utils.plot(maps, titles=titles, figsize=(10, 4), **kwargs)
fig.colorbar(fig.axes[0].images[0], ax=fig.axes, shrink=0.8, label="std of the kernel entry")
plt.show()

# %%
# How the error scales
# --------------------
# On a fixed face the estimate is linear in the noise, so the predicted error is proportional to
# :math:`\sigma`, and it falls like :math:`1/\sqrt{\text{pixels}}` when more data pin the same
# kernel.  We repeat two experiments of the gallery and predict each fit's error from its own
# data: the noise levels of the page on robustness (its noise draws 0 to 2), and the sixteen
# 64×64 tiles of the page on several image pairs, fitted from :math:`m` of them (its tile orders
# and noise seeds, repetitions 0 to 2).

SIGMAS = (0.01, 0.02, 0.05, 0.1)  # the robustness page's noise levels
N_PAIRS = (1, 2, 4, 8, 16)  # the several-pairs page's numbers of tiles
N_REPEATS = 1 if FAST else 3  # draws per noise level, tile orders per number of pairs
start = time.perf_counter()
y_s = torch.cat([noise_draws(clean, s, range(N_REPEATS)) for s in SIGMAS])
b_s, G_s = linear_terms(x, y_s, KERNEL_SIZE), G.expand(len(y_s), -1, -1)
k_s = solve_simplex_ls(G_s, b_s)
predicted_s = predicted_errors(G_s, b_s, k_s, y_s.double().pow(2).sum((1, 2, 3)), n)
scaling = {"σ": (relative_errors(k_s, k_true), predicted_s)}

photo = load_photo(128 if FAST else 256).to(device)  # 16 tiles, at least 32×32 in fast mode
side = photo.shape[-1] // 4
tiles = photo.unfold(2, side, side).unfold(3, side, side)  # (1, C, 4, 4, side, side)
tiles = tiles.permute(2, 3, 0, 1, 4, 5).reshape(16, -1, side, side)  # row by row
clean_tiles = dinv.physics.Blur(filter=k_true, padding="valid", device=device)(tiles)
G_tiles, _ = blur_quadratic(tiles, clean_tiles, KERNEL_SIZE)
by_pairs = ([], [])
for seed in range(N_REPEATS):
    order = torch.randperm(16, generator=torch.Generator().manual_seed(seed))
    y_t = torch.cat([noise_draws(clean_tiles[[t]], SIGMA, [100 * seed + t]) for t in range(16)])
    b_t = torch.cat([linear_terms(tiles[[t]], y_t[[t]], KERNEL_SIZE) for t in range(16)])
    G_m = torch.stack([G_tiles[order[:m]].sum(0) for m in N_PAIRS])
    b_m = torch.stack([b_t[order[:m]].sum(0) for m in N_PAIRS])
    k_m = solve_simplex_ls(G_m, b_m)
    norm2 = torch.stack([y_t[order[:m]].double().pow(2).sum() for m in N_PAIRS])
    n_m = torch.tensor(N_PAIRS, device=device) * y_t[0].numel()
    by_pairs[0].append(relative_errors(k_m, k_true))
    by_pairs[1].append(predicted_errors(G_m, b_m, k_m, norm2, n_m))
scaling["pairs"] = tuple(np.stack(v, 1).flatten() for v in by_pairs)  # order: value, then repeat
print(f"scaling experiments in {time.perf_counter() - start:.1f} s")
means = {}  # the mean predicted and measured errors of each setting, for the results table
for label, values in (("σ", SIGMAS), ("pairs", N_PAIRS)):
    measured, predicted_m = (v.reshape(len(values), N_REPEATS).mean(1) for v in scaling[label])
    means.update({f"{label} = {v}": (p, e) for v, e, p in zip(values, measured, predicted_m)})
q = [p / e for p, e in means.values()]
print(f"predicted / measured mean error, {len(q)} settings: {min(q):.2f} to {max(q):.2f}")

# %%
# The prediction follows both laws, within the range of ratios printed above (each setting is in
# the results table).  The draws at the
# four noise levels are the same three noise patterns scaled: their faces do not change, so the
# measured errors grow exactly in proportion to :math:`\sigma`, the predicted ones nearly so.  One
# 64×64 tile leaves 40×40 measured pixels per colour for 625 kernel entries: there the prediction
# is furthest from the measurement.

fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
for ax, (label, values), law in zip(axes, (("σ", SIGMAS), ("pairs", N_PAIRS)), (1.0, -0.5)):
    measured, predicted_m = (v.reshape(len(values), N_REPEATS) for v in scaling[label])
    values = np.array(values)
    every = values.repeat(N_REPEATS)
    ax.loglog(every, measured.flatten(), "o", color="C0", alpha=0.4, label="measured (truth known)")
    ax.loglog(values, measured.mean(1), "-", color="C0", label="measured, mean")
    ax.loglog(values, predicted_m.mean(1), "s--", color="C1", label="predicted from the data, mean")
    reference = measured.mean(1)[1] * (values / values[1]) ** law
    ax.loglog(values, reference, ":", color="gray", label="∝ σ" if law > 0 else "∝ 1/√m")
    ax.set(
        xlabel="noise standard deviation σ" if law > 0 else "number of 64×64 image pairs m",
        ylabel="relative kernel error",
    )
    ax.set_xticks(values, [f"{v:g}" for v in values])
    ax.minorticks_off()
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
fig.suptitle("The predicted kernel error follows the measured floors")
plt.show()

# %%
# **With your own data:** report the kernel with the face covariance's error bars and expected
# error, and confirm them with the tile bootstrap; if the two disagree by more than half, distrust
# the noise model before the kernel.
#
# Results
# -------
# Predicted and measured expected relative kernel error, and their ratio; for the standard
# deviations, the median over the support of the ratio predicted / Monte Carlo.


def compared(p, e):
    return {"predicted": float(p), "measured": float(e), "ratio": float(p / e)}


# sphinx_gallery_thumbnail_number = 1
results = {
    f"Monte Carlo ({N_DRAWS} draws)": {"measured": float(mc)},
    "face covariance (draw 0)": compared(predicted, mc),
    "face covariance, each draw (median)": compared(np.median(each), mc),
    f"tile bootstrap ({N_BOOT} replicates)": compared(boot, mc),
    "Fisher, all entries (sum only)": compared(predicted_fisher, mc),
    "std, face covariance (median)": {"ratio": float(ratios.median())},
    "std, face covariance, true entries": {"ratio": float(ratios[on_true].median())},
    "std, tile bootstrap (median)": {"ratio": (std_boot[S] / std_mc[S]).median().item()},
}
results.update({name: compared(p, e) for name, (p, e) in means.items()})
results["page run time"] = {"time": f"{time.perf_counter() - start_page:6.2f} s"}
print_table(results)
torch.set_num_threads(threads_before)

# %%
# References
# ----------
# .. [#Seber2003] G. A. F. Seber and A. J. Lee, *Linear Regression Analysis*, 2nd edition, Wiley,
#    2003, chapter 3 (least squares with linear constraints).
# .. [#Wu1986] C. F. J. Wu, "Jackknife, bootstrap and other resampling methods in regression
#    analysis", *The Annals of Statistics* 14(4), 1986.

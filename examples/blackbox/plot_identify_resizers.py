r"""
Which resampler made these pairs?
=================================

After this page you can identify the operator behind image pairs made by software you did not
write: filter and phase as free-form taps, then a kernel family chosen on a photograph no fit
has seen, how sure that is, and the source's word.  Each black box reduces :math:`x` by :math:`f`:

.. math::

    y_{ij} = Q\Big(\beta + \sum_{|t|, |t'| \leq 4f} h_{t t'}\, x_{f i + t,\, f j + t'}\Big),
    \qquad \sum_{t, t'} h_{t t'} = 1,

:math:`Q` rounding to 8 bits and clipping for 8-bit outputs (the identity for float ones),
:math:`\beta` the mean rounding error; no non-negativity (resampling filters have negative lobes).
A separable filter is :math:`h = v \otimes u` (:math:`v` down the columns, :math:`u` along the
rows); its centre :math:`c`, the sampling phase, puts output :math:`i` on input :math:`f i + c`.
"""

# %%
# Two photographs and 51 black boxes
# ----------------------------------
# Fits use Grace Hopper's portrait; models are scored on scikit-image's astronaut, which no fit
# sees; both 8-bit.  ``CALIBRATION_GALLERY_FAST=1`` runs a small version, as the tests do.

import math
import os
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
import skimage.data
import torch
import torch.nn.functional as F

import deepinv as dinv

from calibration_helpers import load_photo, print_table

FAST = os.environ.get("CALIBRATION_GALLERY_FAST") == "1"  # smoke-test mode
SIZE = 144 if FAST else 240  # side of the input photographs, in pixels
FACTORS = (2, 3, 4)  # reduction factors
ADAM_STEPS = 400 if FAST else 500  # autograd iterations of the family fits
SAME_TAPS = 1e-4  # models whose taps differ by less than this (relative) are the same operator
Z_SURE = 3.0  # a model worse than the best by fewer standard errors is as good
TILE = 8  # side of the held-out tiles behind the z-scores, in output pixels
LEVEL = 1 / (255 * math.sqrt(12))  # rms error of rounding to 8 bits, on the [0, 1] scale
device = dinv.utils.get_device(verbose=False)
threads = torch.get_num_threads()
torch.set_num_threads(1)  # thousands of small operations: more threads only wait on each other

x8_train = np.uint8(np.round(load_photo(SIZE)[0].permute(1, 2, 0).numpy() * 255))
astronaut = PIL.Image.fromarray(skimage.data.astronaut())  # square already
x8_test = np.asarray(astronaut.resize((SIZE, SIZE), PIL.Image.Resampling.BICUBIC))

# %%
# The black boxes: ``PIL.Image.Image.resize`` on the 8-bit image (``u8``) and on float planes
# (mode ``F``), :func:`torch.nn.functional.interpolate` with and without ``antialias``,
# :class:`deepinv.physics.Downsampling` with each of its named filters, and
# :class:`deepinv.physics.DownsamplingMatlab` (deepinv's port of MATLAB's ``imresize``).


def pillow(x8, f, name, mode):
    size, flt = (x8.shape[1] // f, x8.shape[0] // f), getattr(PIL.Image.Resampling, name)
    if mode == "u8":
        return np.asarray(PIL.Image.fromarray(x8).resize(size, flt)) / 255
    planes = [PIL.Image.fromarray(np.float32(x8[..., c] / 255), mode="F") for c in range(3)]
    return np.stack([np.asarray(plane.resize(size, flt)) for plane in planes], -1)


def through_torch(operator, x8):
    x = torch.from_numpy(np.float32(x8 / 255)).permute(2, 0, 1)[None]
    return operator(x)[0].permute(1, 2, 0).numpy()


black_boxes = {}  # name: (function of the 8-bit input, factor, whether the output is 8-bit)
for f in FACTORS:
    for name in ("BOX", "BILINEAR", "BICUBIC", "LANCZOS"):
        for mode in ("u8", "F"):
            run = partial(pillow, f=f, name=name, mode=mode)
            black_boxes[f"Pillow {mode} {name} x{f}"] = (run, f, mode == "u8")
    for mode in ("bilinear", "bicubic"):
        for aa in (False, True):
            run = partial(F.interpolate, scale_factor=1 / f, mode=mode, antialias=aa)
            black_boxes[f"torch {mode}{' aa' * aa} x{f}"] = (partial(through_torch, run), f, False)
    for name in ("gaussian", "bilinear", "bicubic", "sinc", "matlab"):
        physics = dinv.physics.DownsamplingMatlab(factor=f) if name == "matlab" else None
        physics = physics or dinv.physics.Downsampling((3, SIZE, SIZE), filter=name, factor=f)
        black_boxes[f"deepinv {name} x{f}"] = (partial(through_torch, physics), f, False)


def as_tensor(image):
    return torch.from_numpy(np.asarray(image, dtype=np.float64)).permute(2, 0, 1).to(device)


x_train, x_test = as_tensor(x8_train / 255), as_tensor(x8_test / 255)
y_train = {name: as_tensor(box[0](x8_train)) for name, box in black_boxes.items()}
y_test = {name: as_tensor(box[0](x8_test)) for name, box in black_boxes.items()}

# %%
# Free-form filters by exact least squares
# ----------------------------------------
# Each output whose window lies inside the image is a row of a design matrix :math:`X` (its
# :math:`K^2 = (8f+1)^2` window).  Centring :math:`X` and :math:`y` eliminates :math:`\beta`;
# minimising :math:`\|Xh - y\|^2` under the one constraint :math:`e^\top h = 1` is then linear,
#
# .. math::
#
#     \begin{pmatrix} X^\top X & e \\ e^\top & 0 \end{pmatrix}
#     \begin{pmatrix} h \\ \lambda \end{pmatrix} = \begin{pmatrix} X^\top y \\ 1 \end{pmatrix}:
#
# one :func:`torch.linalg.solve` for the 17 black boxes of a factor.  The separable fit alternates
# it for :math:`u` (:math:`v` fixed) and :math:`v`.


def solve_sum_to_one(G, b):
    """argmin ½ hᵀGh - bᵀh subject to sum(h) = 1 for each row of b, with one factorisation."""
    m = G.shape[-1]
    kkt = F.pad(G, (0, 1, 0, 1), value=1.0)
    kkt[m, m] = 0.0
    rhs = torch.cat([b.reshape(-1, m), torch.ones_like(b.reshape(-1, m)[:, :1])], 1)
    return torch.linalg.solve(kkt, rhs.T).T[:, :m].reshape(b.shape)


def one_sided(G, b, kernel, side):
    """The K-tap Gram and right-hand side of u (side 1, v = kernel fixed) or of v (side 0)."""
    K = len(kernel)
    G4, B = G.view(K, K, K, K), b.view(K, K)
    if side == 1:
        return (kernel @ G4.view(K, -1)).view(K, K, K).transpose(1, 2) @ kernel, kernel @ B
    return (G4.view(-1, K) @ kernel).view(K, K, K).transpose(1, 2) @ kernel, B @ kernel


def resample(x, v, u, f, beta, is_8bit):
    """Separable models (v, u: (M, K)), rows first; clipped after each pass as 8-bit Pillow."""
    z = torch.einsum("chnk,mk->mchn", x.unfold(-1, u.shape[-1], f), u)
    z = z.clamp(0, 1) if is_8bit else z
    y = torch.einsum("mcnjk,mk->mcnj", z.unfold(-2, v.shape[-1], f), v) + beta.view(-1, 1, 1, 1)
    return y.clamp(0, 1) if is_8bit else y


# %%
# Rounding twice (Pillow rounds its 8-bit intermediate image) moves an output at most
# :math:`0.5 + 0.5\|v\|_1` levels; outputs further away were clipped: we censor them, solve again.


def fit_free_form(x, ys, f, eight_bit):
    """Free-form fits (2-D and separable) of the black boxes whose outputs ys reduce x by f."""
    K, X = 8 * f + 1, x.unfold(-2, 8 * f + 1, f).unfold(-2, 8 * f + 1, f)  # output windows
    (n, m), X = X.shape[1:3], X.reshape(-1, K * K)
    G, s, N = X.T @ X, X.sum(0), X.shape[0]
    Y = torch.stack([y[:, 4 : 4 + n, 4 : 4 + m].reshape(-1) for y in ys], 1)
    H = solve_sum_to_one(G - torch.outer(s, s) / N, (X.T @ Y).T - Y.sum(0)[:, None] * s / N)
    spread = torch.linalg.inv(G - torch.outer(s, s) / N).trace()  # 2-D taps' variance / noise
    fits = []
    for y, h, is_8bit in zip(Y.T, H, eight_bit):
        keep = torch.ones_like(y, dtype=torch.bool)
        for attempt in range(1 + is_8bit):
            out, sk, Nk = X[~keep], s - X[~keep].sum(0), keep.sum()
            Gc = G - out.T @ out - torch.outer(sk, sk) / Nk  # centred: β drops out
            bc = X.T @ y - out.T @ y[~keep] - sk * y[keep].sum() / Nk
            h = solve_sum_to_one(Gc, bc) if attempt else h
            v = torch.linalg.svd(h.view(K, K))[0][:, 0]
            for _ in range(4):
                u = solve_sum_to_one(*one_sided(Gc, bc, v / v.sum(), 1))
                v = solve_sum_to_one(*one_sided(Gc, bc, u, 0))
            residual = y - X @ torch.outer(v, u).flatten()
            if attempt < is_8bit:
                keep = (residual - residual.mean()).abs() <= (0.5 + 0.5 * v.abs().sum()) / 255
        (Gu, bu), (Gv, bv) = one_sided(Gc, bc, v, 1), one_sided(Gc, bc, u, 0)
        Q, r, noise = (Gu + Gv) / Nk, (bu + bv) / Nk, residual[keep].var()
        sd = (noise / Nk * torch.linalg.inv(Q).diagonal()).sqrt()  # of each tap
        k = (u + v).abs() / 2  # the support: taps above 5 sd and above 1e-5 of the peak
        support = torch.nonzero(k > 5 * sd + 1e-5 * k.max()).flatten()[[0, -1]].double() - 4 * f
        fits.append({"v": v, "u": u, "h": h.view(K, K), "Q": Q, "r": r, "S": sk.view(K, K)})
        fits[-1].update(N=Nk, beta=residual[keep].mean(), sum_y=y[keep].sum(), support=support)
        fits[-1]["noise_2d"] = (noise * spread).sqrt()
    return fits


free_form = {}
for f in FACTORS:
    names = [name for name, box in black_boxes.items() if box[1] == f]
    eight_bit = [black_boxes[name][2] for name in names]
    free_form.update(zip(names, fit_free_form(x_train, [y_train[n] for n in names], f, eight_bit)))

# %%
# Kernel families, fitted by autograd
# -----------------------------------
# A family is a shape :math:`\varphi` centred at :math:`c`, stretched by :math:`s`: a box of width
# :math:`s` (integrated over pixels, so that it moves smoothly), a triangle, Keys' cubic with free
# :math:`a` [#Keys1981]_, Lanczos (free support :math:`L`), a Gaussian (:math:`s = \sigma`) and a
# Kaiser-windowed sinc (free :math:`\beta_K`), the last two cut at the free-form support.  Each is
# fitted widened (:math:`s` from :math:`f`: anti-aliasing) and not (:math:`s = 1`: interpolation);
# its loss, the other direction held at the free-form fit, is quadratic, minimised by Adam
# [#Kingma2015]_.

FAMILIES = ("box", "triangle", "keys", "lanczos", "gaussian", "kaiser")
SHAPE = {"keys": ("a", 0.0), "lanczos": ("L", 2.0), "kaiser": ("β", 4.0)}  # name, start
MODELS = [(fam, w) for fam in FAMILIES for w in (False, True) if (fam, w) != ("gaussian", False)]


def family_kernel(family, p, t, support):
    """1-D kernels (B, K) on taps t (B, K) at parameters p (B, 3) = (centre c, scale s, shape)."""
    c, s, shape = p[:, :1], p[:, 1:2], p[:, 2:3]
    x, ax = (t - c) / s, ((t - c) / s).abs()
    if family == "box":
        w = (torch.minimum(t + 0.5, c + s / 2) - torch.maximum(t - 0.5, c - s / 2)).clamp_min(0)
    elif family == "triangle":
        w = (1 - ax).clamp_min(0)
    elif family == "keys":
        inner = ((shape + 2) * ax - (shape + 3)) * ax * ax + 1
        outer = shape * (((ax - 5) * ax + 8) * ax - 4)
        w = torch.where(ax < 1, inner, torch.where(ax < 2, outer, 0.0))
    elif family == "lanczos":
        w = torch.where(ax < shape, torch.sinc(x) * torch.sinc(x / shape), 0.0)
    else:
        low, high = support[:, :1], support[:, 1:]
        edge = (1 - ((2 * t - low - high) / (high - low).clamp_min(1)) ** 2).clamp_min(0).sqrt()
        window = torch.special.i0(shape * edge) / torch.special.i0(shape)
        w = torch.exp(-0.5 * x**2) if family == "gaussian" else torch.sinc(x) * window
        w = w * ((t >= low) & (t <= high))
    return w / w.sum(-1, keepdim=True)


# %%
# All 561 models in one batch, taps padded to one length with far-away taps where kernels are 0.

rows = [(family, widened, name) for family, widened in MODELS for name in black_boxes]
width = 8 * max(FACTORS) + 1
Q = torch.zeros(len(rows), width, width, dtype=torch.float64)
r, t, p = (torch.zeros(len(rows), n, dtype=torch.float64) for n in (width, width, 3))
for i, (family, widened, name) in enumerate(rows):
    f, ff = black_boxes[name][1], free_form[name]
    Q[i, : 8 * f + 1, : 8 * f + 1], r[i, : 8 * f + 1] = ff["Q"].cpu(), ff["r"].cpu()
    t[i] = torch.cat([torch.arange(-4 * f, 4 * f + 1), torch.full((width - 8 * f - 1,), 1e3)])
    k = (ff["u"] + ff["v"]).cpu() / 2
    p[i, 0] = (t[i, : 8 * f + 1] * k).sum()
    spread = ((t[i, : 8 * f + 1] - p[i, 0]) ** 2 * k).sum().clamp_min(0.1).sqrt()
    p[i, 1] = spread if family == "gaussian" else f if widened else 1
    p[i, 2] = SHAPE.get(family, ("", 0.0))[1]
Q, r, t, p = Q.to(device), r.to(device), t.to(device), p.to(device)
blocks = [sum(row[0] == family for row in rows) for family in FAMILIES]
supports = torch.stack([free_form[name]["support"] for *_, name in rows]).split(blocks)
fixed = torch.tensor([[False, not widened, False] for _, widened, _ in rows], device=device)


def kernels(p):
    p = torch.where(fixed, 1.0, p).split(blocks)
    return torch.cat([family_kernel(*part) for part in zip(FAMILIES, p, t.split(blocks), supports)])


optimizer = torch.optim.Adam([p.requires_grad_(True)], lr=0.02)
schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, ADAM_STEPS)
for _ in range(ADAM_STEPS):
    k = kernels(p)
    loss = (0.5 * torch.einsum("rk,rkl,rl->r", k, Q, k) - (r * k).sum(1)).sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    schedule.step()
fitted = {name: {} for name in black_boxes}
p = torch.where(fixed, 1.0, p).detach()
for (family, widened, name), pi, ki in zip(rows, p, kernels(p)):
    fitted[name][family, widened] = (pi.tolist(), ki[: 8 * black_boxes[name][1] + 1])

# %%
# Choosing on the held-out photograph
# -----------------------------------
# Every model resamples the astronaut; a paired :math:`z`-score over 8×8 tiles (mean difference of
# squared residuals over its standard error) says whether one is worse.  Of the models no worse
# than the best by :math:`z \geq 3` we keep the one with fewest parameters (a support cut from the
# data counts two).  Models with the same taps (box and triangle of width 1, half-pixel centre) tie.

choice = {}
for name, ff in free_form.items():
    (f, is_8bit), models = black_boxes[name][1:], list(fitted[name])
    k = torch.stack([fitted[name][model][1] for model in models])
    beta = (ff["sum_y"] - torch.einsum("mk,kl,ml->m", k, ff["S"], k)) / ff["N"]
    prediction = resample(x_test, k, k, f, beta, is_8bit)
    y = y_test[name][:, 4 : 4 + prediction.shape[-1], 4 : 4 + prediction.shape[-1]]
    squared = (prediction - y).pow(2).mean(1)  # (models, n, n)
    R = squared.mean((1, 2)).sqrt() / (LEVEL if is_8bit else y.pow(2).mean().sqrt())
    tiles = F.avg_pool2d(squared[:, None], TILE).flatten(1)
    z = (tiles - tiles[:, None]).mean(-1) / (tiles - tiles[:, None]).std(-1) * tiles.shape[1] ** 0.5
    same = (k[:, None] - k[None]).norm(dim=-1) <= SAME_TAPS * k.norm(dim=-1)
    top, order = int(R.nan_to_num(math.inf).argmin()), [1, 1, 2, 2, 3, 4]  # a cut support: 2
    as_good = [i for i in range(len(k)) if same[i, top] or z[top, i] < Z_SURE]
    best = min(as_good, key=lambda i: (order[FAMILIES.index(models[i][0])] + models[i][1], i))
    tied = [model[0] for model, tie in zip(models, same[:, best]) if tie]
    ties = [family for family in FAMILIES if family in tied and family != models[best][0]]
    rivals = [i for i, model in enumerate(models) if model[0] not in [models[best][0], *ties]]
    runner = min(rivals, key=lambda i: R[i], default=best)  # no rival: every family ties
    rival = f"{models[runner][0]} {z[best, runner]:.1f}" if rivals else "none"
    choice[name] = {"model": models[best], "p": fitted[name][models[best]][0], "ties": ties}
    choice[name].update(R=R[best].item(), rival=rival)

# %%
# Against the documentation
# -------------------------
# Pillow's ``Resample.c`` [#Pillow]_ (quoted on the next page): box, triangle, Keys' cubic with
# :math:`a = -0.5` and Lanczos-3, widened by :math:`f`, centred on :math:`f i + (f - 1)/2`.
# PyTorch's ``UpSampleKernel.cpp`` [#PyTorch]_: "We are using -0.5 for bicubic, antialiasing=true
# (compatibility with PIL) and using -0.75 for bicubic, antialiasing=false"; no widening without.
# deepinv 0.5.0: :func:`~deepinv.physics.functional.gaussian_blur` (:math:`\sigma = f`, cut
# ``int(f / 0.3 + 1)`` taps out), ``bilinear_filter``, ``bicubic_filter`` (:math:`a = -0.5`) and
# ``sinc_filter`` (Kaiser, :math:`4f` taps), centred by :func:`~deepinv.physics.functional.conv2d`
# on :math:`f i + ½` (odd :math:`f`: :math:`f i`); ``DownsamplingMatlab``: Pillow's bicubic.


def documented(name):
    """Family, parameters (c, s, shape) and cut support of a black box, as its source states."""
    f, (library, kind, *rest) = black_boxes[name][1], name.split()
    kind = rest[0].lower() if library == "Pillow" else kind
    rename = {"bilinear": "triangle", "bicubic": "keys", "matlab": "keys", "sinc": "kaiser"}
    family, s, shape = rename.get(kind, kind), f, 3.0 if kind == "lanczos" else -0.5
    c = 0.5 if library == "deepinv" and kind != "matlab" else (f - 1) / 2
    s, shape = (1, -0.75) if library == "torch" and "aa" not in rest else (s, shape)
    if kind == "gaussian":
        return family, (0.0, f, 0.0), (-int(f / 0.3 + 1), int(f / 0.3 + 1))
    A = 2.285 * (4 * f - 1) * 3.14159 * 2 * (2 - 1.4142136) / f + 7.95  # deepinv's sinc_filter
    beta = 0.5842 * (A - 21) ** 0.4 + 0.07886 * (A - 21) if 21 < A <= 50 else 0.1102 * (A - 8.7)
    if kind == "sinc":
        return family, (c, s, beta), (1 - 2 * f, 2 * f)
    return family, (c, s, shape), None


def documented_kernel(name):
    (family, p, support), f = documented(name), black_boxes[name][1]
    t = torch.arange(-4 * f, 4 * f + 1, dtype=torch.float64, device=device)[None]
    support = torch.tensor([support or (0, 0)], dtype=torch.float64, device=device)
    p = torch.tensor([p], dtype=torch.float64, device=device)
    return family_kernel(family, p, t, support)[0]


# %%
# Results
# -------
# Free-form filters against the documented kernels :math:`d \otimes d`, the 2-D fits' singular
# values, and for 8-bit outputs the floor of rounding twice, :math:`\sqrt{1 + \|v\|^2}\, q`.

for group, label in ((True, "8-bit"), (False, "float")):
    fits = [(free_form[n], documented_kernel(n)) for n in black_boxes if black_boxes[n][2] == group]
    fits = [(ff, torch.outer(d, d), torch.linalg.svdvals(ff["h"])) for ff, d in fits]
    sep = max((torch.outer(ff["v"], ff["u"]) - dd).norm() / dd.norm() for ff, dd, _ in fits)
    full = max((ff["h"] - dd).norm() / dd.norm() for ff, dd, _ in fits)
    noise = max(ff["noise_2d"] / dd.norm() for ff, dd, _ in fits)
    second, floor = max(sv[1] / sv[0] for *_, sv in fits), max(ff["v"].norm() for ff, *_ in fits)
    print(f"{label}: error ≤ {100 * sep:.2f} % separable, {100 * full:.2f} % 2-D (noise alone:")
    tail = f", floor ≤ {(1 + floor**2) ** 0.5:.2f} q" if group else ""
    print(f"    {100 * noise:.2f} %), σ₂/σ₁ ≤ {second:.1e}{tail}")
for name in [name for name, ff in free_form.items() if abs(ff["beta"]) > 2e-4]:
    print(f"{name}: mean rounding error β = {255 * free_form[name]['beta']:+.2f} levels")
shown = ["Pillow u8 BICUBIC x4", "torch bicubic x4", "torch bicubic aa x4", "deepinv sinc x4"]
fig, axes = plt.subplots(2, 2, figsize=(9, 6), sharex=True, layout="constrained")
for ax, name in zip(axes.flat, shown):
    d, u = documented_kernel(name).cpu(), free_form[name]["u"].cpu()
    ax.plot(range(-16, 17), d, "-", label="documented")
    ax.plot(range(-16, 17), u, "o", ms=4, label="free-form u")
    error = 100 * (u - d).norm() / d.norm()
    ax.set(title=f"{name}: u {error:.2f} % off", xlabel="t (pixels)", ylabel="weight")
axes[0, 0].legend()
plt.show()

# %%
# Chosen family (``*``: others give the same taps, listed below), parameters (``s`` scale or
# :math:`\sigma`, ``c`` centre), free-form filter error, held-out residual (in
# :math:`q = 1/(255\sqrt{12})` for 8-bit, relative for float) and the best other family with its
# :math:`z` (below 3, the photograph cannot tell the two apart: we kept the simpler).


def describe(family, p, digits):
    shape = f"{SHAPE[family][0]}={p[2]:.{digits}g} " if family in SHAPE else ""
    return f"{shape}s={p[1]:.3g} c={round(p[0], 3) + 0:.3g}"


results, columns = {}, ("family", "fitted", "documented", "free-form", "held-out", "rival, z")
for name, c in choice.items():
    (family, p_doc, _), d, ff = documented(name), documented_kernel(name), free_form[name]
    error = (torch.outer(ff["v"], ff["u"]) - torch.outer(d, d)).norm() / torch.outer(d, d).norm()
    held = f"{c['R']:.2f} q" if black_boxes[name][2] else f"{c['R']:.1e}"
    fit, doc = describe(c["model"][0], c["p"], 4), f"{family} {describe(family, p_doc, 3)}"
    chosen = c["model"][0] + "*" * bool(c["ties"])
    results[name] = dict(zip(columns, [chosen, fit, doc, f"{100 * error:.2f} %", held, c["rival"]]))
for group in (columns[:3], columns[3:]):  # two tables narrow enough for the page
    print_table({name: {column: row[column] for column in group} for name, row in results.items()})
for name in [name for name, c in choice.items() if c["ties"]]:
    print(f"{name}: same taps as {', '.join(choice[name]['ties'])}")
torch.set_num_threads(threads)  # as we found it

# %%
# References
# ----------
# .. [#Keys1981] R. Keys, "Cubic convolution interpolation for digital image processing",
#    *IEEE Trans. ASSP* 29(6), 1981.
# .. [#Kingma2015] D. P. Kingma, J. Ba, "Adam: A Method for Stochastic Optimization", *ICLR* 2015.
# .. [#Pillow] Pillow, ``src/libImaging/Resample.c``, https://github.com/python-pillow/Pillow.
# .. [#PyTorch] ``aten/src/ATen/native/cpu/UpSampleKernel.cpp``, https://github.com/pytorch/pytorch.

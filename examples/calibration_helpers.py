"""Helpers that several gallery pages share: one text for each, kept here.

The pages import them (``from calibration_helpers import solve_simplex_ls``); the downloadable
``.py`` and ``.ipynb`` files of every page carry a copy of the helpers they use, so each download
runs on its own.  The page that teaches a helper defines it in full, with the same text as here
(a test checks that they agree): the projection and the accelerated projected-gradient recipe on
the projected-gradient page, the tangent gradient and the Adam recipe on the Adam page, the AdamW
recipe on the AdamW page, the quadratic on the page about the loss as a quadratic, the exact solver
on the exact-solver page.
"""

import numpy as np
import PIL.Image
import skimage.data
import torch
from matplotlib.cbook import get_sample_data
from torch.fft import irfft, irfft2, rfft, rfft2
from torch.nn.functional import pad

import deepinv as dinv


def square_photo(image, size):
    """An RGB PIL image, centre-cropped to a square and resized: (1, 3, size, size) in [0, 1]."""
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    image = image.resize((size, size), PIL.Image.Resampling.BICUBIC)
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)
    return pixels.permute(2, 0, 1).unsqueeze(0).clamp(0.0, 1.0)


def load_photo(size):
    """Grace Hopper's portrait, centre-cropped and resized: (1, 3, size, size), values in [0, 1]."""
    with get_sample_data("grace_hopper.jpg") as file:
        return square_photo(PIL.Image.open(file).convert("RGB"), size)


def load_skimage_photo(name, size):
    """A photograph of ``skimage.data``, centre-cropped and resized as Grace Hopper's portrait."""
    return square_photo(PIL.Image.fromarray(getattr(skimage.data, name)()).convert("RGB"), size)


def suite_kernel(kind, seed, kernel_size=25):
    """A kernel of the problem suite: an ordinary or a long (wider trajectory) motion, or a 15×15
    motion in the lower-left corner ("off-centre")."""
    if kind == "off-centre":
        small = dinv.physics.generator.MotionBlurGenerator((15, 15), rng=torch.Generator("cpu"))
        corner = (kernel_size - 15, 0, 0, kernel_size - 15)
        return pad(small.step(1, seed=seed)["filter"], corner)
    spread = 0.5 if kind == "long" else 0.25  # deepinv's default trajectory spread is 0.25
    generator = dinv.physics.generator.MotionBlurGenerator(
        (kernel_size, kernel_size), rng=torch.Generator("cpu"), sigma=spread
    )
    return generator.step(1, seed=seed)["filter"]


def suite_problem(photo, kind, kernel_seed, sigma, noise_seed, size):
    """``(x, y, k_true)`` of a problem of the suite, on the CPU: the photograph at size×size, a
    25×25 kernel, valid blur, Gaussian noise of standard deviation sigma drawn with noise_seed."""
    x = load_photo(size) if photo == "grace_hopper" else load_skimage_photo(photo, size)
    k_true = suite_kernel(kind, kernel_seed)
    noise = dinv.physics.GaussianNoise(sigma, rng=torch.Generator("cpu").manual_seed(noise_seed))
    return x, dinv.physics.Blur(filter=k_true, padding="valid", noise_model=noise)(x), k_true


def noise_draws(clean, sigma, seeds):
    """``clean`` plus Gaussian noise of standard deviation sigma, one draw per seed (B, C, h, w)."""
    noise = [dinv.physics.GaussianNoise(sigma, rng=torch.Generator().manual_seed(s)) for s in seeds]
    return torch.cat([model(clean.cpu()) for model in noise]).to(clean.device)


def project_simplex(v):
    """Euclidean projection of each ``v[b]`` onto {k : k >= 0, sum(k) = 1}.

    ``v`` has shape ``(B, ...)`` and any layout; the result has the same shape, dtype and device.
    """
    if not isinstance(v, torch.Tensor):
        raise TypeError(f"project_simplex expects a torch.Tensor, got {type(v).__name__}")
    if not v.is_floating_point():
        raise TypeError(f"project_simplex expects a floating-point tensor, got dtype {v.dtype}")
    if v.dim() < 2 or v.shape[0] == 0 or v[0].numel() == 0:
        raise ValueError(
            f"project_simplex expects a non-empty batch (B, ...), got shape {tuple(v.shape)}"
        )
    if not torch.isfinite(v).all():
        raise ValueError("project_simplex got NaN or infinite values; check the step size")
    with torch.no_grad():
        flat = v.reshape(v.shape[0], -1)  # reshape copies when the layout requires it
        # Entries more than 1 below the row's maximum end at 0 whatever their value: shifting by
        # the maximum and clipping at -1 changes nothing and keeps every sum small (no overflow,
        # no large value swallowing the 1 in float32).
        shifted = (flat - flat.amax(dim=1, keepdim=True)).clamp_min(-1.0)
        u = torch.sort(shifted, dim=1, descending=True).values
        cumsum = u.cumsum(dim=1) - 1.0
        index = torch.arange(1, flat.shape[1] + 1, device=v.device, dtype=v.dtype)
        positive = u - cumsum / index > 0  # always true for the largest entry
        rho = torch.where(positive, index, torch.zeros_like(index)).amax(dim=1, keepdim=True)
        threshold = cumsum.gather(1, rho.long() - 1) / rho
        return (shifted - threshold).clamp_min(0.0).reshape(v.shape)


def lagged_window_sums(x, kernel_size):
    """``S[i, j, di, dj + K - 1]``: the sum of ``x(u) x(u + (di, dj))`` over the window of ``u``
    that the valid blur reads from kernel entry ``(i, j)``, for one image ``x`` (1, C, H, W).

    Lags: ``0 <= di < K``, ``-K < dj < K``.  The window is the image minus a frame of width
    ``K - 1``: sum over the whole image (one FFT for every lag), subtract the frame's rows and
    columns (1-D FFTs along them), add back the corners that both removed.
    """
    K, (H, W), dev, m = kernel_size, x.shape[-2:], x.device, kernel_size - 1
    di, dj = torch.arange(K, device=dev), torch.arange(-m, K, device=dev)
    n = (H + K, W + 2 * K)  # FFT sizes with no wrap-around at these lags
    X = rfft2(x, s=n)
    total = irfft2((X.conj() * X).sum(1), s=n)[0, di][:, dj % n[1]]

    def lines(z, rows, offsets, lags, length):  # sum_v z(r, v) z(r + o, v + t), zero beyond z
        Z = rfft(pad(z[0], (0, 0, K, K)), n=length)
        pairs = Z[:, rows + K, None].conj() * Z[:, rows[:, None] + offsets + K]
        return irfft(pairs.sum(0), n=length)[..., lags % length]

    def corner(r0, c0):  # x(u) x(u + d), u in the m×m corner at (r0, c0)
        near = pad(x[0], (K, K, K, K))[:, r0 + K : r0 + 2 * K + m - 1, c0 + K - m :]
        shifted = near[..., : m + 2 * K - 2].unfold(1, K, 1).unfold(2, 2 * K - 1, 1)
        return (x[0, :, r0 : r0 + m, c0 : c0 + m, None, None] * shifted).sum(0)

    def before(t, dim):  # entry i: the sum of the entries < i along dim
        return pad(t.cumsum(dim), (0, 0) * (t.dim() - 1 - dim) + (1, 0))

    def after(t, dim):  # entry i: the sum of the entries >= i along dim
        return t.sum(dim, keepdim=True) - before(t, dim)

    if m == 0:  # a 1×1 kernel: the window is the whole image
        return total.view(1, 1, 1, 1)
    edge, xt = torch.arange(m, device=dev), x.transpose(-1, -2)
    top, bottom = lines(x, edge, di, dj, n[1]), lines(x, edge + H - m, di, dj, n[1])
    left = lines(xt, edge, dj, di, n[0]).transpose(-1, -2)
    right = lines(xt, edge + W - m, dj, di, n[0]).transpose(-1, -2)
    return (
        total
        - (before(top, 0) + after(bottom, 0))[:, None]
        - (before(left, 0) + after(right, 0))[None, :]
        + before(before(corner(0, 0), 0), 1)
        + after(before(corner(0, W - m), 0), 1)
        + before(after(corner(H - m, 0), 0), 1)
        + after(after(corner(H - m, W - m), 0), 1)
    )


def linear_terms(x, y, kernel_size):
    """``b`` (B, K²) of the quadratic of ``blur_quadratic``, one image x, measurements y[i]."""
    H, W = x.shape[-2:]
    spectrum = torch.fft.rfft2(y.double(), s=(H, W)).conj() * torch.fft.rfft2(x.double(), s=(H, W))
    b = torch.fft.irfft2(spectrum.sum(1), s=(H, W))[:, :kernel_size, :kernel_size]
    return b.reshape(-1, kernel_size * kernel_size).flip(-1)


def blur_quadratic(x, y, kernel_size):
    """``G`` (B, K², K²) and ``b`` (B, K²), in float64, of each pair ``(x[i], y[i])``:

    ``1/2 ||Blur(k, padding="valid")(x[i]) - y[i]||² = 1/2 kᵀ G[i] k - b[i]ᵀ k + 1/2 ||y[i]||²``
    for every K×K kernel ``k`` (flattened), summed over the colour channels.
    """
    if x.dim() != 4 or y.dim() != 4 or x.shape[:2] != y.shape[:2]:
        raise ValueError(
            f"expected x (B, C, H, W) and y (B, C, h, w), got {tuple(x.shape)}, {tuple(y.shape)}"
        )
    K, (H, W), dev = kernel_size, x.shape[-2:], x.device
    if tuple(y.shape[-2:]) != (H - K + 1, W - K + 1):
        raise ValueError(
            f"y must be the valid blur of x by a {K}×{K} kernel: {tuple(y.shape[-2:])}"
        )
    if not (torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise ValueError("blur_quadratic got NaN or infinite values")
    G = x.new_zeros(x.shape[0], K, K, K, K, dtype=torch.float64)
    r = torch.arange(K, device=dev)
    i, j, di, s = torch.meshgrid(r, r, r, torch.arange(2 * K - 1, device=dev), indexing="ij")
    keep = (i + di < K) & (j + s - K + 1 >= 0) & (j + s - K + 1 < K)
    i, j, di, s = i[keep], j[keep], di[keep], s[keep]
    for image, sums in zip(
        G, (lagged_window_sums(x[n : n + 1].double(), K) for n in range(len(x)))
    ):
        image[i, j, i + di, j + s - K + 1] = sums[i, j, di, s]  # entry (i, j) with (i + di, j + dj)
        image[i + di, j + s - K + 1, i, j] = sums[i, j, di, s]  # G is symmetric
    # deepinv convolves (flips the kernel): entry (i, j) multiplies the crop at (K-1-i, K-1-j)
    return G.reshape(-1, K * K, K * K).flip(-1, -2), linear_terms(x, y, K)


def minimise_on_support(G, b, support):
    """For each ``i``: the minimiser of ``1/2 kᵀ G[i] k - b[i]ᵀ k`` with ``sum(k) = 1`` and
    ``k = 0`` off ``support[i]`` (no sign constraint), from its optimality conditions.

    One small linear system per problem (the supports' size, padded to the largest); ``G`` may
    be one matrix (1, n, n) shared by every problem.
    """
    B, dev, rows = b.shape[0], b.device, torch.arange(b.shape[0], device=b.device)
    G = G.expand(B, -1, -1)
    count = support.sum(1)
    s = int(count.max())
    index = torch.argsort((~support).to(torch.int8), dim=1, stable=True)[:, :s]
    valid = torch.arange(s, device=dev) < count[:, None]
    kkt = torch.zeros(B, s + 1, s + 1, dtype=b.dtype, device=dev)
    kkt[:, :s, :s] = torch.where(
        valid[:, :, None] & valid[:, None, :],
        G[rows[:, None, None], index[:, :, None], index[:, None, :]],
        torch.eye(s, dtype=b.dtype, device=dev),
    )
    kkt[:, :s, s] = kkt[:, s, :s] = valid.to(b.dtype)
    rhs = torch.cat([torch.where(valid, b.gather(1, index), 0.0), torch.ones_like(b[:, :1])], 1)
    solution, info = torch.linalg.solve_ex(kkt, rhs)
    if (info != 0).any():  # G singular on a support: a tiny ridge picks one of its minimisers
        ridge = torch.eye(s + 1, dtype=b.dtype, device=dev) * 1e-13 * kkt.abs().amax((1, 2), True)
        ridge[:, s, s] = 0.0
        solution = torch.linalg.solve(kkt + ridge, rhs)
    return torch.zeros_like(b).scatter(1, index, torch.where(valid, solution[:, :s], 0.0))


def solve_simplex_ls(G, b, tol=1e-12):
    """The exact minimiser of ``1/2 kᵀ G[i] k - b[i]ᵀ k`` over the simplex, for every ``i``.

    ``G`` (B, n, n) symmetric positive semi-definite, or (1, n, n) shared by all, ``b`` (B, n);
    returns ``k`` (B, n).  A primal active-set method: from the best vertex, minimise on the
    support (sum(k) = 1); if that leaves the simplex, step towards it until an entry reaches zero
    and drop it; else add the entry whose gradient most undercuts the others', until none does.
    """
    n = b.shape[-1]
    if G.dim() != 3 or b.dim() != 2 or G.shape[1:] != (n, n) or len(G) not in (1, len(b)):
        raise ValueError(f"expected G (B, n, n) or (1, n, n) and b (B, n): {G.shape}, {b.shape}")
    if not (G.is_floating_point() and b.is_floating_point()):
        raise TypeError(f"expected floating-point G and b, got {G.dtype} and {b.dtype}")
    if not (torch.isfinite(G).all() and torch.isfinite(b).all()):
        raise ValueError("solve_simplex_ls got NaN or infinite values")
    G, rows = G.to(b.dtype), torch.arange(b.shape[0], device=b.device)
    diagonal = G.diagonal(dim1=-2, dim2=-1)
    scale = diagonal.abs().amax(-1) + b.abs().amax(-1)  # the size of the gradient's entries
    k = torch.zeros_like(b)
    k[rows, (0.5 * diagonal - b).argmin(1)] = 1.0  # the best vertex
    support, done = k > 0, torch.zeros_like(rows, dtype=torch.bool)
    for _ in range(3 * n + 100):
        z = torch.where(support & ~done[:, None], minimise_on_support(G, b, support), k)
        # Step towards z, stopping where the first entry of the support reaches zero.
        negative = support & (z <= 0)
        ratio = torch.where(
            negative, k / (k - z).clamp_min(torch.finfo(b.dtype).tiny), float("inf")
        )
        step = ratio.amin(1, keepdim=True).clamp(max=1.0)
        k = torch.where(support, k + step * (z - k), 0.0)
        blocked = negative.any(1)
        support &= ~(blocked[:, None] & (negative & (ratio <= step) | (k <= 0)))
        k = torch.where(support, k.clamp_min(0.0), 0.0)
        # Where z was feasible: is some entry off the support worth adding?
        gradient = (k @ G[0] if len(G) == 1 else torch.einsum("bij,bj->bi", G, k)) - b
        multiplier = (gradient * support).sum(1) / support.sum(1)
        worst, entry = torch.where(support, float("inf"), gradient - multiplier[:, None]).min(1)
        add = ~blocked & ~done & (worst < -tol * scale)
        support[rows[add], entry[add]] = True
        done |= ~blocked & ~add
        if done.all():
            break
    return k


def gradient_of_f(physics, x, y, k):
    """The gradient of f at k, by autograd through the Blur operator."""
    k = k.detach().requires_grad_(True)
    physics.update(filter=k)
    loss = dinv.optim.L2()(x=x, y=y, physics=physics).sum() / y.numel()
    return torch.autograd.grad(loss, k)[0]


def curvature_along(physics, x, d, n):
    """The curvature of f along d: ||A_x d||² / (n ||d||²)."""
    with torch.no_grad():
        physics.update(filter=d)
        return (physics.A(x).pow(2).sum() / (n * d.pow(2).sum())).item()


def calibrate_pgd(x, y, kernel_size, n_iter, step=1.0, grow=1.1, callback=None):
    """FISTA with restart on the simplex, the step backtracking on the curvature along the step."""
    k = torch.full((1, 1, kernel_size, kernel_size), 1.0 / kernel_size**2, device=x.device)
    physics = dinv.physics.Blur(filter=k.clone(), padding="valid", device=x.device)
    z, momentum = k.clone(), 1.0
    for _ in range(n_iter):
        grad = gradient_of_f(physics, x, y, z)
        step = step * grow
        while True:
            k_next = project_simplex(z - step * grad)
            d = k_next - z
            if d.abs().max() == 0 or step * curvature_along(physics, x, d, y.numel()) <= 1:
                break
            step = step / 2
        if ((k_next - k) * (z - k_next)).sum() > 0:  # momentum points uphill: restart
            momentum, z = 1.0, k_next.clone()
        else:
            momentum_next = (1 + (1 + 4 * momentum**2) ** 0.5) / 2
            z = k_next + (momentum - 1) / momentum_next * (k_next - k)
            momentum = momentum_next
        k = k_next
        if callback is not None:
            callback(k, step)
    return k


def tangent_gradient(grad, k):
    """The part of ``grad`` that a kernel ``k`` on the simplex can follow, for each ``k[b]``.

    The mean over the support (the entries above zero) is removed, since the projection undoes a
    shift common to every entry; on the entries held at zero only a push upwards is kept.
    """
    support = k > 0
    dims = tuple(range(1, k.dim()))
    mean = (grad * support).sum(dims, keepdim=True) / support.sum(dims, keepdim=True)
    centred = grad - mean
    return torch.where(support | (centred < 0), centred, torch.zeros_like(centred))


def calibrate_adam(x, y, kernel_size, n_iter, lr=0.01, tangent=True, k_start=None, callback=None):
    """Adam on the kernel of a Blur operator, projected onto the simplex after each step."""
    if k_start is None:  # the flat kernel
        k_start = torch.full((1, 1, kernel_size, kernel_size), 1.0 / kernel_size**2)
    k = k_start.clone().to(x.device).requires_grad_(True)
    physics = dinv.physics.Blur(filter=k, padding="valid", device=x.device)
    optimizer = torch.optim.Adam([k], lr=lr, betas=(0.9, 0.9))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=n_iter)
    for _ in range(n_iter):
        optimizer.zero_grad()
        physics.update(filter=k)
        loss = dinv.optim.L2()(x=x, y=y, physics=physics).sum() / y.numel()
        loss.backward()
        if tangent:
            k.grad = tangent_gradient(k.grad, k.detach())
        optimizer.step()
        scheduler.step()
        with torch.no_grad():
            k.copy_(project_simplex(k))  # in place: autograd does not record the projection
        if callback is not None:
            callback(k.detach(), loss.item())
    return k.detach()


def calibrate_adamw(
    x, y, kernel_size, n_iter, loss_fn=None, lr=0.01, tangent=True, k_start=None, callback=None
):
    """AdamW on the filter of a Blur operator, as on a network weight, projected after each step."""
    if loss_fn is None:  # the page's loss
        loss_fn = torch.nn.L1Loss()
    if k_start is None:  # the flat kernel
        k_start = torch.full((1, 1, kernel_size, kernel_size), 1.0 / kernel_size**2)
    weight = k_start.clone().to(x.device).requires_grad_(True)
    physics = dinv.physics.Blur(filter=weight, padding="valid", device=x.device)
    if tangent:  # the hook replaces the gradient before it reaches weight.grad
        weight.register_hook(lambda grad: tangent_gradient(grad, weight.detach()))
    optimizer = torch.optim.AdamW([weight], lr=lr, betas=(0.9, 0.9))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=n_iter)
    for _ in range(n_iter):
        optimizer.zero_grad()
        loss = loss_fn(physics.A(x), y)
        loss.backward()
        optimizer.step()
        scheduler.step()
        with torch.no_grad():
            weight.copy_(project_simplex(weight))
        if callback is not None:
            callback(weight.detach(), loss.item())
    return weight.detach().clone()


def relative_errors(k, k_ref):
    """The relative error of each row of k (flattened kernels) against k_ref, as a numpy array."""
    return dinv.metric.NRMSE()(k, k_ref.reshape(1, -1).to(k).expand_as(k)).cpu().numpy()


def least_squares_floor(x, y, k_ref):
    """Relative error of the exact least-squares kernel over the simplex (the floor)."""
    k_star = solve_simplex_ls(*blur_quadratic(x, y, k_ref.shape[-1])).reshape(k_ref.shape)
    return dinv.metric.NRMSE()(k_star.to(k_ref.dtype), k_ref).item()


def central_indices(size, kernel_size):
    """Indices, in a flattened kernel_size² kernel, of its centred size×size block."""
    rows = torch.arange(size) + (kernel_size - size) // 2
    return (rows[:, None] * kernel_size + rows[None, :]).flatten()


def cubic_weights(t):
    """Weights h[m], m = -2..2, of the cubic-convolution filter that shifts by t (``|t| <= 1``)."""
    t = torch.as_tensor(t, dtype=torch.float64)
    if t.numel() != 1 or not torch.isfinite(t) or t.abs() > 1:
        raise ValueError(f"the shift must be a finite number in [-1, 1], got {t}")
    s = (torch.arange(-2, 3, dtype=torch.float64, device=t.device) - t).abs()
    a = -0.5  # Keys' parameter: third-order accurate
    near = (a + 2) * s**3 - (a + 3) * s**2 + 1
    far = a * s**3 - 5 * a * s**2 + 8 * a * s - 4 * a
    return torch.where(s <= 1, near, torch.where(s < 2, far, torch.zeros_like(s)))


def shift_image(z, dy, dx):
    """``z`` (B, C, H, W) moved by (dy, dx) pixels: out[i, j] = z(i - dy, j - dx), reflected at
    the borders (only the outer 2 pixels see the reflection)."""
    if not isinstance(z, torch.Tensor) or z.dim() != 4 or not z.is_floating_point():
        raise TypeError("shift_image expects a floating-point tensor of shape (B, C, H, W)")
    if min(z.shape[-2:]) < 3:
        raise ValueError(f"the image is too small to shift: {tuple(z.shape)}")
    channels = z.shape[1]
    wy, wx = cubic_weights(dy).to(z), cubic_weights(dx).to(z)
    # conv2d correlates; flipping the weights makes it the convolution h * z
    filter_y = wy.flip(0).view(1, 1, 5, 1).expand(channels, 1, 5, 1)
    filter_x = wx.flip(0).view(1, 1, 1, 5).expand(channels, 1, 1, 5)
    padded = torch.nn.functional.pad(z, (2, 2, 2, 2), mode="reflect")
    out = torch.nn.functional.conv2d(padded, filter_y, groups=channels)
    return torch.nn.functional.conv2d(out, filter_x, groups=channels)


def print_table(table):
    """Print ``{row: {column: value}}`` as aligned columns: the page's measured results.

    Floats are printed with four significant digits; strings (such as timings, ``"1.23 s"``) as
    they are.  The tests read the same dictionary, and the printed table on the built page.
    """
    columns = list(dict.fromkeys(column for row in table.values() for column in row))

    def cell(value):
        if isinstance(value, float):
            return f"{value:#.4g}"
        return str(value)

    lines = [[""] + columns] + [
        [str(name)] + [cell(row.get(c, "")) for c in columns] for name, row in table.items()
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns) + 1)]
    for number, line in enumerate(lines):
        first = line[0].ljust(widths[0])
        print(
            "  ".join(
                [first] + [text.rjust(width) for text, width in zip(line[1:], widths[1:])]
            ).rstrip()
        )
        if number == 0:
            print("  ".join("-" * width for width in widths))

"""The problem suite: calibration problems the pages' recipes were not tuned on.

Each problem is a real photograph from an installed package, a motion-blur kernel (ordinary, long
or off-centre), a noise level and a noise draw.  ``make_problem(problem, size)`` builds
``(x, y, k_true)`` as the pages build theirs (centre crop, bicubic resize, valid blur, seeded
Gaussian noise, all on the CPU); the first problem is the pages' own default problem.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from matplotlib.cbook import get_sample_data

import deepinv as dinv

KERNEL_SIZE = 25
FULL_SIZE = 256
REDUCED_SIZE = 96  # the reduced suite the tests run


@dataclasses.dataclass(frozen=True)
class Problem:
    photo: str  # "grace_hopper" (matplotlib) or a name in skimage.data
    kernel_seed: int
    sigma: float
    noise_seed: int
    kind: str = "ordinary"  # "ordinary", "long" (a longer trajectory) or "off-centre"

    @property
    def name(self) -> str:
        return f"{self.photo}/{self.kind} {self.kernel_seed}/σ {self.sigma}/noise {self.noise_seed}"


PROBLEMS = (
    Problem("grace_hopper", 123, 0.02, 0),  # the pages' default problem
    Problem("grace_hopper", 7, 0.01, 1),
    Problem("grace_hopper", 11, 0.05, 2, "long"),
    Problem("astronaut", 123, 0.02, 3),
    Problem("astronaut", 2024, 0.01, 4, "long"),
    Problem("astronaut", 5, 0.05, 5, "off-centre"),
    Problem("coffee", 7, 0.02, 6),
    Problem("coffee", 31, 0.01, 7, "off-centre"),
    Problem("coffee", 99, 0.05, 8, "long"),
    Problem("chelsea", 42, 0.02, 9),
    Problem("chelsea", 8, 0.02, 10, "off-centre"),
    Problem("rocket", 77, 0.01, 11, "long"),
    Problem("rocket", 123, 0.05, 12),
)


@functools.cache
def photo(name: str, size: int) -> torch.Tensor:
    """A photograph, centre-cropped and resized: a (1, 3, size, size) tensor in [0, 1]."""
    if name == "grace_hopper":
        with get_sample_data("grace_hopper.jpg") as file:
            image = PIL.Image.open(file).convert("RGB")
    else:
        import skimage.data

        image = PIL.Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    image = image.resize((size, size), PIL.Image.Resampling.BICUBIC)
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)
    return pixels.permute(2, 0, 1).unsqueeze(0).clamp(0.0, 1.0)


def kernel(problem: Problem) -> torch.Tensor:
    """The true kernel, (1, 1, 25, 25), non-negative, summing to one."""
    if problem.kind == "off-centre":  # a 15×15 trajectory in a corner of the 25×25 support
        generator = dinv.physics.generator.MotionBlurGenerator((15, 15), rng=torch.Generator("cpu"))
        small = generator.step(1, seed=problem.kernel_seed)["filter"]
        return F.pad(small, (KERNEL_SIZE - 15, 0, 0, KERNEL_SIZE - 15))
    sigma = 0.5 if problem.kind == "long" else 0.25  # deepinv's default trajectory spread is 0.25
    generator = dinv.physics.generator.MotionBlurGenerator(
        (KERNEL_SIZE, KERNEL_SIZE), rng=torch.Generator("cpu"), sigma=sigma
    )
    return generator.step(1, seed=problem.kernel_seed)["filter"]


def make_problem(problem: Problem, size: int = FULL_SIZE):
    """``(x, y, k_true)`` on the CPU, exactly as a page would build them."""
    x = photo(problem.photo, size)
    k_true = kernel(problem)
    noise = dinv.physics.GaussianNoise(
        sigma=problem.sigma, rng=torch.Generator("cpu").manual_seed(problem.noise_seed)
    )
    y = dinv.physics.Blur(filter=k_true, padding="valid", noise_model=noise)(x)
    return x, y, k_true


@functools.cache
def floor(problem: Problem, size: int = FULL_SIZE) -> float:
    """Relative kernel error of the exact least-squares kernel over the simplex (the floor)."""
    from calibration_helpers import blur_quadratic, solve_simplex_ls

    x, y, k_true = make_problem(problem, size)
    k_star = solve_simplex_ls(*blur_quadratic(x, y, KERNEL_SIZE))[0]
    truth = k_true.double().flatten()
    return ((k_star - truth).norm() / truth.norm()).item()


@functools.cache
def floor_l1(problem: Problem, size: int = FULL_SIZE, n_iter: int = 2000) -> float:
    """Relative kernel error of the minimiser over the simplex of the L1 loss ``mean |A(k) - y|``.

    Under Gaussian noise the L1 loss's own minimiser lies above the least-squares floor (1.1-1.3×
    on most problems, more on some draws): no recipe with an L1 loss can do better.  There is no
    closed form; this is a long run (``n_iter``, several times a page's budget) in float64 with the
    blur by FFT (no deepinv): Adam steps on the gradient centred over the support, a cosine
    schedule, the projection.  Checked against an exact linear program (HiGHS) on the coffee
    off-centre problem at 96² (both 1.026× the floor); at full size, runs of 300, 1,500 and 3,000
    iterations agree on the L1 loss to 8 digits.
    """
    from calibration_helpers import project_simplex

    x, y, k_true = make_problem(problem, size)
    x, y, K = x.double(), y.double(), KERNEL_SIZE
    (H, W), n = x.shape[-2:], y.numel()
    X = torch.fft.rfft2(x)

    def residual(k):  # the valid convolution, as deepinv's Blur, minus y
        return (
            torch.fft.irfft2(X * torch.fft.rfft2(k, s=(H, W)), s=(H, W))[..., K - 1 :, K - 1 :] - y
        )

    def gradient(k):  # of mean |residual| in k: the correlation of x with the residual's sign
        R = torch.fft.rfft2(F.pad(residual(k).sign(), (K - 1, 0, K - 1, 0)), s=(H, W))
        return torch.fft.irfft2((R * X.conj()).sum(1, keepdim=True), s=(H, W))[..., :K, :K] / n

    k = torch.full((1, 1, K, K), 1.0 / K**2, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([k], lr=0.01, betas=(0.9, 0.9))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=n_iter)
    for _ in range(n_iter):
        with torch.no_grad():
            g, support = gradient(k), k > 0
            g = g - g[support].mean()
            k.grad = torch.where(support | (g < 0), g, torch.zeros_like(g))
        optimizer.step()
        scheduler.step()
        with torch.no_grad():
            k.copy_(project_simplex(k))
    truth = k_true.double()
    return ((k.detach() - truth).norm() / truth.norm()).item()

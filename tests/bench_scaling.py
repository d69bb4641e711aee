"""How the costs of the two routes grow with the image and the kernel (``make bench``).

For each image side and kernel size: the wall time of one autograd iteration through
``deepinv.physics.Blur`` (loss and gradient, the median of several), and the exact route's two
steps, building ``G, b`` (``blur_quadratic``) and solving over the simplex (``solve_simplex_ls``).
Printed as one table; nothing is asserted (timings belong to benchmarks, not tests).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

import deepinv as dinv

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from calibration_helpers import blur_quadratic, load_photo, print_table, solve_simplex_ls

SIZES = (128, 256, 512)  # image sides
KERNEL_SIZES = (15, 25, 41)  # kernel sides
REPEATS = 5  # timed repetitions per measurement (the median is reported)


def median_seconds(function) -> float:
    function()  # warm-up
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def problem(size: int, kernel_size: int):
    generator = dinv.physics.generator.MotionBlurGenerator(
        (kernel_size, kernel_size), rng=torch.Generator("cpu")
    )
    k_true = generator.step(1, seed=123)["filter"]
    noise = dinv.physics.GaussianNoise(sigma=0.02, rng=torch.Generator("cpu").manual_seed(0))
    x = load_photo(size)
    return x, dinv.physics.Blur(filter=k_true, padding="valid", noise_model=noise)(x), k_true


def autograd_iteration(x, y, k_true):
    blur = dinv.physics.Blur(filter=k_true.clone(), padding="valid")
    k = torch.full_like(k_true, 1.0 / k_true.numel()).requires_grad_(True)

    def step():
        blur.update(filter=k)
        loss = dinv.optim.L2()(x=x, y=y, physics=blur).sum() / y.numel()
        torch.autograd.grad(loss, k)

    return step


def main() -> None:
    table = {}
    for kernel_size in KERNEL_SIZES:
        for size in SIZES:
            x, y, k_true = problem(size, kernel_size)
            G, b = blur_quadratic(x, y, kernel_size)
            per_iteration = median_seconds(autograd_iteration(x, y, k_true))
            build = median_seconds(lambda x=x, y=y, K=kernel_size: blur_quadratic(x, y, K))
            solve = median_seconds(lambda G=G, b=b: solve_simplex_ls(G, b))
            table[f"{size}² image, {kernel_size}² kernel"] = {
                "autograd / it": f"{1000 * per_iteration:8.1f} ms",
                "build G, b": f"{build:7.3f} s",
                "solve": f"{solve:7.3f} s",
                "exact ≈ it": f"{(build + solve) / per_iteration:6.1f} it",
                "G size": f"{G.numel() * 8 / 1e6:.1f} MB",
            }
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    print_table(table)


if __name__ == "__main__":
    main()

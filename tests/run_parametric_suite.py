"""Run the parametric PSF pages' fits on every problem of the suite and print one table.

    .venv/bin/python tests/run_parametric_suite.py            # full size (256², the pages' budgets)
    .venv/bin/python tests/run_parametric_suite.py --size 96  # a quick look

Each suite problem gives a photograph, a noise level and a noise draw; the true PSF is the page's
own (the Gaussian page's widths and angle, the Zernike page's seeded coefficients), since a
parametric fit only makes sense for a PSF of its family.  The pages' functions run as they are
(``calibrate_gaussian``, ``calibrate_zernike``, loaded with ``recipes.page_namespace``), against
the pages' own criteria: Gaussian widths within 5 % and angle within 3°; Zernike coefficients
within 10 % (best sign pattern) and the PSF error within 1.2× the free-form floor of the same
data.  The exit status is 1 if any criterion fails.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import torch

sys.path[:0] = [
    str(Path(__file__).resolve().parent),
    str(Path(__file__).resolve().parents[1] / "examples"),
]

import deepinv as dinv

import suite
from calibration_helpers import blur_quadratic, print_table, solve_simplex_ls
from recipes import EXAMPLES, page_namespace

GAUSSIAN = EXAMPLES / "beyond" / "plot_gaussian_psf.py"
ZERNIKE = EXAMPLES / "beyond" / "plot_zernike_psf.py"


def measurement(problem, k_true, size):
    """y of the suite problem's photograph and noise, blurred by the page's PSF k_true."""
    x = suite.photo(problem.photo, size)
    noise = dinv.physics.GaussianNoise(
        sigma=problem.sigma, rng=torch.Generator("cpu").manual_seed(problem.noise_seed)
    )
    return x, dinv.physics.Blur(filter=k_true, padding="valid", noise_model=noise)(x)


def gaussian_row(problem, size):
    ns = page_namespace(GAUSSIAN)
    k_true = dinv.physics.functional.gaussian_blur(
        psf_size=(suite.KERNEL_SIZE,) * 2, sigma=ns["SIGMA_TRUE"], angle=ns["ANGLE_TRUE"]
    )
    x, y = measurement(problem, k_true, size)
    sigma, angle = ns["calibrate_gaussian"](x, y, suite.KERNEL_SIZE, ns["N_ITER"])
    fit = ns["canonical_parameters"](*sigma.tolist(), angle.item())
    truth = ns["canonical_parameters"](*ns["SIGMA_TRUE"], ns["ANGLE_TRUE"])
    row = {
        "σ1 (%)": 100 * abs(fit[0] / truth[0] - 1),
        "σ2 (%)": 100 * abs(fit[1] / truth[1] - 1),
        "angle (°)": ns["angle_difference"](fit[2], truth[2]),
    }
    row["holds"] = (
        "yes" if max(row["σ1 (%)"], row["σ2 (%)"]) <= 5 and row["angle (°)"] <= 3 else "NO"
    )
    return row


def zernike_namespace():
    """The Zernike page's functions, with the state they read built as the page builds it."""
    ns = page_namespace(ZERNIKE)
    optics = dict(psf_size=(suite.KERNEL_SIZE,) * 2, fc=ns["FC"], pupil_size=(64, 64))
    drawn = dinv.physics.generator.DiffractionBlurGenerator(
        **optics, max_zernike_amplitude=ns["AMPLITUDE"], rng=torch.Generator("cpu")
    ).step(1, seed=0)
    ns["psf_generator"] = dinv.physics.generator.DiffractionBlurGenerator(**optics)
    ns["NOLL"] = ns["psf_generator"].zernike_index
    ns["fc_shared"] = torch.tensor([[ns["FC"]]])
    k_true, a_true = drawn["filter"], drawn["coeff"].reshape(1, -1)
    patterns = torch.tensor(list(itertools.product([1.0, -1.0], repeat=len(ns["NOLL"]))))
    with torch.no_grad():
        gaps = (ns["psfs_of"](patterns * a_true) - k_true).flatten(1).norm(dim=1) / k_true.norm()
    ns["SIGN_GROUP"] = patterns[gaps < 1e-5]
    return ns, k_true, a_true


def zernike_row(problem, size, state):
    ns, k_true, a_true = state
    x, y = measurement(problem, k_true, size)
    _, a_fits = ns["calibrate_zernike"](x, y, suite.KERNEL_SIZE, ns["N_ITER"])
    G, b = (t[0] for t in blur_quadratic(x, y, suite.KERNEL_SIZE))
    with torch.no_grad():
        flat = ns["psfs_of"](a_fits).double().reshape(len(a_fits), -1)
        a_hat = a_fits[(0.5 * ((flat @ G) * flat).sum(1) - flat @ b).argmin()][None]
        k_hat = ns["psfs_of"](a_hat)
    k_free = solve_simplex_ls(G[None], b[None]).float().reshape(k_true.shape)
    nrmse = dinv.metric.NRMSE()
    ratio = nrmse(k_hat, k_true).item() / nrmse(k_free, k_true).item()
    coeff = 100 * ns["coefficient_errors"](a_hat, a_true)[0].item()
    return {
        "coeff. (%)": coeff,
        "× floor": ratio,
        "holds": "yes" if coeff <= 10 and ratio <= 1.2 else "NO",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=suite.FULL_SIZE)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as the pages: many small solves
    state, table, start = zernike_namespace(), {}, time.perf_counter()
    for problem in suite.PROBLEMS:
        name = f"{problem.photo} σ {problem.sigma} noise {problem.noise_seed}"
        gaussian = {f"Gaussian {k}": v for k, v in gaussian_row(problem, args.size).items()}
        zernike = {f"Zernike {k}": v for k, v in zernike_row(problem, args.size, state).items()}
        table[name] = gaussian | zernike
        print(f"{name}: done ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
    print_table(table)
    failures = [
        n for n, row in table.items() if "NO" in (row["Gaussian holds"], row["Zernike holds"])
    ]
    print(
        f"{len(table) - len(failures)} of {len(table)} problems hold both criteria; "
        f"run time {time.perf_counter() - start:.0f} s"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

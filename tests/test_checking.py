"""The checking pages' statistics on problems small enough to verify by brute force.

The functions under test are the pages' own (from their fast-mode runs): the face covariance and
the expected error of the uncertainty page, the residual checks of the residual page, the
quadrant scores of the held-out page.
"""

from __future__ import annotations

import ast

import numpy as np
import pytest
import torch

import deepinv as dinv

from calibration_helpers import blur_quadratic, solve_simplex_ls
from conftest import ROOT

CHECKING = ROOT / "examples" / "checking"
RESIDUAL, UNCERTAINTY, HELD_OUT = (
    CHECKING / f"plot_{name}.py"
    for name in ("residual_checks", "kernel_uncertainty", "held_out_support")
)


def tiny_problem(seed, size=14, kernel_size=3, channels=1):
    """A random image, an interior kernel (every entry >= 0.05), their quadratic and clean blur."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, channels, size, size, generator=g, dtype=torch.float64)
    k = 0.05 + torch.rand(kernel_size**2, generator=g, dtype=torch.float64)
    k = (k / k.sum()).reshape(1, 1, kernel_size, kernel_size)
    clean = dinv.physics.Blur(filter=k, padding="valid")(x)
    G, _ = blur_quadratic(x, clean, kernel_size)
    return x, k, clean, G[0]


def noisy(clean, sigma, n, seed):
    noise = torch.randn(
        (n,) + clean.shape[1:], generator=torch.Generator().manual_seed(seed), dtype=clean.dtype
    )
    return clean + sigma * noise


def linear_terms(page, x, y, kernel_size):
    return page["linear_terms"](x, y, kernel_size)


@pytest.fixture(scope="module")
def uncertainty(example_runs):
    return example_runs(UNCERTAINTY).namespace


@pytest.fixture(scope="module")
def residual(example_runs):
    return example_runs(RESIDUAL).namespace


@pytest.fixture(scope="module")
def held_out(example_runs):
    return example_runs(HELD_OUT).namespace


# -- the covariance on the face -----------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_face_covariance_matches_finite_differences(uncertainty, seed):
    """On a fixed face the estimate is linear in b: Cov = σ² J G Jᵀ with J = dk̂/db."""
    x, _, clean, G = tiny_problem(seed)
    sigma = 1e-3
    b = linear_terms(uncertainty, x, noisy(clean, sigma, 1, seed), 3)[0]
    k_hat = solve_simplex_ls(G[None], b[None])[0]
    assert (k_hat > 0).all(), "the tiny problem should sit inside the simplex"
    step = 1e-7 * b.abs().max()
    shifts = step * torch.eye(len(b), dtype=b.dtype)
    plus = solve_simplex_ls(G.expand(len(b), -1, -1), b + shifts)
    minus = solve_simplex_ls(G.expand(len(b), -1, -1), b - shifts)
    jacobian = ((plus - minus) / (2 * step)).T  # column j: dk̂/db_j
    brute = sigma**2 * jacobian @ G @ jacobian.T
    formula = uncertainty["face_covariance"](G, k_hat, sigma)
    torch.testing.assert_close(formula, brute, rtol=1e-5, atol=1e-5 * brute.abs().max().item())


def test_face_covariance_matches_monte_carlo(uncertainty):
    x, k, clean, G = tiny_problem(7)
    sigma, draws = 2e-3, 4000
    k_hats = solve_simplex_ls(
        G.expand(draws, -1, -1), linear_terms(uncertainty, x, noisy(clean, sigma, draws, 1), 3)
    )
    assert (k_hats > 0).all()
    empirical = torch.cov(k_hats.T)
    formula = uncertainty["face_covariance"](G, k_hats.mean(0), sigma)
    relative = ((empirical - formula).norm() / formula.norm()).item()
    assert relative < 0.1, relative  # 4000 draws: the Monte-Carlo error is a few per cent
    errors = (k_hats - k.flatten()).norm(dim=1) / k.norm()
    predicted = uncertainty["expected_error"](formula, k.flatten())
    assert abs(predicted / errors.mean().item() - 1) < 0.05


def test_face_covariance_is_zero_off_the_support_and_sums_to_zero(uncertainty):
    G = tiny_problem(3, kernel_size=5)[3]
    k_hat = torch.zeros(25, dtype=torch.float64)
    k_hat[[6, 7, 12, 18]] = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    cov = uncertainty["face_covariance"](G, k_hat, 0.01)
    outside = k_hat == 0
    assert cov[outside].abs().max() == 0 and cov[:, outside].abs().max() == 0
    # the sum of the entries is fixed: no variance along the all-ones direction
    assert (cov.sum(1).abs().max() / cov.abs().max()).item() < 1e-10


def test_expected_error_of_an_isotropic_gaussian(uncertainty):
    dim, scale = 200, 0.01
    cov = torch.zeros(300, 300, dtype=torch.float64)
    cov[range(dim), range(dim)] = scale**2
    reference = torch.zeros(300, dtype=torch.float64)
    reference[0] = 1.0
    # E||e|| for e ~ N(0, s² I_d) is s √2 Γ((d+1)/2) / Γ(d/2) ≈ s √(d - 1/2)
    assert (
        abs(uncertainty["expected_error"](cov, reference) / (scale * np.sqrt(dim - 0.5)) - 1) < 0.01
    )


# -- the residual checks ------------------------------------------------------------------------


def binomial_band(level, n):
    return 3 * np.sqrt(level * (1 - level) / n)


def test_whiteness_and_level_have_their_false_alarm_rate_on_white_noise(residual):
    n_fields, level = 2000, 0.05
    r = torch.randn(
        n_fields, 3, 30, 30, generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    q = residual["whiteness_statistic"](r).numpy()
    p_white = residual["scipy"].stats.chi2.sf(q, len(residual["LAGS"]))
    rss = r.pow(2).sum((1, 2, 3)).numpy()
    p_level = residual["level_p_value"](rss, r[0].numel(), np.zeros(n_fields), 1.0)
    for p in (p_white, p_level):
        assert abs((p < level).mean() - level) <= binomial_band(level, n_fields)


def test_whiteness_sees_correlated_noise(residual):
    r = torch.randn(200, 3, 31, 30, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    r = r[..., 1:, :] + 0.1 * r[..., :-1, :]  # a 10 % vertical correlation
    q = residual["whiteness_statistic"](r).numpy()
    assert (residual["scipy"].stats.chi2.sf(q, len(residual["LAGS"])) < 0.05).mean() > 0.9


def fitted_checks(residual, gain, draws=1000, seed=0):
    """p-values of the page's three checks on a tiny 3-channel problem, data scaled by ``gain``."""
    x, _, clean, G = tiny_problem(seed, size=26, kernel_size=3, channels=3)
    y = noisy(gain * clean, 0.01, draws, seed + 1)
    b = linear_terms(residual, x, y, 3)
    k_hat = solve_simplex_ls(G.expand(draws, -1, -1), b)
    r = y - dinv.physics.Blur(filter=k_hat.reshape(-1, 1, 3, 3), padding="valid")(
        x.expand(draws, -1, -1, -1)
    )
    return residual["residual_checks"](r, k_hat, b, G, 0.01)["p"]


def test_combined_decision_has_a_5_percent_false_alarm_rate(residual):
    p = fitted_checks(residual, gain=1.0)
    each = residual["LEVEL_EACH"]
    for column in p.T:  # each check alone at its own level
        assert abs((column < each).mean() - each) <= binomial_band(each, len(p))
    assert abs((p < each).any(1).mean() - 0.05) <= binomial_band(0.05, len(p))


def test_combined_decision_detects_a_gain(residual):
    p = fitted_checks(residual, gain=0.98, draws=200)
    assert (p < residual["LEVEL_EACH"]).any(1).mean() >= 0.9


# -- the held-out scores ------------------------------------------------------------------------


def random_pair(held_out, seed):
    """A random image and a random 'measurement' of the valid size for the page's kernel size."""
    K, g = held_out["KERNEL_SIZE"], torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, 60, 60, generator=g, dtype=torch.float64)
    return x, torch.rand(1, 3, 60 - K + 1, 60 - K + 1, generator=g, dtype=torch.float64)


def test_quadrants_add_up_to_the_whole_measurement(held_out):
    K = held_out["KERNEL_SIZE"]
    x, y = random_pair(held_out, 0)
    G_q, b_q = blur_quadratic(*held_out["quadrants"](x, y), K)
    G_all, b_all = blur_quadratic(x, y, K)
    torch.testing.assert_close(G_q.sum(0), G_all[0])
    torch.testing.assert_close(b_q.sum(0), b_all[0])


def test_held_out_score_is_the_residual_on_the_held_out_quadrants(held_out):
    K = held_out["KERNEL_SIZE"]
    x_q, y_q = held_out["quadrants"](*random_pair(held_out, 1))
    G_q, b_q = blur_quadratic(x_q, y_q, K)
    kernels = torch.softmax(
        torch.randn(4, K * K, generator=torch.Generator().manual_seed(2), dtype=torch.float64), 1
    )
    score = held_out["held_out_score"](kernels, G_q, b_q, y_q.pow(2).sum((1, 2, 3)))
    direct = sum(
        (
            dinv.physics.Blur(filter=kernels[f].reshape(1, 1, K, K), padding="valid")(
                x_q[f : f + 1]
            )
            - y_q[f : f + 1]
        )
        .pow(2)
        .sum()
        .item()
        for f in range(4)
    )
    assert abs(score / direct - 1) < 1e-10


def test_oracle_size_is_the_smallest_block_holding_the_kernel(held_out):
    K = held_out["KERNEL_SIZE"]
    k = torch.zeros(K, K)
    k[K // 2, K // 2] = 0.5
    k[K // 2 + 4, K // 2 - 1] = 0.5  # four rows below the centre: a 9×9 block holds it
    assert held_out["oracle_size"](k) == min(s for s in held_out["SIZES"] if s >= 9)
    centre = torch.zeros(K, K)
    centre[K // 2, K // 2] = 1.0
    assert held_out["oracle_size"](centre) == held_out["SIZES"][0]
    k[0, K // 2] = 0.1  # an entry on the border: only the whole support holds it
    assert held_out["oracle_size"](k) == K


# -- one text per shared function ----------------------------------------------------------------


def function_sources(path):
    tree = ast.parse(path.read_text())
    return {
        node.name: ast.get_source_segment(path.read_text(), node)
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
    }


def test_functions_shared_between_pages_have_one_text():
    """A function a checking page defines has the same text on every page that defines it."""
    ours = [function_sources(p) for p in sorted(CHECKING.glob("plot_*.py"))]
    names = set().union(*ours)
    texts = {}
    for path in sorted((ROOT / "examples").rglob("plot_*.py")):
        for name, text in function_sources(path).items():
            if name in names:
                texts.setdefault(name, {}).setdefault(text, []).append(path.name)
    different = {
        name: list(variants.values()) for name, variants in texts.items() if len(variants) > 1
    }
    assert not different, f"functions defined with different texts: {different}"

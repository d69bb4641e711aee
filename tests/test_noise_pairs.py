"""The helpers taught by the unknown-noise and several-pairs pages, against independent references.

Each helper is taken from the namespace that running its page (in fast mode) leaves behind.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import ROOT
from reference import FAST_SIZE, default_problem, quadratic, shift_matrix, solve_simplex_qp

NOISE_PAGE = ROOT / "examples" / "beyond" / "plot_unknown_noise.py"
PAIRS_PAGE = ROOT / "examples" / "beyond" / "plot_several_pairs.py"


@pytest.fixture(scope="module")
def noise_page(example_runs):
    return example_runs(NOISE_PAGE).namespace


@pytest.fixture(scope="module")
def pairs_page(example_runs):
    return example_runs(PAIRS_PAGE).namespace


# --- the noise estimator -------------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [0.005, 0.02, 0.3])
def test_noise_level_of_pure_noise(noise_page, sigma):
    gen = torch.Generator().manual_seed(1)
    r = sigma * torch.randn(200_000, generator=gen)
    assert noise_page["noise_level"](r) == pytest.approx(sigma, rel=0.01)


def test_dof_correction_removes_the_bias_of_a_linear_fit(noise_page):
    """y = A beta + sigma eps, beta by least squares: ||r||²/(n - p) is unbiased, ||r||²/n is low by p/n."""
    noise_level = noise_page["noise_level"]
    n, p, sigma = 60, 20, 0.5
    gen = torch.Generator().manual_seed(2)
    plain, corrected = [], []
    for _ in range(400):
        a = torch.randn(n, p, generator=gen, dtype=torch.float64)
        y = a @ torch.randn(p, generator=gen, dtype=torch.float64) + sigma * torch.randn(
            n, generator=gen, dtype=torch.float64
        )
        beta = torch.linalg.lstsq(a, y.unsqueeze(1)).solution.squeeze(1)
        r = a @ beta - y
        plain.append(noise_level(r) ** 2)
        corrected.append(noise_level(r, p) ** 2)
    assert np.mean(corrected) == pytest.approx(sigma**2, rel=0.05)
    assert np.mean(plain) == pytest.approx(sigma**2 * (n - p) / n, rel=0.05)


def test_noise_level_validates_its_input(noise_page):
    noise_level = noise_page["noise_level"]
    with pytest.raises(TypeError):
        noise_level(torch.ones(5, dtype=torch.int64))
    with pytest.raises(TypeError):
        noise_level([0.1, 0.2])
    with pytest.raises(ValueError, match="finite"):
        noise_level(torch.tensor([0.1, float("nan")]))
    with pytest.raises(ValueError, match="fitted_parameters"):
        noise_level(torch.ones(5), 5)
    with pytest.raises(ValueError, match="fitted_parameters"):
        noise_level(torch.ones(5), -1)


def test_degrees_of_freedom_counts_the_face(noise_page):
    k = torch.zeros(1, 1, 5, 5)
    k[0, 0, 1, 2], k[0, 0, 3, 3], k[0, 0, 4, 0] = 0.2, 0.5, 0.3
    assert noise_page["degrees_of_freedom"](k) == 2


def test_page_estimate_on_the_fast_problem(noise_page):
    """The fast run's estimates are close to 0.02 and the wrong kernels overestimate it."""
    assert abs(noise_page["mean_ml"] / 0.02 - 1) < 0.03
    for label in ("no blur", "15×15 box"):
        assert noise_page["noise_level"](noise_page["residuals"][label]) > 1.5 * 0.02


# --- the exact route -----------------------------------------------------------------------------


@pytest.mark.parametrize("page_name", ["noise", "pairs"])
def test_quadratic_matches_the_reference(page_name, noise_page, pairs_page):
    page = noise_page if page_name == "noise" else pairs_page
    x, y, _ = default_problem(FAST_SIZE)
    g, b = page["blur_quadratic"](x, y, 25)
    g_ref, b_ref = quadratic(x, y)
    torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(b, b_ref, rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_active_set_solver_matches_the_reference(noise_page, seed):
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(5, 40)), 60
    a = torch.from_numpy(rng.standard_normal((m, n)))
    target = torch.from_numpy(rng.standard_normal(m))
    g, b = a.T @ a, a.T @ target
    k, _ = noise_page["solve_simplex_least_squares"](g, b)
    k_ref, _ = solve_simplex_qp(g, b)
    assert (k >= 0).all() and abs(k.sum().item() - 1) < 1e-12
    assert (k - k_ref).norm().item() < 1e-8


def test_active_set_solver_on_the_fast_problem(noise_page):
    x, y, _ = default_problem(FAST_SIZE)
    g, b = quadratic(x, y)
    k, _ = noise_page["solve_simplex_least_squares"](g, b)
    k_ref, _ = solve_simplex_qp(g, b)
    assert ((k - k_ref).norm() / k_ref.norm()).item() < 1e-7
    assert noise_page["residual"](k, g, b) < 1e-9


def test_active_set_solver_validates_its_input(noise_page):
    solve = noise_page["solve_simplex_least_squares"]
    with pytest.raises(ValueError):
        solve(torch.eye(3, dtype=torch.float64), torch.ones(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="finite"):
        solve(torch.eye(2, dtype=torch.float64) * float("nan"), torch.ones(2, dtype=torch.float64))


# --- several pairs -------------------------------------------------------------------------------


def test_summed_gram_equals_the_gram_of_concatenated_data(pairs_page):
    x, _, k_true = default_problem(FAST_SIZE)
    tiles = [x[..., :40, :40], x[..., 20:64, 10:50], x[..., 30:60, 30:64]]
    gen = torch.Generator().manual_seed(4)
    ys = []
    for tile in tiles:
        clean = torch.nn.functional.conv2d(tile, k_true.flip(-1, -2).expand(3, 1, 25, 25), groups=3)
        ys.append(clean + 0.02 * torch.randn(clean.shape, generator=gen))
    g, b = pairs_page["pairs_quadratic"](tiles, ys, 25)
    m = torch.cat([shift_matrix(tile, 25) for tile in tiles], dim=1)  # all pairs' data side by side
    y_all = torch.cat([y.double().flatten() for y in ys])
    torch.testing.assert_close(g, m @ m.T, rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(b, m @ y_all, rtol=1e-10, atol=1e-9)


def test_pairs_quadratic_validates_its_input(pairs_page):
    x = torch.rand(1, 3, 40, 40)
    with pytest.raises(ValueError):
        pairs_page["pairs_quadratic"]([x, x], [torch.rand(1, 3, 16, 16)], 25)
    with pytest.raises(ValueError):
        pairs_page["pairs_quadratic"]([x], [torch.rand(1, 3, 20, 20)], 25)


def test_batch_projection_is_per_kernel_and_the_whole_batch_one_is_not(pairs_page):
    project, whole = pairs_page["project_simplex"], pairs_page["project_simplex_whole_batch"]
    v = torch.randn(4, 1, 25, 25, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    p = project(v)
    torch.testing.assert_close(p.sum((1, 2, 3)), torch.ones(4, dtype=torch.float64))
    for i in range(4):
        torch.testing.assert_close(p[i : i + 1], project(v[i : i + 1]))
    w = whole(v)
    assert abs(w.sum().item() - 1) < 1e-12
    assert (w.sum((1, 2, 3)) < 0.999).all()


def test_page_batch_contrast_is_measured(pairs_page):
    """In the fast run too, the per-kernel projection beats the whole-batch one on every kernel."""
    for own, whole in pairs_page["results"]:
        assert own < whole

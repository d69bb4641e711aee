"""The helpers taught by the unknown-noise and several-pairs pages, and their results (fast mode).

Each helper is taken from the namespace that running its page (in fast mode) leaves behind.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import deepinv as dinv

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
    """y = A beta + sigma eps, beta by least squares: ||r||²/(n - p) is unbiased, ||r||²/n low."""
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


def test_noise_draws_give_the_page_measurement_and_independent_draws(noise_page):
    x, y, k_true = default_problem(FAST_SIZE)
    clean = dinv.physics.Blur(filter=k_true, padding="valid")(x)
    draws = noise_page["noise_draws"](clean, 0.02, [0, 1])
    assert torch.equal(draws[:1], y)
    assert torch.equal(noise_page["y"].cpu(), y)
    assert (draws[1] - draws[0]).std().item() == pytest.approx(0.02 * 2**0.5, rel=0.05)


def test_linear_terms_are_the_b_of_the_quadratic(noise_page):
    x, y, k_true = default_problem(FAST_SIZE)
    clean = dinv.physics.Blur(filter=k_true, padding="valid")(x)
    ys = torch.cat([y, noise_page["noise_draws"](clean, 0.05, [3])])
    b = noise_page["linear_terms"](x, ys, 25)
    for i in range(2):
        torch.testing.assert_close(b[i], quadratic(x, ys[i : i + 1])[1], rtol=1e-10, atol=1e-9)


def test_fitted_kernels_are_the_reference_minimisers(noise_page):
    """fit_kernels on a batch of draws gives each draw's exact floor, and its residual."""
    x, y, k_true = default_problem(FAST_SIZE)
    clean = dinv.physics.Blur(filter=k_true, padding="valid")(x)
    ys = torch.cat([y, noise_page["noise_draws"](clean, 0.05, [3])])
    k, r = noise_page["fit_kernels"](x, ys)
    for i in range(2):
        k_ref, _ = solve_simplex_qp(*quadratic(x, ys[i : i + 1]))
        assert ((k[i].flatten().double() - k_ref).norm() / k_ref.norm()).item() < 1e-6
    blurred = torch.nn.functional.conv2d(x, k[1:].flip(-1, -2).expand(3, 1, 25, 25), groups=3)
    torch.testing.assert_close(r[1:], blurred - ys[1:], rtol=0, atol=1e-5)


def test_page_estimates_on_the_fast_problem(noise_page):
    """The fast run's estimates are within 3 % of the truth; the wrong kernels overestimate it."""
    results = noise_page["results"]
    for label, row in results.items():
        if label.startswith("photo"):
            assert abs(row["ML (%)"]) < 3 and abs(row["d (%)"]) < 3, label
    for label in ("no blur", "15×15 box"):
        assert results[label]["ML (%)"] > 50
    # the means in the results are the means of the draws printed per seed
    draws = noise_page["by_level"][0.02]
    assert results["photo, σ = 0.02"]["sigma_ML"] == pytest.approx(draws[:, 2].mean())
    assert results["photo, σ = 0.02"]["draws"] == 10 == len(draws)


def test_the_correction_helps_on_the_small_crop(noise_page):
    row = next(r for label, r in noise_page["results"].items() if "crop" in label)
    assert abs(row["d (%)"]) < abs(row["ML (%)"])


# --- several pairs -------------------------------------------------------------------------------


def test_summed_gram_equals_the_gram_of_concatenated_data(pairs_page):
    tiles, ys = pairs_page["tiles"].cpu(), pairs_page["ys"].cpu()
    G, b = pairs_page["G_tiles"][:3].sum(0).cpu(), pairs_page["b_tiles"][:3].sum(0).cpu()
    m = torch.cat([shift_matrix(tile[None], 25) for tile in tiles[:3]], dim=1)  # pairs side by side
    y_all = torch.cat([y.double().flatten() for y in ys[:3]])
    torch.testing.assert_close(G, m @ m.T, rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(b, m @ y_all, rtol=1e-10, atol=1e-9)


def test_tile_measurements_have_their_own_noise(pairs_page):
    ys_0, ys_1 = pairs_page["measure_tiles"](0), pairs_page["measure_tiles"](1)
    assert torch.equal(ys_0, pairs_page["ys"])
    assert not torch.equal(ys_0, ys_1)
    noise = ys_0 - ys_1  # the same clean tiles, two independent draws
    assert noise.std().item() == pytest.approx(0.02 * 2**0.5, rel=0.05)


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


def test_pairs_results_agree_with_the_per_seed_errors(pairs_page):
    results, errors = pairs_page["results"], pairs_page["errors"]
    assert errors.shape == (pairs_page["N_SEEDS"], 5)
    for j, m in enumerate((2, 4, 8, 16), start=1):
        row = results[f"{m} pairs"]
        assert row["beats 1 pair"] == int((errors[:, j] < errors[:, 0]).sum())
        assert row["mean error"] == pytest.approx(errors[:, j].mean())
    assert results["1 pair"]["mean error"] == pytest.approx(errors[:, 0].mean())


def test_page_batch_contrast_is_measured(pairs_page):
    """In the fast run too, the per-kernel projection beats the whole-batch one on every kernel."""
    for row in pairs_page["per_kernel"].values():
        assert row["floor"] <= row["per-kernel"] < row["whole-batch"]
        assert row["its sum"] < 0.999

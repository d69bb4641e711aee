"""The field-of-kernels page: its forward model against deepinv's, its windows, its batched solve.

Everything is taken from the namespace that running the page (in fast mode) leaves behind.
"""

from __future__ import annotations

import pytest
import torch
from torch.fft import rfft2

import deepinv as dinv

from calibration_helpers import blur_quadratic, solve_simplex_ls
from conftest import ROOT
from reference import quadratic, solve_simplex_qp

PAGE = ROOT / "examples" / "field" / "plot_field_of_kernels.py"


@pytest.fixture(scope="module")
def page(example_runs):
    return example_runs(PAGE).namespace


# --- the spatially varying forward model ----------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_page_forward_model_is_deepinvs_space_varying_blur(page, seed):
    """pc_blur (one batch of FFTs) against SpaceVaryingBlur with direct convolutions, in float64."""
    gen = torch.Generator().manual_seed(seed)
    K, size, R = page["K"], page["IMG_SIZE"], 3
    x = torch.rand(1, 3, size, size, generator=gen, dtype=torch.float64)
    filters = torch.rand(R, K, K, generator=gen, dtype=torch.float64)
    multipliers = torch.randn(R, size, size, generator=gen, dtype=torch.float64)
    ours = page["pc_blur"](filters, rfft2(multipliers[:, None] * x[0]))
    physics = dinv.physics.SpaceVaryingBlur(
        filters=filters[None, None], multipliers=multipliers[None, None], padding="valid"
    )
    theirs = physics(x)
    assert ours.shape == theirs.shape[1:]
    torch.testing.assert_close(ours, theirs[0], rtol=0, atol=1e-10)


def test_calibrated_operator_is_the_fitted_model(page):
    """The operator deepinv applies is the model the fit optimised (up to float32)."""
    x, filters, multipliers = page["x"], page["filters"], page["multipliers"]
    ours = page["pc_blur"](filters, rfft2(multipliers[:, None] * x[0].double()))
    torch.testing.assert_close(page["calibrated"](x)[0].double(), ours, rtol=0, atol=1e-5)


def test_true_kernel_at_a_point_is_the_impulse_response(page):
    """kernels_at gives the PSF of a source pixel: the blur of a point of light there."""
    K, physics = page["K"], page["physics"]
    q = torch.tensor([[40, 70], [K - 1, page["M"] - 1]])
    kernels = page["kernels_at"](page["h_true"], page["w_true"], q)
    for (i, j), k in zip(q.tolist(), kernels):
        point = torch.zeros_like(page["x"])
        point[..., i, j] = 1.0
        response = physics(point)[0, 0, i - K + 1 : i + 1, j - K + 1 : j + 1]
        torch.testing.assert_close(response.flatten(), k.float(), rtol=0, atol=1e-6)
        # eight eigen-PSFs approximate the field: its kernels sum to one within about 1 %
        assert k.sum().item() == pytest.approx(1.0, abs=0.02)


def test_windows_pair_each_crop_of_y_with_the_crop_of_x_it_sees(page):
    """With y replaced by an invariant blur of x, each window's y_i is the valid blur of its x_i."""
    namespace = page["window_pairs"].__globals__
    K, x = page["K"], page["x"]
    gen = torch.Generator().manual_seed(3)
    k = torch.rand(1, 1, K, K, generator=gen)
    blur = dinv.physics.Blur(filter=k / k.sum(), padding="valid")
    saved = namespace["y"], namespace["eps"]
    try:
        namespace["y"], namespace["eps"] = blur(x), torch.zeros_like(saved[1])
        for size, grid in [(page["WINDOW"], page["GRID"]), (page["M"] - 2, 2)]:
            xs, ys, noises, q = page["window_pairs"](size, grid)
            assert ys.shape[-1] == size and xs.shape[-1] == size + K - 1 and len(q) == grid**2
            torch.testing.assert_close(blur(xs), ys, rtol=0, atol=1e-5)
            assert noises.abs().max() == 0
    finally:
        namespace["y"], namespace["eps"] = saved


# --- the batched per-window solve -----------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed_windows(page):
    """A batch of windows mixing easy (textured, low floor) and hard (flat, high floor) ones."""
    floor = page["floor_win"]
    order = floor.argsort().tolist()
    picked = [order[-1], order[0], order[len(order) // 2], order[-2], order[1]]  # hard, easy, ...
    xs, ys, _, _ = page["window_pairs"](page["WINDOW"], page["GRID"])
    assert floor[order[-1]] > 3 * floor[order[0]], "the batch should mix easy and hard windows"
    return picked, xs[picked], ys[picked]


def test_batched_solve_matches_single_window_solves(page, mixed_windows):
    picked, xs, ys = mixed_windows
    G, b = blur_quadratic(xs, ys, page["K"])
    batched = solve_simplex_ls(G, b)
    for i in range(len(picked)):
        single = solve_simplex_ls(G[i : i + 1], b[i : i + 1])[0]
        assert ((batched[i] - single).norm() / single.norm()).item() <= 1e-8
        # the page's kernel of that window came from a batch of all windows and all floors
        assert ((page["k_win"][picked[i]] - single).norm() / single.norm()).item() <= 1e-8


def test_batched_solve_matches_the_reference_solver(page, mixed_windows):
    """Each window against the tests' independent quadratic (shifted crops) and solver
    (FISTA + polish)."""
    picked, xs, ys = mixed_windows
    G, b = blur_quadratic(xs, ys, page["K"])
    batched = solve_simplex_ls(G, b)
    for i in range(len(picked)):
        g_ref, b_ref = quadratic(xs[i : i + 1], ys[i : i + 1], page["K"])
        torch.testing.assert_close(G[i], g_ref, rtol=1e-10, atol=1e-9)
        k_ref, _ = solve_simplex_qp(g_ref, b_ref)
        assert ((batched[i] - k_ref).norm() / k_ref.norm()).item() <= 1e-8


def test_batched_solutions_satisfy_the_optimality_conditions(page, mixed_windows):
    _, xs, ys = mixed_windows
    G, b = blur_quadratic(xs, ys, page["K"])
    k = solve_simplex_ls(G, b)
    assert (k >= 0).all()
    torch.testing.assert_close(k.sum(1), torch.ones_like(k[:, 0]), rtol=0, atol=1e-12)
    gradient = torch.einsum("bij,bj->bi", G, k) - b
    scale = G.diagonal(dim1=1, dim2=2).amax(1, keepdim=True)
    support = k > 0
    multiplier = (gradient * support).sum(1, keepdim=True) / support.sum(1, keepdim=True)
    assert ((gradient - multiplier).abs() * support).amax() <= 1e-9 * scale.amax()
    assert ((gradient - multiplier) >= -1e-9 * scale).all()


# --- the global fit -------------------------------------------------------------------------------


def test_fitted_multipliers_solve_their_normal_equations(page):
    """The residual of fit_multipliers is orthogonal to every basis image h_r * (m_p x)."""
    x, y, filters = page["x"].double(), page["y"].double(), page["filters"]
    multipliers = page["fit_multipliers"](filters)
    residual = page["pc_blur"](filters, rfft2(multipliers[:, None] * x[0])) - y[0]
    spectra = rfft2(page["monomials"][:, None] * x[0])
    basis = torch.cat([page["pc_blur"](h[None], spectra[:, None]).flatten(1) for h in filters])
    normal = basis @ residual.flatten()
    assert normal.abs().max() <= 1e-6 * basis.norm(dim=1).max() * residual.norm()


def test_filter_step_does_not_increase_the_loss(page):
    x, y = page["x"].double(), page["y"].double()
    filters, multipliers = page["filters"], page["multipliers"]
    spectra = rfft2(multipliers[:, None] * x[0])

    def loss(h):
        return (page["pc_blur"](h, spectra) - y[0]).square().sum().item()

    perturbed = filters + 1e-3 * torch.randn(
        filters.shape, generator=torch.Generator().manual_seed(0)
    )
    refitted = page["fit_filters"](perturbed.to(filters), multipliers)
    assert loss(refitted) < loss(perturbed)

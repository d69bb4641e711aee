"""The helpers that the robustness page and the three model-mismatch pages teach, and their results.

Functions are taken from the namespace that running each page in fast mode leaves behind, so the
tests check the code the reader sees.
"""

from __future__ import annotations

import pytest
import torch

import deepinv as dinv

from calibration_helpers import blur_quadratic, load_photo, solve_simplex_ls
from conftest import ROOT
from reference import quadratic, solve_simplex_qp

BEYOND = ROOT / "examples" / "beyond"


@pytest.fixture(scope="module")
def gain(example_runs):
    return example_runs(BEYOND / "plot_mismatch_gain.py").namespace


@pytest.fixture(scope="module")
def shift(example_runs):
    return example_runs(BEYOND / "plot_mismatch_shift.py").namespace


@pytest.fixture(scope="module")
def support(example_runs):
    return example_runs(BEYOND / "plot_mismatch_support.py").namespace


@pytest.fixture(scope="module")
def rb(example_runs):
    return example_runs(BEYOND / "plot_robustness.py").namespace


def random_image(size, seed, channels=3):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(1, channels, size, size, generator=gen, dtype=torch.float64)


# --- the sub-pixel shift -----------------------------------------------------------------------


@pytest.mark.parametrize("t", [-1.0, -0.7, -0.5, -0.25, 0.0, 0.13, 0.4, 0.5, 1.0])
def test_shift_weights_sum_to_one(shift, t):
    w = shift["cubic_weights"](t)
    assert w.shape == (5,)
    torch.testing.assert_close(w.sum(), torch.tensor(1.0, dtype=torch.float64))


@pytest.mark.parametrize("dy, dx", [(0, 0), (1, 0), (0, -1), (-1, 1)])
def test_integer_shift_is_exact(shift, dy, dx):
    z = random_image(20, seed=1)
    shifted = shift["shift_image"](z, dy, dx)
    inner = (..., slice(2, -2), slice(2, -2))
    expected = torch.roll(z, (dy, dx), dims=(-2, -1))[inner]
    torch.testing.assert_close(shifted[inner], expected, rtol=0, atol=1e-12)


def test_subpixel_shift_moves_a_linear_ramp_exactly(shift):
    i = torch.arange(24, dtype=torch.float64)
    ramp = (0.3 * i.view(-1, 1) - 0.2 * i.view(1, -1)).expand(1, 1, 24, 24)
    shifted = shift["shift_image"](ramp, 0.4, -0.35)
    expected = 0.3 * (i.view(-1, 1) - 0.4) - 0.2 * (i.view(1, -1) + 0.35)
    torch.testing.assert_close(shifted[0, 0, 3:-3, 3:-3], expected[3:-3, 3:-3], rtol=0, atol=1e-12)


def test_shift_is_nearly_invertible_on_a_smooth_image(shift):
    yy, xx = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")
    z = (torch.sin(2 * torch.pi * yy / 16) * torch.cos(2 * torch.pi * xx / 24)).double()[None, None]
    move = shift["shift_image"]
    back = move(move(z, 0.4, -0.3), -0.4, 0.3)
    inner = (..., slice(6, -6), slice(6, -6))
    error = (back - z)[inner].abs().max().item()
    assert error < 5e-3, error
    # a shift in the wrong direction would not come back
    wrong = move(move(z, 0.4, -0.3), 0.4, -0.3)
    assert (wrong - z)[inner].abs().max().item() > 20 * error


def test_shift_rejects_bad_input(shift):
    with pytest.raises(ValueError):
        shift["cubic_weights"](1.5)
    with pytest.raises(ValueError):
        shift["cubic_weights"](float("nan"))
    with pytest.raises(TypeError):
        shift["shift_image"](torch.zeros(3, 8, 8), 0.2, 0.1)
    with pytest.raises(TypeError):
        shift["shift_image"](torch.zeros(1, 1, 8, 8, dtype=torch.int64), 0.2, 0.1)


def test_shifted_blur_is_a_blur_by_the_composite_kernel(shift):
    x = random_image(48, seed=2)
    k = torch.rand(1, 1, 7, 7, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    k = k / k.sum()
    dy, dx = 0.3, -0.45
    c = shift["composite_kernel"](k.flatten(), dy, dx).reshape(1, 1, 11, 11)
    blurred = dinv.physics.Blur(filter=k, padding="valid")(shift["shift_image"](x, dy, dx))
    rhs = dinv.physics.Blur(filter=c, padding="valid")(x)
    torch.testing.assert_close(blurred[..., 2:-2, 2:-2], rhs, rtol=0, atol=1e-12)


def test_shifted_quadratic_equals_the_quadratic_of_the_shifted_image(shift):
    x = random_image(40, seed=4)
    size = 7
    y = random_image(40 - (size + 4) + 1, seed=5)
    (G_big,), (b_big,) = blur_quadratic(x, y, size + 4)
    dy, dx = -0.2, 0.35
    G_d, b_d = shift["shifted_quadratic"](G_big, b_big, dy, dx, size)
    G_ref, b_ref = quadratic(shift["shift_image"](x, dy, dx)[..., 2:-2, 2:-2], y, size)
    torch.testing.assert_close(G_d, G_ref, rtol=1e-10, atol=1e-9)
    torch.testing.assert_close(b_d, b_ref, rtol=1e-10, atol=1e-9)


def test_profile_gradient_is_the_derivative_of_the_profile(shift):
    """The envelope-theorem gradient matches a central difference of r(δ) (fast-mode data)."""
    loss, gradient = shift["loss_and_gradient"]([0.3])
    h = 1e-4
    (above, below), _ = shift["profile"]([0.3 + h, 0.3 - h])
    assert gradient[0] == pytest.approx((above - below) / (2 * h), rel=1e-3)


# --- gain and offset ---------------------------------------------------------------------------


def test_gain_and_offset_are_recovered(gain):
    x, k_true = gain["x"].cpu(), gain["k_true"].cpu()
    clean = dinv.physics.Blur(filter=k_true, padding="valid")(x)
    k_hat, a, c = gain["fit_gain_offset"](x, 0.7 * clean + 0.1, 25)
    assert abs(a - 0.7) < 1e-4, a
    assert abs(c - 0.1) < 1e-4, c
    assert torch.isclose(k_hat.sum(), torch.tensor(1.0), atol=1e-5)
    assert ((k_hat - k_true).norm() / k_true.norm()).item() < 1e-3


def test_gain_and_offset_rejects_bad_input(gain):
    x = gain["x"].cpu()
    with pytest.raises(ValueError):
        gain["fit_gain_offset"](x[0], x[0, :, :40, :40], 25)
    y = torch.zeros(1, 3, 40, 40)
    y[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError):
        gain["fit_gain_offset"](x, y, 25)
    with pytest.raises(ValueError):
        gain["fit_gain_offset"](x, torch.zeros(1, 3, 30, 30), 25)  # wrong measurement size


@pytest.mark.parametrize("seed", range(4))
def test_nonnegative_solver_matches_a_reference(gain, seed):
    from scipy.optimize import nnls

    gen = torch.Generator().manual_seed(seed)
    A = torch.randn(60, 20, generator=gen, dtype=torch.float64)
    t = torch.randn(60, generator=gen, dtype=torch.float64)
    h = gain["solve_nonnegative"]((A.T @ A)[None], (A.T @ t)[None])[0]
    reference, _ = nnls(A.numpy(), t.numpy())
    torch.testing.assert_close(h, torch.from_numpy(reference), rtol=0, atol=1e-8)


def test_nonnegative_solver_refuses_a_sum_beyond_its_bound(gain):
    G = torch.eye(3, dtype=torch.float64)[None]
    b = torch.tensor([[4.0, 5.0, 6.0]], dtype=torch.float64)  # the minimiser h = b sums to 15
    with pytest.raises(ValueError, match="bound"):
        gain["solve_nonnegative"](G, b, bound=10.0)
    torch.testing.assert_close(gain["solve_nonnegative"](G, b, bound=20.0), b)


# --- kernel size -------------------------------------------------------------------------------


def test_centre_to_pads_and_crops_about_the_centre(support):
    k = torch.rand(1, 1, 25, 25, generator=torch.Generator().manual_seed(7))
    big = support["centre_to"](k, 41)
    assert big.shape[-1] == 41 and big.sum() == k.sum()
    torch.testing.assert_close(big[..., 8:-8, 8:-8], k, rtol=0, atol=0)
    torch.testing.assert_close(support["centre_to"](big, 25), k, rtol=0, atol=0)


def test_centred_pair_keeps_the_blur_consistent(support):
    x, k_true = support["x"].cpu(), support["k_true"].cpu()
    y = dinv.physics.Blur(filter=k_true, padding="valid")(x)
    for size in (9, 25, 33):
        x_c, y_c = support["centred_pair"](x, y, size)
        assert x_c.shape[-1] - y_c.shape[-1] == size - 1
    big = support["centre_to"](k_true, 33)
    x_c, y_c = support["centred_pair"](x, y, 33)
    blurred = dinv.physics.Blur(filter=big, padding="valid")(x_c)
    torch.testing.assert_close(blurred, y_c, rtol=0, atol=1e-5)
    with pytest.raises(ValueError):
        support["centred_pair"](x, y, 24)


def noisy_blur(kernel, size=96, sigma=0.01, seed=0):
    x = load_photo(size)
    noise = dinv.physics.GaussianNoise(sigma=sigma, rng=torch.Generator().manual_seed(seed))
    return x, dinv.physics.Blur(filter=kernel, padding="valid", noise_model=noise)(x)


def test_size_selection_picks_the_full_support(support):
    k = torch.rand(1, 1, 9, 9, generator=torch.Generator().manual_seed(8)) + 0.5
    k = k / k.sum()  # every entry of the 9×9 support carries mass
    x, y = noisy_blur(k, size=64)
    chosen, residuals, _ = support["select_kernel_size"](x, y, (5, 7, 9, 11, 13))
    assert chosen == 9, residuals


def test_size_selection_picks_the_smallest_support_holding_the_kernel(support):
    k_true = support["k_true"].cpu()  # non-zero rows 9..18 of 25: needs 13×13 about the centre
    x, y = noisy_blur(k_true)
    chosen, residuals, kernels = support["select_kernel_size"](x, y, (9, 11, 13, 17))
    assert chosen == 13, residuals
    assert residuals[0] > residuals[2] * 1.01  # truncating the kernel costs a lot
    assert [k.shape[-1] for k in kernels] == [9, 11, 13, 17]


# --- the mismatch pages' results (fast mode) ---------------------------------------------------


@pytest.mark.parametrize("page_name", ["gain", "shift", "support"])
def test_mismatch_results_compare_with_the_matched_floor(page_name, request):
    results = request.getfixturevalue(page_name)["results"]
    floor = next(row for name, row in results.items() if name.startswith("matched floor"))
    assert floor["× floor"] == 1.0
    for name, row in results.items():
        assert row["× floor"] == pytest.approx(row["kernel error"] / floor["kernel error"]), name
    with_fix = [row for name, row in results.items() if name.startswith("with fix")]
    without = [row for name, row in results.items() if name.startswith("without fix")]
    assert len(with_fix) == 1 and without


def test_mismatch_fast_runs_recover_the_missing_parameter(gain, shift):
    fitted = gain["results"]["with fix"]
    assert fitted["gain"] == pytest.approx(0.8, abs=0.05)
    assert fitted["offset"] == pytest.approx(0.05, abs=0.02)
    assert shift["results"]["with fix"]["shift (px)"] == pytest.approx(0.4, abs=0.1)


# --- robustness page ---------------------------------------------------------------------------


def test_kkt_violation_vanishes_at_the_minimiser_only(rb):
    gen = torch.Generator().manual_seed(9)
    A = torch.randn(80, 30, generator=gen, dtype=torch.float64)
    G, b = (A.T @ A)[None], (A.T @ torch.randn(80, generator=gen, dtype=torch.float64))[None]
    k_ref, _ = solve_simplex_qp(G[0], b[0])
    assert rb["kkt_violation"](G, b, k_ref[None]).item() < 1e-9
    k_flat = torch.full_like(b, 1.0 / 30)
    assert rb["kkt_violation"](G, b, k_flat).item() > 1e-3
    nudged = (k_ref + 1e-3 * (torch.arange(30) == int(k_ref.argmax()))).div(1.001)[None]
    assert rb["kkt_violation"](G, b, nudged).item() > 1e-6


def test_centred_eigenvalues_are_those_of_the_sum_zero_plane(rb):
    gen = torch.Generator().manual_seed(9)
    A = torch.randn(80, 30, generator=gen, dtype=torch.float64)
    G = A.T @ A + 50.0  # a large constant part that the centring must remove
    low, high = rb["centred_eigenvalues"](G)
    n = G.shape[0]
    P = torch.eye(n, dtype=G.dtype) - 1.0 / n
    values = torch.linalg.eigvalsh(P @ G @ P)  # one zero eigenvalue along the ones vector
    torch.testing.assert_close(torch.tensor(high, dtype=G.dtype), values[-1])
    torch.testing.assert_close(torch.tensor(low, dtype=G.dtype), values[1])


def test_smooth_keeps_the_mean_and_lowers_the_variation(rb):
    x = rb["x"].cpu()
    assert rb["smooth"](x, 0.0) is x
    s = rb["smooth"](x, 1.0)
    assert s.shape == x.shape
    assert abs(s.mean().item() - x.mean().item()) < 1e-3
    assert (s.diff(dim=-1).abs().mean() < 0.8 * x.diff(dim=-1).abs().mean()).item()
    with pytest.raises(ValueError):
        rb["smooth"](x, -1.0)


def test_adam_on_the_quadratic_does_not_beat_the_exact_floor(rb):
    G, b = rb["G"], rb["b"]
    k_exact = solve_simplex_ls(G, b)
    n = rb["n"]  # the page's gradient is (Gk - b) / n, n the number of measured values
    k_adam = rb["adam_on_quadratic"](G / n, b / n, rb["k_box"].flatten(1), 200)
    assert torch.isclose(k_adam.sum(), torch.tensor(1.0, dtype=k_adam.dtype))

    def f(k):
        return (0.5 * k @ G[0] @ k - b[0] @ k).item()

    assert f(k_exact[0]) <= f(k_adam[0]) + 1e-9
    assert f(k_adam[0]) < f(rb["k_box"].flatten())  # and Adam does descend


def test_robustness_results_on_the_fast_problem(rb):
    results, sigmas = rb["results"], rb["SIGMAS"]
    floors = [results[f"σ = {s:.2f}"]["floor"] for s in sigmas]
    assert floors[0] < 1e-3 and all(a < b for a, b in zip(floors, floors[1:]))
    assert all(row["KKT"] <= 1e-8 for row in results.values())

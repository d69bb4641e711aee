"""The helpers that the robustness and model-mismatch pages teach.

Functions are taken from the namespace that running each page in fast mode leaves behind, so the
tests check the code the reader sees.
"""

from __future__ import annotations

import pytest
import torch

import deepinv as dinv

from conftest import ROOT

MISMATCH = ROOT / "examples" / "beyond" / "plot_model_mismatch.py"
ROBUSTNESS = ROOT / "examples" / "beyond" / "plot_robustness.py"


@pytest.fixture(scope="module")
def mm(example_runs):
    return example_runs(MISMATCH).namespace


@pytest.fixture(scope="module")
def rb(example_runs):
    return example_runs(ROBUSTNESS).namespace


def random_image(size, seed, channels=3):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(1, channels, size, size, generator=gen, dtype=torch.float64)


# --- the sub-pixel shift -----------------------------------------------------------------------


@pytest.mark.parametrize("t", [-1.0, -0.7, -0.5, -0.25, 0.0, 0.13, 0.4, 0.5, 1.0])
def test_shift_weights_sum_to_one(mm, t):
    w = mm["cubic_weights"](t)
    assert w.shape == (5,)
    torch.testing.assert_close(w.sum(), torch.tensor(1.0, dtype=torch.float64))


@pytest.mark.parametrize("dy, dx", [(0, 0), (1, 0), (0, -1), (-1, 1)])
def test_integer_shift_is_exact(mm, dy, dx):
    z = random_image(20, seed=1)
    shifted = mm["shift_image"](z, dy, dx)
    inner = (..., slice(2, -2), slice(2, -2))
    torch.testing.assert_close(shifted[inner], torch.roll(z, (dy, dx), dims=(-2, -1))[inner],
                               rtol=0, atol=1e-12)


def test_subpixel_shift_moves_a_linear_ramp_exactly(mm):
    i = torch.arange(24, dtype=torch.float64)
    ramp = (0.3 * i.view(-1, 1) - 0.2 * i.view(1, -1)).expand(1, 1, 24, 24)
    shifted = mm["shift_image"](ramp, 0.4, -0.35)
    expected = 0.3 * (i.view(-1, 1) - 0.4) - 0.2 * (i.view(1, -1) + 0.35)
    torch.testing.assert_close(shifted[0, 0, 3:-3, 3:-3], expected[3:-3, 3:-3], rtol=0, atol=1e-12)


def test_shift_is_nearly_invertible_on_a_smooth_image(mm):
    yy, xx = torch.meshgrid(torch.arange(48.0), torch.arange(48.0), indexing="ij")
    z = (torch.sin(2 * torch.pi * yy / 16) * torch.cos(2 * torch.pi * xx / 24)).double()[None, None]
    back = mm["shift_image"](mm["shift_image"](z, 0.4, -0.3), -0.4, 0.3)
    inner = (..., slice(6, -6), slice(6, -6))
    error = (back - z)[inner].abs().max().item()
    assert error < 5e-3, error
    # a shift in the wrong direction would not come back
    wrong = mm["shift_image"](mm["shift_image"](z, 0.4, -0.3), 0.4, -0.3)
    assert (wrong - z)[inner].abs().max().item() > 20 * error


def test_shift_rejects_bad_input(mm):
    with pytest.raises(ValueError):
        mm["cubic_weights"](1.5)
    with pytest.raises(ValueError):
        mm["cubic_weights"](float("nan"))
    with pytest.raises(TypeError):
        mm["shift_image"](torch.zeros(3, 8, 8), 0.2, 0.1)
    with pytest.raises(TypeError):
        mm["shift_image"](torch.zeros(1, 1, 8, 8, dtype=torch.int64), 0.2, 0.1)


def test_shifted_blur_is_a_blur_by_the_composite_kernel(mm):
    x = random_image(48, seed=2)
    k = torch.rand(1, 1, 7, 7, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    k = k / k.sum()
    dy, dx = 0.3, -0.45
    c = mm["composite_kernel"](k.flatten(), dy, dx).reshape(1, 1, 11, 11)
    lhs = dinv.physics.Blur(filter=k, padding="valid")(mm["shift_image"](x, dy, dx))[..., 2:-2, 2:-2]
    rhs = dinv.physics.Blur(filter=c, padding="valid")(x)
    torch.testing.assert_close(lhs, rhs, rtol=0, atol=1e-12)


def test_shifted_quadratic_equals_the_quadratic_of_the_shifted_image(mm):
    x = random_image(40, seed=4)
    size = 7
    y = random_image(40 - (size + 4) + 1, seed=5)
    G_big, b_big = mm["blur_quadratic"](x, y, size + 4)
    dy, dx = -0.2, 0.35
    G_d, b_d = mm["shifted_quadratic"](G_big, b_big, dy, dx, size)
    G_ref, b_ref = mm["blur_quadratic"](mm["shift_image"](x, dy, dx)[..., 2:-2, 2:-2], y, size)
    torch.testing.assert_close(G_d, G_ref, rtol=1e-10, atol=1e-9)
    torch.testing.assert_close(b_d, b_ref, rtol=1e-10, atol=1e-9)


# --- gain and offset ---------------------------------------------------------------------------


def test_gain_and_offset_are_recovered(mm):
    x, k_true = mm["x"].cpu(), mm["k_true"].cpu()
    clean = dinv.physics.Blur(filter=k_true, padding="valid")(x)
    y = 0.7 * clean + 0.1
    k_hat, gain, offset = mm["fit_gain_offset"](x, y, 25)
    assert abs(gain - 0.7) < 1e-4, gain
    assert abs(offset - 0.1) < 1e-4, offset
    assert torch.isclose(k_hat.sum(), torch.tensor(1.0), atol=1e-5)
    assert mm["kernel_errors"](k_hat, k_true)[0] < 1e-3


def test_gain_and_offset_rejects_bad_input(mm):
    x = mm["x"].cpu()
    with pytest.raises(ValueError):
        mm["fit_gain_offset"](x[0], x[0, :, :40, :40], 25)
    y = torch.zeros(1, 3, 40, 40)
    y[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError):
        mm["fit_gain_offset"](x, y, 25)
    with pytest.raises(ValueError):
        mm["fit_gain_offset"](x, torch.zeros(1, 3, 30, 30), 25)  # wrong measurement size


def test_nonnegative_solver_matches_a_reference(mm):
    from scipy.optimize import nnls

    gen = torch.Generator().manual_seed(6)
    A = torch.randn(60, 20, generator=gen, dtype=torch.float64)
    t = torch.randn(60, generator=gen, dtype=torch.float64)
    h = mm["solve_nonnegative"](A.T @ A, A.T @ t)
    reference, _ = nnls(A.numpy(), t.numpy())
    torch.testing.assert_close(h, torch.from_numpy(reference), rtol=0, atol=1e-8)


# --- kernel size -------------------------------------------------------------------------------


def test_centre_to_pads_and_crops_about_the_centre(mm):
    k = torch.rand(1, 1, 25, 25, generator=torch.Generator().manual_seed(7))
    big = mm["centre_to"](k, 41)
    assert big.shape[-1] == 41 and big.sum() == k.sum()
    torch.testing.assert_close(mm["centre_to"](big, 25), k, rtol=0, atol=0)


def test_centred_pair_keeps_the_blur_consistent(mm):
    x, k_true = mm["x"].cpu(), mm["k_true"].cpu()
    y = dinv.physics.Blur(filter=k_true, padding="valid")(x)
    for size in (9, 25, 33):
        x_c, y_c = mm["centred_pair"](x, y, size)
        assert x_c.shape[-1] - y_c.shape[-1] == size - 1
    big = mm["centre_to"](k_true, 33)
    x_c, y_c = mm["centred_pair"](x, y, 33)
    torch.testing.assert_close(dinv.physics.Blur(filter=big, padding="valid")(x_c), y_c,
                               rtol=0, atol=1e-5)
    with pytest.raises(ValueError):
        mm["centred_pair"](x, y, 24)


def noisy_blur(mm, kernel, size=96, sigma=0.01, seed=0):
    x = mm["load_photo"](size)
    noise = dinv.physics.GaussianNoise(sigma=sigma, rng=torch.Generator().manual_seed(seed))
    return x, dinv.physics.Blur(filter=kernel, padding="valid", noise_model=noise)(x)


def test_size_selection_picks_the_full_support(mm):
    k = torch.rand(1, 1, 25, 25, generator=torch.Generator().manual_seed(8)) + 0.5
    k = k / k.sum()  # every entry of the 25×25 support carries mass
    x, y = noisy_blur(mm, k)
    chosen, residuals, _ = mm["select_kernel_size"](x, y, (21, 25, 29))
    assert chosen == 25, residuals


def test_size_selection_picks_the_smallest_support_holding_the_kernel(mm):
    k_true = mm["k_true"].cpu()  # non-zero rows 9..18 of 25: needs 13×13 about the centre
    x, y = noisy_blur(mm, k_true)
    chosen, residuals, _ = mm["select_kernel_size"](x, y, (9, 11, 13, 17))
    assert chosen == 13, residuals
    assert residuals[0] > residuals[2] * 1.01  # truncating the kernel costs a lot


# --- robustness page ---------------------------------------------------------------------------


def test_correlate_is_the_linear_term_of_the_quadratic(rb):
    x, y = rb["x"].cpu(), rb["y"].cpu()
    direct = torch.nn.functional.conv2d(x.double(), y.double()).flatten().flip(0)
    torch.testing.assert_close(rb["correlate"](x, y), direct, rtol=1e-10, atol=1e-10)
    # and the quadratic it completes is deepinv's loss: 1/2 kᵀGk - bᵀk + 1/2 ||y||²
    G, b = rb["blur_quadratic"](x, y, 25)
    k = rb["k_true"].cpu().double()
    physics = dinv.physics.Blur(filter=k, padding="valid")
    loss = dinv.optim.L2()(x=x.double(), y=y.double(), physics=physics).sum()
    kv = k.flatten()
    quadratic = 0.5 * kv @ G @ kv - b @ kv + 0.5 * y.double().pow(2).sum()
    torch.testing.assert_close(quadratic, loss, rtol=1e-10, atol=1e-10)


def test_power_iteration_bounds_the_largest_centred_eigenvalue(rb):
    gen = torch.Generator().manual_seed(9)
    A = torch.randn(80, 30, generator=gen, dtype=torch.float64)
    G = A.T @ A + 50.0  # a large constant part that the centring must remove
    low, high = rb["centred_eigenvalues"](G)
    estimate = rb["largest_eigenvalue"](G)
    assert high <= estimate <= 1.05 * high
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


def test_adam_on_the_quadratic_reaches_the_exact_floor_without_noise(rb):
    G, b = rb["G"], rb["b"]
    k_exact = rb["solve_exact"](G, b)[0]
    k_adam = rb["calibrate_with_adam"](G, b, rb["y"].numel(), n_iter=200)
    assert torch.isclose(k_adam.sum(), torch.tensor(1.0, dtype=k_adam.dtype))
    f = rb["objective"]
    assert f(k_exact, G, b) <= f(k_adam, G, b) + 1e-9  # the exact minimiser is the minimum

"""The blind-deconvolution page's helpers: shift alignment, kernel shifts, and its image step.

The functions are taken from the namespace that running the page (in fast mode) leaves behind.
"""

from __future__ import annotations

import pytest
import torch

from conftest import ROOT

PAGE = ROOT / "examples" / "blind" / "plot_blind_deconvolution.py"


@pytest.fixture(scope="module")
def page(example_runs):
    return example_runs(PAGE).namespace


def compact_kernel(size=25, seed=0):
    """A random non-negative kernel supported well inside its window, summing to one."""
    k = torch.zeros(1, 1, size, size, dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)
    k[..., 8:17, 8:17] = torch.rand(9, 9, generator=gen, dtype=torch.float64)
    return k / k.sum()


@pytest.mark.parametrize("shift", [(0, 0), (2, -3), (-4, 1), (5, 5), (-6, -6)])
def test_alignment_is_exact_on_a_shifted_copy(page, shift):
    k = compact_kernel()
    moved = page["shift_kernel"](k, *shift)
    assert moved.sum().item() == pytest.approx(1.0)  # nothing fell out of the window
    error, found = page["aligned_kernel_error"](moved, k)
    assert error == pytest.approx(0.0, abs=1e-12)
    assert found == (-shift[0], -shift[1])


def test_shift_kernel_moves_a_single_pixel(page):
    k = torch.zeros(1, 1, 7, 7)
    k[..., 3, 3] = 1.0
    moved = page["shift_kernel"](k, 2, -1)
    assert moved[0, 0, 5, 2] == 1.0 and moved.sum() == 1.0
    gone = page["shift_kernel"](k, 4, 0)  # pushed out of the window: zero fill, mass lost
    assert gone.sum() == 0.0


def test_alignment_is_not_fooled_by_a_different_kernel(page):
    k, other = compact_kernel(seed=1), compact_kernel(seed=2)
    error, _ = page["aligned_kernel_error"](other, k)
    assert error > 0.1


def test_alignment_beyond_the_radius_is_not_found(page):
    k = compact_kernel()
    error, _ = page["aligned_kernel_error"](page["shift_kernel"](k, 7, 0), k, radius=6)
    assert error > 0.1


def test_alignment_validates_its_inputs(page):
    k = compact_kernel()
    with pytest.raises(ValueError, match="shapes differ"):
        page["aligned_kernel_error"](k, k[..., :-1, :-1])
    with pytest.raises(ValueError, match="NaN"):
        page["aligned_kernel_error"](k * float("nan"), k)
    with pytest.raises(ValueError, match="zero"):
        page["aligned_kernel_error"](k, torch.zeros_like(k))
    with pytest.raises(TypeError):
        page["aligned_kernel_error"](k.numpy(), k)
    with pytest.raises(ValueError, match="integer"):
        page["shift_kernel"](k, 0.5, 0)


def test_periodic_pad_is_continuous_across_the_wrap(page):
    gen = torch.Generator().manual_seed(4)
    image = torch.rand(1, 1, 20, 30, generator=gen, dtype=torch.float64)
    padded = page["periodic_pad"](image, (6, 5))
    assert padded.shape == (1, 1, 32, 40)
    torch.testing.assert_close(padded[..., 6:-6, 5:-5], image)
    # from the last image column (34), through the band and the wrap, to the first one (5):
    # eleven equal steps, so each is a fraction of the gap between the two
    columns = padded[..., [(34 + j) % 40 for j in range(12)]]
    steps = (columns[..., 1:] - columns[..., :-1]).abs().max()
    assert steps <= (image[..., 0] - image[..., -1]).abs().max() / 11 + 1e-12
    rows = padded[..., [(25 + j) % 32 for j in range(14)], :]  # last image row 25, first 6
    steps = (rows[..., 1:, :] - rows[..., :-1, :]).abs().max()
    assert steps <= (padded[..., 6, :] - padded[..., 25, :]).abs().max() / 13 + 1e-12


def test_image_step_without_prior_inverts_the_blur(page):
    """With a vanishing lambda the l0 step is a plain Fourier deconvolution of a periodic blur."""
    gen = torch.Generator().manual_seed(5)
    latent = torch.rand(1, 1, 32, 32, generator=gen, dtype=torch.float64)
    k = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
    k[..., 2, 1:4] = torch.tensor([0.2, 0.6, 0.2], dtype=torch.float64)  # no zero in its spectrum
    blurred = torch.nn.functional.conv2d(  # the same blur, periodic (circular padding)
        torch.nn.functional.pad(latent, (2, 2, 2, 2), mode="circular"), k.flip(-1).flip(-2)
    )
    lam = torch.tensor([1e-14], dtype=torch.float64)
    recovered = page["l0_image_step"](blurred, k, lam, beta_max=1e-11)
    torch.testing.assert_close(recovered, latent, atol=1e-6, rtol=0)


def test_image_step_with_a_large_lambda_flattens_the_image(page):
    gen = torch.Generator().manual_seed(8)
    noisy = 0.5 + 0.01 * torch.randn(1, 1, 32, 32, generator=gen, dtype=torch.float64)
    delta = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
    delta[..., 1, 1] = 1.0
    flat = page["l0_image_step"](noisy, delta, torch.tensor([1.0], dtype=torch.float64))
    assert flat.std() < 1e-3 < noisy.std()


def test_kernel_step_recovers_a_kernel_from_an_exact_latent(page):
    gen = torch.Generator().manual_seed(6)
    latent = torch.rand(1, 1, 64, 64, generator=gen, dtype=torch.float64)
    latent = torch.nn.functional.avg_pool2d(latent, 2, 1)
    k = torch.zeros(1, 1, 7, 7, dtype=torch.float64)
    k[..., 3, 1:6] = torch.tensor([0.1, 0.2, 0.4, 0.2, 0.1], dtype=torch.float64)
    measurement = torch.nn.functional.conv2d(latent, k.flip(-1).flip(-2))  # valid convolution
    k_hat = page["kernel_step"](latent, measurement, 7, ridge=0.0)
    assert ((k_hat - k).norm() / k.norm()).item() < 1e-3


def test_the_page_builds_the_suite_as_the_tests_do(page):
    """The page's problem suite is the one of tests/suite.py (the same data)."""
    import suite
    from calibration_helpers import suite_kernel, suite_problem

    assert len(page["SUITE"]) == len(suite.PROBLEMS)
    for row, problem in zip(page["SUITE"], suite.PROBLEMS):
        fields = (problem.photo, problem.kind, problem.kernel_seed, problem.sigma)
        assert row == (*fields, problem.noise_seed)
        torch.testing.assert_close(suite_kernel(row[1], row[2]), suite.kernel(problem))
    for index in (0, 6):
        made = suite_problem(*page["SUITE"][index], 64)
        for ours, theirs in zip(made, suite.make_problem(suite.PROBLEMS[index], 64)):
            torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_the_page_leaves_its_results(page):
    results = page["results"]
    assert results["suite"]["successes"] == sum(e <= page["SUCCESS"] for e in page["own"].values())
    assert len(page["own"]) == page["N_SUITE"]

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


def test_subpixel_snap_puts_the_peak_on_a_pixel(page):
    k = torch.zeros(1, 1, 9, 9, dtype=torch.float64)
    k[..., 4, 4], k[..., 4, 5] = 0.6, 0.4  # a peak between two pixels
    di, dj = page["peak_offset"](k)
    assert di == pytest.approx(0.0) and 0.0 < dj < 0.5
    snapped = page["subpixel_shift"](k, -di, -dj)
    assert snapped.sum().item() == pytest.approx(1.0)
    columns = torch.arange(9, dtype=torch.float64)
    centroid = lambda kernel: (kernel[0, 0].sum(0) * columns).sum().item()  # noqa: E731
    assert centroid(snapped) == pytest.approx(centroid(k) - dj)  # bilinear shifts move the mass exactly
    assert abs(page["peak_offset"](snapped)[1]) < abs(dj)


def test_periodic_pad_is_continuous_across_the_wrap(page):
    image = torch.rand(1, 1, 20, 30, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    padded = page["periodic_pad"](image, 6)
    assert padded.shape == (1, 1, 32, 42)
    torch.testing.assert_close(padded[..., 6:-6, 6:-6], image)
    # cyclic steps from the last image column, through the band and the wrap, to the first one
    cols = [(c % 42) for c in range(6 + 30 - 1, 42 + 6)]
    steps = torch.stack([padded[..., (c + 1) % 42] - padded[..., c] for c in cols])
    edge_gap = (image[..., :, 0] - image[..., :, -1]).abs().max()
    assert steps.abs().max() <= edge_gap / 13 + 1e-12  # 2 * 6 + 1 equal steps
    rows = [(r % 32) for r in range(6 + 20 - 1, 32 + 6)]
    steps = torch.stack([padded[..., (r + 1) % 32, :] - padded[..., r, :] for r in rows])
    edge_gap = (padded[..., 6, :] - padded[..., -7, :]).abs().max()
    assert steps.abs().max() <= edge_gap / 13 + 1e-12


def test_image_step_without_prior_inverts_the_blur(page):
    """With a vanishing lambda the l0 step is a plain Fourier deconvolution of a periodic blur."""
    gen = torch.Generator().manual_seed(5)
    latent = torch.rand(1, 1, 32, 32, generator=gen, dtype=torch.float64)
    k = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
    k[..., 2, 1:4] = torch.tensor([0.2, 0.6, 0.2], dtype=torch.float64)  # no zero in its spectrum
    kernel_hat = page["transfer_function"](k, (32, 32))
    blurred = torch.fft.ifft2(torch.fft.fft2(latent[0, 0]) * kernel_hat).real[None, None]
    recovered = page["l0_image_step"](blurred, k, 1e-14, beta_max=1e-11)
    torch.testing.assert_close(recovered, latent[0, 0], atol=1e-6, rtol=0)


def test_image_step_with_a_large_lambda_flattens_the_image(page):
    gen = torch.Generator().manual_seed(8)
    noisy = 0.5 + 0.01 * torch.randn(1, 1, 32, 32, generator=gen, dtype=torch.float64)
    delta = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
    delta[..., 1, 1] = 1.0
    flat = page["l0_image_step"](noisy, delta, 1.0)
    assert flat.std() < 1e-3 < noisy.std()


def test_kernel_step_recovers_a_kernel_from_an_exact_latent(page):
    gen = torch.Generator().manual_seed(6)
    latent = torch.nn.functional.avg_pool2d(torch.rand(1, 1, 64, 64, generator=gen, dtype=torch.float64), 2, 1)
    k = torch.zeros(1, 1, 7, 7, dtype=torch.float64)
    k[..., 3, 1:6] = torch.tensor([0.1, 0.2, 0.4, 0.2, 0.1], dtype=torch.float64)
    measurement = torch.nn.functional.conv2d(latent, k.flip(-1).flip(-2))  # valid convolution
    k_hat = page["kernel_step"](latent, measurement, 7, ridge=0.0)
    assert ((k_hat - k).norm() / k.norm()).item() < 1e-3

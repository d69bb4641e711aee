"""The parametric PSF models the 'Beyond a free-form kernel' pages teach.

The functions are taken from the namespace that running each page (in fast mode) leaves behind:
the differentiable Gaussian and its canonical parameters (plot_gaussian_psf), the sign group and
the coefficient error of the Zernike page (plot_zernike_psf); and the pages' ``results``.
"""

from __future__ import annotations

import itertools
import warnings

import pytest
import torch

import deepinv as dinv

from conftest import ROOT

GAUSSIAN_PAGE = ROOT / "examples" / "beyond" / "plot_gaussian_psf.py"
ZERNIKE_PAGE = ROOT / "examples" / "beyond" / "plot_zernike_psf.py"

PARAMETERS = [  # (sigma, angle in degrees), deepinv's order
    ((3.0, 1.2), 30.0),
    ((1.0, 2.5), -20.0),
    ((0.7, 0.7), 0.0),
    ((4.0, 1.5), 135.0),
    ((0.5, 3.3), 271.5),
    ((2.2, 0.9), 89.0),
]


@pytest.fixture(scope="module")
def gaussian(example_runs):
    return example_runs(GAUSSIAN_PAGE).namespace


@pytest.fixture(scope="module")
def zernike(example_runs):
    return example_runs(ZERNIKE_PAGE).namespace


def deprecated_gaussian_blur(sigma, angle):
    """deepinv.physics.blur.gaussian_blur, whose deprecation warning is expected here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return dinv.physics.blur.gaussian_blur(sigma=sigma, angle=angle)


# %% the differentiable Gaussian


@pytest.mark.parametrize("sigma, angle", PARAMETERS)
def test_gaussian_matches_deepinv_and_sums_to_one(gaussian, sigma, angle):
    ours = gaussian["gaussian_kernel"](torch.tensor(sigma), torch.tensor(angle))
    theirs = deprecated_gaussian_blur(sigma, angle)
    assert ours.shape == theirs.shape, "kernel size rule differs from deepinv's"
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)
    assert abs(ours.sum().item() - 1.0) < 1e-6
    assert (ours >= 0).all()


@pytest.mark.parametrize("size", [9, 25])
@pytest.mark.parametrize("sigma, angle", PARAMETERS[:4])
def test_gaussian_matches_deepinv_at_a_given_size(gaussian, sigma, angle, size):
    ours = gaussian["gaussian_kernel"](torch.tensor(sigma), torch.tensor(angle), size)
    theirs = dinv.physics.functional.gaussian_blur(psf_size=(size, size), sigma=sigma, angle=angle)
    assert ours.shape == (1, 1, size, size)
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)


def test_gaussian_batch_equals_one_at_a_time(gaussian):
    kernel = gaussian["gaussian_kernel"]
    sigmas = torch.tensor([s for s, _ in PARAMETERS], dtype=torch.float64)
    angles = torch.tensor([a for _, a in PARAMETERS], dtype=torch.float64)
    batch = kernel(sigmas, angles, 21)
    assert batch.shape == (len(PARAMETERS), 1, 21, 21) and batch.dtype == torch.float64
    for i in range(len(PARAMETERS)):
        torch.testing.assert_close(batch[i : i + 1], kernel(sigmas[i], angles[i], 21))
    torch.testing.assert_close(
        batch.sum(dim=(1, 2, 3)), torch.ones(len(PARAMETERS), dtype=torch.float64)
    )


def test_gaussian_gradients_match_finite_differences(gaussian):
    kernel = gaussian["gaussian_kernel"]
    sigma = torch.tensor([[1.7, 0.9], [2.5, 1.4]], dtype=torch.float64, requires_grad=True)
    angle = torch.tensor([40.0, -75.0], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s, a: kernel(s, a, 11), (sigma, angle))


def test_gaussian_gradient_reaches_every_parameter(gaussian):
    kernel = gaussian["gaussian_kernel"]
    sigma = torch.tensor([2.0, 1.0], requires_grad=True)
    angle = torch.tensor(30.0, requires_grad=True)
    target = kernel(torch.tensor([2.5, 0.8]), torch.tensor(50.0), 15)
    (kernel(sigma, angle, 15) - target).pow(2).sum().backward()
    assert torch.isfinite(sigma.grad).all() and (sigma.grad != 0).all()
    assert torch.isfinite(angle.grad) and angle.grad != 0


@pytest.mark.parametrize(
    "sigma, angle, error",
    [
        ([1.0, 2.0], 0.0, TypeError),  # not tensors
        (torch.tensor([1, 2]), torch.tensor(0.0), TypeError),  # integer widths
        (torch.tensor([1.0, 2.0, 3.0]), torch.tensor(0.0), ValueError),  # three widths
        (torch.tensor([[1.0, 2.0]]), torch.tensor([0.0, 1.0]), ValueError),  # batch mismatch
        (torch.tensor([-1.0, 2.0]), torch.tensor(0.0), ValueError),  # negative width
        (torch.tensor([1.0, float("nan")]), torch.tensor(0.0), ValueError),
        (torch.tensor([1.0, 2.0]), torch.tensor(float("inf")), ValueError),
    ],
)
def test_gaussian_rejects_bad_input(gaussian, sigma, angle, error):
    with pytest.raises(error):
        gaussian["gaussian_kernel"](sigma, angle, 9)


# %% equivalent parameters


@pytest.mark.parametrize("sigma, angle", PARAMETERS)
def test_equivalent_parameters_have_one_representative(gaussian, sigma, angle):
    canonical = gaussian["canonical_parameters"]
    s1, s2 = sigma
    reference = canonical(s1, s2, angle)
    assert reference[0] >= reference[1] and 0.0 <= reference[2] < 180.0
    for triple in [
        (s2, s1, angle + 90.0),
        (s2, s1, angle - 90.0),
        (s1, s2, angle + 180.0),
        (s1, s2, angle - 360.0),
        (s2, s1, angle + 270.0),
    ]:
        other = canonical(*triple)
        assert other[:2] == pytest.approx(reference[:2])
        assert gaussian["angle_difference"](other[2], reference[2]) < 1e-9


@pytest.mark.parametrize("sigma, angle", PARAMETERS)
def test_equivalent_parameters_give_the_same_kernel(gaussian, sigma, angle):
    kernel = gaussian["gaussian_kernel"]
    canonical = gaussian["canonical_parameters"](*sigma, angle)
    a = kernel(
        torch.tensor(sigma, dtype=torch.float64), torch.tensor(angle, dtype=torch.float64), 25
    )
    b = kernel(
        torch.tensor(canonical[:2], dtype=torch.float64),
        torch.tensor(canonical[2], dtype=torch.float64),
        25,
    )
    torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_different_parameters_stay_different(gaussian):
    canonical = gaussian["canonical_parameters"]
    assert canonical(3.0, 1.2, 30.0) != pytest.approx(canonical(3.0, 1.2, 120.0))
    assert canonical(3.0, 1.2, 30.0) != pytest.approx(canonical(1.2, 3.0, 30.0))


def test_angle_difference_is_modulo_180(gaussian):
    diff = gaussian["angle_difference"]
    assert diff(1.0, 179.0) == pytest.approx(2.0)
    assert diff(30.0, 210.0) == pytest.approx(0.0)
    assert diff(0.0, 90.0) == pytest.approx(90.0)
    assert diff(-10.0, 10.0) == pytest.approx(20.0)


def test_canonical_parameters_rejects_bad_input(gaussian):
    with pytest.raises(ValueError):
        gaussian["canonical_parameters"](-1.0, 2.0, 0.0)
    with pytest.raises(ValueError):
        gaussian["canonical_parameters"](1.0, 2.0, float("nan"))


# %% the Zernike page's sign group


def test_sign_group_is_the_even_order_flip(zernike):
    group = {tuple(int(s) for s in row.tolist()) for row in zernike["SIGN_GROUP"].cpu()}
    noll = list(zernike["NOLL"])
    flip = tuple(-1 if j in (4, 5, 6, 11) else 1 for j in noll)
    assert group == {(1,) * len(noll), flip}


def test_sign_group_holds_for_other_coefficients(zernike):
    """The flip of Noll 4, 5, 6, 11 keeps the PSF of coefficients other than the page's truth."""
    psfs_of, noll = zernike["psfs_of"], list(zernike["NOLL"])
    gen = torch.Generator().manual_seed(11)
    a = 0.4 * (torch.rand(3, len(noll), generator=gen) - 0.5)
    flip = torch.tensor([-1.0 if j in (4, 5, 6, 11) else 1.0 for j in noll])
    with torch.no_grad():
        k, k_flip = psfs_of(a), psfs_of(a * flip)
        k_defocus_only = psfs_of(a * torch.tensor([-1.0 if j == 4 else 1.0 for j in noll]))
    rel = ((k - k_flip).flatten(1).norm(dim=1) / k.flatten(1).norm(dim=1)).max()
    assert rel < 1e-5
    assert ((k - k_defocus_only).flatten(1).norm(dim=1) / k.flatten(1).norm(dim=1)).min() > 1e-3


def test_coefficient_error_ignores_the_sign_group_only(zernike):
    errors = zernike["coefficient_errors"]
    group = zernike["SIGN_GROUP"].cpu()
    a = torch.tensor([0.05, -0.1, 0.02, 0.07, -0.03, 0.01, 0.04, -0.06])
    coma_flip = torch.tensor([1.0, 1, 1, -1, 1, 1, 1, 1])
    batch = torch.stack([coma_flip * a] + [signs * a for signs in group])
    values, best = errors(batch, a)
    assert values.shape == (1 + len(group),) and best.shape == (1 + len(group), 8)
    assert values[0].item() == pytest.approx(2 * 0.07 / a.norm().item(), rel=1e-5)
    assert (values[1:] < 1e-7).all()
    torch.testing.assert_close(
        best[1:] * batch[1:], a.expand(len(group), 8)
    )  # the best signs undo the flips


def test_zernike_psfs_carry_gradients(zernike):
    a = torch.tensor([[0.05, -0.1, 0.02, 0.07, -0.03, 0.01, 0.04, -0.06]], requires_grad=True)
    zernike["psfs_of"](a).pow(2).sum().backward()
    assert torch.isfinite(a.grad).all() and (a.grad != 0).any()


def test_psfs_of_rejects_bad_input(zernike):
    with pytest.raises(ValueError):
        zernike["psfs_of"](torch.zeros(1, 3))
    with pytest.raises(ValueError):
        zernike["psfs_of"](torch.full((1, 8), float("nan")))


def test_every_sign_pattern_was_tried(zernike):
    assert zernike["patterns"].shape == (2 ** len(zernike["NOLL"]), len(zernike["NOLL"]))
    distinct = {tuple(r.tolist()) for r in zernike["patterns"]}
    assert len(distinct) == len(list(itertools.product([1, -1], repeat=8)))


# %% the pages' results (fast mode)


def test_gaussian_results_improve_on_the_initial_guess(gaussian):
    results = gaussian["results"]
    initial, fitted = results["initial guess"], results[f"Adam, {gaussian['N_ITER']} steps"]
    columns = ("σ1 (%)", "σ2 (%)", "angle (°)", "kernel")
    for column in columns:
        assert fitted[column] < initial[column], column
    # the errors are those of the estimate printed on the page, against the canonical truth
    estimate, truth = gaussian["estimate"], gaussian["p_true"]
    assert fitted["σ1 (%)"] == pytest.approx(100 * abs(estimate[0] / truth[0] - 1))
    assert fitted["angle (°)"] == pytest.approx(gaussian["angle_difference"](estimate[2], 30))


def test_zernike_results_are_consistent(zernike):
    results = zernike["results"]
    fit, floor = results["Zernike fit"], results["free-form floor"]
    assert floor["× floor"] == 1.0
    assert fit["× floor"] == pytest.approx(fit["PSF error"] / floor["PSF error"])
    k_hat, k_true = zernike["k_hat"].cpu(), zernike["k_true"].cpu()
    assert fit["PSF error"] == pytest.approx(
        ((k_hat - k_true).norm() / k_true.norm()).item(), rel=1e-5
    )
    # the start chosen by its loss is the one with the lowest final loss
    losses = zernike["final_losses"]
    assert torch.equal(zernike["a_hat"][0], zernike["a_fits"][losses.argmin()])


def test_zernike_floor_is_the_exact_free_form_kernel(zernike):
    """The free-form floor on the page is the reference solver's minimiser of the same loss."""
    from reference import quadratic, solve_simplex_qp

    x, y = zernike["x"].cpu(), zernike["y"].cpu()
    k_ref, _ = solve_simplex_qp(*quadratic(x, y))
    k_page = zernike["k_free"].cpu().double().flatten()
    assert ((k_page - k_ref).norm() / k_ref.norm()).item() < 1e-6

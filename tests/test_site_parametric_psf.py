"""Pass criteria of the parametric PSF pages, read from the results tables of the BUILT pages.

The numbers are the ones the pages printed while the site was built (run ``make html`` first; a
missing build, table or row is a failure, not a skip).
"""

from __future__ import annotations

import pytest

from conftest import printed_table


@pytest.fixture(scope="module")
def gaussian():
    return printed_table("plot_gaussian_psf")["Adam, 150 steps"]


def test_gaussian_widths_within_5_percent(gaussian):
    assert gaussian["σ1 (%)"] <= 5.0
    assert gaussian["σ2 (%)"] <= 5.0


def test_gaussian_angle_within_3_degrees(gaussian):
    assert gaussian["angle (°)"] <= 3.0


def test_gaussian_fit_beats_the_initial_guess():
    table = printed_table("plot_gaussian_psf")
    fitted, initial = table["Adam, 150 steps"], table["initial guess"]
    assert fitted["kernel"] < 0.1 * initial["kernel"]


@pytest.fixture(scope="module")
def zernike():
    table = printed_table("plot_zernike_psf")
    return table["Zernike fit"], table["free-form floor"]


def test_zernike_coefficients_within_10_percent(zernike):
    fit, _ = zernike
    assert fit["coeff. (%)"] <= 10.0


def test_zernike_psf_within_1_2_times_the_free_form_floor(zernike):
    fit, floor = zernike
    assert fit["× floor"] <= 1.2
    # the printed ratio is the ratio of the printed errors (four significant digits each)
    assert fit["× floor"] == pytest.approx(fit["PSF error"] / floor["PSF error"], rel=2e-3)
    assert floor["PSF error"] > 0 and floor["× floor"] == 1.0

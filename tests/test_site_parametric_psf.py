"""Pass criteria of the parametric PSF pages, read from the built site (run ``make html`` first).

The numbers are the ones the pages printed while the site was built, in _build/html.  A missing
build or a missing line is a failure, not a skip.
"""

from __future__ import annotations

import re

import pytest

from conftest import printed_output

NUMBER = r"([0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)"


def printed(stem: str, label: str) -> float:
    """The one number the page printed after ``label`` at the start of a line."""
    text = printed_output(stem)
    found = re.findall(rf"^\s*{re.escape(label)}\s*{NUMBER}", text, re.MULTILINE)
    assert len(found) == 1, f"{stem}: expected exactly one line starting with {label!r}, found {found}"
    return float(found[0])


@pytest.fixture(scope="module")
def gaussian_errors():
    stem = "plot_gaussian_psf"
    return {
        "sigma_1": printed(stem, "sigma_1 relative error:"),
        "sigma_2": printed(stem, "sigma_2 relative error:"),
        "angle": printed(stem, "angle error:"),
    }


def test_gaussian_widths_within_5_percent(gaussian_errors):
    print(gaussian_errors)
    assert gaussian_errors["sigma_1"] <= 5.0
    assert gaussian_errors["sigma_2"] <= 5.0


def test_gaussian_angle_within_3_degrees(gaussian_errors):
    assert gaussian_errors["angle"] <= 3.0


def test_gaussian_page_states_units():
    text = printed_output("plot_gaussian_psf")
    assert re.search(rf"^sigma_1 relative error: {NUMBER} %$", text, re.MULTILINE)
    assert re.search(rf"^angle error: {NUMBER} degrees$", text, re.MULTILINE)


@pytest.fixture(scope="module")
def zernike_numbers():
    stem = "plot_zernike_psf"
    return {
        "coefficients": printed(stem, "coefficient vector relative error (best sign pattern):"),
        "psf": printed(stem, "PSF relative error of the Zernike fit:"),
        "floor": printed(stem, "free-form floor:"),
        "ratio": printed(stem, "ratio of the fit's PSF error to the free-form floor:"),
    }


def test_zernike_coefficients_within_10_percent(zernike_numbers):
    print(zernike_numbers)
    assert zernike_numbers["coefficients"] <= 10.0


def test_zernike_psf_within_1_2_times_the_free_form_floor(zernike_numbers):
    assert zernike_numbers["ratio"] <= 1.2


def test_zernike_ratio_is_the_ratio_of_the_printed_errors(zernike_numbers):
    ratio = zernike_numbers["psf"] / zernike_numbers["floor"]
    assert zernike_numbers["ratio"] == pytest.approx(ratio, abs=2e-3, rel=2e-2)
    assert zernike_numbers["floor"] > 0


def test_zernike_page_reports_the_sign_group_it_found():
    text = printed_output("plot_zernike_psf")
    found = re.findall(r"sign patterns that give the true PSF .*: (\d+) of (\d+)", text)
    assert found == [("2", "256")]
    assert "flip Noll [4, 5, 6, 11]" in text

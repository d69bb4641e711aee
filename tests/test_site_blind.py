"""Checks of the built blind-deconvolution page (run ``make html`` first): its printed numbers.

Issue 6's pass criterion: the blind kernel error, after aligning the shift, is at most 0.3 on the
default problem at sigma = 0.02; the page also reports the deblurred PSNR next to the true and the
calibrated kernels, and its running time.
"""

from __future__ import annotations

import re

import pytest

from conftest import printed_output

STEM = "plot_blind_deconvolution"
NUMBER = r"([0-9]+(?:\.[0-9]+)?)"
BLIND = re.compile(r"^blind kernel error \(after shift alignment\): " + NUMBER + r"$", re.MULTILINE)
CALIBRATED = re.compile(r"^calibrated kernel error \(exact least squares with x\): " + NUMBER + r"$", re.MULTILINE)
PSNR = re.compile(
    r"^deblurred PSNR: blind " + NUMBER + r" dB, calibrated " + NUMBER + r" dB, true kernel " + NUMBER + r" dB$",
    re.MULTILINE,
)
TIMES = re.compile(r"^running time: blind estimate " + NUMBER + r" s, calibration " + NUMBER + r" s$", re.MULTILINE)
SHAPES = re.compile(r"^image \(1, 3, 256, 256\), measurement \(1, 3, 232, 232\), kernel \(1, 1, 25, 25\)$", re.MULTILINE)


@pytest.fixture(scope="module")
def output() -> str:
    return printed_output(STEM)


def only(pattern: re.Pattern, text: str) -> tuple[float, ...]:
    found = set(pattern.findall(text))  # a figure may be printed twice (result, then summary)
    assert len(found) == 1, f"expected one value on lines matching {pattern.pattern!r}, found {found}"
    found = list(found)
    values = found[0] if isinstance(found[0], tuple) else (found[0],)
    return tuple(float(v) for v in values)


def test_page_ran_the_default_problem(output):
    assert SHAPES.search(output), "the page did not run on the full-size default problem"


def test_blind_kernel_error_meets_the_issue_criterion(output):
    (error,) = only(BLIND, output)
    assert error <= 0.3


def test_blind_is_worse_than_calibrated_but_comparable(output):
    (blind,) = only(BLIND, output)
    (calibrated,) = only(CALIBRATED, output)
    assert calibrated < blind  # having the sharp image must help
    assert calibrated < 0.05  # the exact least-squares floor of the calibration pages


def test_deblurred_psnr_is_reported_for_the_three_kernels(output):
    blind, calibrated, true = only(PSNR, output)
    assert abs(calibrated - true) < 0.5
    assert blind > true - 3.0  # the blind kernel deblurs almost as well as the true one


def test_running_time_is_reported(output):
    blind_time, calibration_time = only(TIMES, output)
    assert blind_time > 0 and calibration_time > 0

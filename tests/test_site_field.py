"""Checks of the field-of-kernels page in the built site (run ``make html`` first).

The numbers are read from the results table the page printed while the site was built (full
size), so they are the ones the reader sees.  A missing build or row is a failure, not a skip.
"""

from __future__ import annotations

import pytest

from conftest import printed_output

STEM = "plot_field_of_kernels"
# Windows of 29×29 measured pixels are noise-limited: the variation of the PSF inside them adds
# little to the error of their exact kernel (the window-size curve on the page shows the bias
# growing only beyond that size).  The median over 64 windows of error / floor must stay near 1:
# a median above 1.15 means the windows are too large for the field, below 0.9 means the floors
# are not computed on the same data as the kernels.
WINDOW_RATIO = (0.9, 1.15)
# sigma_hat / sigma of the calibrated operator.  For the true operator the ratio is 1 up to
# 1 / sqrt(2n) = 0.0017 (n = 3 × 246² measured values); fitting about 1,100 numbers lowers it by
# at most 1,100 / (2n) = 0.3 %.  An excess of 2 % means that the operator's prediction error is at
# most sqrt(1.02² - 1) = 20 % of the noise in root mean square.
SIGMA_RATIO = (0.98, 1.02)
# The calibrated field deblurs within 0.2 dB of the true field (same solver and settings).
PSNR_GAP_TO_TRUE_FIELD = 0.2


def results_table(text: str) -> dict[str, dict[str, float]]:
    """The table print_table printed: {row: {column: number}}, read through the dashes' spans."""
    lines = text.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("---") and "  -" in line)
    spans, start = [], 0
    for dashes in lines[rule].split("  "):
        spans.append((start, start + len(dashes)))
        start += len(dashes) + 2
    header = [lines[rule - 1][a:b].strip() for a, b in spans]
    table = {}
    for line in lines[rule + 1 :]:
        if not line.strip():
            break
        cells = [line[a:b].strip() for a, b in spans]
        table[cells[0]] = {
            h: float(c) for h, c in zip(header[1:], cells[1:]) if c and " s" not in c
        }
    return table


@pytest.fixture(scope="module")
def results():
    """{measure: {column: number}}, columns windows, calibrated, single and true."""
    table = results_table(printed_output(STEM))
    print(table)
    for row in ("kernel error", "error / floor", "sigma_hat / sigma", "PSNR (dB)"):
        assert row in table, f"row {row!r} missing from the printed results: {sorted(table)}"
    return table


def test_windows_reach_their_own_floor(results):
    ratio = results["error / floor"]["windows"]
    assert WINDOW_RATIO[0] <= ratio <= WINDOW_RATIO[1]


def test_calibrated_operator_explains_the_data_to_the_noise_level(results):
    ratio = results["sigma_hat / sigma"]
    assert SIGMA_RATIO[0] <= ratio["calibrated"] <= SIGMA_RATIO[1]
    assert ratio["true"] == pytest.approx(1.0, abs=0.005)
    assert ratio["single"] > SIGMA_RATIO[1]  # one kernel cannot explain this field


def test_calibrated_field_deblurs_like_the_true_field(results):
    psnr = results["PSNR (dB)"]
    assert psnr["calibrated"] >= psnr["single"]
    assert abs(psnr["calibrated"] - psnr["true"]) <= PSNR_GAP_TO_TRUE_FIELD


def test_global_operator_beats_each_windows_floor(results):
    """Pooling the windows through the global model does better than any window alone."""
    assert results["error / floor"]["calibrated"] < 1.0
    assert results["kernel error"]["calibrated"] < results["kernel error"]["windows"]

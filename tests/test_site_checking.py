"""The bounds of the checking section, read from the results tables of the BUILT pages (full size).

Build the site first (``make html``, or the pattern build of the three pages); a missing page is a
failure, not a skip.  Each page ends with ``print_table(results)``; the last table a page printed
is read back column by column, using the dashes under its header.
"""

from __future__ import annotations

import math
import re

import pytest

from conftest import printed_output as printed

FALSE_ALARM = 0.05  # the level of the residual page's decision


def printed_table(stem):
    """The last table ``stem`` printed: {row: {column: text}}."""
    lines = printed(stem).splitlines()
    rules = [i for i, line in enumerate(lines) if re.fullmatch(r"-+(  -+)+", line)]
    assert rules, f"{stem} printed no table"
    rule = rules[-1]
    spans = [m.span() for m in re.finditer(r"-+", lines[rule])]
    header = [lines[rule - 1][a:b].strip() for a, b in spans]
    table = {}
    for line in lines[rule + 1 :]:
        if not line.strip():
            break
        cells = [line[a:b].strip() for a, b in spans]
        table[cells[0]] = {h: c for h, c in zip(header[1:], cells[1:]) if c}
    return table


@pytest.fixture(scope="module")
def residual():
    return printed_table("plot_residual_checks")


@pytest.fixture(scope="module")
def uncertainty():
    return printed_table("plot_kernel_uncertainty")


@pytest.fixture(scope="module")
def held_out():
    return printed_table("plot_held_out_support")


def test_false_alarm_rate_is_5_percent_within_3_binomial_errors(residual):
    row = residual["correct model"]
    draws, rate = int(row["draws"]), float(row["rejected"])
    assert draws >= 50
    assert abs(rate - FALSE_ALARM) <= 3 * math.sqrt(FALSE_ALARM * (1 - FALSE_ALARM) / draws)


def test_every_mismatch_of_the_gallery_is_detected_in_90_percent_of_draws(residual):
    mismatches = {
        name: row
        for name, row in residual.items()
        if name not in ("correct model", "page run time")
    }
    kinds = " | ".join(mismatches)
    for expected in (
        "gain 0.8, offset 0.05",
        "shift 0.4 px",
        "support 9×9",
        "σ assumed 0.01",
        "σ assumed 0.04",
    ):
        assert expected in kinds, kinds
    for name, row in mismatches.items():
        assert int(row["draws"]) >= 50, name
        assert float(row["rejected"]) >= 0.9, (name, row)


def test_predicted_expected_error_is_within_1_25_of_monte_carlo(uncertainty):
    (draws,) = [
        int(m) for name in uncertainty for m in re.findall(r"^Monte Carlo \((\d+) draws\)$", name)
    ]
    assert draws >= 100
    ratio = float(uncertainty["face covariance (draw 0)"]["ratio"])
    assert 1 / 1.25 <= ratio <= 1.25


def test_bootstrap_expected_error_is_within_1_5_of_monte_carlo(uncertainty):
    (row,) = [row for name, row in uncertainty.items() if name.startswith("tile bootstrap")]
    assert 1 / 1.5 <= float(row["ratio"]) <= 1.5


def test_std_map_and_scaling_rows_are_reported(uncertainty):
    assert float(uncertainty["std, face covariance (median)"]["ratio"]) > 0
    for sigma in ("0.01", "0.02", "0.05", "0.1"):
        assert float(uncertainty[f"σ = {sigma}"]["predicted"]) > 0
    for pairs in (1, 2, 4, 8, 16):
        assert float(uncertainty[f"pairs = {pairs}"]["measured"]) > 0
    # the predicted error grows with σ and falls with the number of pairs, as the measured one
    predicted = [
        float(uncertainty[f"σ = {s}"]["predicted"]) for s in ("0.01", "0.02", "0.05", "0.1")
    ]
    assert predicted == sorted(predicted)
    predicted = [float(uncertainty[f"pairs = {m}"]["predicted"]) for m in (1, 2, 4, 8, 16)]
    assert predicted == sorted(predicted, reverse=True)


def test_held_out_support_holds_the_true_kernel_in_8_of_10_seeds(held_out):
    seeds = {name: row for name, row in held_out.items() if name.startswith("kernel seed")}
    assert len(seeds) >= 10
    holds = [row["holds"] for row in seeds.values()]
    assert set(holds) <= {"yes", "no"}
    assert holds.count("yes") >= 8
    for row in seeds.values():  # "holds" agrees with the sizes printed beside it
        chosen, truth = (int(row[c].split("×")[0]) for c in ("held-out", "truth"))
        assert (chosen >= truth) == (row["holds"] == "yes")

"""Checks of the robustness and model-mismatch pages, read from the BUILT pages' results tables.

Run ``make html`` first; a missing build, table or row is a failure, not a skip.
"""

from __future__ import annotations

import pytest

from conftest import parse_tables, printed_output, printed_table

MAX_RATIO = 1.5  # each fix must bring the kernel error within 1.5× the matched-model floor
MISMATCH_PAGES = ["plot_mismatch_gain", "plot_mismatch_shift", "plot_mismatch_support"]


def named_row(table: dict, prefix: str) -> dict:
    """The one row of ``table`` whose name starts with ``prefix``."""
    (name,) = [name for name in table if name.startswith(prefix)]
    return table[name]


@pytest.mark.parametrize("stem", MISMATCH_PAGES)
def test_each_fix_comes_within_the_ratio_of_the_matched_floor(stem):
    table = printed_table(stem)
    floor, fix = named_row(table, "matched floor"), named_row(table, "with fix")
    assert floor["× floor"] == 1.0
    assert fix["× floor"] <= MAX_RATIO, f"{stem}: ratio {fix['× floor']} > {MAX_RATIO}"
    # the printed ratio is the printed errors' ratio, up to their rounding (four digits each)
    assert fix["× floor"] == pytest.approx(fix["kernel error"] / floor["kernel error"], rel=2e-3)


@pytest.mark.parametrize("stem", MISMATCH_PAGES)
def test_the_mismatches_that_hurt_are_repaired(stem):
    """Ignoring the gain, the shift or a too-small support costs far more than the floor."""
    table = printed_table(stem)
    floor, fix = named_row(table, "matched floor"), named_row(table, "with fix")
    without = {name: row for name, row in table.items() if name.startswith("without fix")}
    assert without, f"{stem}: no 'without fix' row"
    for name, row in without.items():
        if "too large" not in name:
            assert row["kernel error"] > 3 * floor["kernel error"], name
            assert fix["kernel error"] < row["kernel error"], name


def test_the_estimated_parameters_are_close_to_the_truth():
    gain = named_row(printed_table("plot_mismatch_gain"), "with fix")
    assert gain["gain"] == pytest.approx(0.8, abs=0.01)
    assert gain["offset"] == pytest.approx(0.05, abs=0.01)
    shift = named_row(printed_table("plot_mismatch_shift"), "with fix")
    assert shift["shift (px)"] == pytest.approx(0.4, abs=0.01)
    table = printed_table("plot_mismatch_support")
    assert "too small" in " ".join(table) and "too large" in " ".join(table)


@pytest.fixture(scope="module")
def noise_levels():
    table = printed_table("plot_robustness")
    return {float(name.split("=")[1]): row for name, row in table.items() if name.startswith("σ =")}


def test_noise_levels_cover_the_requested_range(noise_levels):
    assert sorted(noise_levels) == [0.0, 0.01, 0.02, 0.05, 0.1]
    assert all(row["draws"] >= 3 for s, row in noise_levels.items() if s > 0), "several draws"


def test_floor_vanishes_without_noise_and_grows_in_proportion_to_it(noise_levels):
    floors = {s: row["floor"] for s, row in sorted(noise_levels.items())}
    assert floors[0.0] < 1e-3
    assert all(a < b for a, b in zip(list(floors.values()), list(floors.values())[1:]))
    # proportional to σ within 30 %: the least-squares kernel is (nearly) linear in the data
    for sigma in (0.01, 0.05, 0.1):
        assert floors[sigma] / floors[0.02] == pytest.approx(sigma / 0.02, rel=0.3)


def test_fixed_budget_adam_is_compared_with_the_floor(noise_levels):
    for row in noise_levels.values():
        adam = [value for column, value in row.items() if column.startswith("Adam ")]
        assert len(adam) == 2 and all(value < 1.0 for value in adam)
    # without noise the floor is ~0 and the fixed budget shows its own optimisation error
    zero = noise_levels[0.0]
    assert all(v > 10 * zero["floor"] for c, v in zero.items() if c.startswith("Adam "))


def test_smoother_image_gives_a_higher_floor():
    table = printed_table("plot_robustness")
    rows = [row for name, row in table.items() if name.startswith("smoothing ")]
    assert len(rows) >= 2 and list(table)[-len(rows)].startswith("smoothing 0.0")
    floors = [row["floor"] for row in rows]
    assert all(a < b for a, b in zip(floors, floors[1:])), floors
    assert floors[-1] > 3 * floors[0], "the most smoothed image should calibrate much worse"


def test_every_exact_solve_is_optimal():
    table = printed_table("plot_robustness")
    assert all(row["KKT"] <= 1e-8 for row in table.values())


def test_smoothing_removes_the_small_eigenvalues_only():
    """The claim under the results: λ_max barely moves while λ_min falls by orders of magnitude."""
    (table,) = [t for t in parse_tables(printed_output("plot_robustness")) if "λ_min" in str(t)]
    rows = list(table.values())
    assert rows[-1]["λ_min"] < 1e-3 * rows[0]["λ_min"]
    assert rows[-1]["λ_max"] == pytest.approx(rows[0]["λ_max"], rel=0.1)

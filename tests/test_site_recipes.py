"""Checks of the projected-gradient, Adam and AdamW pages in the built site (``make html`` first).

The numbers are read from the results table each page printed while the site was built (full
size), so they are the ones the reader sees.  The floors the pages print are checked against the
independent reference solver of ``tests/reference.py`` and against ``tests/suite.py``.
"""

from __future__ import annotations

import pytest

import reference
import suite
from conftest import printed_table

# page -> (row of its recipe on the default problem, allowed ratio to the exact floor)
DEFAULT_ROWS = {
    "plot_projected_gradient": ("recipe", 1.2),
    "plot_adam_projection": ("default, new recipe", 1.2),
    "plot_adamw_l1": ("default, new recipe", 1.4),
}
# page -> (old row, new row, suite problem, bound of the new recipe): the before/after comparison
COMPARISONS = {
    "plot_adam_projection": ("coffee, old recipe", "coffee, new recipe", 6, 1.2),
    "plot_adamw_l1": ("seed 7, old recipe", "seed 7, new recipe", 1, 1.4),
}
# The old recipe has failed when its kernel error is this many times the floor or more.
OLD_FAILS = 5.0


@pytest.fixture(scope="module")
def default_floor():
    return reference.default_floor()


@pytest.mark.parametrize("stem", sorted(DEFAULT_ROWS))
def test_the_recipe_reaches_the_floor_on_the_default_problem(stem, default_floor):
    row, bound = DEFAULT_ROWS[stem]
    results = printed_table(stem)[row]
    print(stem, results)
    assert results["floor"] == pytest.approx(default_floor, rel=1e-3)
    assert results["kernel error"] / default_floor <= bound


@pytest.mark.parametrize("stem", sorted(COMPARISONS))
def test_the_page_shows_the_old_recipe_failing_and_the_new_one_holding(stem):
    old, new, index, bound = COMPARISONS[stem]
    table = printed_table(stem)
    floor = suite.floor(suite.PROBLEMS[index])
    print(stem, table[old], table[new], floor)
    for row in (old, new):
        assert table[row]["floor"] == pytest.approx(floor, rel=1e-3), "not the suite's problem"
    assert table[old]["kernel error"] / floor >= OLD_FAILS
    assert table[new]["kernel error"] / floor <= bound


def test_the_safe_step_is_the_slow_one():
    table = printed_table("plot_projected_gradient")
    assert table["safe step 1/L"]["ratio"] > 2 * table["recipe"]["ratio"]


def test_the_l1_kernel_wins_on_its_own_loss_and_loses_on_least_squares():
    row = printed_table("plot_adamw_l1")["default, new recipe"]
    assert row["ΔL1 loss"] < 0 < row["ΔLS loss"]

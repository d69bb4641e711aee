"""The benchmark page as built: its results table, against the yardstick and the recipes' bounds.

Wall-clock times are printed on the page but never asserted.
"""

from __future__ import annotations

import pytest

from conftest import printed_table
from reference import default_floor

BOUNDS = {"gallery PGD": 1.2, "gallery Adam": 1.2, "gallery AdamW + L1": 1.4}


@pytest.fixture(scope="module")
def table():
    return printed_table("plot_comparison")


def test_printed_floor_is_the_yardsticks(table):
    floor = default_floor()
    assert table["exact route"]["error"] == pytest.approx(floor, abs=5e-5)


def test_every_method_has_a_row(table):
    assert {"exact route", *BOUNDS, "example PGD (0.7)", "example Adam (0.1)"} <= set(table)
    assert "example AdamW + L1" in table
    assert any(name.startswith("batch of ") for name in table)


@pytest.mark.parametrize("method", sorted(BOUNDS))
def test_gallery_recipes_end_near_the_floor(table, method):
    assert table[method]["× floor"] <= BOUNDS[method]


def test_speed_ups_are_printed_for_every_autograd_method(table):
    for name, row in table.items():
        if name.startswith(("gallery", "example")):
            assert str(row["exact is"]).endswith("×"), (name, row)

"""The benchmark page as built: its table is complete and consistent with the yardstick.

Wall-clock times are read and printed (``pytest -s``) but never asserted.
"""

from __future__ import annotations

import re

import pytest

from conftest import printed_output
from reference import default_problem, floor_error

METHODS = ("seed PGD", "gallery PGD", "seed Adam", "gallery Adam", "seed AdamW + L1",
           "gallery AdamW + L1", "exact (G + FISTA)")
ROW = re.compile(
    r"^(?P<method>.+?)\s+(?P<final>\d+\.\d+)\s+(?P<ratio>\d+\.\d+)\s+(?P<iterations>\d+)\s+"
    r"(?P<seconds>\d+\.\d+) s\s+(?P<to_target>never|\d+\.\d+ s)\s+(?P<threads>\d+)$",
    re.MULTILINE,
)
FLOOR = re.compile(r"floor \(exact least-squares kernel\): relative error ([0-9.]+); target 1.1 × floor")
SCALING = re.compile(r"^\s+(\d+)\s+(\d+)\s+[0-9.]+ ms\s+[0-9.]+ s\s+[0-9.]+ s\s+\d+ it$", re.MULTILINE)


@pytest.fixture(scope="module")
def text():
    return printed_output("plot_comparison")


@pytest.fixture(scope="module")
def rows(text):
    found = {m["method"].strip(): m for m in ROW.finditer(text)}
    assert set(found) == set(METHODS), f"table rows: {sorted(found)}"
    return found


def test_floor_on_the_page_is_the_yardstick_floor(text):
    printed = float(FLOOR.search(text).group(1))
    x, y, k_true = default_problem()
    assert abs(printed - floor_error(x, y, k_true)) <= 5e-5


def test_table_is_consistent(rows, text):
    floor = float(FLOOR.search(text).group(1))
    cap = int(re.search(r"cap (\d+) iterations", text).group(1))
    assert cap == 5000, "the page in the built site runs at full size"
    for method, row in rows.items():
        final, ratio = float(row["final"]), float(row["ratio"])
        # both numbers are printed to four decimals: the floor's rounding alone moves the ratio by 0.4 %
        assert abs(final / floor - ratio) <= 6e-3 * ratio + 2e-3, method
        if row["to_target"] == "never":
            # stopped by its cap or the end of its schedule, above the target
            assert ratio > 1.1 or final > 1.1 * floor, method
            assert int(row["iterations"]) in (cap, 300), method
        else:
            assert final <= 1.1 * floor + 1e-4, method
        print(f"{method:<20} final {final:.4f} ({ratio:.3f}× floor), {row['iterations']} it, "
              f"{row['seconds']} s, to target: {row['to_target']}")
    assert float(rows["exact (G + FISTA)"]["ratio"]) == 1.0
    # the seed's projected gradient is the case the page is about: far from the floor at the cap
    assert rows["seed PGD"]["to_target"] == "never"


def test_speed_ratios_and_scaling_are_reported(text):
    assert re.search(r"exact route vs seed Adam: ≥? ?\d+× faster", text)
    assert re.search(r"exact route vs seed PGD: ≥? ?\d+× faster", text)
    sizes = {(int(a), int(b)) for a, b in SCALING.findall(text)}
    assert sizes == {(s, k) for s in (128, 256, 512) for k in (15, 25, 41)}, sizes
    assert "no size skipped" in text

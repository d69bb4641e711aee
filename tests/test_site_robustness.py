"""Checks of the robustness and model-mismatch pages in the built site (run ``make html`` first).

The numbers are read from the pages' printed output, so they are the ones the reader sees.
"""

from __future__ import annotations

import re

import pytest

from conftest import printed_output as printed

MAX_RATIO = 1.5  # each fix must bring the kernel error within 1.5× the matched-model floor
MISMATCH = re.compile(
    r"^(?P<name>[^\n:]+): error without fix (?P<without>[0-9.]+), with fix (?P<fix>[0-9.]+), "
    r"matched floor (?P<floor>[0-9.]+), ratio (?P<ratio>[0-9.]+)$",
    re.MULTILINE,
)
NOISE = re.compile(
    r"^noise σ = (?P<sigma>[0-9.]+): exact floor mean (?P<floor>[0-9.]+) .*?"
    r"Adam (?P<iters>\d+) iterations mean (?P<adam>[0-9.]+) .*over (?P<draws>\d+) draws$",
    re.MULTILINE,
)
CONTENT = re.compile(
    r"^smoothing (?P<width>[0-9.]+) px: .*exact floor mean (?P<floor>[0-9.]+) .*"
    r"solver residual at most (?P<residual>[0-9.eE+-]+)$",
    re.MULTILINE,
)


@pytest.fixture(scope="module")
def mismatches():
    found = [m.groupdict() for m in MISMATCH.finditer(printed("plot_model_mismatch"))]
    return {m["name"]: {k: float(v) for k, v in m.items() if k != "name"} for m in found}


def test_every_mismatch_is_reported(mismatches):
    names = " | ".join(mismatches)
    for expected in ("gain and offset", "sub-pixel shift", "kernel too small", "kernel too large"):
        assert any(name.startswith(expected) for name in mismatches), f"{expected!r} not in {names}"


def test_each_fix_comes_within_the_ratio_of_the_matched_floor(mismatches):
    for name, m in mismatches.items():
        assert m["ratio"] <= MAX_RATIO, f"{name}: ratio {m['ratio']} > {MAX_RATIO}"
        # the printed ratio is the printed errors' ratio, up to their rounding
        assert m["ratio"] == pytest.approx(m["fix"] / m["floor"], abs=0.01 + 0.002 / m["floor"]), name


def test_the_mismatches_that_hurt_are_repaired(mismatches):
    """Ignoring the gain, the shift or a too-small support costs far more than the floor."""
    for name, m in mismatches.items():
        if not name.startswith("kernel too large"):
            assert m["without"] > 3 * m["floor"], name
            assert m["fix"] < m["without"], name


@pytest.fixture(scope="module")
def noise_levels():
    rows = [m.groupdict() for m in NOISE.finditer(printed("plot_robustness"))]
    return sorted(({k: float(v) for k, v in r.items()} for r in rows), key=lambda r: r["sigma"])


def test_noise_levels_cover_the_requested_range(noise_levels):
    assert [r["sigma"] for r in noise_levels] == [0.0, 0.01, 0.02, 0.05, 0.1]
    assert all(r["draws"] >= 3 for r in noise_levels if r["sigma"] > 0), "several draws per level"


def test_floor_vanishes_without_noise_and_grows_in_proportion_to_it(noise_levels):
    floors = {r["sigma"]: r["floor"] for r in noise_levels}
    assert floors[0.0] < 1e-3
    assert all(a < b for a, b in zip(list(floors.values()), list(floors.values())[1:]))
    # proportional to σ within 30 %: the least-squares kernel is (nearly) linear in the data
    for sigma in (0.01, 0.05, 0.1):
        assert floors[sigma] / floors[0.02] == pytest.approx(sigma / 0.02, rel=0.3)


def test_fixed_budget_adam_is_compared_with_the_floor(noise_levels):
    for r in noise_levels:
        assert r["iters"] > 0
        assert r["adam"] < 1.0
    # without noise the floor is ~0 and the fixed budget shows its own optimisation error
    assert noise_levels[0]["adam"] > 10 * noise_levels[0]["floor"]


def test_smoother_image_gives_a_higher_floor():
    rows = [m.groupdict() for m in CONTENT.finditer(printed("plot_robustness"))]
    rows = sorted(({k: float(v) for k, v in r.items()} for r in rows), key=lambda r: r["width"])
    assert len(rows) >= 2 and rows[0]["width"] == 0.0
    floors = [r["floor"] for r in rows]
    assert all(a < b for a, b in zip(floors, floors[1:])), floors
    assert floors[-1] > 3 * floors[0], "the most smoothed image should calibrate much worse"
    assert all(r["residual"] <= 1e-8 for r in rows), "every solve must have converged"

"""The benchmark page's race logic, on its fast-mode run."""

from __future__ import annotations

from conftest import ROOT

PAGE = ROOT / "examples" / "calibration" / "plot_comparison.py"


def test_every_race_stops_at_the_target_or_its_cap(example_runs):
    ns = example_runs(PAGE).namespace
    target = ns["target"]
    for result in ns["results"][:-1]:
        errors = result["errors"]
        assert len(errors) == result["iterations"] == len(result["seconds"])
        assert all(e > target for e in errors[:-1]), result["method"]  # no earlier stop was missed
        if result["time_to_target"] is None:
            assert errors[-1] > target
            assert result["iterations"] in (ns["MAX_ITER"], ns["SCHEDULE"])
        else:
            assert errors[-1] <= target
        assert all(b >= a for a, b in zip(result["seconds"], result["seconds"][1:]))


def test_exact_row_is_the_floor(example_runs):
    ns = example_runs(PAGE).namespace
    exact = ns["results"][-1]
    assert exact["final"] == ns["floor"]
    assert exact["time_to_target"] == ns["time_exact"]


def test_scaling_covers_the_grid(example_runs):
    ns = example_runs(PAGE).namespace
    grid = {(s[0], s[1]) for s in ns["scaling"]}
    assert grid == {(s, k) for s in ns["SIZES"] for k in ns["KERNEL_SIZES"]}

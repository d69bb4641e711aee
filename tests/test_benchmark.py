"""The benchmark page's race logic and its batch, on its fast-mode run."""

from __future__ import annotations

from calibration_helpers import blur_quadratic, solve_simplex_ls
from conftest import ROOT

PAGE = ROOT / "examples" / "calibration" / "plot_comparison.py"


def test_every_method_ran_its_budget_and_its_time_to_target_is_the_first_crossing(example_runs):
    ns = example_runs(PAGE).namespace
    assert len(ns["runs"]) == 6
    for name, run in ns["runs"].items():
        errors, seconds = run["errors"], run["seconds"]
        assert len(errors) == len(seconds) == ns["BUDGET"], name
        assert all(b >= a for a, b in zip(seconds, seconds[1:])), name
        crossings = [t for t, e in zip(seconds, errors) if e <= ns["target"]]
        assert run["to target"] == (crossings[0] if crossings else None), name


def test_long_run_on_the_quadratic_follows_autograd(example_runs):
    ns = example_runs(PAGE).namespace
    assert len(ns["first"]) == 10
    assert max(ns["first"]) <= 1e-4  # float32 autograd against float64 quadratic


def test_results_table_has_every_method_and_the_floor(example_runs):
    ns = example_runs(PAGE).namespace
    results = ns["results"]
    assert set(ns["runs"]) | {"exact route", f"batch of {ns['N_PAIRS']}"} == set(results)
    assert results["exact route"]["error"] == ns["floor"]
    for name, run in ns["runs"].items():
        assert results[name]["× floor"] == run["errors"][-1] / ns["floor"]


def test_batch_kernels_are_each_pairs_own_minimiser(example_runs):
    ns = example_runs(PAGE).namespace
    xs, ys, k_batch = ns["xs"].cpu(), ns["ys"].cpu(), ns["k_batch"].cpu()
    for i in range(len(xs)):
        k_one = solve_simplex_ls(*blur_quadratic(xs[i : i + 1], ys[i : i + 1], ns["KERNEL_SIZE"]))
        assert ((k_batch[i] - k_one[0]).norm() / k_one.norm()).item() <= 1e-8

"""The quadratic-loss and exact-solver pages: their numbers against the tests' reference."""

from __future__ import annotations

import pytest
import torch

from conftest import ROOT
from reference import FAST_SIZE, default_problem, quadratic, solve_simplex_qp

SECTION = ROOT / "examples" / "calibration"


@pytest.fixture(scope="module")
def reference():
    x, y, _ = default_problem(FAST_SIZE)
    g, b = quadratic(x, y)
    return g, b, solve_simplex_qp(g, b)[0]


def test_quadratic_page_builds_the_reference_quadratic(example_runs, reference):
    page = example_runs(SECTION / "plot_quadratic_loss.py").namespace
    g_ref, b_ref, _ = reference
    torch.testing.assert_close(page["G"][0].cpu(), g_ref, rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(page["b"][0].cpu(), b_ref, rtol=1e-12, atol=1e-9)
    assert page["loss_gap"] <= 1e-10 and page["grad_gap"] <= 1e-10
    row = page["results"]["quadratic"]
    assert (
        row["loss vs deepinv"] == page["loss_gap"]
        and row["gradient vs autograd"] == page["grad_gap"]
    )


def test_exact_page_reaches_the_reference_minimiser(example_runs, reference):
    page = example_runs(SECTION / "plot_exact_solver.py").namespace
    _, _, k_ref = reference
    k_page = page["k_flat"][0].cpu()
    assert ((k_page - k_ref).norm() / k_ref.norm()).item() <= 1e-8
    assert page["results"]["exact minimiser"]["kernel error"] == pytest.approx(page["error"])

"""The exact-solver page: its solver against the tests' reference and against SciPy's SLSQP."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from conftest import ROOT
from reference import FAST_SIZE, default_problem, quadratic, solve_simplex_qp

PAGE = ROOT / "examples" / "calibration" / "plot_exact_solver.py"


@pytest.fixture(scope="module")
def page(example_runs):
    return example_runs(PAGE).namespace


def test_page_builds_the_same_quadratic_as_the_reference(page):
    x, y, _ = default_problem(FAST_SIZE)
    g_ref, b_ref = quadratic(x, y)
    torch.testing.assert_close(page["G"].cpu(), g_ref, rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(page["b"].cpu(), b_ref, rtol=1e-12, atol=1e-9)


def test_page_solution_matches_the_reference_solver(page):
    x, y, _ = default_problem(FAST_SIZE)
    k_ref, _ = solve_simplex_qp(*quadratic(x, y))
    k_page = page["k_flat"].cpu()
    assert ((k_page - k_ref).norm() / k_ref.norm()).item() <= 1e-8
    assert page["history"][-1][1] <= 1e-9


def test_page_checks_the_quadratic_against_autograd(page):
    assert page["loss_gap"] <= 1e-10
    assert page["grad_gap"] <= 1e-10


@pytest.mark.parametrize("seed", range(5))
def test_page_solver_agrees_with_slsqp_on_small_problems(page, seed):
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(5, 25)), 40
    a = rng.standard_normal((m, n))
    target = rng.standard_normal(m)
    g = torch.from_numpy(a.T @ a)
    b = torch.from_numpy(a.T @ target)
    k_page, _, _ = page["solve_exact"](g, b)
    result = minimize(
        lambda k: 0.5 * k @ a.T @ a @ k - (a.T @ target) @ k,
        np.full(n, 1.0 / n),
        jac=lambda k: a.T @ a @ k - a.T @ target,
        method="SLSQP",
        bounds=[(0, None)] * n,
        constraints=[{"type": "eq", "fun": lambda k: k.sum() - 1, "jac": lambda k: np.ones(n)}],
        options={"ftol": 1e-12, "maxiter": 1000},
    )
    assert result.success
    k_slsqp = torch.from_numpy(result.x)
    assert ((k_page - k_slsqp).norm() / k_slsqp.norm()).item() <= 1e-6

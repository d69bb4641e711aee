"""The optimiser recipes of the calibration pages hold on problems they were not tuned on.

The reduced suite runs each page's own recipe (loaded from the page's source, see ``recipes.py``)
on every problem of ``suite.PROBLEMS`` at 96×96 with 200 iterations, and compares its kernel
error with the exact least-squares floor of the same data.  The earlier recipes of the Adam and
AdamW pages (learning rate 0.1, the raw gradient) fail it.  ``tests/run_suite.py`` runs the same
at full size.
"""

from __future__ import annotations

import inspect

import pytest
import torch
from run_suite import L1_SLACK, relative_error

import suite
from conftest import ROOT
from recipes import active_methods, load_function

REDUCED_ITER = 200
METHODS = active_methods()
PAGES = ROOT / "examples" / "calibration"


@pytest.mark.parametrize("problem", suite.PROBLEMS, ids=lambda p: p.name)
@pytest.mark.parametrize("name", list(METHODS))
def test_recipe_holds_on_the_reduced_suite(name, problem):
    method = METHODS[name]
    x, y, k_true = suite.make_problem(problem, suite.REDUCED_SIZE)
    torch.manual_seed(0)
    k_hat = method(x, y, suite.KERNEL_SIZE, n_iter=REDUCED_ITER)
    assert k_hat.shape == k_true.shape
    # on the simplex to float32 rounding: a sum of 625 entries is good to about 625 × 2^-24 × 2
    assert torch.isclose(k_hat.sum(), torch.tensor(1.0), atol=1e-4) and (k_hat >= 0).all()
    ratio = relative_error(k_hat, k_true) / suite.floor(problem, suite.REDUCED_SIZE)
    if method.loss == "l1" and ratio > method.bound:  # is the L1 loss's own minimiser above it?
        l1_floor = suite.floor_l1(problem, suite.REDUCED_SIZE) / suite.floor(
            problem, suite.REDUCED_SIZE
        )
        assert ratio <= L1_SLACK * l1_floor, (
            f"{ratio:.2f}× the floor; the L1 minimiser {l1_floor:.2f}×"
        )
    else:
        assert ratio <= method.bound, f"{name}: {ratio:.2f}× the floor (bound {method.bound})"


@pytest.mark.parametrize("name", list(METHODS))
def test_recipe_takes_the_data_not_the_truth(name):
    parameters = list(inspect.signature(METHODS[name].recipe()).parameters)
    assert parameters[:4] == ["x", "y", "kernel_size", "n_iter"]
    assert not any("true" in p for p in parameters)


# -- tangent_gradient: what Adam and AdamW see -----------------------------------------------------
# the teaching copy and the module's (test_one_text checks that the texts agree)
TANGENT_PAGES = [PAGES / "plot_adam_projection.py", ROOT / "examples" / "calibration_helpers.py"]


@pytest.fixture(scope="module", params=TANGENT_PAGES, ids=lambda p: p.stem)
def tangent(request):
    return load_function(request.param, "tangent_gradient")


def random_kernels(batch=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    from calibration_helpers import project_simplex

    return project_simplex(torch.randn(batch, 1, 9, 9, generator=gen, dtype=torch.float64) * 0.2)


def test_tangent_gradient_sums_to_zero_on_the_support_and_only_pushes_zeros_up(tangent):
    k = random_kernels()
    g = torch.randn(k.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    t = tangent(g, k)
    support = k > 0
    assert 0 < support.sum() < support.numel()
    torch.testing.assert_close(
        (t * support).sum(dim=(1, 2, 3)), torch.zeros(3, dtype=torch.float64)
    )
    assert (
        t[~support] <= 0
    ).all()  # entries held at zero: only a push upwards (a negative gradient)
    centred = g - (g * support).sum((1, 2, 3), keepdim=True) / support.sum((1, 2, 3), keepdim=True)
    torch.testing.assert_close(t[support], centred[support])


def test_tangent_gradient_ignores_a_common_shift_and_treats_each_kernel_alone(tangent):
    k = random_kernels()
    g = torch.randn(k.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    shift = torch.tensor([5.0, -3.0, 0.1], dtype=torch.float64).view(3, 1, 1, 1)
    torch.testing.assert_close(tangent(g + shift, k), tangent(g, k))
    for i in range(3):
        torch.testing.assert_close(tangent(g[i : i + 1], k[i : i + 1]), tangent(g, k)[i : i + 1])


def test_adam_with_a_one_signed_gradient_stands_still_and_the_tangent_gradient_moves():
    """The old recipe's standstill in miniature: the projection undoes a step common to all."""
    from calibration_helpers import project_simplex

    tangent = load_function(TANGENT_PAGES[0], "tangent_gradient")
    k0 = project_simplex(torch.rand(1, 1, 5, 5, generator=torch.Generator().manual_seed(3)))
    g = -(0.5 + torch.rand(k0.shape, generator=torch.Generator().manual_seed(4)))  # all negative
    for use_tangent, moves in ((False, False), (True, True)):
        k = k0.clone().requires_grad_(True)
        optimizer = torch.optim.Adam([k], lr=0.1)
        for _ in range(5):
            k.grad = tangent(g, k.detach()) if use_tangent else g.clone()
            optimizer.step()
            with torch.no_grad():
                k.copy_(project_simplex(k))
        change = (k.detach() - k0).abs().max().item()
        assert (change > 1e-3) == moves, f"tangent={use_tangent}: largest change {change:.1e}"


# -- the projected-gradient recipe's curvature test ------------------------------------------------
def test_curvature_along_a_direction_is_the_quadratic_form():
    import deepinv as dinv

    from calibration_helpers import blur_quadratic

    curvature = load_function(PAGES / "plot_projected_gradient.py", "curvature_along")
    x, y, _ = suite.make_problem(suite.PROBLEMS[3], 48)
    G, _ = blur_quadratic(x, y, suite.KERNEL_SIZE)
    d = torch.randn(1, 1, 25, 25, generator=torch.Generator().manual_seed(5))
    physics = dinv.physics.Blur(filter=d.clone(), padding="valid")
    expected = (d.double().flatten() @ G[0] @ d.double().flatten()) / (
        y.numel() * d.double().pow(2).sum()
    )
    assert curvature(physics, x, d, y.numel()) == pytest.approx(expected.item(), rel=1e-4)


# -- the pages build the suite's problems exactly --------------------------------------------------
@pytest.mark.parametrize(
    "page, names, index",
    [
        ("plot_adam_projection.py", ("x_coffee", "y_coffee", "k_coffee"), 6),
        ("plot_adamw_l1.py", ("x", "y_other", "k_other"), 1),
    ],
)
def test_the_page_compares_the_recipes_on_a_suite_problem(page, names, index, example_runs):
    namespace = example_runs(PAGES / page).namespace
    from reference import FAST_SIZE

    expected = suite.make_problem(suite.PROBLEMS[index], FAST_SIZE)
    for name, tensor in zip(names, expected):
        torch.testing.assert_close(namespace[name].cpu(), tensor, rtol=0, atol=0)


@pytest.mark.parametrize(
    "page, rows",
    [
        ("plot_projected_gradient.py", ("safe step 1/L", "recipe")),
        (
            "plot_adam_projection.py",
            ("coffee, old recipe", "coffee, new recipe", "default, new recipe"),
        ),
        ("plot_adamw_l1.py", ("seed 7, old recipe", "seed 7, new recipe", "default, new recipe")),
    ],
)
def test_the_page_leaves_its_results(page, rows, example_runs):
    run = example_runs(PAGES / page)
    results = run.namespace["results"]
    assert tuple(results) == rows
    for row in results.values():
        assert row["ratio"] == pytest.approx(row["kernel error"] / row["floor"])
        assert row["time"].endswith(" s")
    assert rows[-1] in run.stdout.splitlines()[-1]

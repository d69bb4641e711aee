"""The yardstick itself: the quadratic model matches deepinv, and the solver is exact."""

from __future__ import annotations

import torch

import deepinv as dinv

from reference import (
    FAST_SIZE,
    default_problem,
    pg_residual,
    quadratic,
    shift_matrix,
    solve_simplex_qp,
    sum_zero_lipschitz,
)


def test_shift_matrix_reproduces_the_blur():
    x, y, _ = default_problem(FAST_SIZE)
    k = torch.rand(1, 1, 25, 25, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    blurred = dinv.physics.Blur(filter=k, padding="valid").A(x.double())
    torch.testing.assert_close(shift_matrix(x, 25).T @ k.reshape(-1), blurred.reshape(-1))


def test_quadratic_and_gradient_match_deepinv_autograd():
    x, y, _ = default_problem(FAST_SIZE)
    g, b = quadratic(x, y)
    k = torch.rand(1, 1, 25, 25, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    k = (k / k.sum()).requires_grad_(True)
    physics = dinv.physics.Blur(filter=k, padding="valid")
    loss = dinv.optim.L2()(x=x.double(), y=y.double(), physics=physics).sum()
    (grad,) = torch.autograd.grad(loss, k)
    kv = k.detach().reshape(-1)
    quad = 0.5 * kv @ g @ kv - b @ kv + 0.5 * y.double().pow(2).sum()
    torch.testing.assert_close(quad, loss.detach(), rtol=1e-10, atol=0)
    torch.testing.assert_close(g @ kv - b, grad.reshape(-1), rtol=1e-10, atol=1e-12)


def test_solver_reaches_its_residual_and_beats_perturbations():
    x, y, _ = default_problem(FAST_SIZE)
    g, b = quadratic(x, y)
    k, residual = solve_simplex_qp(g, b)
    assert residual <= 1e-9
    assert pg_residual(k, g, b, sum_zero_lipschitz(g)) <= 1e-9
    assert (k >= 0).all() and abs(k.sum().item() - 1) < 1e-12

    def f(v):
        return 0.5 * v @ g @ v - b @ v

    gen = torch.Generator().manual_seed(2)
    for _ in range(20):  # any other point of the simplex is worse
        other = torch.rand(k.shape, generator=gen, dtype=torch.float64)
        other = 0.99 * k + 0.01 * other / other.sum()
        assert f(other) >= f(k)

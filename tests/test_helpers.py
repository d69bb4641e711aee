"""The shared helpers, against independent references.

Every text of a helper is tested: the one in examples/calibration_helpers.py and the copy on the
page that teaches it (see test_one_text.py), each taken from its file without running the page.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch

import deepinv as dinv

from conftest import EXAMPLES, HELPERS, page_functions, parse_tables
from reference import (
    FAST_SIZE,
    default_problem,
    project_simplex_1d,
    quadratic,
    shift_matrix,
    solve_simplex_qp,
)
from test_one_text import TEACHING


def copies(name: str):
    """``pytest.param(function)`` for every text of the helper ``name``."""
    params = [pytest.param(page_functions(HELPERS)[name], id="calibration_helpers")]
    page = next((p for p in EXAMPLES if p.stem == TEACHING.get(name)), None)
    if page is not None and name in page_functions(page):
        params.append(pytest.param(page_functions(page)[name], id=page.stem))
    return params


@pytest.fixture(scope="module")
def fast_problem():
    return default_problem(FAST_SIZE)


# -- project_simplex -------------------------------------------------------------------------------
def reference_projection(v: torch.Tensor) -> torch.Tensor:
    flat = v.reshape(v.shape[0], -1).double()
    return torch.stack([project_simplex_1d(row) for row in flat]).reshape(v.shape)


@pytest.mark.parametrize("project", copies("project_simplex"))
class TestProjectSimplex:
    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    @pytest.mark.parametrize("shape", [(1, 1, 5, 5), (4, 1, 7, 7), (3, 10), (6, 2, 3, 3), (2, 625)])
    def test_matches_bisection_reference(self, project, shape, dtype):
        gen = torch.Generator().manual_seed(sum(shape))
        v = (3 * torch.randn(shape, generator=gen)).to(dtype)
        p = project(v)
        assert p.shape == v.shape and p.dtype == dtype
        tol = 1e-5 if dtype == torch.float32 else 1e-10
        torch.testing.assert_close(p.double(), reference_projection(v), atol=tol, rtol=0)

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    @pytest.mark.parametrize("magnitude", [1e4, 1e8, 1e16, 1e30])
    def test_large_magnitudes(self, project, dtype, magnitude):
        """Values whose cumulative sum swallows the 1 of the constraint (the old index error)."""
        gen = torch.Generator().manual_seed(int(np.log10(magnitude)))
        v = (magnitude * torch.randn(5, 49, generator=gen, dtype=torch.float64)).to(dtype)
        v[1] = v[1, 0]  # a row of equal entries
        v[2, :3] = v[2].max() - torch.tensor([0.0, 0.25, 0.5], dtype=dtype)  # ties near the top
        v[3] = torch.linspace(-magnitude, magnitude, 49, dtype=dtype)
        p = project(v)
        assert torch.isfinite(p).all() and (p >= 0).all()
        torch.testing.assert_close(
            p.sum(1).double(), torch.ones(5, dtype=torch.float64), atol=1e-5, rtol=0
        )
        tol = 1e-5 if dtype == torch.float32 else 1e-10
        torch.testing.assert_close(p.double(), reference_projection(v), atol=tol, rtol=0)

    def test_extreme_finite_values(self, project):
        for dtype in (torch.float32, torch.float64):
            big = torch.finfo(dtype).max
            v = torch.tensor([[big, -big, 0.0], [-big, -big, -big], [big, big, 1.0]], dtype=dtype)
            expected = torch.tensor(
                [[1.0, 0, 0], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0]], dtype=dtype
            )
            torch.testing.assert_close(project(v), expected)

    @pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
    def test_any_layout(self, project, dtype):
        gen = torch.Generator().manual_seed(7)
        v = torch.randn(5, 1, 9, 9, generator=gen, dtype=dtype).transpose(-1, -2)
        assert not v.is_contiguous()
        torch.testing.assert_close(project(v), project(v.contiguous()))
        strided = torch.randn(8, 20, generator=gen, dtype=dtype)[::2, ::2]
        torch.testing.assert_close(
            project(strided).double(), reference_projection(strided), atol=1e-5, rtol=0
        )
        expanded = torch.randn(1, 12, generator=gen, dtype=dtype).expand(3, 12)
        torch.testing.assert_close(project(expanded), project(expanded.contiguous()))

    def test_each_batch_element_gets_its_own_simplex(self, project):
        gen = torch.Generator().manual_seed(3)
        v = torch.randn(6, 1, 5, 5, generator=gen, dtype=torch.float64) * torch.arange(1, 7).view(
            6, 1, 1, 1
        )
        p = project(v)
        for b in range(6):
            torch.testing.assert_close(p[b : b + 1], project(v[b : b + 1]))

    def test_kkt(self, project):
        v = torch.randn(5, 49, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
        p = project(v)
        for row_v, row_p in zip(v, p):
            support = row_p > 0
            t = (row_v - row_p)[support]
            torch.testing.assert_close(t, t.mean().expand_as(t))
            assert (row_v[~support] <= t.mean() + 1e-12).all()

    def test_points_on_the_simplex_are_fixed(self, project):
        v = torch.rand(3, 30, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
        v = v / v.sum(dim=1, keepdim=True)
        torch.testing.assert_close(project(v), v)
        torch.testing.assert_close(
            project(torch.tensor([[0.0], [1.0]])), torch.tensor([[1.0], [1.0]])
        )

    @pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
    def test_non_finite_input_raises(self, project, bad):
        v = torch.zeros(2, 1, 3, 3)
        v[1, 0, 1, 1] = bad
        with pytest.raises(ValueError, match="NaN or infinite"):
            project(v)

    def test_bad_types_and_shapes_raise(self, project):
        with pytest.raises(TypeError, match="floating-point"):
            project(torch.ones(2, 3, dtype=torch.int64))
        with pytest.raises(TypeError, match="torch.Tensor"):
            project([[0.5, 0.5]])
        with pytest.raises(ValueError, match="shape"):
            project(torch.ones(4))


# -- blur_quadratic --------------------------------------------------------------------------------
@pytest.mark.parametrize("blur_quadratic", copies("blur_quadratic"))
class TestBlurQuadratic:
    def test_matches_explicit_crops_on_the_default_problem(self, blur_quadratic, fast_problem):
        x, y, _ = fast_problem
        G, b = blur_quadratic(x, y, 25)
        g_ref, b_ref = quadratic(x, y)
        assert G.shape == (1, 625, 625) and b.shape == (1, 625) and G.dtype == torch.float64
        torch.testing.assert_close(G[0], g_ref, rtol=1e-12, atol=1e-9)
        torch.testing.assert_close(b[0], b_ref, rtol=1e-12, atol=1e-9)

    @pytest.mark.parametrize(
        "shape, kernel_size", [((2, 1, 30, 41), 7), ((3, 2, 20, 17), 4), ((1, 3, 9, 9), 1)]
    )
    def test_batches_rectangles_and_even_kernels(self, blur_quadratic, shape, kernel_size):
        gen = torch.Generator().manual_seed(kernel_size)
        x = torch.rand(shape, generator=gen, dtype=torch.float64)
        y = torch.randn(
            *shape[:2],
            shape[2] - kernel_size + 1,
            shape[3] - kernel_size + 1,
            generator=gen,
            dtype=torch.float64,
        )
        G, b = blur_quadratic(x, y, kernel_size)
        for i in range(shape[0]):
            m = shift_matrix(x[i : i + 1], kernel_size)
            torch.testing.assert_close(G[i], m @ m.T, rtol=1e-11, atol=1e-11)
            torch.testing.assert_close(b[i], m @ y[i].reshape(-1), rtol=1e-11, atol=1e-11)

    def test_loss_and_gradient_match_deepinv(self, blur_quadratic, fast_problem):
        x, y, _ = fast_problem
        G, b = blur_quadratic(x, y, 25)
        k = torch.rand(
            1, 1, 25, 25, generator=torch.Generator().manual_seed(1), dtype=torch.float64
        )
        k = (k / k.sum()).requires_grad_(True)
        loss = dinv.optim.L2()(
            x=x.double(), y=y.double(), physics=dinv.physics.Blur(filter=k, padding="valid")
        ).sum()
        (grad,) = torch.autograd.grad(loss, k)
        kv = k.detach().reshape(-1)
        torch.testing.assert_close(
            0.5 * kv @ G[0] @ kv - b[0] @ kv + 0.5 * y.double().pow(2).sum(),
            loss.detach(),
            rtol=1e-10,
            atol=0,
        )
        torch.testing.assert_close(G[0] @ kv - b[0], grad.reshape(-1), rtol=1e-10, atol=1e-10)

    def test_bad_input_raises(self, blur_quadratic):
        x = torch.rand(1, 3, 20, 20)
        with pytest.raises(ValueError, match="valid blur"):
            blur_quadratic(x, torch.rand(1, 3, 20, 20), 5)
        with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
            blur_quadratic(x[0], torch.rand(3, 16, 16), 5)
        bad = x.clone()
        bad[0, 0, 0, 0] = float("nan")
        with pytest.raises(ValueError, match="NaN or infinite"):
            blur_quadratic(bad, torch.rand(1, 3, 16, 16), 5)


# -- solve_simplex_ls ------------------------------------------------------------------------------
@pytest.mark.parametrize("solve", copies("solve_simplex_ls"))
class TestSolveSimplexLS:
    def test_matches_the_reference_solver(self, solve, fast_problem):
        x, y, _ = fast_problem
        g, b = quadratic(x, y)
        k_ref, _ = solve_simplex_qp(g, b)
        k = solve(g[None], b[None])[0]
        assert ((k - k_ref).norm() / k_ref.norm()).item() <= 1e-8

    @pytest.mark.parametrize("seed", range(6))
    def test_agrees_with_the_reference_on_small_problems(self, solve, seed):
        """Random full-rank problems (a unique minimiser) and rank-deficient ones (many)."""
        gen = torch.Generator().manual_seed(seed)
        n = 3 + 4 * seed
        for m in (2 * n, n // 2 + 1):
            a = torch.randn(m, n, generator=gen, dtype=torch.float64)
            target = torch.randn(m, generator=gen, dtype=torch.float64)
            g, b = a.T @ a, a.T @ target
            k_ref, _ = solve_simplex_qp(g, b)
            k = solve(g[None], b[None])[0]

            def f(v, g=g, b=b):
                return (0.5 * v @ g @ v - b @ v).item()

            assert (k >= 0).all() and abs(k.sum().item() - 1) < 1e-12
            assert f(k) <= f(k_ref) + 1e-12 * max(1.0, abs(f(k_ref)))
            if m >= n:
                assert ((k - k_ref).norm() / k_ref.norm()).item() <= 1e-8

    def test_a_batch_mixing_easy_and_hard_problems_is_solved_element_by_element(self, solve):
        rng = np.random.default_rng(0)
        n = 30
        problems = []
        for condition in (1e0, 1e3, 1e6, 1e9):  # from a round bowl to a long, flat valley
            q, _ = np.linalg.qr(rng.standard_normal((n, n)))
            g = q @ np.diag(np.geomspace(1.0, 1.0 / condition, n)) @ q.T
            problems.append((g, rng.standard_normal(n)))
        G = torch.tensor(np.stack([g for g, _ in problems]))
        b = torch.tensor(np.stack([v for _, v in problems]))
        together = solve(G, b)
        for i in range(len(problems)):
            torch.testing.assert_close(
                together[i], solve(G[i : i + 1], b[i : i + 1])[0], atol=1e-12, rtol=0
            )

    def test_one_matrix_shared_by_every_problem(self, solve):
        gen = torch.Generator().manual_seed(8)
        a = torch.randn(60, 20, generator=gen, dtype=torch.float64)
        G, b = (a.T @ a)[None], torch.randn(5, 20, generator=gen, dtype=torch.float64) * 20
        shared = solve(G, b)
        torch.testing.assert_close(shared, solve(G.expand(5, -1, -1), b), atol=1e-12, rtol=0)

    def test_result_is_on_the_simplex_and_optimal(self, solve):
        gen = torch.Generator().manual_seed(4)
        a = torch.randn(3, 40, 12, generator=gen, dtype=torch.float64)
        G, b = a.transpose(1, 2) @ a, torch.randn(3, 12, generator=gen, dtype=torch.float64) * 10
        k = solve(G, b)
        assert (k >= 0).all()
        torch.testing.assert_close(k.sum(1), torch.ones(3, dtype=torch.float64))
        grad = torch.einsum("bij,bj->bi", G, k) - b
        for g, kk in zip(grad, k):  # KKT: equal gradient on the support, no smaller one off it
            on = g[kk > 0]
            assert (on.max() - on.min()) <= 1e-9 * g.abs().max()
            assert g[kk == 0].min() >= on.mean() - 1e-9 * g.abs().max() if (kk == 0).any() else True

    def test_singular_problems_get_a_minimiser(self, solve):
        k = solve(
            torch.zeros(1, 4, 4, dtype=torch.float64),
            torch.tensor([[1.0, 2.0, 2.0, 0.0]], dtype=torch.float64),
        )
        assert k[0, 1:3].sum().item() == pytest.approx(1.0) and k[0, [0, 3]].abs().max() == 0
        ones = torch.ones(1, 5, 5, dtype=torch.float64)
        k = solve(ones, torch.zeros(1, 5, dtype=torch.float64))  # every point is a minimiser
        assert (k >= 0).all() and k.sum().item() == pytest.approx(1.0)

    def test_bad_input_raises(self, solve):
        with pytest.raises(ValueError, match=r"\(B, n, n\)"):
            solve(torch.eye(3), torch.ones(3))
        with pytest.raises(ValueError, match=r"\(B, n, n\)"):
            solve(torch.eye(3).expand(2, 3, 3), torch.ones(3, 3))
        with pytest.raises(ValueError, match="NaN or infinite"):
            solve(torch.eye(3)[None] * float("nan"), torch.ones(1, 3))
        with pytest.raises(TypeError, match="floating-point"):
            solve(torch.eye(3, dtype=torch.int64)[None], torch.ones(1, 3, dtype=torch.int64))


# -- print_table -----------------------------------------------------------------------------------
def test_print_table_round_trips_through_the_site_tests_parser():
    table = {
        "Adam": {"kernel error": 0.014912, "× floor": 1.0, "time": f"{12.3:6.2f} s"},
        "exact": {"iterations": 46},
    }
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        page_functions(HELPERS)["print_table"](table)
    (parsed,) = parse_tables(out.getvalue())
    assert parsed == {
        "Adam": {"kernel error": 0.01491, "× floor": 1.0, "time": "12.30 s"},
        "exact": {"iterations": 46.0},
    }

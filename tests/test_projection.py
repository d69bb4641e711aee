"""The simplex projection that the examples teach, against an independent reference.

Every example that defines ``project_simplex`` is tested: the function is taken from the
namespace that running the example (in fast mode) leaves behind.
"""

from __future__ import annotations

import pytest
import torch

from conftest import EXAMPLES
from reference import project_simplex_1d

DEFINING = [p for p in EXAMPLES if "def project_simplex(" in p.read_text()]


def test_some_example_defines_the_projection():
    assert len(DEFINING) >= 3, "the PGD, Adam and AdamW pages each define project_simplex"


@pytest.fixture(scope="module", params=DEFINING, ids=lambda p: p.stem)
def project(request, example_runs):
    return example_runs(request.param).namespace["project_simplex"]


def reference(v: torch.Tensor) -> torch.Tensor:
    flat = v.reshape(v.shape[0], -1).double()
    return torch.stack([project_simplex_1d(row) for row in flat]).reshape(v.shape)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(1, 1, 5, 5), (4, 1, 7, 7), (3, 10), (6, 2, 3, 3)])
def test_matches_bisection_reference(project, shape, dtype):
    gen = torch.Generator().manual_seed(sum(shape))
    v = (3 * torch.randn(shape, generator=gen)).to(dtype)
    p = project(v)
    assert p.shape == v.shape and p.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(p.double(), reference(v), atol=tol, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_non_contiguous_batch(project, dtype):
    gen = torch.Generator().manual_seed(7)
    base = torch.randn(5, 1, 9, 9, generator=gen, dtype=dtype)
    v = base.transpose(-1, -2)
    assert not v.is_contiguous()
    torch.testing.assert_close(project(v), project(v.contiguous()))
    strided = torch.randn(8, 20, generator=gen, dtype=dtype)[::2, ::2]  # (4, 10), non-contiguous
    assert not strided.is_contiguous()
    torch.testing.assert_close(project(strided).double(), reference(strided), atol=1e-5, rtol=0)


def test_each_batch_element_gets_its_own_simplex(project):
    gen = torch.Generator().manual_seed(3)
    v = torch.randn(6, 1, 5, 5, generator=gen, dtype=torch.float64) * torch.arange(1, 7).view(6, 1, 1, 1)
    p = project(v)
    for b in range(6):
        torch.testing.assert_close(p[b : b + 1], project(v[b : b + 1]))


def test_sum_nonnegativity_and_kkt(project):
    gen = torch.Generator().manual_seed(11)
    v = torch.randn(5, 49, generator=gen, dtype=torch.float64)
    p = project(v)
    assert (p >= 0).all()
    torch.testing.assert_close(p.sum(dim=1), torch.ones(5, dtype=torch.float64))
    # KKT: p = max(v - t, 0) for one threshold t per row; v - p = t on the support, v <= t off it
    for row_v, row_p in zip(v, p):
        support = row_p > 0
        t = (row_v - row_p)[support]
        torch.testing.assert_close(t, t.mean().expand_as(t))
        assert (row_v[~support] <= t.mean() + 1e-12).all()


def test_two_single_entry_kernels(project):
    torch.testing.assert_close(project(torch.tensor([[0.0], [1.0]])), torch.tensor([[1.0], [1.0]]))


def test_points_on_the_simplex_are_fixed(project):
    gen = torch.Generator().manual_seed(5)
    v = torch.rand(3, 30, generator=gen, dtype=torch.float64)
    v = v / v.sum(dim=1, keepdim=True)
    torch.testing.assert_close(project(v), v)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_input_raises(project, bad):
    v = torch.zeros(2, 1, 3, 3)
    v[1, 0, 1, 1] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        project(v)


def test_bad_types_and_shapes_raise(project):
    with pytest.raises(TypeError, match="floating-point"):
        project(torch.ones(2, 3, dtype=torch.int64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        project([[0.5, 0.5]])
    with pytest.raises(ValueError, match="shape"):
        project(torch.ones(4))

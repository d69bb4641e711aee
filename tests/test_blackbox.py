"""The black-box pages: the sum-to-one least-squares solver, black boxes whose filter we set, and
every real black box reproduced by its fitted model (from a fast-mode run of each page)."""

from __future__ import annotations

import pytest
import torch

import deepinv as dinv

from conftest import ROOT

IDENTIFY = ROOT / "examples" / "blackbox" / "plot_identify_resizers.py"
SUPER_RESOLVE = ROOT / "examples" / "blackbox" / "plot_why_the_operator_matters.py"


@pytest.fixture(scope="module")
def page(example_runs):
    return example_runs(IDENTIFY).namespace


def brute_force(A, y):
    """argmin ||A h - y|| subject to sum(h) = 1, by least squares on the plane h = e0 + N z."""
    n = A.shape[1]
    N = torch.eye(n, dtype=A.dtype)[:, 1:] - torch.eye(n, dtype=A.dtype)[:, :1]  # sum-zero basis
    e0 = torch.eye(n, dtype=A.dtype)[0]
    return e0 + N @ torch.linalg.lstsq(A @ N, y - A @ e0).solution


def test_solver_matches_brute_force_least_squares(page):
    generator = torch.Generator().manual_seed(0)
    A = torch.randn(30, 6, generator=generator, dtype=torch.float64)
    Y = torch.randn(3, 30, generator=generator, dtype=torch.float64)
    h = page["solve_sum_to_one"](A.T @ A, Y @ A)  # three right-hand sides, one factorisation
    for i in range(3):
        torch.testing.assert_close(h[i], brute_force(A, Y[i]), rtol=0, atol=1e-10)
    torch.testing.assert_close(h.sum(1), torch.ones(3, dtype=torch.float64), rtol=0, atol=1e-12)


def test_solver_keeps_negative_taps(page):
    """No projection: a filter with a negative lobe comes back exactly from exact data."""
    generator = torch.Generator().manual_seed(1)
    A = torch.randn(40, 5, generator=generator, dtype=torch.float64)
    h_true = torch.tensor([-0.1, 0.3, 0.7, 0.3, -0.2], dtype=torch.float64)
    h = page["solve_sum_to_one"](A.T @ A, A.T @ (A @ h_true))
    torch.testing.assert_close(h, h_true, rtol=0, atol=1e-10)


def synthetic_outputs(page, x, h, f):
    """What a black box that applies the K×K filter h and keeps every f-th sample returns: only
    the outputs whose window fits are meaningful (the others are left at 0, as the fit ignores
    them)."""
    K = 8 * f + 1
    windows = x.unfold(-2, K, f).unfold(-2, K, f)
    y = torch.zeros(x.shape[0], x.shape[1] // f, x.shape[2] // f, dtype=x.dtype)
    n, m = windows.shape[1:3]
    y[:, 4 : 4 + n, 4 : 4 + m] = (windows * h).sum((-2, -1))
    return y


@pytest.mark.parametrize("f", [2, 3])
def test_fitted_filter_of_a_synthetic_black_box(page, f):
    """A separable filter off centre with negative lobes, and a non-separable one, set by us."""
    x = page["x_train"].cpu()
    t = torch.arange(-4 * f, 4 * f + 1, dtype=torch.float64)
    u = torch.exp(-0.5 * ((t - 0.7) / f) ** 2) * torch.cos(1.3 * (t - 0.7) / f)
    u, v = u / u.sum(), torch.roll(u, 1) / u.sum()
    generator = torch.Generator().manual_seed(f)
    h2 = torch.outer(v, u) + 0.01 * torch.randn(
        8 * f + 1, 8 * f + 1, generator=generator, dtype=torch.float64
    )
    h2 = h2 / h2.sum()
    ys = [synthetic_outputs(page, x, torch.outer(v, u), f), synthetic_outputs(page, x, h2, f)]
    separable, general = page["fit_free_form"](x, ys, f, [False, False])
    torch.testing.assert_close(separable["u"], u, rtol=0, atol=1e-8)
    torch.testing.assert_close(separable["v"], v, rtol=0, atol=1e-8)
    torch.testing.assert_close(general["h"], h2, rtol=0, atol=1e-8)
    assert abs(separable["beta"].item()) < 1e-10
    assert separable["support"].tolist() == [-4 * f, 4 * f]


def test_synthetic_8bit_black_box_within_two_percent(page):
    """The same separable filter, output rounded to 8 bits with an offset of +0.3 levels."""
    f, x = 2, page["x_train"].cpu()
    t = torch.arange(-4 * f, 4 * f + 1, dtype=torch.float64)
    u = torch.where(t.abs() <= 3, 1 - (t - 0.5).abs() / 4, torch.zeros_like(t)).clamp_min(0)
    u = u / u.sum()
    y = synthetic_outputs(page, x, torch.outer(u, u), f)
    y = torch.round(y * 255 + 0.3) / 255
    (fit,) = page["fit_free_form"](x, [y], f, [True])
    error = (torch.outer(fit["v"], fit["u"]) - torch.outer(u, u)).norm() / torch.outer(u, u).norm()
    assert error < 0.02
    assert abs(255 * fit["beta"].item() - 0.3) < 0.05


def test_every_black_box_is_reproduced_by_its_model(page):
    """Held-out residual of the chosen model: at most 1.5 rounding levels for 8-bit outputs,
    1e-4 relative for float ones (fast mode: smaller photographs)."""
    for name, choice in page["choice"].items():
        bound = 1.5 if page["black_boxes"][name][2] else 1e-4
        assert choice["R"] <= bound, (name, choice["R"])
    assert len(page["choice"]) == 51


def test_documented_kernels_match_deepinv_filter_tensors(page):
    functional = dinv.physics.functional
    for f in (2, 3, 4):
        for kind, h in (
            ("gaussian", functional.gaussian_blur(sigma=(f, f))),
            ("bilinear", functional.bilinear_filter(f)),
            ("bicubic", functional.bicubic_filter(f)),
            ("sinc", functional.sinc_filter(f, length=4 * f)),
        ):
            ours = page["documented_kernel"](f"deepinv {kind} x{f}").cpu()
            ours = ours[ours.abs() > 0]
            torch.testing.assert_close(torch.outer(ours, ours), h[0, 0].double(), rtol=0, atol=1e-6)


def test_documented_kernels_reproduce_the_float_black_boxes(page):
    """Our reading of the sources, as a model, gives every float black box's output."""
    resample, x = page["resample"], page["x_test"]
    for name, (_, f, is_8bit) in page["black_boxes"].items():
        if is_8bit:
            continue
        d = page["documented_kernel"](name)[None]
        prediction = resample(x, d, d, f, torch.zeros(1, dtype=d.dtype), False)[0]
        n = prediction.shape[-1]
        y = page["y_test"][name][:, 4 : 4 + n, 4 : 4 + n]
        assert ((prediction - y).norm() / y.norm()).item() < 1e-5, name


def test_box_and_triangle_of_width_one_give_the_same_taps(page):
    t = torch.arange(-3, 4, dtype=torch.float64)[None]
    p = torch.tensor([[0.5, 1.0, 0.0]], dtype=torch.float64)
    support = torch.tensor([[-3.0, 3.0]], dtype=torch.float64)
    box = page["family_kernel"]("box", p, t, support)
    triangle = page["family_kernel"]("triangle", p, t, support)
    torch.testing.assert_close(box, triangle)
    torch.testing.assert_close(box[0, 3:5], torch.tensor([0.5, 0.5], dtype=torch.float64))


def test_identified_operator_reproduces_pillow_best(example_runs):
    namespace = example_runs(SUPER_RESOLVE).namespace
    residuals = namespace["residuals"]  # rms over the outputs whose window fits, in rounding levels
    identified = next(iter(residuals))
    assert identified == "identified (Keys)"
    assert residuals[identified] < 2.0  # the 8-bit floor of rounding twice, not a model error
    assert all(
        residuals[identified] < value for name, value in residuals.items() if name != identified
    )
    # deepinv's operator built from the taps is the same operator as the direct correlation
    op, x = namespace["physics"][identified], namespace["x"]
    direct = torch.nn.functional.conv2d(
        x.transpose(0, 1),
        torch.outer(*[namespace["operators"][identified].float()] * 2)[None, None],
        stride=4,
    ).transpose(0, 1)
    n = direct.shape[-1]
    torch.testing.assert_close(op(x)[..., 4 : 4 + n, 4 : 4 + n], direct, rtol=0, atol=1e-5)

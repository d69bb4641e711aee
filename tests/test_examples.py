"""Every example, run in fast mode as sphinx-gallery runs it (parametrised over examples/**/plot_*.py)."""

from __future__ import annotations

import math
import re

import pytest
import torch

from conftest import EXAMPLES, run_example
from reference import FAST_SIZE, default_problem

FINAL = re.compile(r"^final relative kernel error: ([0-9.eE+-]+|nan|inf)$", re.MULTILINE)
INITIAL = re.compile(r"^initial kernel: relative error ([0-9.eE+-]+)", re.MULTILINE)
# wall times, and ratios of wall times, differ between runs (and so does their padding in tables)
TIMING = re.compile(r" *\d+(\.\d+)? (m?s|it)\b| *\d+× faster")


def calibrates(path):
    return "final relative kernel error" in path.read_text()


def test_gallery_is_not_empty():
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_and_draws(path, example_runs):
    run = example_runs(path)
    assert run.n_figures >= 1, "an example page should draw at least one figure"
    assert run.stdout.strip(), "an example page should print what it measured"
    assert not run.warnings, f"warnings leaked into the page: {run.warnings}"


@pytest.mark.parametrize("path", [p for p in EXAMPLES if calibrates(p)], ids=lambda p: p.stem)
def test_calibration_improves_on_the_initial_kernel(path, example_runs):
    out = example_runs(path).stdout
    finals, initials = FINAL.findall(out), INITIAL.findall(out)
    assert len(finals) == 1 and len(initials) == 1, out
    final, initial = float(finals[0]), float(initials[0])
    assert math.isfinite(final)
    assert final < initial


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_is_reproducible(path, example_runs):
    first = TIMING.sub("<time>", example_runs(path).stdout)
    second = TIMING.sub("<time>", run_example(path).stdout)
    assert first == second


DEFAULT_PROBLEM_PAGES = [p for p in EXAMPLES if p.parent.name == "calibration"]


@pytest.mark.parametrize("path", DEFAULT_PROBLEM_PAGES, ids=lambda p: p.stem)
def test_example_uses_the_default_problem(path, example_runs):
    """The pages' data are exactly the data the yardstick in tests/reference.py solves."""
    namespace = example_runs(path).namespace
    x, y, k_true = default_problem(FAST_SIZE)
    torch.testing.assert_close(namespace["x"].cpu(), x, rtol=0, atol=0)
    torch.testing.assert_close(namespace["y"].cpu(), y, rtol=0, atol=0)
    torch.testing.assert_close(namespace["k_true"].cpu(), k_true, rtol=0, atol=0)


def test_no_example_imports_project_modules():
    for path in EXAMPLES:
        text = path.read_text()
        assert not re.search(r"^\s*(from|import)\s+(examples|tests|docs|conf|reference)\b", text, re.M), path

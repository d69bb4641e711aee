"""Every example, run once in fast mode as sphinx-gallery runs it (parametrised over the pages).

What a run prints is kept in _build/fast-runs/<page>.txt: the notebook test
(tests/test_site_notebooks.py) runs the page's downloaded notebook in fast mode in another process
and must print the same, timings aside.  So each page runs twice in ``make test``, and the second
run is its reproducibility check.
"""

from __future__ import annotations

import math
import re

import pytest
import torch

from conftest import EXAMPLES, FAST_RUNS, parse_tables
from reference import FAST_SIZE, default_problem


def test_gallery_is_not_empty():
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_runs_draws_and_reports_its_results(path, example_runs):
    run = example_runs(path)
    FAST_RUNS.mkdir(parents=True, exist_ok=True)
    (FAST_RUNS / f"{path.stem}.txt").write_text(run.stdout, encoding="utf-8")
    assert run.n_figures >= 1, "an example page should draw at least one figure"
    assert not run.warnings, f"warnings leaked into the page: {run.warnings}"
    results = run.namespace.get("results")
    assert isinstance(results, dict) and results, "a page ends with its `results` table"
    for row, columns in results.items():
        assert isinstance(columns, dict) and columns, f"results[{row!r}] is not a row of columns"
        for column, value in columns.items():
            assert isinstance(value, int | float | str), f"results[{row!r}][{column!r}] = {value!r}"
            assert not isinstance(value, float) or math.isfinite(value), (row, column, value)
    tables = parse_tables(run.stdout)
    assert tables and set(tables[-1]) == {str(row) for row in results}, (
        "the last printed table must be print_table(results)"
    )


DEFAULT_PROBLEM_PAGES = [p for p in EXAMPLES if p.parent.name == "calibration"]


@pytest.mark.parametrize("path", DEFAULT_PROBLEM_PAGES, ids=lambda p: p.stem)
def test_example_uses_the_default_problem(path, example_runs):
    """The pages' data are exactly the data the yardstick in tests/reference.py solves."""
    namespace = example_runs(path).namespace
    x, y, k_true = default_problem(FAST_SIZE)
    torch.testing.assert_close(namespace["x"].cpu(), x, rtol=0, atol=0)
    torch.testing.assert_close(namespace["y"].cpu(), y, rtol=0, atol=0)
    torch.testing.assert_close(namespace["k_true"].cpu(), k_true, rtol=0, atol=0)


def test_examples_import_no_project_module_but_the_helpers():
    project = r"examples|tests|docs|conf|conftest|reference|suite|standalone|notebooks"
    for path in EXAMPLES:
        text = path.read_text(encoding="utf-8")
        assert not re.search(rf"^\s*(from|import)\s+({project})\b", text, re.M), path
        assert not re.search(r"^\s*import\s+calibration_helpers", text, re.M), (
            f"{path}: import helpers by name (from calibration_helpers import ...)"
        )

"""The strict build fails when it should: a broken example, a Sphinx warning in a page.

Each case builds a reduced copy of the project in a temporary folder with ``make html`` (the real
strict command, with the real .venv by symlink): the hand-written pages, every section's
README.rst, and one tiny example written here instead of the gallery's (so that a build takes
seconds).  A baseline build of the same tree must succeed, so the failures below are the
injected ones.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT

TINY = '''"""
A tiny page
===========

Prints a number and draws a line.
"""

# %%
import matplotlib.pyplot as plt

print("tiny page", 1 + 1)
plt.plot([0, 1], [0, 1])
plt.show()
'''
FAILURE = 'raise RuntimeError("injected failure in the tiny page")\n'


def reduced_tree(dest: Path) -> Path:
    """Copy what a build needs (no .venv, no _build, no generated gallery) plus one tiny example."""
    for name in ("conf.py", "Makefile", "requirements.txt", "examples/calibration_helpers.py"):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, dest / name)  # copy2 keeps the mtime: make does not reinstall
    generated = shutil.ignore_patterns("auto_examples", "sg_execution_times.rst", "__pycache__")
    shutil.copytree(ROOT / "docs", dest / "docs", ignore=generated)
    helpers = dest / "docs" / "helpers.rst"  # it names the teaching pages, absent here
    text = re.sub(r":ref:`(sphx_glr_[^`]+)`", r"``\1``", helpers.read_text(encoding="utf-8"))
    helpers.write_text(text, encoding="utf-8")
    for readme in (ROOT / "examples").rglob("README.rst"):
        target = dest / readme.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(readme, target)
    first_section = sorted(p.parent for p in (dest / "examples").glob("*/README.rst"))[0]
    (first_section / "plot_tiny_page.py").write_text(TINY)
    (dest / ".venv").symlink_to(ROOT / ".venv")
    inventories = ROOT / "_build" / "api-inventories"
    if inventories.is_dir():  # a cache keyed by the installed versions: reuse it
        shutil.copytree(inventories, dest / "_build" / "api-inventories")
    return first_section / "plot_tiny_page.py"


def build(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "-C", str(tree), "html"], capture_output=True, text=True, timeout=300
    )


@pytest.fixture()
def tree(tmp_path):
    return tmp_path, reduced_tree(tmp_path)


def test_reduced_tree_builds(tree):
    root, _ = tree
    result = build(root)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (root / "_build" / "html" / "index.html").is_file()


def test_broken_example_fails_the_build_and_shows_its_traceback(tree):
    root, example = tree
    example.write_text(TINY + "\n# %%\n" + FAILURE)
    result = build(root)
    log = result.stdout + result.stderr
    assert result.returncode != 0, "a raising example must fail the build"
    assert "Traceback" in log and "plot_tiny_page.py" in log
    assert "RuntimeError: injected failure in the tiny page" in log


def test_sphinx_warning_in_a_page_fails_the_build(tree):
    root, _ = tree
    (root / "docs" / "broken_page.rst").write_text(
        ":orphan:\n\nA broken page\n=============\n\nSee :class:`deepinv.physics.NoSuchOperator`.\n"
    )
    result = build(root)
    log = result.stdout + result.stderr
    assert result.returncode != 0, "a Sphinx warning must fail the strict build"
    assert "broken_page.rst" in log and "deepinv.physics.NoSuchOperator" in log

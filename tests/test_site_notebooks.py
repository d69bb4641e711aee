"""The notebooks the site offers for download run, offline, in a fresh kernel.

Each ``.ipynb`` of _build/html/_downloads is copied into a temporary folder and executed there with
nbclient in a new ipykernel, in fast mode (``CALIBRATION_GALLERY_FAST=1`` in the kernel's
environment), inside a network namespace whose only interface is the loopback (``unshare -rn``,
or ``unshare -n`` as root; the kernel talks to nbclient over 127.0.0.1), so a notebook that reaches
for the network fails.  Where no namespace can be made (macOS, a locked-down kernel) the notebooks
run with the network and the test says so; in CI that is a failure.  The first cell must install
nothing (every package imports here).  The Markdown must read well outside Sphinx: no raw roles or
footnote markup, the math macros defined in the notebook.

This run is also the gallery's reproducibility check: what the notebook prints must be what the
page printed in its fast-mode smoke run (tests/test_examples.py, kept in _build/fast-runs), timings
aside.  Two runs of a page in two processes, the same numbers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EXAMPLES, FAST_ENV, FAST_RUNS, IN_CI, ROOT, SITE, TIMING, offline_prefix

NOTEBOOKS = sorted((SITE / "_downloads").rglob("*.ipynb")) if (SITE / "_downloads").is_dir() else []
RAW_RST = re.compile(
    r":(?:py:)?(?:class|func|meth|attr|obj|mod|exc|data|ref|doc|math):`|\[#\w+\]_|^\.\. \[#", re.M
)
TIMEOUT = 300  # seconds per notebook, fast mode needs far less


def text(item) -> str:
    """A cell's source or an output's text (nbformat stores either as a string or a list)."""
    value = item.get("source", item.get("text", ""))
    return "".join(value) if isinstance(value, list) else value


def test_every_example_has_a_downloadable_notebook():
    names = {p.stem for p in NOTEBOOKS}
    assert names >= {p.stem for p in EXAMPLES}, "build the site first: make html"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_markdown_reads_without_sphinx(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    cells = notebook["cells"]
    assert cells[0]["cell_type"] == "code" and "find_spec" in text(cells[0]), "install cell first"
    macros = cells[1]
    assert macros["cell_type"] == "markdown" and macros["metadata"]["jupyter"]["source_hidden"]
    for macro in ("forw", "noise", "simplex", "argmin"):
        assert f"\\newcommand{{\\{macro}}}" in text(macros)
    markdown = "\n".join(text(c) for c in cells if c["cell_type"] == "markdown")
    assert not RAW_RST.findall(markdown), RAW_RST.findall(markdown)
    assert re.search(r"\]\(https://(deepinv\.org|docs\.pytorch\.org)/", markdown), "no API links"


OFFLINE = offline_prefix()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_offline_in_a_fresh_kernel(path, tmp_path):
    if OFFLINE is None:
        message = (
            "no network namespace (unshare -rn / -n failed): the notebook runs with the network"
        )
        assert not IN_CI, message
        print(f"\nNOTE: {message}; test_site.py scans the built pages for remote loads instead")
    notebook = tmp_path / path.name
    shutil.copy(path, notebook)
    runner = [sys.executable, str(Path(__file__).resolve()), str(notebook)]
    command = [*(OFFLINE or []), *runner]
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT + 60
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    executed = json.loads(notebook.read_text(encoding="utf-8"))
    code = [c for c in executed["cells"] if c["cell_type"] == "code"]
    assert all(c["execution_count"] for c in code), "a cell did not run"
    first = "".join(text(o) for o in code[0]["outputs"])
    assert "installing" not in first, f"the first cell installed something: {first}"
    outputs = [o for c in code for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure"
    assert any(o.get("name") == "stdout" for o in outputs), "nothing printed"
    printed = "".join(text(o) for c in code[1:] for o in c["outputs"] if o.get("name") == "stdout")
    smoke = FAST_RUNS / f"{path.stem}.txt"
    assert smoke.is_file(), f"{smoke} missing: run the smoke tests first (make test-fast)"
    assert TIMING.sub("<time>", printed) == TIMING.sub(
        "<time>", smoke.read_text(encoding="utf-8")
    ), "the notebook printed other numbers than the page's smoke run: not reproducible"
    print(f"\n{path.name}: {len(code)} code cells ran offline in {result.stdout.strip()}")


def run(notebook: Path) -> None:
    """Execute ``notebook`` in place with a fresh kernel, its folder as working directory."""
    import time

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    env = dict(os.environ, **{FAST_ENV: "1"})
    env.pop("MPLBACKEND", None)  # the notebook chooses: %matplotlib inline
    client = NotebookClient(
        nb,
        timeout=TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(notebook.parent)}},
    )
    start = time.perf_counter()
    client.execute(env=env)
    nbformat.write(nb, notebook)
    print(f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    run(Path(sys.argv[1]))

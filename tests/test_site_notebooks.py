"""The notebooks the site offers for download run, offline, each in a new kernel.

Each ``.ipynb`` of _build/html/_downloads is copied into a temporary folder and executed there with
nbclient in a new ipykernel process, in fast mode (``CALIBRATION_GALLERY_FAST=1`` in the kernel's
environment), inside a network namespace whose only interface is the loopback (``unshare -rn``,
or ``unshare -n`` as root; the kernel talks to nbclient over 127.0.0.1), so a notebook that reaches
for the network fails.  Where no namespace can be made (macOS, a locked-down kernel) the notebooks
run with the network and the test says so; in CI that is a failure.  The first cell must install
nothing (every package imports here).  The Markdown must read well outside Sphinx: no raw roles or
footnote markup, the math macros defined in the notebook.

One runner (tests/notebook_kernels.py) serves every notebook: it imports torch and deepinv once
and forks each kernel from there, so that 22 notebooks do not pay 22 times for the imports.  Every
kernel is still its own process with an empty namespace and a launcher's ``sys.path``.

This run is also the gallery's reproducibility check: what the notebook prints must be what the
page printed in its fast-mode smoke run (tests/test_examples.py, kept in _build/fast-runs), timings
aside.  Two runs of a page in two processes, the same numbers.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import EXAMPLES, FAST_ENV, FAST_RUNS, IN_CI, SITE, TIMING, offline_prefix
from notebook_kernels import RESULT, TIMEOUT

NOTEBOOKS = sorted((SITE / "_downloads").rglob("*.ipynb")) if (SITE / "_downloads").is_dir() else []
RAW_RST = re.compile(
    r":(?:py:)?(?:class|func|meth|attr|obj|mod|exc|data|ref|doc|math):`|\[#\w+\]_|^\.\. \[#", re.M
)


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
RUNNER = Path(__file__).resolve().parent / "notebook_kernels.py"


class NotebookRunner:
    """tests/notebook_kernels.py, started once (offline where possible): one notebook per call."""

    def __init__(self, log: Path):
        self.log = log.open("w")
        command = [*(OFFLINE or []), sys.executable, str(RUNNER), "serve"]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            env=dict(os.environ, **{FAST_ENV: "1"}),  # the kernels inherit fast mode
        )
        self.answers: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:  # kernels may print here too: keep the answers only
            if line.startswith(RESULT):
                self.answers.put(line[len(RESULT) :])
        self.answers.put("")  # the runner has exited

    def run(self, notebook: Path) -> dict:
        self.process.stdin.write(f"{notebook}\n")
        self.process.stdin.flush()
        try:
            answer = self.answers.get(timeout=TIMEOUT + 60)
        except queue.Empty:
            answer = ""
        if not answer:
            self.log.flush()
            log = Path(self.log.name).read_text()[-3000:]
            return {"error": f"the notebook runner stopped or hung: {log}"}
        return json.loads(answer)

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)
        self.log.close()


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    if OFFLINE is None:
        message = (
            "no network namespace (unshare -rn / -n failed): the notebooks run with the network"
        )
        assert not IN_CI, message
        print(f"\nNOTE: {message}; test_site.py scans the built pages for remote loads instead")
    runner = NotebookRunner(tmp_path_factory.mktemp("notebook-runner") / "runner.log")
    yield runner
    runner.close()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_offline_in_a_new_kernel(path, tmp_path, runner):
    notebook = tmp_path / path.name
    shutil.copy(path, notebook)
    answer = runner.run(notebook)
    assert "error" not in answer, answer["error"]
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
    print(f"\n{path.name}: {len(code)} code cells ran offline in {answer['seconds']} s")


def test_the_runner_gives_each_notebook_a_new_kernel(tmp_path, runner):
    """What one notebook defines, imports or puts on sys.path is gone in the next one; a notebook
    that reaches for a module of this project fails, as it would on a reader's machine."""
    import nbformat

    def notebook(name, *sources):
        path = tmp_path / f"{name}.ipynb"
        cells = [nbformat.v4.new_code_cell(source) for source in sources]
        nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
        return path

    first = notebook("first", "import sys\nsys.path.insert(0, '/nowhere')\nleftover = 1")
    assert "error" not in runner.run(first)
    second = notebook(
        "second",
        "import os, sys\nprint('leftover' in dir(), '/nowhere' in sys.path, os.getcwd())",
    )
    assert "error" not in runner.run(second)
    outputs = json.loads(second.read_text())["cells"][0]["outputs"]
    assert text(outputs[0]).split() == ["False", "False", str(tmp_path)]
    failing = {
        "import calibration_helpers": "No module named 'calibration_helpers'",
        "torch.zeros(1)": "name 'torch' is not defined",
        "raise ValueError('boom')": "ValueError: boom",
    }
    for source, expected in failing.items():
        answer = runner.run(notebook("failing", source))
        assert expected in answer.get("error", ""), answer

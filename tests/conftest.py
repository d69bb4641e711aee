"""Shared fixtures: where things are, and how to run an example as sphinx-gallery runs it."""

from __future__ import annotations

import contextlib
import io
import os
import re
import runpy
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("agg")
import matplotlib.pyplot as plt
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").rglob("plot_*.py"))
# The built site the test_site*.py files check (CALIBRATION_SITE=_build/html-pattern: another).
SITE = (ROOT / os.environ.get("CALIBRATION_SITE", "_build/html")).resolve()


# -- Where the tests run: offline namespaces and a browser -----------------------------------------
IN_CI = os.environ.get("CI", "").lower() == "true"


def offline_prefix() -> list[str] | None:
    """A command prefix that runs a command with no network but the loopback, or None.

    ``unshare -rn`` makes an unprivileged user namespace with its own network (Linux, where the
    kernel allows it); ``unshare -n`` is the same for root.  Inside, ``lo`` is brought up so that
    local servers (a notebook kernel) still answer.  None where neither works (macOS, locked-down
    kernels): the callers then fall back to scanning the built HTML, say so, and refuse in CI.
    """
    import shutil
    import subprocess

    if not (shutil.which("unshare") and shutil.which("ip")):
        return None
    for flags in ("-rn", "-n"):
        probe = ["unshare", flags, "sh", "-c", "ip link set lo up"]
        if subprocess.run(probe, capture_output=True).returncode == 0:
            return ["unshare", flags, "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
    return None


def find_chromium() -> str | None:
    """The Chromium or Chrome to drive: $CHROMIUM, else the usual install places."""
    import shutil

    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    for path in (
        "/Applications/Chromium.app/Contents/MacOS/Chromium",
        "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
    ):
        if Path(path).is_file():
            return path
    return None


# -- Reading the built site (shared by the tests/test_site*.py files) ------------------------------
GALLERY = SITE / "auto_examples"


def soup(path: Path):
    """The parsed HTML of ``path``."""
    from bs4 import BeautifulSoup

    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def example_html(stem: str) -> Path:
    """The built page of the example ``stem`` (exactly one, wherever its section is)."""
    matches = list(GALLERY.rglob(f"{stem}.html"))
    assert len(matches) == 1, (
        f"{stem}.html not found (or not unique) under {GALLERY}: build the site first"
    )
    return matches[0]


def output_blocks(page: Path) -> list[str]:
    """The printed output blocks of a built example page."""
    return [div.get_text() for div in soup(page).select("div.sphx-glr-script-out pre")]


def printed_output(stem: str) -> str:
    """Everything the example ``stem`` printed in the build, as one text."""
    return "\n".join(output_blocks(example_html(stem)))


def parse_tables(text: str) -> list[dict[str, dict[str, object]]]:
    """Every table ``print_table`` printed in ``text``, as ``{row: {column: value}}``.

    A table is a header line, a line of dashes (one run per column) and its rows; numbers come
    back as floats, other cells as strings.
    """
    lines = text.splitlines()
    tables = []
    for i, line in enumerate(lines):
        if i == 0 or not re.fullmatch(r"-+(  -+)*", line):
            continue
        spans = [m.span() for m in re.finditer(r"-+", line)]
        header = lines[i - 1]

        def cells(row: str, spans=spans) -> list[str]:
            row = row.ljust(spans[-1][1])
            return [row[a:b].strip() for a, b in spans]

        columns = cells(header)[1:]
        table = {}
        for row in lines[i + 1 :]:
            if (
                not row.strip()
                or len(row) > spans[-1][1]
                or row[spans[0][1] : spans[0][1] + 2].strip()
            ):
                break
            name, *values = cells(row)
            if not any(values):
                break
            table[name] = {c: _number(v) for c, v in zip(columns, values) if v != ""}
        tables.append(table)
    return tables


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return text


def printed_table(stem: str, index: int = -1) -> dict[str, dict[str, object]]:
    """The ``index``-th table the example ``stem`` printed in the build (the last: its results)."""
    tables = parse_tables(printed_output(stem))
    assert tables, f"{stem} printed no table"
    return tables[index]


FAST_ENV = "CALIBRATION_GALLERY_FAST"
FAST_RUNS = ROOT / "_build" / "fast-runs"  # what each page printed in its fast-mode smoke run
# wall times, and ratios of wall times, differ between runs (and so does their padding in tables)
# what depends on the machine's speed: times, and the benchmark's speed-ups and throughput
TIMING = re.compile(
    r"(?m) *\d+(\.\d+)? (m?s|it)\b| *\d+× (faster|the exact route)| *(≥ )?\d+×$"
    r"| *\d+(\.\d+)? kernels per second"
)
HELPERS = ROOT / "examples" / "calibration_helpers.py"


def page_functions(path: Path) -> dict:
    """The top-level functions of ``path``, defined without running the rest of the file.

    Only the file's imports and its ``def`` statements are executed, so this is cheap and works for
    any page; a function that needs another global of its page fails when called.
    """
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    keep = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef))]
    namespace: dict = {"__name__": f"functions_of_{path.stem}"}
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(path), "exec"), namespace)
    return {n.name: namespace[n.name] for n in keep if isinstance(n, ast.FunctionDef)}


sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "examples"))  # calibration_helpers, which the pages import


class ExampleRun:
    """What one fast-mode run of an example left behind."""

    def __init__(self, namespace, stdout, n_figures, warnings):
        self.namespace = namespace
        self.stdout = stdout
        self.n_figures = n_figures
        self.warnings = warnings


def run_example(path: Path) -> ExampleRun:
    """Run ``path`` like sphinx-gallery: agg backend, ``__main__``, its folder as cwd, fast mode."""
    old_cwd, old_env = os.getcwd(), {k: os.environ.get(k) for k in (FAST_ENV, "TQDM_DISABLE")}
    os.environ[FAST_ENV] = "1"
    os.environ["TQDM_DISABLE"] = "1"
    plt.close("all")
    shown = []
    original_show = plt.show
    plt.show = lambda *a, **k: shown.append(len(plt.get_fignums()))
    buffer = io.StringIO()
    try:
        os.chdir(path.parent)
        with contextlib.redirect_stdout(buffer), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            namespace = runpy.run_path(str(path), run_name="__main__")
        n_figures = len(plt.get_fignums())
    finally:
        plt.show = original_show
        plt.close("all")
        os.chdir(old_cwd)
        for key, value in old_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return ExampleRun(namespace, buffer.getvalue(), n_figures, [str(w.message) for w in caught])


_RUNS: dict[Path, ExampleRun] = {}


@pytest.fixture(scope="session")
def example_runs():
    """Cache of fast-mode runs, so that several tests can inspect one run."""

    def get(path: Path) -> ExampleRun:
        if path not in _RUNS:
            _RUNS[path] = run_example(path)
        return _RUNS[path]

    return get

"""Downloads that run on their own, from pages that share one text of their helpers.

The pages import the helpers they share from ``examples/calibration_helpers.py`` (one text per
helper, for the whole gallery).  A reader who downloads one page must not need that file, so the
build copies the helpers each page imports into its downloads:

* ``inline_python(source, helpers)`` replaces ``from calibration_helpers import a, b`` in a page's
  source by the helpers' own imports and the text of ``a``, ``b`` and of every helper they call;
* ``inline_notebook(notebook, helpers)`` does the same in a notebook: the import line leaves its
  cell, and a Markdown cell and a code cell with the helpers come right before that cell.

``docs/_ext/notebooks.py`` applies both to the files sphinx-gallery generates (never to the
sources) and to the zips.  As an extension, this module also makes a change of the helpers
re-execute every page: sphinx-gallery only compares each page's own checksum.
"""

from __future__ import annotations

import ast
import copy
import hashlib
from pathlib import Path

MODULE = "calibration_helpers"
SOURCE = Path(__file__).resolve().parents[2] / "examples" / f"{MODULE}.py"
STAMP = f".{MODULE}.md5"  # in each gallery folder: the checksum of the helpers its pages ran with
PYTHON_NOTE = (
    f"# The helpers this page shares with the gallery ({MODULE}.py), copied here so that\n"
    "# this file runs on its own.\n"
)
NOTEBOOK_NOTE = (
    f"The helpers this page shares with the rest of the gallery (`{MODULE}.py`), copied here "
    "so that this notebook runs on its own."
)


class InliningError(ValueError):
    """A page imports the helpers in a way this step cannot copy into its downloads."""


def _helper_imports(source: str) -> list[ast.ImportFrom]:
    nodes = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == MODULE for a in node.names):
            raise InliningError(f"use 'from {MODULE} import name, ...', not 'import {MODULE}'")
        if isinstance(node, ast.ImportFrom) and node.module == MODULE:
            if any(alias.name == "*" or alias.asname for alias in node.names):
                raise InliningError(
                    f"import helpers by name, without '*' or 'as': line {node.lineno}"
                )
            nodes.append(node)
    return nodes


def helper_block(names: list[str], helpers: str) -> str:
    """The imports and the text of the helpers ``names`` and of the helpers they call."""
    tree = ast.parse(helpers)
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    missing = [name for name in names if name not in functions]
    if missing:
        raise InliningError(f"{MODULE}.py defines no {', '.join(missing)}")
    needed, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            used = {n.id for n in ast.walk(functions[name]) if isinstance(n, ast.Name)}
            todo.extend(used & functions.keys())
    chosen = [
        node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in needed
    ]
    used = {n.id for node in chosen for n in ast.walk(node) if isinstance(n, ast.Name)}
    lines = helpers.splitlines()
    imports = []
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            node = copy.deepcopy(node)
            node.names = [a for a in node.names if (a.asname or a.name).split(".")[0] in used]
            if node.names:
                imports.append(ast.unparse(node))
    texts = []
    for node in chosen:
        start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
        texts.append("\n".join(lines[start - 1 : node.end_lineno]))
    head = "\n".join(imports)
    return (head + "\n\n\n" if head else "") + "\n\n\n".join(texts) + "\n"


def inline_python(source: str, helpers: str) -> str:
    """``source`` with its helper imports replaced by the helpers themselves."""
    nodes = _helper_imports(source)
    if not nodes:
        return source
    lines = source.splitlines(keepends=True)
    for node in sorted(nodes, key=lambda n: n.lineno, reverse=True):
        block = helper_block([a.name for a in node.names], helpers)
        indent = " " * node.col_offset
        text = "".join(
            indent + line if line.strip() else line
            for line in (PYTHON_NOTE + block).splitlines(True)
        )
        lines[node.lineno - 1 : node.end_lineno] = [text]
    return "".join(lines)


def _cell_text(cell: dict) -> str:
    source = cell["source"]
    return "".join(source) if isinstance(source, list) else source


def inline_notebook(notebook: dict, helpers: str) -> dict:
    """``notebook`` with a helpers cell before each cell that imports from the helpers."""
    cells = []
    for cell in notebook["cells"]:
        text = _cell_text(cell)
        nodes = []
        if cell["cell_type"] == "code" and MODULE in text:
            # IPython magics (%matplotlib inline) are not Python: blank them, keep the line numbers
            python = "\n".join(
                "" if ln.lstrip().startswith(("%", "!")) else ln for ln in text.split("\n")
            )
            nodes = _helper_imports(python)
        if nodes:
            names = [alias.name for node in nodes for alias in node.names]
            lines = text.splitlines(keepends=True)
            for node in sorted(nodes, key=lambda n: n.lineno, reverse=True):
                del lines[node.lineno - 1 : node.end_lineno]
            cell = dict(cell, source="".join(lines).strip("\n"))
            cells.append(
                {
                    "cell_type": "markdown",
                    "metadata": {"tags": ["helpers"]},
                    "source": NOTEBOOK_NOTE,
                }
            )
            cells.append(
                {
                    "cell_type": "code",
                    "execution_count": None,
                    "metadata": {"collapsed": False, "tags": ["helpers"]},
                    "outputs": [],
                    "source": helper_block(names, helpers).rstrip("\n"),
                }
            )
        cells.append(cell)
    return dict(notebook, cells=cells)


# -- Re-execute every page when the helpers change -------------------------------------------------
def _rerun_on_helper_change(app):
    digest = hashlib.md5(SOURCE.read_bytes()).hexdigest()
    for gallery_dir in app.config.sphinx_gallery_conf["gallery_dirs"]:
        gallery = Path(app.srcdir) / gallery_dir
        stamp = gallery / STAMP
        if stamp.is_file() and stamp.read_text() == digest:
            continue
        for md5 in gallery.rglob("*.py.md5"):  # sphinx-gallery's record of each page's last run
            md5.unlink()
        gallery.mkdir(parents=True, exist_ok=True)
        stamp.write_text(digest)


def setup(app):
    # before sphinx-gallery decides which pages to run (builder-inited, priority 500)
    app.connect("builder-inited", _rerun_on_helper_change, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}

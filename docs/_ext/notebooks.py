"""Make the gallery's generated notebooks runnable and readable on their own.

sphinx-gallery writes one ``.ipynb`` per example (and zips of them) into the gallery folder as the
build starts.  Right after it, this extension rewrites those *generated* files (never the example
sources):

* the first cell installs what the notebook imports, only if it is missing: when every package
  imports it does nothing, so the notebook also runs offline.  Pinned versions come from
  ``requirements.txt``;
* Sphinx roles (``:class:`deepinv.physics.Blur```) become Markdown links to the official
  documentation (the same pages as the site's links, from ``api_inventory``), other roles
  become code text;
* auto-numbered footnotes (``[#Name]_`` and ``.. [#Name] ...``) become numbered links to a
  reference list;
* the math macros of ``mathjax3_config`` are defined in a hidden Markdown cell
  (``$\\newcommand...$``), which Jupyter's MathJax keeps for the whole notebook;
* the helpers a page imports from ``calibration_helpers`` are copied into its ``.py`` and
  ``.ipynb`` downloads (``docs/_ext/standalone.py``), so each download runs on its own;
* the files inside the per-example and all-examples zips are replaced by the rewritten ones.

Each rewrite is idempotent and leaves a file untouched when its content would not change, so a
no-change rebuild stays a no-op.
"""

from __future__ import annotations

import ast
import importlib.metadata
import io
import json
import re
import sys
import zipfile
from pathlib import Path

import standalone

MARKER = "calibration_gallery"  # notebook metadata key set once a notebook is rewritten
ADDED_TAGS = ("install-missing", "math-macros")  # tags of the cells this extension adds
ROLE = re.compile(r":(?:py:)?(\w+):`(~?)([^`<]*?)(?:\s*<([^`>]+)>)?`")
FOOTNOTE_REF = re.compile(r"\[#([\w-]+)\]_")
FOOTNOTE_DEF = re.compile(r"^\.\. \[#([\w-]+)\][ \t]*(.*(?:\n[ \t]+\S.*)*)", re.MULTILINE)


# -- Markdown --------------------------------------------------------------------------------------
def role_to_markdown(match: re.Match, urls: dict[str, str]) -> str:
    role, tilde, text, target = match.groups()
    target = (target or text).strip()
    text = text.strip() if match.group(4) else target
    if tilde:
        text = text.rsplit(".", 1)[-1]
    if role == "math":
        return f"${match.group(3)}$"
    url = urls.get(target.lstrip("~"))
    return f"[`{text}`]({url})" if url else f"`{text}`"


def footnote_numbers(cells: list[dict]) -> dict[str, int]:
    """Number the footnotes as docutils does: in the order of their definitions."""
    numbers: dict[str, int] = {}
    for cell in cells:
        if cell["cell_type"] == "markdown":
            for name in FOOTNOTE_DEF.findall(_text(cell)):
                numbers.setdefault(name[0], len(numbers) + 1)
    return numbers


def markdown(text: str, urls: dict[str, str], numbers: dict[str, int]) -> str:
    def definition(match: re.Match) -> str:
        name, body = match.group(1), " ".join(match.group(2).split())
        number = numbers.get(name, "?")
        return f'{number}. <a id="ref-{name.lower()}"></a>{body}\n'

    text = FOOTNOTE_DEF.sub(definition, text)
    text = FOOTNOTE_REF.sub(
        lambda m: f"[[{numbers.get(m.group(1), '?')}]](#ref-{m.group(1).lower()})", text
    )
    return ROLE.sub(lambda m: role_to_markdown(m, urls), text)


def macro_cell(macros: dict) -> dict:
    """A hidden Markdown cell defining the MathJax macros of conf.py for the whole notebook."""
    lines = []
    for name, value in macros.items():
        if isinstance(value, (list, tuple)):
            body, nargs = value[0], value[1]
            lines.append(f"\\newcommand{{\\{name}}}[{nargs}]{{{body}}}")
        else:
            lines.append(f"\\newcommand{{\\{name}}}{{{value}}}")
    source = "$" + " ".join(lines) + "$" if lines else ""
    return {
        "cell_type": "markdown",
        "metadata": {"jupyter": {"source_hidden": True}, "tags": ["math-macros"]},
        "source": source,
    }


# -- The install cell ------------------------------------------------------------------------------
def requirement_pins(requirements: Path) -> dict[str, str]:
    """``name -> requirement`` for every line of requirements.txt (``deepinv==0.5.0``)."""
    pins = {}
    if requirements.is_file():
        for line in requirements.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                name = re.split(r"[<>=!~\[ ;]", line, maxsplit=1)[0]
                pins[_normal(name)] = line
    return pins


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_modules(code: str) -> list[str]:
    """Top-level modules imported by ``code`` that are not in the standard library."""
    found = []
    code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".", 1)[0]
            if top not in sys.stdlib_module_names and top not in found:
                found.append(top)
    return found


def install_cell(modules: list[str], pins: dict[str, str]) -> dict:
    distributions = importlib.metadata.packages_distributions()
    needed = {}
    for module in modules:
        dist = (distributions.get(module) or [module])[0]
        needed[module] = pins.get(_normal(dist), dist)
    listing = "".join(f"    {module!r}: {req!r},\n" for module, req in needed.items())
    source = (
        "# Install what this notebook imports, only where it is missing: when every package\n"
        "# imports, this cell does nothing (and needs no network).\n"
        "import importlib.util\n"
        "import subprocess\n"
        "import sys\n"
        "\n"
        f"_requirements = {{\n{listing}}}\n"
        "_missing = [req for module, req in _requirements.items() "
        "if importlib.util.find_spec(module) is None]\n"
        "if _missing:\n"
        '    print("installing", *_missing)\n'
        '    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", '
        "*_missing])\n"
        "\n"
        "%matplotlib inline"
    )
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {"collapsed": False, "tags": ["install-missing"]},
        "outputs": [],
        "source": source,
    }


# -- Files -----------------------------------------------------------------------------------------
def _text(cell: dict) -> str:
    source = cell["source"]
    return "".join(source) if isinstance(source, list) else source


def rewrite_notebook(
    notebook: dict, urls: dict[str, str], macros: dict, pins: dict[str, str]
) -> dict:
    cells = notebook["cells"]
    # a notebook rewritten by an earlier build: drop the cells added then, and redo (idempotent)
    while cells and set(cells[0].get("metadata", {}).get("tags", [])) & set(ADDED_TAGS):
        cells = cells[1:]
    # sphinx-gallery's first_notebook_cell (``%matplotlib inline``) is replaced by the install cell
    if (
        cells
        and cells[0]["cell_type"] == "code"
        and _text(cells[0]).strip() == "%matplotlib inline"
    ):
        cells = cells[1:]
    code = "\n".join(_text(c) for c in cells if c["cell_type"] == "code")
    numbers = footnote_numbers(cells)
    for cell in cells:
        if cell["cell_type"] == "markdown":
            cell["source"] = markdown(_text(cell), urls, numbers)
    head = [install_cell(imported_modules(code), pins)]
    if macros:
        head.append(macro_cell(macros))
    notebook["cells"] = head + cells
    notebook.setdefault("metadata", {})[MARKER] = {"rewritten": True}
    return notebook


def _write_if_changed(path: Path, data: bytes) -> bool:
    if path.is_file() and path.read_bytes() == data:
        return False
    path.write_bytes(data)
    return True


def rewrite_zip(path: Path, files: dict[str, bytes]) -> None:
    """Replace each file in the zip ``path`` by the rewritten file of the same name, if any."""
    with zipfile.ZipFile(path) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    changed = False
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in members:
            new = files.get(Path(info.filename).name, data)
            changed |= new != data
            archive.writestr(info, new)
    if changed:
        path.write_bytes(out.getvalue())


def inventory_urls(env) -> dict[str, str]:
    """``name -> URL`` of every object in the intersphinx inventories Sphinx has loaded."""
    from sphinx.ext.intersphinx import InventoryAdapter

    urls = {}
    for objtype, objects in sorted(InventoryAdapter(env).main_inventory.items()):
        if objtype.startswith("py:"):
            for name, item in objects.items():
                urls.setdefault(name, getattr(item, "uri", None) or item[2])
    return urls


def process_gallery(gallery: Path, urls: dict[str, str], macros: dict, pins: dict[str, str]) -> int:
    helpers = standalone.SOURCE.read_text(encoding="utf-8")
    rewritten: dict[str, bytes] = {}
    for path in sorted(gallery.rglob("*.py")):
        data = standalone.inline_python(path.read_text(encoding="utf-8"), helpers).encode("utf-8")
        _write_if_changed(path, data)
        rewritten[path.name] = data
    for path in sorted(gallery.rglob("*.ipynb")):
        notebook = standalone.inline_notebook(json.loads(path.read_text(encoding="utf-8")), helpers)
        notebook = rewrite_notebook(notebook, urls, macros, pins)
        data = (json.dumps(notebook, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
        _write_if_changed(path, data)
        rewritten[path.name] = data
    for path in sorted(gallery.rglob("*.zip")):
        rewrite_zip(path, rewritten)
    return len(rewritten)


def _on_builder_inited(app):
    conf = app.config.sphinx_gallery_conf
    src = Path(app.srcdir)
    urls = inventory_urls(app.env)  # loaded by intersphinx at builder-inited, priority 500
    macros = (app.config.mathjax3_config or {}).get("tex", {}).get("macros", {})
    pins = requirement_pins(Path(app.confdir) / "requirements.txt")
    for gallery_dir in conf["gallery_dirs"]:
        gallery = (src / gallery_dir).resolve()
        if gallery.is_dir():
            process_gallery(gallery, urls, macros, pins)


def setup(app):
    app.setup_extension("sphinx_gallery.gen_gallery")
    app.setup_extension("api_inventory")
    app.setup_extension("standalone")
    # after sphinx-gallery has written the notebooks (builder-inited, priority 500)
    app.connect("builder-inited", _on_builder_inited, priority=800)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}

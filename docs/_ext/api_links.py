"""Resolve ``:class:``/``:func:``/... roles to deepinv and torch without fetching any inventory.

A role such as ``:class:`deepinv.physics.Blur``` becomes a link to the page of that object in
the official documentation.  The target is checked first: the name must import from the installed
package, otherwise the reference stays unresolved and the strict (nitpicky) build fails on it.
"""

import importlib

from docutils import nodes

URL_PATTERNS = {
    "deepinv": "https://deepinv.org/api/stubs/{name}.html",
    "torch": "https://docs.pytorch.org/docs/stable/generated/{name}.html",
}


def resolve_object(name):
    """Import the object ``name`` (``package.module.attr...``); return None if it does not exist."""
    parts = name.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attr in parts[split:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def url_for(name):
    package = name.split(".", 1)[0]
    if package not in URL_PATTERNS or resolve_object(name) is None:
        return None
    return URL_PATTERNS[package].format(name=name)


def _on_missing_reference(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    url = url_for(node.get("reftarget", ""))
    if url is None:
        return None
    reference = nodes.reference("", "", internal=False, refuri=url, reftitle=node["reftarget"])
    reference += contnode
    return reference


def setup(app):
    app.connect("missing-reference", _on_missing_reference)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}

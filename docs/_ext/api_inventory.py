"""Link deepinv and torch names to their official documentation, with no network.

Sphinx's intersphinx (and sphinx-gallery's code links, which read intersphinx's inventories)
normally download ``objects.inv`` from the documented project.  This extension writes those
inventories itself, from the *installed* deepinv and torch, into ``_build/api-inventories/``,
and points ``intersphinx_mapping`` at the local files:

* every public class, function and method reachable from an imported ``deepinv``/``torch``
  module gets an entry, under each public path that reaches it (``deepinv.physics.Blur`` and
  ``deepinv.physics.blur.Blur``), all pointing at the page of its documented name:
  ``https://deepinv.org/api/stubs/<name>.html`` and
  ``https://docs.pytorch.org/docs/stable/generated/<name>.html`` (a few torch names live on
  other pages, see ``TORCH_PAGES``);
* the walk runs in a fresh interpreter (``python api_inventory.py OUTDIR``), once per installed
  version of deepinv and torch; later builds reuse the files.

Roles (``:class:``, ``:func:``, ...) resolve through the same inventories; a role whose type
does not match (``:func:`` on a class) still resolves to the right page.  A name that is not in
the inventories stays unresolved, and the strict (nitpicky) build fails on it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
import json
import os
import subprocess
import sys
import types
from pathlib import Path

PACKAGES = ("deepinv", "torch")
BASE_URLS = {
    "deepinv": "https://deepinv.org/",
    "torch": "https://docs.pytorch.org/docs/stable/",
}
#: torch names documented on a page of their own rather than under ``generated/``.
TORCH_PAGES = {
    "torch.Tensor": "tensors.html#torch.Tensor",
    "torch.Size": "size.html#torch.Size",
    "torch.dtype": "tensor_attributes.html#torch.dtype",
    "torch.device": "tensor_attributes.html#torch.device",
    "torch.layout": "tensor_attributes.html#torch.layout",
    "torch.memory_format": "tensor_attributes.html#torch.memory_format",
}
#: instances documented with their type (``torch.float64`` on the ``torch.dtype`` entry).
TORCH_INSTANCE_TYPES = ("torch.dtype", "torch.layout", "torch.memory_format")
INVENTORY_DIR = "api-inventories"


# -- The walk (runs in a subprocess) ---------------------------------------------------------------
def _public(path: str) -> bool:
    return not any(part.startswith("_") for part in path.split("."))


def _root(path: str | None) -> str | None:
    return path.split(".", 1)[0] if path else None


def _lookup(path: str):
    """The object at dotted ``path``, by attribute access from its top-level package, or None."""
    parts = path.split(".")
    obj = sys.modules.get(parts[0])
    try:
        for attr in parts[1:]:
            obj = getattr(obj, attr)
    except Exception:
        return None
    return obj


def _is_package(path: str) -> bool:
    return hasattr(sys.modules.get(path), "__path__")


def documented_name(obj, found_as: str) -> str:
    """The dotted name under which ``obj`` has its page in its package's documentation.

    deepinv documents an object in the innermost *package* defining it
    (``deepinv.physics.blur.Blur`` -> ``deepinv.physics.Blur``,
    ``deepinv.loss.metric.distortion.PSNR`` -> ``deepinv.loss.metric.PSNR``);
    torch under the shortest public module exporting it (``torch.optim.adam.Adam`` ->
    ``torch.optim.Adam``).  Objects without a usable ``__module__``/``__qualname__`` (torch's
    C functions, shared by ``torch.conv2d`` and ``torch.nn.functional.conv2d``) keep the path
    they were found under.
    """
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if (
        not (isinstance(module, str) and isinstance(qualname, str))
        or "." in qualname
        or "<" in qualname
    ):
        return found_as
    if _root(module) not in PACKAGES or _root(module) != _root(found_as):
        return found_as
    parts = module.split(".")
    if _root(module) == "torch":
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if _public(prefix) and _lookup(f"{prefix}.{qualname}") is obj:
                return f"{prefix}.{qualname}"
        return found_as
    # deepinv: climb from the defining module up to the first public package that exports it
    best = None
    for i in range(len(parts), 0, -1):
        prefix = ".".join(parts[:i])
        if _lookup(f"{prefix}.{qualname}") is not obj:
            break
        if _public(prefix):
            best = f"{prefix}.{qualname}"
            if _is_package(prefix):
                break
    return best or found_as


def page_of(name: str, kind: str) -> str:
    """URL of the page of the documented ``name`` (relative to its package's base URL)."""
    if _root(name) == "deepinv":
        return f"api/stubs/{name}.html"
    if name in TORCH_PAGES:
        return TORCH_PAGES[name]
    return f"generated/{name}.html"


def member_url(owner: str, owner_url: str, attr: str) -> str:
    full = f"{owner}.{attr}"
    if owner == "torch.Tensor":  # every Tensor method has a page of its own
        return f"generated/{full}.html"
    return f"{owner_url.split('#')[0]}#{full}"


def _kind(obj) -> str | None:
    if inspect.isclass(obj):
        return "class"
    if inspect.isroutine(obj):
        return "function"
    type_name = f"{type(obj).__module__}.{type(obj).__qualname__}"
    if type_name in TORCH_INSTANCE_TYPES:
        return "data"
    return None


def _belongs(obj, kind: str) -> bool:
    if kind == "data":
        return True
    module = getattr(obj, "__module__", None)
    return module is None or _root(module) in PACKAGES


def public_modules() -> list[tuple[str, types.ModuleType]]:
    """Every imported public deepinv/torch module, under its own name and under the aliases that
    other modules give it (``deepinv.metric`` is ``deepinv.loss.metric``; one level deep)."""
    real = {
        name: mod
        for name, mod in list(sys.modules.items())
        if _root(name) in PACKAGES and _public(name) and isinstance(mod, types.ModuleType)
    }
    found = dict(real)
    for name, module in sorted(real.items()):
        try:
            namespace = dict(vars(module))
        except Exception:  # a module class whose attribute access has side effects
            continue
        for attr in sorted(a for a in namespace if not a.startswith("_")):
            obj = namespace[attr]
            if not isinstance(obj, types.ModuleType):
                continue
            target = obj.__dict__.get("__name__")
            path = f"{name}.{attr}"
            if (
                isinstance(target, str)
                and path not in found
                and _root(target) == _root(name)
                and "." in target
                and _public(target)
                and not name.startswith(target)  # not a parent package seen from below
            ):
                found[path] = obj
    return sorted(found.items())


#: public torch namespaces that ``import torch`` may leave unimported
TORCH_EXTRA = (
    "torch.distributions",
    "torch.utils.data",
    "torch.func",
    "torch.special",
    "torch.fft",
)


def import_everything() -> None:
    """Import deepinv (and so torch), every deepinv submodule, and a few torch namespaces."""
    import importlib
    import pkgutil

    import deepinv

    found = pkgutil.walk_packages(deepinv.__path__, "deepinv.", onerror=lambda name: None)
    names = [m.name for m in found] + list(TORCH_EXTRA)
    for name in names:
        if _public(name):
            try:
                importlib.import_module(name)
            except Exception:  # an optional dependency that is not installed
                pass


def walk() -> dict[str, list[tuple[str, str, str]]]:
    """Entries ``(name, role, url)`` per package, for every public deepinv/torch path."""
    import_everything()

    entries: dict[str, dict[str, tuple[str, str]]] = {p: {} for p in PACKAGES}
    classes: dict[str, tuple[type, str]] = {}
    modules = public_modules()
    for modname, module in modules:
        try:
            names = sorted(n for n in dir(module) if not n.startswith("_"))
        except Exception:
            continue
        for attr in names:
            path = f"{modname}.{attr}"
            try:
                obj = getattr(module, attr)
            except Exception:
                continue
            if isinstance(obj, types.ModuleType):
                continue
            kind = _kind(obj)
            if kind is None or not _belongs(obj, kind):
                continue
            if kind == "data":
                type_name = f"{type(obj).__module__}.{type(obj).__qualname__}"
                url = TORCH_PAGES[type_name]
            else:
                doc = documented_name(obj, path)
                url = page_of(doc, kind)
                if kind == "class" and doc not in classes:
                    classes[doc] = (obj, url)
            package = _root(modname)
            entries[package].setdefault(path, (kind, url))
    # members of the classes, under the documented class name
    for owner, (cls, url) in sorted(classes.items()):
        try:
            members = sorted(n for n in dir(cls) if not n.startswith("_"))
        except Exception:
            continue
        for attr in members:
            try:
                raw = inspect.getattr_static(cls, attr)
            except AttributeError:
                continue
            if isinstance(raw, (staticmethod, classmethod)) or inspect.isroutine(raw):
                role = "method"
            elif (
                isinstance(raw, property)
                or inspect.isgetsetdescriptor(raw)
                or inspect.ismemberdescriptor(raw)
            ):
                role = "attribute"
            else:
                continue
            entries[_root(owner)].setdefault(
                f"{owner}.{attr}", (role, member_url(owner, url, attr))
            )
    return {
        package: [(name, role, url) for name, (role, url) in sorted(found.items())]
        for package, found in entries.items()
    }


def write_inventories(outdir: Path) -> None:
    import sphobjinv as soi

    outdir.mkdir(parents=True, exist_ok=True)
    for package, items in walk().items():
        inv = soi.Inventory()
        inv.project = package
        inv.version = importlib.metadata.version(package)
        for name, role, url in items:
            inv.objects.append(
                soi.DataObjStr(
                    name=name, domain="py", role=role, priority="1", uri=url, dispname="-"
                )
            )
        partial = outdir / f"{package}.inv.{os.getpid()}"
        soi.writebytes(str(partial), soi.compress(inv.data_file(contract=True)))
        os.replace(partial, outdir / f"{package}.inv")  # never a half-written inventory
        print(f"{package}: {len(items)} entries")


# -- The Sphinx extension --------------------------------------------------------------------------
def cache_key() -> str:
    """Changes when deepinv, torch or this file change: then the inventories are rewritten."""
    versions = {p: importlib.metadata.version(p) for p in PACKAGES}
    digest = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    return json.dumps({"versions": versions, "code": digest}, sort_keys=True)


def inventory_dir(confdir: Path) -> Path:
    return Path(confdir) / "_build" / INVENTORY_DIR


def ensure_inventories(folder: Path) -> None:
    stamp = folder / "stamp.json"
    key = cache_key()
    complete = all((folder / f"{p}.inv").is_file() for p in PACKAGES)
    if complete and stamp.is_file() and stamp.read_text() == key:
        return
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    subprocess.run(
        [sys.executable, __file__, str(folder)], check=True, env=env, stdout=subprocess.DEVNULL
    )
    stamp.write_text(key)


def _on_config_inited(app, config):
    folder = inventory_dir(app.confdir)
    ensure_inventories(folder)
    mapping = dict(config.intersphinx_mapping or {})
    for package in PACKAGES:
        mapping[package] = (BASE_URLS[package], str(folder / f"{package}.inv"))
    config.intersphinx_mapping = mapping


def _on_missing_reference(app, env, node, contnode):
    """A py role of another type than the entry's (``:func:`` on a class) still finds its page."""
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    if _root(target) not in PACKAGES:
        return None
    from docutils import nodes
    from sphinx.ext.intersphinx import InventoryAdapter

    inventory = InventoryAdapter(env).named_inventory.get(_root(target), {})
    for objtype, objects in inventory.items():
        if objtype.startswith("py:") and target in objects:
            item = objects[target]
            uri = getattr(item, "uri", None) or item[2]  # Sphinx >= 8.2 items, else tuples
            reference = nodes.reference("", "", internal=False, refuri=uri, reftitle=target)
            reference += contnode
            return reference
    return None


def setup(app):
    # runs before intersphinx validates the mapping (priority 800)
    app.connect("config-inited", _on_config_inited, priority=700)
    app.setup_extension("sphinx.ext.intersphinx")
    app.connect("missing-reference", _on_missing_reference, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}


if __name__ == "__main__":
    write_inventories(Path(sys.argv[1]))

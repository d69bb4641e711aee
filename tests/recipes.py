"""The calibration recipes of the pages, loaded from the pages' own source.

A page defines its recipe as a function of the data, ``recipe(x, y, kernel_size, n_iter, ...)
-> k_hat``, and its budget as the knob ``N_ITER``.  ``load_function`` runs only the page's
imports, its upper-case knobs and its ``def`` statements (found with :mod:`ast`), so the suite
runs the very code the page shows without running the page.  ``METHODS`` lists what the suite
runs; adding a method is one entry.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _is_knob(node: ast.stmt) -> bool:
    """``NAME = ...`` with an upper-case name: a page's knob (FAST, N_ITER, LR, ...)."""
    targets = node.targets if isinstance(node, ast.Assign) else []
    return bool(targets) and all(isinstance(t, ast.Name) and t.id.isupper() for t in targets)


def definitions(source: str, filename: str) -> dict:
    """The namespace left by a page's imports, knobs and function definitions (nothing else)."""
    tree = ast.parse(source, filename=filename)
    kept = [
        node
        for node in tree.body
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef)) or _is_knob(node)
    ]
    namespace = {"__name__": f"recipe_{Path(filename).stem}", "__file__": filename}
    old = os.environ.pop("CALIBRATION_GALLERY_FAST", None)  # the knobs at their full-size values
    try:
        for (
            node
        ) in kept:  # a knob computed from the page's data (NOLL = generator.index) is left out
            try:
                exec(compile(ast.Module(body=[node], type_ignores=[]), filename, "exec"), namespace)
            except NameError:
                if not _is_knob(node):
                    raise
    finally:
        if old is not None:
            os.environ["CALIBRATION_GALLERY_FAST"] = old
    return namespace


@functools.cache
def page_namespace(page: Path) -> dict:
    """The definitions of the page ``page`` (its imports, knobs and functions)."""
    return definitions(page.read_text(encoding="utf-8"), str(page))


def load_function(page: Path, name: str):
    """The function ``name`` defined on ``page``."""
    namespace = page_namespace(page)
    if not callable(namespace.get(name)):
        raise LookupError(f"{page.relative_to(ROOT)} defines no function {name!r}")
    return namespace[name]


@dataclasses.dataclass(frozen=True)
class Method:
    """One recipe of one page, with the settings the suite gives it and the bound it must hold.

    The recipe runs for the page's own budget, its knob ``N_ITER`` (at full size), unless the call
    gives ``n_iter``.
    """

    page: str  # relative to examples/
    function: str
    bound: float  # largest allowed ratio of its kernel error to the exact least-squares floor
    settings: tuple = ()  # extra keyword arguments, as (name, value) pairs
    loss: str = "l2"  # "l1": the loss's own minimiser may itself lie above the bound

    def recipe(self):
        return load_function(EXAMPLES / self.page, self.function)

    def __call__(self, x, y, kernel_size, **kwargs):
        kwargs.setdefault("n_iter", page_namespace(EXAMPLES / self.page)["N_ITER"])
        return self.recipe()(x, y, kernel_size, **dict(self.settings), **kwargs)


def _mse():
    import torch

    return torch.nn.MSELoss()


METHODS = {
    "PGD": Method("calibration/plot_projected_gradient.py", "calibrate_pgd", 1.2),
    "Adam": Method("calibration/plot_adam_projection.py", "calibrate_adam", 1.2),
    "AdamW + MSE": Method(
        "calibration/plot_adamw_l1.py", "calibrate_adamw", 1.2, (("loss_fn", _mse()),)
    ),
    "AdamW + L1": Method("calibration/plot_adamw_l1.py", "calibrate_adamw", 1.4, loss="l1"),
}


def active_methods() -> dict:
    """``METHODS``, or with ``CALIBRATION_METHODS=legacy`` the pages' recipes before issue 14."""
    if os.environ.get("CALIBRATION_METHODS") == "legacy":
        from legacy_recipes import LEGACY_METHODS

        return LEGACY_METHODS
    return METHODS

"""The recipes of the Adam, AdamW and projected-gradient pages before issue 14, read from git.

They show that the reduced suite catches the recipes it was written against::

    CALIBRATION_METHODS=legacy .venv/bin/python -m pytest tests/test_recipes.py -k reduced_suite

Each old page defined its optimiser loop on the page's own globals; here those globals are set
to the suite's problem, and each recipe runs with its own settings and budget, as its page ran it
(``n_iter`` is ignored): Adam and AdamW with learning rate 0.1, ``betas=(0.9, 0.9)``, a cosine
schedule over 300 iterations from a flat 15×15 square; accelerated projected gradient with the step
1/L (50 power iterations), stopped when a step moves the kernel by less than 2e-7 or after 2,000
iterations.
"""

from __future__ import annotations

import functools
import os
import subprocess

import torch

from recipes import ROOT, Method, definitions

LEGACY_REF = "b6fae2c"  # main before the recipes of issue 14
os.environ.setdefault("TQDM_DISABLE", "1")


@functools.cache
def old_page(name: str) -> dict:
    path = f"examples/calibration/{name}"
    source = subprocess.run(
        ["git", "show", f"{LEGACY_REF}:{path}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return definitions(source, f"{LEGACY_REF}:{path}")


def _setup(page, x, y, kernel_size):
    """The old page's globals for the problem (x, y); k_true is only logged by the old loops."""
    import deepinv as dinv

    namespace = old_page(page)  # the old functions' globals
    namespace["tqdm"] = lambda iterable, **kwargs: iterable  # no progress bars
    k_init = torch.zeros(1, 1, kernel_size, kernel_size)
    k_init[..., 5:-5, 5:-5] = 1.0
    namespace.update(
        x=x,
        y=y,
        device=x.device,
        k_true=torch.full_like(k_init, 1.0 / kernel_size**2),
        k_init=namespace["project_simplex"](k_init),
        physics=dinv.physics.Blur(filter=k_init.clone(), padding="valid"),
        data_fidelity=dinv.optim.L2(),
    )
    return namespace


def adam(x, y, kernel_size, n_iter=None):
    page = _setup("plot_adam_projection.py", x, y, kernel_size)
    return page["calibrate_with_adam"](n_iter=300, lr=0.1, betas=(0.9, 0.9), cosine=True)[0]


def adamw(x, y, kernel_size, n_iter=None, loss_fn=None):
    page = _setup("plot_adamw_l1.py", x, y, kernel_size)
    loss_fn = torch.nn.L1Loss() if loss_fn is None else loss_fn
    return page["train_filter"](loss_fn, n_iter=300, lr=0.1, betas=(0.9, 0.9), cosine=True)[0]


def pgd(x, y, kernel_size, n_iter=None):
    page = _setup("plot_projected_gradient.py", x, y, kernel_size)
    d = torch.randn(page["k_init"].shape, generator=torch.Generator().manual_seed(2))
    for _ in range(50):  # the old page's power iteration, on the sum-zero plane
        d = d - d.mean()
        d = d / d.norm()
        hd = page["hessian_vector_product"](d)
        hd = hd - hd.mean()
        lipschitz = (d * hd).sum().item()
        d = hd
    return page["accelerated_projected_gradient"](page["k_init"], 1.0 / lipschitz, 2000, 2e-7)[0]


class _Legacy(Method):
    def recipe(self):
        return self.settings[0][1]

    def __call__(self, x, y, kernel_size, **kwargs):
        return self.recipe()(x, y, kernel_size, **dict(self.settings[1:]))


LEGACY_METHODS = {
    "PGD": _Legacy("", "", 1.2, (("function", pgd),)),
    "Adam": _Legacy("", "", 1.2, (("function", adam),)),
    "AdamW + MSE": _Legacy("", "", 1.2, (("function", adamw), ("loss_fn", torch.nn.MSELoss()))),
    "AdamW + L1": _Legacy("", "", 1.4, (("function", adamw),), loss="l1"),
}

"""Run every page's recipe on every problem of the suite and print one table.

    .venv/bin/python tests/run_suite.py                 # full size (256², the pages' budgets)
    .venv/bin/python tests/run_suite.py --size 96 --n-iter 200 --methods Adam PGD
    CALIBRATION_METHODS=legacy .venv/bin/python tests/run_suite.py   # the recipes before issue 14

Each cell is the recipe's relative kernel error divided by the exact least-squares floor of the
same (x, y) (``suite.floor``).  A cell over its method's bound is marked ``!``; for a recipe with an
L1 loss, such a cell also gets the L1 loss's own minimiser (``suite.floor_l1``) next to it, marked
``*`` where the recipe holds within 10 % of that minimiser: there the loss, not the optimiser, is
above the bound.  The exit status is 1 if any method fails.  Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path[:0] = [
    str(Path(__file__).resolve().parent),
    str(Path(__file__).resolve().parents[1] / "examples"),
]

import suite
from calibration_helpers import print_table
from recipes import active_methods

METHODS = active_methods()  # CALIBRATION_METHODS=legacy: the recipes before issue 14
L1_SLACK = 1.1  # a recipe with an L1 loss holds if within 10 % of the L1 loss's own minimiser


def relative_error(k_hat, k_true):
    k_hat, k_true = k_hat.detach().double().cpu().flatten(), k_true.double().flatten()
    return ((k_hat - k_true).norm() / k_true.norm()).item()


def run(methods, problems, size, n_iter=None, log=print):
    """``{problem: {method: (ratio, seconds, l1_ratio or None)}}`` and the floors."""
    cells, floors = {}, {}
    for problem in problems:
        x, y, k_true = suite.make_problem(problem, size)
        floors[problem] = suite.floor(problem, size)
        cells[problem] = {}
        for name in methods:
            method = METHODS[name]
            kwargs = {} if n_iter is None else {"n_iter": n_iter}
            torch.manual_seed(0)
            start = time.perf_counter()
            k_hat = method(x, y, suite.KERNEL_SIZE, **kwargs)
            seconds = time.perf_counter() - start
            ratio = relative_error(k_hat, k_true) / floors[problem]
            l1_ratio = None
            if method.loss == "l1" and ratio > method.bound:
                l1_ratio = suite.floor_l1(problem, size) / floors[problem]
            cells[problem][name] = (ratio, seconds, l1_ratio)
            log(f"{problem.name:45s} {name:12s} {ratio:6.3f}× the floor  {seconds:6.1f} s")
    return cells, floors


def holds(method, ratio, l1_ratio):
    if ratio <= method.bound:
        return True
    return l1_ratio is not None and ratio <= L1_SLACK * l1_ratio


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--size", type=int, default=suite.FULL_SIZE, help="image side (default 256)"
    )
    parser.add_argument(
        "--n-iter", type=int, default=None, help="iterations (default: each page's)"
    )
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument(
        "--problems", nargs="+", type=int, default=None, help="indices into PROBLEMS"
    )
    args = parser.parse_args(argv)
    problems = [suite.PROBLEMS[i] for i in args.problems] if args.problems else list(suite.PROBLEMS)

    start = time.perf_counter()
    cells, floors = run(
        args.methods,
        problems,
        args.size,
        args.n_iter,
        log=lambda s: print(s, file=sys.stderr, flush=True),
    )
    total = time.perf_counter() - start

    table, failed = {}, []
    for problem in problems:
        row = table[problem.name] = {"floor": f"{floors[problem]:.4f}"}
        for name in args.methods:
            ratio, _, l1_ratio = cells[problem][name]
            text = f"{ratio:.2f}"
            if l1_ratio is not None:
                star = "*" if holds(METHODS[name], ratio, l1_ratio) else ""
                text += f" (L1 min {l1_ratio:.2f}{star})"
            row[name] = text + ("" if ratio <= METHODS[name].bound else " !")
    worst, bound, seconds = {"floor": ""}, {"floor": ""}, {"floor": ""}
    for name in args.methods:
        ratios = [cells[p][name][0] for p in problems]
        worst[name] = f"{max(ratios):.2f}"
        bound[name] = f"{METHODS[name].bound:.1f}"
        seconds[name] = f"{sum(cells[p][name][1] for p in problems):.0f} s"
        if not all(holds(METHODS[name], *cells[p][name][::2]) for p in problems):
            failed.append(name)
    table.update({"worst": worst, "bound": bound, "run time": seconds})
    print(
        f"relative kernel error / exact least-squares floor, {args.size}×{args.size} images, "
        f"{'page budgets' if args.n_iter is None else f'{args.n_iter} iterations'}, "
        f"torch threads {torch.get_num_threads()}"
    )
    print_table(table)
    print(
        f"total {total:.0f} s; "
        + (f"FAILED: {', '.join(failed)}" if failed else "every method holds")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""One text per idea: a function name means one piece of code, wherever it appears.

The helpers several pages share live in examples/calibration_helpers.py and the pages import them.
Only the page that teaches a helper defines it again, and then with the same text (compared as a
normalised syntax tree: comments and blank lines aside, identical).  Any other function defined on
several pages must have one text too, and one piece of code must not appear under two names.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from conftest import EXAMPLES, HELPERS, ROOT

#: helper -> the page that teaches it (and alone defines it in full)
TEACHING = {
    "project_simplex": "plot_projected_gradient",
    "gradient_of_f": "plot_projected_gradient",
    "curvature_along": "plot_projected_gradient",
    "calibrate_pgd": "plot_projected_gradient",
    "tangent_gradient": "plot_adam_projection",
    "calibrate_adam": "plot_adam_projection",
    "calibrate_adamw": "plot_adamw_l1",
    "lagged_window_sums": "plot_quadratic_loss",
    "linear_terms": "plot_quadratic_loss",
    "blur_quadratic": "plot_quadratic_loss",
    "minimise_on_support": "plot_exact_solver",
    "solve_simplex_ls": "plot_exact_solver",
    "cubic_weights": "plot_mismatch_shift",
    "shift_image": "plot_mismatch_shift",
}


def definitions(path: Path) -> dict[str, str]:
    """``name -> normalised text`` of every top-level function of ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        n.name: ast.dump(n, annotate_fields=False)
        for n in tree.body
        if isinstance(n, ast.FunctionDef)
    }


def where(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_each_function_name_has_one_text():
    texts: dict[str, dict[str, str]] = defaultdict(dict)
    for path in [HELPERS, *EXAMPLES]:
        for name, text in definitions(path).items():
            texts[name][where(path)] = text
    drifted = []
    for name, per_file in sorted(texts.items()):
        if len(set(per_file.values())) < 2:
            continue
        helpers = where(HELPERS)
        if helpers in per_file:
            reference, origin = per_file[helpers], helpers
        else:  # no canonical text: name the files that differ from the first
            origin, reference = next(iter(per_file.items()))
        bad = sorted(f for f, text in per_file.items() if text != reference)
        drifted.append(f"{name}: {', '.join(bad)} differ(s) from {origin}")
    assert not drifted, "one name, several texts:\n" + "\n".join(drifted)


def test_only_the_teaching_page_defines_a_shared_helper():
    shared = definitions(HELPERS)
    misplaced = []
    for path in EXAMPLES:
        for name in definitions(path).keys() & shared.keys():
            if TEACHING.get(name) != path.stem:
                misplaced.append(
                    f"{where(path)} defines {name}: import it from calibration_helpers"
                )
    assert not misplaced, "\n".join(misplaced)


def test_teaching_pages_define_what_they_teach():
    for name, stem in TEACHING.items():
        page = next(p for p in EXAMPLES if p.stem == stem)
        assert name in definitions(page), f"{stem} teaches {name} but does not define it"


def test_one_piece_of_code_has_one_name():
    by_body: dict[str, set[str]] = defaultdict(set)
    for path in [HELPERS, *EXAMPLES]:
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef):
                body = ast.dump(ast.Module(body=node.body, type_ignores=[]), annotate_fields=False)
                by_body[body].add(f"{node.name} ({where(path)})")
    twins = [
        sorted(names) for names in by_body.values() if len({n.split(" ")[0] for n in names}) > 1
    ]
    assert not twins, f"the same code under several names: {twins}"


def sync_teaching_pages() -> list[str]:
    """Replace each teaching page's copy of a helper by the text in calibration_helpers.py."""
    module = HELPERS.read_text(encoding="utf-8")
    texts = {
        n.name: "\n".join(module.splitlines()[n.lineno - 1 : n.end_lineno])
        for n in ast.parse(module).body
        if isinstance(n, ast.FunctionDef)
    }
    changed = []
    for page in EXAMPLES:
        source = page.read_text(encoding="utf-8")
        lines = source.splitlines()
        nodes = [n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)]
        for node in sorted(nodes, key=lambda n: n.lineno, reverse=True):
            if TEACHING.get(node.name) == page.stem and texts[node.name] != "\n".join(
                lines[node.lineno - 1 : node.end_lineno]
            ):
                lines[node.lineno - 1 : node.end_lineno] = texts[node.name].splitlines()
                changed.append(f"{where(page)}: {node.name}")
        page.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return changed


if __name__ == "__main__":  # make sync-helpers
    print("\n".join(sync_teaching_pages()) or "teaching pages already match calibration_helpers.py")


def test_every_shared_helper_is_on_the_helpers_page():
    page = (ROOT / "docs" / "helpers.rst").read_text(encoding="utf-8")
    missing = [name for name in definitions(HELPERS) if f"calibration_helpers.{name}\n" not in page]
    assert not missing, f"docs/helpers.rst does not document {missing}"

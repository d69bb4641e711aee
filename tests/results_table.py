"""Reading back the tables that ``calibration_helpers.print_table`` prints (for tests/conftest.py).

``print_table`` writes a header line, a line of dashes (one run per column, two spaces apart) and
one line per row, the first column left-justified and the others right-justified within the
width of their dashes.  The dashes give the columns' spans, so cells may contain spaces.
"""

from __future__ import annotations

import re

from conftest import printed_output

RULE = re.compile(r"-+(?:  -+)*")


def _value(cell: str):
    try:
        return float(cell)
    except ValueError:
        return cell


def parse_tables(text: str) -> list[dict[str, dict[str, object]]]:
    """Every table in ``text``, in order, as ``{row: {column: value}}``.

    Numbers come back as floats, other cells as strings; empty cells are left out.  A table ends
    at the first line that does not fit its columns: blank, longer than the rule, the header of a
    next table, with no value, with text where the rule has the two spaces between columns, or
    with a cell not justified as print_table justifies it (the row name left, the others right).
    """
    lines = text.splitlines() + [""]
    tables = []
    for i, rule in enumerate(lines):
        if i == 0 or not RULE.fullmatch(rule):
            continue
        spans = [m.span() for m in re.finditer(r"-+", rule)]
        columns = [lines[i - 1][a:b].strip() for a, b in spans[1:]]
        table = {}
        for line, after in zip(lines[i + 1 :], lines[i + 2 :]):
            if not fits(line, spans) or RULE.fullmatch(after):
                break
            cells = [line[a:b].strip() for a, b in spans]
            table[cells[0]] = {c: _value(v) for c, v in zip(columns, cells[1:]) if v}
        tables.append(table)
    return tables


def fits(line: str, spans: list[tuple[int, int]]) -> bool:
    """Whether ``line`` is a row of a table with these column spans."""
    if not line[:1].strip() or len(line) > spans[-1][1]:
        return False
    gaps = [line[end:start] for (_, end), (start, _) in zip(spans, spans[1:])]
    right = [line[b - 1 : b].strip() or not line[a:b].strip() for a, b in spans[1:]]
    values = any(line[a:b].strip() for a, b in spans[1:])  # a row has at least one value
    return values and not any(gap.strip() for gap in gaps) and all(right)


def results_table(stem: str) -> dict[str, dict[str, object]]:
    """The results table of the built page ``stem``: the last table it printed."""
    tables = parse_tables(printed_output(stem))
    assert tables, f"{stem}: no printed table found on the built page"
    return tables[-1]


def find_row(table: dict, prefix: str) -> dict:
    """The one row whose name starts with ``prefix``."""
    rows = [name for name in table if name.startswith(prefix)]
    assert len(rows) == 1, (
        f"expected one row starting with {prefix!r}, found {rows} in {list(table)}"
    )
    return table[rows[0]]

"""The reader of printed results tables (tests/results_table.py) against print_table itself."""

from __future__ import annotations

import contextlib
import io

from calibration_helpers import print_table

from results_table import parse_tables


def printed(table):
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        print_table(table)
    return buffer.getvalue()


TABLE = {
    "without fix: 9×9 (too small)": {"kernel error": 0.2783, "× floor": 19.6, "time": "  1.23 s"},
    "σ = 0.02": {"kernel error": 1.5e-8, "draws": 3},
    "photo, σ = 0.005": {"× floor": 1.0, "note": "two words"},
}


def test_a_printed_table_reads_back():
    (table,) = parse_tables(printed(TABLE))
    assert list(table) == list(TABLE)
    assert table["without fix: 9×9 (too small)"] == {
        "kernel error": 0.2783,
        "× floor": 19.60,
        "time": "1.23 s",
    }
    assert table["σ = 0.02"] == {"kernel error": 1.5e-8, "draws": 3.0}
    assert table["photo, σ = 0.005"] == {"× floor": 1.0, "note": "two words"}


def test_tables_are_separated_from_the_text_around_them():
    text = "before\n" + printed(TABLE) + "selected kernel size: 13×13\n" + printed({"a": {"b": 2}})
    first, second = parse_tables(text)
    assert list(first) == list(TABLE)
    assert second == {"a": {"b": 2.0}}

"""A no-change rebuild executes no example.

Runs ``make html`` once more over the build the other site checks read (_build/html must exist)
and reads sphinx-gallery's summary: "executed 0 out of N".  The time it took is printed
(``-s``), never asserted: the machine may be busy.
"""

from __future__ import annotations

import re
import subprocess
import time

from conftest import ROOT, SITE


def test_no_change_rebuild_executes_no_example():
    assert SITE == (ROOT / "_build" / "html").resolve(), "this check rebuilds _build/html only"
    assert (SITE / "index.html").is_file(), "build the site first: make html"
    start = time.perf_counter()
    result = subprocess.run(
        ["make", "-C", str(ROOT), "html"], capture_output=True, text=True, timeout=600
    )
    seconds = time.perf_counter() - start
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    executed = re.findall(r"executed (\d+) out of (\d+)", log)
    assert executed, log[-3000:]
    skipped = re.findall(r"after excluding (\d+) files? that had previously been run", log)
    print(
        f"\nno-change rebuild: {seconds:.1f} s; sphinx-gallery executed {executed[0][0]} examples "
        f"(out of {executed[0][1]} to run), {skipped[0] if skipped else '?'} unchanged ones skipped"
    )
    assert executed[0][0] == "0", log[-3000:]

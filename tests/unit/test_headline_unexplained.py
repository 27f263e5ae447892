"""The report's headline says how much of its figures the lines do not explain, and why."""

from __future__ import annotations

import pandas as pd

from cgmem_nb import ProfileResult
from cgmem_nb.outputs.report import render_html, render_text, unexplained
from cgmem_nb.schema import Summary, make_frame

MB = 1000**2


def _result(peak: int, retained: int, line_peak: int, line_kept: int, rss: tuple[int, int, int] = (0, 0, 0)) -> ProfileResult:
    lines = make_frame("lines", [{
        "location": "In[3]:2", "cell": 3, "lineno": 2, "filename": "<ipython-input-3>", "code": "p = df.pivot(...)",
        "category": "DataFrame", "allocated_bytes": max(line_peak, line_kept), "peak_bytes": line_peak,
        "retained_bytes": line_kept, "count": 1, "where": "kernel",
    }])
    before, after, high = rss
    summary = Summary(label="In[3]", cell=3, peak_bytes=peak, retained_bytes=retained,
                      rss_before_bytes=before, rss_after_bytes=after, rss_peak_bytes=high)
    return ProfileResult(summary, {"lines": lines})


def test_a_peak_the_lines_do_not_hold_is_named_with_its_size_and_reason() -> None:
    res = _result(peak=180 * MB, retained=0, line_peak=34_000, line_kept=0)
    found = unexplained(res)
    assert len(found) == 1
    assert found[0].startswith("180.0 MB of the 180.0 MB traced peak is in no line")
    assert "inside one statement" in found[0]
    assert any(line.startswith("Unexplained ") and "180.0 MB of the 180.0 MB traced peak" in line
               for line in render_text(res).splitlines())
    assert "<th" in render_html(res) and "Unexplained" in render_html(res)


def test_retained_bytes_the_lines_do_not_hold_are_named() -> None:
    found = unexplained(_result(peak=700 * MB, retained=660 * MB, line_peak=690 * MB, line_kept=33_000))
    assert found == [
        "660.0 MB of the 660.0 MB retained is in no line: held by the profiler or the front end, "
        "or allocated by threads the tables leave out"
    ]


def test_rss_growth_beyond_the_traced_peak_is_named_as_memory_the_tracer_cannot_see() -> None:
    res = _result(peak=281 * MB, retained=281 * MB, line_peak=281 * MB, line_kept=281 * MB,
                  rss=(500 * MB, 899 * MB, 950 * MB))
    (text,) = unexplained(res)
    # RSS rose 450 MB at its peak; the tracer saw 281 MB of it.
    assert text.startswith("RSS grew 169.0 MB more than the tracer saw: native memory")


def test_a_headline_the_lines_explain_has_no_unexplained_row() -> None:
    res = _result(peak=100 * MB, retained=50 * MB, line_peak=95 * MB, line_kept=49 * MB, rss=(500 * MB, 560 * MB, 610 * MB))
    assert unexplained(res) == []
    assert "Unexplained" not in render_text(res)
    # Small gaps are not worth a row.
    assert unexplained(_result(peak=900_000, retained=0, line_peak=0, line_kept=0)) == []
    assert isinstance(res.lines, pd.DataFrame)

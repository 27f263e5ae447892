"""Findings that read well and are right: readable frames, distinct-value wording, savings
counted once across frames that share buffers, priority 1 first, containers of big copies."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from cgmem_nb.analysis import LeakDetector
from cgmem_nb.analysis.recommend import Context, RecommendationEngine, big_temporaries, category_columns, distinct_phrase, downcast_numbers
from cgmem_nb.analysis.savings import category_savings
from cgmem_nb.outputs.panel import _section_html
from cgmem_nb.schema import Difficulty, Recommendation, Summary, leaks_frame, make_frame, recommendations_frame
from cgmem_nb.schema.readable import ReadableFrame, display_frame, format_ago, format_seconds
from cgmem_nb.session.holders import HolderReading, Observation
from cgmem_nb.session.result import ProfileResult

MB = 1000**2
GB = 1000**3
ROWS = 400_000
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _days_frame() -> pd.DataFrame:
    # A text column of 7 values held as Python objects, one object per row (as a CSV parse makes them).
    days = np.array([str(DAYS[i % 7]) + "" for i in range(ROWS)], dtype=object)
    days = np.array([d[:1] + d[1:] for d in days], dtype=object)
    return pd.DataFrame({"day": days, "n": np.arange(ROWS, dtype=np.int64) % 100})


# -- readable frames -----------------------------------------------------------------------------
def test_a_readable_frame_shows_sizes_times_and_the_fix_in_full_and_keeps_its_bytes() -> None:
    now = time.time()
    fix = "del Out[7], _7  # and end cells with ';' to keep their value out of Out\n%reset -f out"
    frame = ReadableFrame(pd.DataFrame({
        "holder": ["Out[7]"], "size": pd.array([1_133_269_194], dtype="Int64"), "growth_rate": [2_500_000.0],
        "first_seen": [now - 300], "age": [300.0], "fix": [fix],
    }))
    text = repr(frame)
    assert "1.1 GB" in text and "2.5 MB/s" in text and "5.0 min ago" in text and "5.0 min" in text
    assert "1133269194" not in text
    assert "keep their value out of Out" in text  # not cut at pandas' 50 characters
    html = frame._repr_html_()
    assert html is not None and "1.1 GB" in html and "keep their value out of Out" in html
    assert "white-space:pre-wrap" in html and "Out\n%reset -f out" in html  # the fix's two lines stay two
    # The data underneath is untouched: bytes and Unix times, a plain DataFrame on request.
    assert int(frame["size"].sum()) == 1_133_269_194
    assert type(frame.raw) is pd.DataFrame and frame.raw["first_seen"].iloc[0] == now - 300
    assert type(frame.head(1)) is pd.DataFrame  # what pandas derives is plain again


def test_relative_times_and_durations_read_as_words() -> None:
    assert format_ago(100.0, now=100.4) == "just now"
    assert format_ago(100.0, now=112.0) == "12 s ago"
    assert format_ago(0.0, now=7200.0) == "2.0 h ago"
    assert format_seconds(float("inf")) == "never" and format_seconds(None) == "–"
    assert format_seconds(0.25) == "0.25 s" and format_seconds(3 * 86_400) == "3.0 days"


def test_helper_frames_are_readable() -> None:
    rec = Recommendation(priority=1, rule="r", target="t", description="d", action="x = 1", estimated_savings=5 * MB,
                         savings_error=0, measured=True, difficulty=Difficulty.Easy)
    frame = recommendations_frame([rec])
    assert isinstance(frame, ReadableFrame) and "5.0 MB" in repr(frame)
    assert isinstance(leaks_frame([]), ReadableFrame)
    shown = display_frame(make_frame("history", [{"cell": 3, "started_at": 0.0, "rss_peak_bytes": 2 * GB, "duration_s": 1.5}]), now=60.0)
    assert shown.loc[0, "rss_peak_bytes"] == "2.0 GB" and shown.loc[0, "started_at"] == "60 s ago"
    assert shown.loc[0, "duration_s"] == "1.50 s"


# -- wording ---------------------------------------------------------------------------------------
def test_distinct_values_are_counted_not_a_zero_percent() -> None:
    assert distinct_phrase(7 / 4_400_000, 4_400_000) == "7 distinct values in 4,400,000 rows"
    assert distinct_phrase(0.25, 1000) == "250 distinct values in 1,000 rows (25%)"
    assert distinct_phrase(7 / 200_000, 4_400_000, 200_000) == "7 distinct values in a 200,000-row sample of its 4,400,000 rows"
    assert distinct_phrase(1 / 10, 10) == "1 distinct value in 10 rows (10%)"


def test_a_seven_value_column_is_described_by_its_count() -> None:
    frame = _days_frame()
    (draft,) = category_columns(Context(namespace={"df": frame}))
    assert f"has 7 distinct values in {ROWS:,} rows" in draft.description
    assert "0.0%" not in draft.description


def test_temporaries_no_line_held_are_not_called_0_b() -> None:
    lines = make_frame("lines", [{"location": "In[4]:2", "code": "p = df.pivot_table(...)", "allocated_bytes": 150 * MB,
                                  "peak_bytes": 30_000, "retained_bytes": 30_000, "cell": 4, "lineno": 2}])
    result = ProfileResult(Summary(label="In[4]", peak_bytes=180 * MB, retained_bytes=30_000), {"lines": lines})
    (draft,) = big_temporaries(Context(results=[result]))
    assert "0 B" not in draft.description
    assert "inside one statement" in draft.description and "150.0 MB in all" in draft.description


# -- no double counting ------------------------------------------------------------------------------
def test_frames_that_share_buffers_get_one_recommendation_and_their_savings_once() -> None:
    df = _days_frame()
    view = df.copy(deep=False)  # shares every column's buffer with df
    alone = category_savings(df["day"])
    assert alone is not None
    single = RecommendationEngine().recommend(Context(namespace={"df": df}))
    both = RecommendationEngine().recommend(Context(namespace={"df": df, "view": view}))
    assert sum(r.estimated_savings for r in both) == sum(r.estimated_savings for r in single)
    (cat,) = [r for r in both if r.rule == "category_columns"]
    assert cat.estimated_savings == alone[0]
    assert "`view` shares the same column" in cat.description
    assert 'view["day"] = view["day"].astype("category")' in cat.action  # both must convert to free it
    # The same data built again is memory of its own: counted again. (Not df.copy(): with pyarrow
    # installed the column is Arrow's, and pandas' deep copy still shares Arrow's immutable buffers.)
    copied = RecommendationEngine().recommend(Context(namespace={"df": df, "copy": _days_frame()}))
    assert len([r for r in copied if r.rule == "category_columns"]) == 2
    assert len(list(downcast_numbers(Context(namespace={"df": df, "view": view})))) == 1


# -- order ------------------------------------------------------------------------------------------
def test_the_live_panel_lists_priority_1_first() -> None:
    recs = [Recommendation(priority=p, rule="r", target=str(p), description=f"do {p}", action="", estimated_savings=MB,
                           savings_error=0, measured=True, difficulty=Difficulty.Easy) for p in (6, 5, 4, 3, 2, 1)]
    html = _section_html("Recommendations", recs)
    positions = [html.index(f"[{p}] do {p}") for p in range(1, 7)]
    assert positions == sorted(positions)


# -- containers of big copies -------------------------------------------------------------------------
def _obs(t: int, size: int, type_: str) -> Observation:
    reading = HolderReading("variable:copies", "variable", "copies", size, None, "DataFrame", type_, None, 1)
    return Observation(t=float(t), cell=t, rss=GB, heap_in_use=None, heap_free=0, traced=None, limit=24 * GB,
                       holders={reading.key: reading})


def test_a_list_that_grew_by_two_big_copies_is_a_leak_and_a_frame_that_did_is_not() -> None:
    # Created with one 380 MB copy, two more appended, then left alone for four cells.
    sizes = [380 * MB, 760 * MB, 1140 * MB, 1140 * MB, 1140 * MB, 1140 * MB, 1140 * MB]
    (leak,) = LeakDetector().detect([_obs(i, s, "list") for i, s in enumerate(sizes)])
    assert leak.status == "held" and leak.holder == "copies"
    assert "grew by 2 large steps (760.0 MB in all)" in leak.reason
    # A frame reassigned twice to a bigger one (loading, then a merge) is not a leak.
    assert LeakDetector().detect([_obs(i, s, "pandas.DataFrame") for i, s in enumerate(sizes)]) == []
    # Small steps that stopped are still warm-up.
    small = [10 * MB, 20 * MB, 30 * MB, 30 * MB, 30 * MB, 30 * MB]
    assert LeakDetector().detect([_obs(i, s, "list") for i, s in enumerate(small)]) == []

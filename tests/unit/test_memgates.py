"""The gate verdicts and messages of the pytest plugin, on results built by hand."""

from __future__ import annotations

import functools

from cgmem_nb import ProfileResult
from cgmem_nb.integrations.memgates import (
    LeakVerdict,
    grown_holders,
    holder_census,
    leak_message,
    limit_message,
)
from cgmem_nb.schema import make_frame

MB = 1000**2


def _result(peak: int, lines: list[tuple[str, str, int, int]]) -> ProfileResult:
    rows = [
        {"location": loc, "code": code, "peak_bytes": p, "retained_bytes": r, "allocated_bytes": max(p, r), "count": 1}
        for loc, code, p, r in lines
    ]
    return ProfileResult({"peak_bytes": peak, "retained_bytes": 0}, {"lines": make_frame("lines", rows)})


def test_limit_message_names_limit_peak_and_biggest_lines_first() -> None:
    result = _result(73_400_000, [("t.py:3", "a = x()", 10 * MB, 0), ("t.py:4", "b = y()", 63 * MB, 0)])
    msg = limit_message("test_x", 50 * MB, result)
    assert msg == (
        "test_x was limited to 50.0 MB but peaked at 73.4 MB; "
        "top lines: t.py:4 (63.0 MB) `b = y()`; t.py:3 (10.0 MB) `a = x()`"
    )


def test_limit_message_is_none_at_or_under_the_limit() -> None:
    assert limit_message("test_x", 50 * MB, _result(50 * MB, [])) is None


def test_leak_needs_every_run_over_the_tolerance() -> None:
    assert LeakVerdict((2 * MB, 2 * MB, 2 * MB), MB, ()).leaking
    assert not LeakVerdict((2 * MB, 0, 2 * MB), MB, ()).leaking
    assert not LeakVerdict((), MB, ()).leaking


def test_leak_message_names_runs_lines_and_holders() -> None:
    last = _result(2 * MB, [("t.py:9", "CACHE.append(v)", 2 * MB, 2 * MB)])
    msg = leak_message("test_y", LeakVerdict((2 * MB, 2 * MB), 100_000, ("t.CACHE (+2 items)",)), last)
    assert msg is not None
    assert msg.startswith("test_y leaks: each of 2 runs kept more than the tolerance of 100.0 KB (+2.0 MB, +2.0 MB, 4.0 MB in all)")
    assert "lines (last run): t.py:9 (+2.0 MB) `CACHE.append(v)`" in msg
    assert msg.endswith("held by: t.CACHE (+2 items)")


def test_holder_census_sees_containers_and_lru_caches_grow() -> None:
    @functools.lru_cache(maxsize=None)
    def square(n: int) -> int:
        return n * n

    ns = {"CACHE": [1], "TABLE": {}, "square": square, "NAME": "text", "__doc__": "skip"}
    before = holder_census({"mod": ns})
    ns["CACHE"].append(2)  # type: ignore[attr-defined]
    ns["CACHE"].append(3)  # type: ignore[attr-defined]
    square(4)
    after = holder_census({"mod": ns})
    assert set(before) == {"mod.CACHE", "mod.TABLE", "mod.square"}
    assert grown_holders(before, after) == ["mod.CACHE (+2 items)", "mod.square (+1 item)"]

"""The end of a session does only what its samples need: the analysis runs when first read."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell

from cgmem_nb import MEMORY_PROFILER, ProfileResult
from cgmem_nb.analysis import RECOMMENDATION_ENGINE, Context
from cgmem_nb.analysis.recommend import Difficulty, Draft

pytestmark = pytest.mark.integration

MB = 1000**2


class CountingRule:
    """A recommendation rule that counts its runs and names the biggest touched variable."""

    def __init__(self) -> None:
        self.calls = 0
        self.__name__ = "counting_rule"

    def __call__(self, ctx: Context) -> Iterator[Draft]:
        self.calls += 1
        for name in sorted(ctx.namespace):
            if name.startswith("counted_"):
                yield Draft("counting_rule", name, "seen", "pass", 2 * MB, Difficulty.Easy)


@pytest.fixture
def counting() -> Iterator[CountingRule]:
    rule = CountingRule()
    RECOMMENDATION_ENGINE.add_rule(rule)
    try:
        yield rule
    finally:
        RECOMMENDATION_ENGINE.rules.remove(rule)


def test_a_quiet_cell_runs_no_rule_until_its_recommendations_are_read(shell: InteractiveShell, counting: CountingRule) -> None:
    res = shell.run_cell("%%memprofile -q -o r\ncounted_blocks = [bytes(1_000_000) for _ in range(30)]\n", store_history=True)
    assert res.error_in_exec is None
    r: ProfileResult = shell.user_ns["r"]
    assert counting.calls == 0  # the cell ended without the analysis
    assert r.summary.stop_s < 0.5 and r.summary.retained_bytes > 25 * MB
    recs = r.recommendations
    assert counting.calls == 1
    assert list(recs[recs["rule"] == "counting_rule"]["target"]) == ["counted_blocks"]
    assert r.leaks.empty and not r.patterns.empty  # computed in the same run
    assert counting.calls == 1
    # The tables, once built, are what the result holds: a copy made from JSON is equal.
    assert ProfileResult.from_json(r.to_json()) == r
    assert counting.calls == 1


def test_results_read_late_equal_results_read_at_once(counting: CountingRule) -> None:
    def run() -> ProfileResult:
        with MEMORY_PROFILER.session("same work", tracer="sampled") as s:
            counted = [bytes(1_000_000) for _ in range(5)]  # 1 MB blocks: far above the interval, always sampled
            del counted
        assert s.result is not None
        return s.result

    late = run()
    early = run()
    early_tables = {name: early.table(name) for name in early.table_names}
    assert counting.calls == 1
    # The same work read late gives the same tables (the analysis itself looks at the process
    # as it is when read: malloc's free pages, for one, are not the same a moment later).
    early_lines = early_tables["lines"]
    assert list(late.lines["location"]) == list(early_lines["location"])
    for lines in (late.lines, early_lines):  # five 1 MB blocks, always sampled, plus sampled small objects
        assert 5 * MB <= int(lines["peak_bytes"].iloc[0]) < 5.5 * MB
    assert list(late.recommendations.columns) == list(early_tables["recommendations"].columns)
    assert counting.calls == 2
    assert late.summary.stop_s > 0 and abs(late.summary.peak_bytes - early.summary.peak_bytes) < 0.5 * MB


def test_a_session_that_is_never_read_never_analyses(counting: CountingRule) -> None:
    for _ in range(3):
        with MEMORY_PROFILER.session() as s:
            block: Any = bytes(3_000_000)
        del block
    assert s.result is not None and s.result.summary.stop_s > 0
    assert counting.calls == 0


def test_a_temporary_inside_one_statement_is_held_by_its_line_in_a_cell(shell: InteractiveShell) -> None:
    shell.run_cell("import numpy as np", store_history=True)
    res = shell.run_cell(
        "%%memprofile -q -o r\nx = 1\ntotal = float(np.ones(12_500_000).sum())  # 100 MB, freed in the statement\n",
        store_history=True,
    )
    assert res.error_in_exec is None and shell.user_ns["total"] == 12_500_000.0
    r: ProfileResult = shell.user_ns["r"]
    lines = r.lines.set_index("location")
    held = int(lines.loc[f"In[{r.summary.cell}]:3", "peak_bytes"])  # line 1 is the magic
    assert abs(held - 100 * MB) < 0.02 * 100 * MB, held  # one 100 MB block: always sampled, at its size
    assert r.summary.peak_coverage >= 0.95 and int(lines["retained_bytes"].sum()) < MB

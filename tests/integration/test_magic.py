"""%%memprofile in a fresh IPython shell: the cell behaves as if unprofiled."""

from __future__ import annotations

import re
import tracemalloc

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from cgmem_nb import MEMORY_PROFILER, ProfileResult

pytestmark = pytest.mark.integration
MB = 1000**2

QUICKSTART = """%%memprofile -o r
import numpy as np
tmp = np.ones(25_000_000)      # 200 MB, dropped below
keep = [bytes(1_000_000) for _ in range(50)]   # 50 MB kept
del tmp
len(keep)
"""


def _within(value: float, target: float, tolerance: float = 0.05) -> bool:
    return abs(value - target) <= tolerance * target


def test_quickstart_cell_ground_truth(shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    res = shell.run_cell(QUICKSTART, store_history=True)
    assert res.error_in_exec is None
    assert res.result == 50  # the last expression is the cell's Out[n]
    n = res.execution_count
    assert shell.user_ns["Out"][n] == 50
    assert len(shell.user_ns["keep"]) == 50 and "tmp" not in shell.user_ns
    r = shell.user_ns["r"]
    assert isinstance(r, ProfileResult)
    assert _within(r.summary.peak_bytes, 250 * MB)
    assert _within(r.summary.retained_bytes, 50 * MB)
    assert r.summary.cell == n
    lines = r.lines
    top = lines.iloc[0]
    assert top.location == f"In[{n}]:3" and top.code.startswith("tmp = np.ones")
    assert _within(top.peak_bytes, 200 * MB) and top.retained_bytes < MB
    keep_row = lines[lines.lineno == 4].iloc[0]
    assert keep_row.location == f"In[{n}]:4" and _within(keep_row.retained_bytes, 50 * MB)
    out = capsys.readouterr().out
    assert "cgmem_nb memory profile" in out and f"In[{n}]:3" in out


def test_line_magic_profiles_one_statement(shell: InteractiveShell) -> None:
    res = shell.run_cell("x = 1\n%memprofile -q -o r2 data = bytes(30_000_000)\nlen(data)", store_history=True)
    assert res.error_in_exec is None and res.result == 30 * MB
    r2 = shell.user_ns["r2"]
    assert _within(r2.summary.retained_bytes, 30 * MB)
    assert r2.lines.iloc[0].location == f"In[{res.execution_count}]:2"


def test_exception_propagates_after_result_is_stored(shell: InteractiveShell) -> None:
    res = shell.run_cell("%%memprofile -q -o failed\nkeep_me = bytes(5_000_000)\nraise ValueError('planned')\n", store_history=True)
    assert isinstance(res.error_in_exec, ValueError)
    assert shell.user_ns["failed"].summary.error == "ValueError: planned"
    assert len(shell.user_ns["keep_me"]) == 5 * MB  # variables assigned before the error stay
    assert not tracemalloc.is_tracing() and not MEMORY_PROFILER.active_sessions
    again = shell.run_cell("1 + 1", store_history=True)
    assert again.result == 2


def test_traceback_points_at_the_visible_line(shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    shell.run_cell("%%memprofile -q\na = 1\n\nb = a / 0\n", store_history=True)
    text = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)
    assert "In[1], line 4" in text and "----> 4 b = a / 0" in text
    assert "cell_runner.py" not in text and "magics.py" not in text  # the profiler's frames are hidden


def test_keyboard_interrupt_propagates_and_finalizes(shell: InteractiveShell) -> None:
    res = shell.run_cell("%%memprofile -q -o ki\nraise KeyboardInterrupt\n", store_history=True)
    assert isinstance(res.error_in_exec, KeyboardInterrupt)
    assert shell.user_ns["ki"].summary.interrupted is True
    assert not tracemalloc.is_tracing()


def test_functions_defined_in_notebook_are_attributed(shell: InteractiveShell) -> None:
    first = shell.run_cell("def build(n):\n    return [bytes(1_000_000) for _ in range(n)]\n", store_history=True)
    res = shell.run_cell("%%memprofile -q -o r\nblocks = build(20)\n", store_history=True)
    lines = shell.user_ns["r"].lines
    assert lines.iloc[0].location == f"In[{first.execution_count}]:2"
    assert _within(lines.iloc[0].retained_bytes, 20 * MB)
    assert res.error_in_exec is None


def test_functions_defined_in_profiled_cell_work_later(shell: InteractiveShell) -> None:
    shell.run_cell("%%memprofile -q\ndef double(x):\n    return 2 * x\n", store_history=True)
    assert shell.run_cell("double(21)", store_history=True).result == 42
    assert "__cgmem_checkpoint__" not in shell.user_ns


def test_trailing_semicolon_suppresses_output(shell: InteractiveShell) -> None:
    res = shell.run_cell("%%memprofile -q\n41 + 1;\n", store_history=True)
    assert res.result is None


def test_empty_cell_gives_empty_result(shell: InteractiveShell) -> None:
    res = shell.run_cell("%%memprofile -q -o empty\n\n", store_history=True)
    assert res.error_in_exec is None
    empty = shell.user_ns["empty"]
    assert empty.lines.empty and empty.summary.peak_bytes < 100_000


@pytest.mark.parametrize(
    ("options", "needle"),
    [("--limit lots", "'lots'"), ("--depth 0", "depth=0"), ("--depth x", "invalid int"), ("-o 1bad", "'1bad'"), ("--top -1", "--top -1"), ("--bogus", "unrecognized")],
)
def test_bad_options_are_usage_errors_naming_the_value(shell: InteractiveShell, options: str, needle: str) -> None:
    with pytest.raises(UsageError) as info:
        shell.run_cell_magic("memprofile", options, "x = 1\n")
    assert needle in str(info.value)
    assert "usage" in str(info.value).lower() or "unrecognized" in str(info.value)
    assert not MEMORY_PROFILER.active_sessions and not tracemalloc.is_tracing()


def test_limit_accepts_size_strings(shell: InteractiveShell) -> None:
    shell.run_cell('%%memprofile -q -o r --limit "750MiB"\nx = 1\n', store_history=True)
    assert shell.user_ns["r"].summary.limit_bytes == 750 * 1024**2


def test_nested_magic_is_a_sub_session(shell: InteractiveShell) -> None:
    shell.run_cell("def inner():\n    get_ipython().run_cell_magic('memprofile', '-q -o inner_r', 'b = bytes(10_000_000)')\n", store_history=True)
    shell.run_cell("%%memprofile -q -o outer_r\na = bytes(20_000_000)\ninner()\n", store_history=True)
    outer, inner = shell.user_ns["outer_r"], shell.user_ns["inner_r"]
    assert _within(inner.summary.peak_bytes, 10 * MB)
    assert _within(outer.summary.peak_bytes, 30 * MB)


def test_top_level_await_is_a_clear_error(shell: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="top-level `await`"):
        shell.run_cell_magic("memprofile", "-q", "import asyncio\nawait asyncio.sleep(0)\n")
    assert not tracemalloc.is_tracing()


def test_help_comes_from_the_parser(shell: InteractiveShell) -> None:
    doc = shell.find_cell_magic("memprofile").__doc__
    for option in ("-o NAME", "--depth N", "--limit SIZE", "--top N", "--quiet"):
        assert option in doc

"""``%%memprofile --limit``: a hint for a unit written apart, a forgotten unit refused, a limit
below what the kernel holds refused with --guard and warned about without, and a report
whose "Ended by" row names why the cell stopped."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
from IPython.core.error import UsageError

from cgmem_nb import MEMORY_PROFILER
from cgmem_nb.engine import probes
from cgmem_nb.outputs.report import render_text

pytestmark = pytest.mark.integration
MB = 1000**2


def error_of(shell: Any, code: str) -> BaseException:
    result = shell.run_cell(textwrap.dedent(code))
    error = result.error_before_exec or result.error_in_exec
    assert error is not None, code
    return error


@pytest.mark.parametrize("code", ["%%memprofile --limit 500 MB\nx = 1", "%memprofile --limit 500 MB x = 1"])
def test_a_unit_written_apart_gets_a_hint_to_join_or_quote_it(shell: Any, code: str) -> None:
    error = error_of(shell, code)
    assert isinstance(error, UsageError)
    assert "--limit 500MB" in str(error) and '--limit "500 MB"' in str(error)
    assert "x" not in shell.user_ns  # nothing ran


def test_a_bare_small_number_is_a_forgotten_unit(shell: Any) -> None:
    error = error_of(shell, "%%memprofile --limit 5\nx = 1")
    assert isinstance(error, UsageError)
    assert "--limit 5 is 5 bytes: write the unit" in str(error)


def test_a_guarded_limit_the_kernel_already_reached_is_refused(shell: Any) -> None:
    held = probes.rss()
    limit_mb = held // MB // 2
    error = error_of(shell, f"%%memprofile --guard --limit {limit_mb}MB\nx = 1")
    assert isinstance(error, UsageError)
    text = str(error)
    assert "the kernel already holds" in text and "not the cell's growth" in text and "--limit " in text
    assert str(held) not in text  # sizes in MB/GB, not raw bytes


def test_a_limit_below_the_kernel_without_guard_warns_and_runs(shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    limit_mb = probes.rss() // MB // 2
    result = shell.run_cell(f"%%memprofile -q --limit {limit_mb}MB\nx = 1")
    assert result.success and shell.user_ns["x"] == 1
    err = capsys.readouterr().err
    assert "cgmem_nb: warning: --limit" in err and "below the" in err and "already holds" in err
    last = MEMORY_PROFILER.last_result
    assert last is not None and last.summary.limit_bytes == limit_mb * MB


def test_the_guards_interrupt_is_named_in_the_report(shell: Any) -> None:
    limit_mb = (probes.rss() + 300 * MB) // MB
    shell.run_cell(textwrap.dedent(f"""\
        %%memprofile -q --guard --limit {limit_mb}MB
        import time
        chunks = []
        for i in range(400):
            chunks.append(b"x" * 5_000_000)
            time.sleep(0.005)
        """))
    last = MEMORY_PROFILER.last_result
    assert last is not None and last.summary.guard_triggered
    assert len(shell.user_ns["chunks"]) < 120  # stopped near the 300 MB headroom
    ended = [line for line in render_text(last).splitlines() if line.startswith("Ended by")]
    assert len(ended) == 1
    assert "KeyboardInterrupt: the memory guard stopped the cell when the kernel's RSS reached" in ended[0]
    assert f"95% of the {limit_mb / 1000:.1f} GB limit" in ended[0] or f"95% of the {limit_mb}.0 MB limit" in ended[0]
    shell.run_cell("del chunks")

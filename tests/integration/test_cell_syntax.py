"""A profiled cell accepts what IPython accepts in a cell, keeps its line numbers, and
survives ``%reset``; long cells run in time linear in their length."""

from __future__ import annotations

import tracemalloc

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from cgmem_nb import MEMORY_PROFILER
from cgmem_nb.integrations.cell_runner import CHECKPOINT_NAME, prepare_cell
from cgmem_nb.integrations.magics import split_line_statement

pytestmark = pytest.mark.integration
MB = 1000**2


def _run(shell: InteractiveShell, code: str) -> object:
    return shell.run_cell(code, store_history=True)


def test_ipython_syntax_runs_and_lines_keep_their_numbers(shell: InteractiveShell) -> None:
    shell.user_ns["obj"] = [1, 2, 3]
    cell = (
        "%%memprofile -q -o r\n"   # line 1
        "\n"                       # 2: a leading blank line (IPython's transformers drop it)
        "%time small = 1\n"        # 3
        "files = !echo a b\n"      # 4
        "obj?\n"                   # 5
        "%pwd\n"                   # 6
        "big = bytes(6_000_000)\n"  # 7
    )
    res = _run(shell, cell)
    assert res.error_before_exec is None and res.error_in_exec is None
    assert shell.user_ns["small"] == 1 and list(shell.user_ns["files"]) == ["a b"]
    lines = shell.user_ns["r"].lines
    row = lines[lines.code == "big = bytes(6_000_000)"].iloc[0]
    assert row.location == f"In[{res.execution_count}]:7" and abs(row.retained_bytes - 6 * MB) < 0.05 * 6 * MB


def test_a_magic_behaves_as_it_does_unprofiled(shell: InteractiveShell) -> None:
    # Without matplotlib installed `%matplotlib inline` fails the same way with and without the magic.
    plain = _run(shell, "%matplotlib inline\n")
    profiled = _run(shell, "%%memprofile -q\n%matplotlib inline\n")
    assert type(profiled.error_in_exec) is type(plain.error_in_exec)
    assert not isinstance(profiled.error_in_exec, SyntaxError) and profiled.error_before_exec is None


def test_a_second_cell_magic_wraps_the_body(shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    res = _run(shell, "%%memprofile -q -o r\n%%time\nw = bytes(3_000_000)\n")
    assert res.error_in_exec is None and len(shell.user_ns["w"]) == 3 * MB
    assert "Wall time" in capsys.readouterr().out
    assert abs(shell.user_ns["r"].summary.retained_bytes - 3 * MB) < 0.1 * 3 * MB


def test_reset_inside_a_profiled_cell_is_harmless(shell: InteractiveShell) -> None:
    res = _run(shell, "%%memprofile -q -o r\nbefore = 1\n%reset -f\nafter = bytes(2_000_000)\nfor i in range(3):\n    inner = i\nlen(after)\n")
    assert res.error_in_exec is None and res.result == 2 * MB
    assert "before" not in shell.user_ns and shell.user_ns["inner"] == 2
    assert CHECKPOINT_NAME not in shell.user_ns
    import builtins

    assert not hasattr(builtins, CHECKPOINT_NAME)  # the hidden name is gone once the cell ends
    assert MEMORY_PROFILER.last_result is not None and MEMORY_PROFILER.last_result.summary.error is None


def test_line_magic_sample_takes_its_value(shell: InteractiveShell) -> None:
    assert split_line_statement("--sample 64KiB y = 1") == ("--sample 64KiB", "y = 1")
    assert split_line_statement("--sample y = 1") == ("--sample", "y = 1")
    assert split_line_statement("--sample=64KiB -q y = 1") == ("--sample=64KiB -q", "y = 1")
    assert split_line_statement("--sample '64 KiB' y = 1") == ("--sample '64 KiB'", "y = 1")
    res = _run(shell, "%memprofile --sample 64KiB -q -o r y = 1")
    assert res.error_in_exec is None and shell.user_ns["y"] == 1
    summary = shell.user_ns["r"].summary
    assert summary.tracer == "exact" or summary.sample_interval_bytes == 64 * 1024


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("--sample 1 y = 1", "'1'"),
        ("--sample 100 y = 1", "'100'"),
        ("-o '' y = 1", "-o ''"),
        ("-o class y = 1", "-o 'class'"),
        ("--limit 0 y = 1", "limit='0'"),
        ("--limit " + "9" * 400 + " y = 1", "too large"),
        ("--label 'unclosed y = 1", "No closing quotation"),
        ("--top " + "9" * 400 + " y = 1", "--top"),
    ],
)
def test_bad_line_options_are_usage_errors(shell: InteractiveShell, line: str, needle: str) -> None:
    with pytest.raises(UsageError) as info:
        shell.run_line_magic("memprofile", line)
    assert needle in str(info.value) and "usage:" in str(info.value)
    assert not MEMORY_PROFILER.active_sessions and not tracemalloc.is_tracing()


def test_quoted_values_lose_their_quotes(shell: InteractiveShell) -> None:
    _run(shell, "%%memprofile -q -o r --label \"my label\" --limit '750MiB'\nx = 1\n")
    summary = shell.user_ns["r"].summary
    assert summary.label == "my label" and summary.limit_bytes == 750 * 1024**2


def test_a_long_cell_is_one_small_code_object_per_statement(shell: InteractiveShell) -> None:
    """tracemalloc scans a code object's line table per allocation it records: one code
    object for a cell of N statements made an --exact cell cost O(N^2)."""
    n = 3000
    body = "".join(f"x{i} = [0] * 100\n" for i in range(n))
    prepared = prepare_cell(shell, body, full_source="%%memprofile --exact\n" + body, first_line=2)
    assert len(prepared.statements) == n and prepared.last_expr is None
    assert max(len(list(code.co_lines())) for code in prepared.statements) < 10
    assert [min(line for _, _, line in code.co_lines() if line) for code in prepared.statements[:3]] == [2, 3, 4]


def test_a_long_exact_cell_runs(shell: InteractiveShell) -> None:
    n = 2000
    body = "".join(f"x{i} = bytes(1000)\n" for i in range(n))
    res = _run(shell, "%%memprofile --exact -q -o r\n" + body)
    assert res.error_in_exec is None and len(shell.user_ns[f"x{n - 1}"]) == 1000
    r = shell.user_ns["r"]
    assert r.summary.stacks_total >= n * 0.9  # each line its own stack
    cell_lines = r.lines[r.lines.cell == res.execution_count]
    assert len(cell_lines) == 1000  # the table keeps the biggest 1,000 lines
    # bytes(1000) is 1,033 bytes; a few lines also grew the namespace's dict
    assert (cell_lines.retained_bytes == 1033).sum() >= 990


def test_tracemalloc_stopped_by_the_user_is_noted(shell: InteractiveShell) -> None:
    res = _run(
        shell,
        "%%memprofile --exact -q -o r\nimport tracemalloc\na = bytes(2_000_000)\ntracemalloc.stop()\nb = bytes(4_000_000)\n",
    )
    assert res.error_in_exec is None and len(shell.user_ns["b"]) == 4 * MB
    note = shell.user_ns["r"].summary.note or ""
    assert "tracemalloc was stopped" in note and "undercount" in note
    assert not tracemalloc.is_tracing()


def test_syntax_error_starts_no_session(shell: InteractiveShell) -> None:
    before = MEMORY_PROFILER.sessions_finished
    res = _run(shell, "%%memprofile -q\nx = (\n")
    assert isinstance(res.error_in_exec, SyntaxError)
    assert MEMORY_PROFILER.sessions_finished == before and not tracemalloc.is_tracing()

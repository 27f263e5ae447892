"""The line tables charge memory to the user's code: cell lines and the user's own files
first, whatever the depth of the library call beneath them, with the library calls
folded into ``via``; the front end's own allocations never appear as the user's lines."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import pytest

from cgmem_nb import MEMORY_PROFILER, ProfileResult
from cgmem_nb.outputs.report import render_text

pytestmark = pytest.mark.integration
MB = 1000**2


def profile(shell: Any, body: str) -> ProfileResult:
    result = shell.run_cell("%%memprofile --quiet\n" + textwrap.dedent(body).strip() + "\n", store_history=True)
    assert result.success, result.error_in_exec or result.error_before_exec
    last = MEMORY_PROFILER.last_result
    assert last is not None
    return last


def test_a_deep_pandas_call_is_charged_to_the_cell_line_with_the_library_calls_as_via(shell: Any) -> None:
    shell.run_cell("import numpy as np, pandas as pd\n"
                   "left = pd.DataFrame({'k': np.arange(1_000_000) % 1000, 'v': np.arange(1_000_000, dtype=float)})\n"
                   "right = pd.DataFrame({'k': np.arange(1000), 'w': np.arange(1000, dtype=float)})")
    res = profile(shell, "merged = left.merge(right, on='k')")
    lines = res.lines
    cell = res.summary.cell
    top = lines.iloc[0]
    # The merge's frames are far deeper than the default 12; the bytes still land on the cell's line.
    assert top["location"] == f"In[{cell}]:2", lines[["location", "allocated_bytes"]]
    assert str(top["calls"]).startswith("pandas/core/frame.py:")
    in_cell = lines[lines["cell"] == cell]["allocated_bytes"].sum()
    assert in_cell >= 0.95 * lines["allocated_bytes"].sum()
    # What the merge kept: merged's columns that do not share the inputs' buffers.
    new_bytes = shell.run_cell(
        "import numpy as np\n"
        "sum(c.to_numpy().nbytes for _, c in merged.items()\n"
        "    if not any(np.shares_memory(c.to_numpy(), s.to_numpy()) for _, s in left.items()))"
    ).result
    assert new_bytes >= 8 * MB
    assert 0.8 * new_bytes <= top["retained_bytes"] <= 1.25 * new_bytes + MB
    assert "via pandas/core/frame.py:" in render_text(res)


@pytest.fixture
def user_module(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "mywork.py").write_text("import numpy as np\n\ndef build(n):\n    return np.ones(n)\n")
    sys.path.insert(0, str(tmp_path))
    try:
        yield "mywork"
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("mywork", None)


def test_the_users_own_file_is_a_row_and_user_rows_come_before_library_rows(shell: Any, user_module: str) -> None:
    shell.run_cell(f"import {user_module}, numpy as np\nfrom concurrent.futures import ThreadPoolExecutor\npool = ThreadPoolExecutor(1)")
    try:
        res = profile(shell, f"""
            kept = {user_module}.build(2_000_000)
            big = pool.submit(np.ones, 6_000_000).result()
        """)
    finally:
        shell.run_cell("pool.shutdown()")
    lines = res.lines
    own = lines[lines["location"].str.endswith("mywork.py:4")]
    assert len(own) == 1 and 14 * MB <= own.iloc[0]["retained_bytes"] <= 18 * MB
    # np.ones in a pool thread has no frame of the user's code: a library line (numpy's), after
    # the user's row although it holds three times as much.
    library = lines[lines["location"].str.startswith("numpy/")]
    assert len(library) == 1 and library.iloc[0]["retained_bytes"] >= 40 * MB
    assert own.index[0] < library.index[0]


def test_the_front_ends_allocations_are_not_the_users_lines(shell: Any) -> None:
    shell.run_cell(
        "from concurrent.futures import ThreadPoolExecutor\nfrom jupyter_client.session import Session\n"
        "wire = Session(key=b'k')\npool = ThreadPoolExecutor(1)\n"
        "msg = wire.msg('comm_msg', content={'data': 'x' * 8_000_000})"
    )
    try:
        # The kernel's messaging serializes an 8 MB comm message on a thread of its own
        # (as the panel's updates are), while the cell keeps 10 MB of its own.
        res = profile(shell, """
            sent = pool.submit(wire.serialize, msg).result()
            mine = bytearray(10_000_000)
        """)
    finally:
        shell.run_cell("pool.shutdown()")
    lines = res.lines
    locations = list(lines["location"])
    # The messaging's own lines never show. (The pool's bookkeeping may: on 3.13 a sample can land in
    # concurrent/futures/_base.py as the result is handed over, a stack with no front-end frame.)
    assert not [loc for loc in locations if loc.split("/")[0].split(".")[0] in ("json", "jupyter_client")], locations
    assert len(lines) and lines.iloc[0]["location"] == f"In[{res.summary.cell}]:3"
    assert 9 * MB <= lines.iloc[0]["retained_bytes"] <= 11 * MB
    assert res.summary.profiler_bytes >= 6 * MB  # the serialized message, counted as not the user's

"""%%memprofile through a real Jupyter kernel (nbclient)."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

pytestmark = pytest.mark.notebook
MB = 1000**2


def _run(cells: list[str], allow_errors: bool = False) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    NotebookClient(nb, kernel_name="python3", timeout=120, allow_errors=allow_errors).execute()
    return nb


def _text(cell: nbformat.NotebookNode, output_type: str = "execute_result") -> str:
    return "".join(o["data"]["text/plain"] for o in cell.outputs if o.output_type == output_type)


def test_quickstart_in_a_real_kernel() -> None:
    nb = _run(
        [
            "%load_ext cgmem_nb",
            "%%memprofile -o r\nimport numpy as np\ntmp = np.ones(25_000_000)      # 200 MB, dropped below\n"
            "keep = [bytes(1_000_000) for _ in range(50)]   # 50 MB kept\ndel tmp\nlen(keep)",
            "import json\nprint(json.dumps({k: getattr(r.summary, k) for k in ('peak_bytes', 'retained_bytes', 'cell')}))\n"
            "print(json.dumps(r.lines[['location', 'lineno', 'peak_bytes', 'retained_bytes']].head(2).to_dict('records')))",
            "len(keep), 'tmp' in dir()",
        ]
    )
    magic_cell = nb.cells[1]
    assert _text(magic_cell) == "50"  # the last expression is displayed as Out[n]
    assert magic_cell.outputs[-1]["execution_count"] == magic_cell.execution_count
    report = [o for o in magic_cell.outputs if o.output_type == "display_data"]
    assert report and "text/html" in report[0]["data"] and "text/plain" in report[0]["data"]
    assert "<iframe" not in report[0]["data"]["text/html"].lower()
    stdout = "".join(o.get("text", "") for o in nb.cells[2].outputs if o.output_type == "stream").splitlines()
    summary, lines = json.loads(stdout[0]), json.loads(stdout[1])
    n = magic_cell.execution_count
    assert summary["cell"] == n
    assert abs(summary["peak_bytes"] - 250 * MB) <= 0.05 * 250 * MB
    assert abs(summary["retained_bytes"] - 50 * MB) <= 0.05 * 50 * MB
    assert lines[0]["location"] == f"In[{n}]:3" and abs(lines[0]["peak_bytes"] - 200 * MB) <= 0.05 * 200 * MB
    assert lines[1]["location"] == f"In[{n}]:4" and abs(lines[1]["retained_bytes"] - 50 * MB) <= 0.05 * 50 * MB
    assert _text(nb.cells[3]) == "(50, False)"


def test_error_in_profiled_cell_fails_the_cell_and_keeps_the_kernel() -> None:
    with pytest.raises(CellExecutionError, match="planned failure"):
        _run(["%load_ext cgmem_nb", "before = 41", "%%memprofile -q -o r\nraise RuntimeError('planned failure')", "before + 1"])
    nb = _run(
        ["%load_ext cgmem_nb", "before = 41", "%%memprofile -q -o r\nraise RuntimeError('planned failure')", "before + 1, r.summary.error"],
        allow_errors=True,
    )
    error_out = [o for o in nb.cells[2].outputs if o.output_type == "error"]
    assert error_out and error_out[0]["ename"] == "RuntimeError"
    assert "line 2" in "".join(error_out[0]["traceback"])
    assert _text(nb.cells[3]) == "(42, 'RuntimeError: planned failure')"

"""A ``--live`` cell saved and converted: the notebook grows by well under 1 MB per cell (no
inline BokehJS left in it), and nbconvert's HTML shows the panel's final picture."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter

pytestmark = pytest.mark.notebook
MB = 1000**2

CELLS = [
    "%load_ext cgmem_nb",
    "%%memprofile --live -q\nimport time\nx = bytearray(60_000_000)\ntime.sleep(1.0)",
    "%%memprofile --live -q\ny = bytearray(30_000_000)\ntime.sleep(0.5)",
]


def test_live_cells_leave_a_small_notebook_and_a_static_picture_in_html(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS[:1]]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    empty = tmp_path / "empty.ipynb"
    nbformat.write(nb, empty)

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    saved = tmp_path / "live.ipynb"
    nbformat.write(nb, saved)

    growth = saved.stat().st_size - empty.stat().st_size
    assert growth < 2 * 1 * MB / 4, f"two --live cells added {growth} bytes"  # < 0.25 MB per cell
    text = saved.read_text()
    assert "application/vnd.bokehjs_load" not in text and "Bokeh.set_log_level" not in text

    pictures = [o for c in nb.cells[1:] for o in c.outputs if "cgmem-static-panel" in o.get("data", {}).get("text/html", "")]
    assert len(pictures) == 2
    body, _ = HTMLExporter().from_notebook_node(nb)
    assert body.count('class="cgmem-static-panel"') == 2
    svgs = re.findall(r'<svg [^>]*>.*?</svg>', body, flags=re.S)
    assert len(svgs) == 2 and all("<polyline" in s for s in svgs)
    # The first cell kept 60 MB: its picture's peak label and final figures say so.
    first = body[body.index('class="cgmem-static-panel"'):]
    match = re.search(r"traced peak</span> <b[^>]*>([\d.]+) MB</b>", first)
    assert match and 55 <= float(match.group(1)) <= 70, first[:2000]
    assert "[final]" in first

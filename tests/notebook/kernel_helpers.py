"""Run cell sources through a real Jupyter kernel (nbformat + nbclient) and read what they printed."""

from __future__ import annotations

import json
from typing import Any, Sequence

import nbformat
from nbclient import NotebookClient


def build_notebook(cells: Sequence[str]) -> nbformat.NotebookNode:
    """A notebook with one code cell per source."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def execute(cells: Sequence[str], *, allow_errors: bool = False, timeout: int = 120) -> nbformat.NotebookNode:
    """Execute ``cells`` in a fresh ``python3`` kernel and return the executed notebook."""
    nb = build_notebook(cells)
    NotebookClient(nb, kernel_name="python3", timeout=timeout, allow_errors=allow_errors).execute()
    return nb


def stdout(cell: Any) -> str:
    """Everything the cell printed on stdout."""
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream" and o.get("name") == "stdout")


def json_line(cell: Any, marker: str = "JSON:") -> Any:
    """The JSON value the cell printed after ``marker`` (``print("JSON:" + json.dumps(x))``)."""
    for line in stdout(cell).splitlines():
        if line.startswith(marker):
            return json.loads(line[len(marker):])
    raise AssertionError(f"no line starting with {marker!r} in the cell's output:\n{stdout(cell)}")


def errors(nb: nbformat.NotebookNode) -> list[str]:
    """``ename: evalue`` of every error output in the notebook."""
    return [f"{o['ename']}: {o['evalue']}" for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]

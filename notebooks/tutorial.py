"""What every tutorial builder shares: cells, and building, running and writing a notebook.

Each tutorial ``notebooks/NN-name.ipynb`` is made by ``notebooks/make_NN_name.py``
(run it from anywhere: ``.venv/bin/python notebooks/make_03_hunting_a_leak.py``),
which lists its cells and calls :func:`main`. The notebook is executed top to
bottom in a fresh ``python3`` kernel with nbclient, so its committed outputs are
real; inline BokehJS and saved widget state are stripped (the committed file
stays small, and the live panel's stable text form is what nbval compares).
Cells whose output changes between runs say so with ``# NBVAL_IGNORE_OUTPUT``
(``varies=True``) or the ``nbval-ignore-output`` tag, and the rest are compared
by ``pytest --nbval`` after ``notebooks/nbval-sanitize.cfg`` has masked byte
counts and times.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
IGNORE = "# NBVAL_IGNORE_OUTPUT\n"


def md(text: str) -> Any:
    """A markdown cell."""
    return nbformat.v4.new_markdown_cell(text.strip())


def code(text: str, *tags: str, varies: bool = False) -> Any:
    """A code cell; ``varies=True`` marks its output as changing between runs."""
    cell = nbformat.v4.new_code_cell((IGNORE if varies else "") + text.strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def _is_bokehjs(output: Any) -> bool:
    data = output.get("data", {})
    return "application/vnd.bokehjs_load.v0+json" in data or "application/javascript" in data


def strip(nb: Any) -> None:
    """Drop inline BokehJS and saved widget state from an executed notebook."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not _is_bokehjs(o)]
            for output in cell.outputs:
                output.pop("transient", None)


def build(name: str, cells: Sequence[Any], *, timeout: int = 120) -> Path:
    """Execute ``cells`` as the notebook ``name`` (in this folder) and write it; returns its path."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.from_dict(dict(c)) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    client = NotebookClient(
        nb, kernel_name="python3", timeout=timeout, resources={"metadata": {"path": str(HERE)}}, record_timing=False
    )
    client.execute()
    nb.metadata["language_info"] = {"name": "python"}
    strip(nb)
    path = HERE / name
    nbformat.write(nb, path)
    return path


def main(name: str, cells: Sequence[Any]) -> int:
    """Build one tutorial (the ``if __name__ == "__main__"`` of every builder)."""
    sys.stdout.write(f"wrote {build(name, cells).relative_to(HERE.parent)}\n")
    return 0

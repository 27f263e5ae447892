"""``make demo`` (``python -m cgmem_nb.demo``): run the quickstart notebook in a real kernel.

Executes ``notebooks/01-quickstart.ipynb`` with nbclient on the ``python3`` kernel,
writes the executed notebook and an HTML rendering under ``build/``, and prints
the quickstart's summary table (the cell tagged ``summary``) in the terminal.
nbclient and nbconvert come with the ``test`` extra.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "01-quickstart.ipynb"
BUILD = ROOT / "build"


def _needs(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise SystemExit(
            f"the demo needs {module}: install it with `pip install -e '.[jupyter,test]'` (or run `make demo`)"
        ) from None


def tagged_output(nb: Any, tag: str) -> str | None:
    """The text/plain result of the first code cell tagged ``tag``."""
    for cell in nb.cells:
        if cell.cell_type == "code" and tag in cell.get("metadata", {}).get("tags", []):
            for output in cell.get("outputs", []):
                text = output.get("data", {}).get("text/plain")
                if text:
                    return str(text)
    return None


def run(notebook: Path = NOTEBOOK, build: Path = BUILD, kernel: str = "python3") -> int:
    """Execute ``notebook``, write it and its HTML under ``build``, print the summary."""
    nbformat = _needs("nbformat")
    nbclient = _needs("nbclient")
    nbconvert = _needs("nbconvert")
    if not notebook.is_file():
        print(f"demo: notebook {notebook} not found", file=sys.stderr)
        return 2
    nb = nbformat.read(notebook, as_version=4)
    print(f"Executing {notebook.relative_to(ROOT) if notebook.is_relative_to(ROOT) else notebook} in a '{kernel}' kernel ...")
    client = nbclient.NotebookClient(
        nb, kernel_name=kernel, timeout=300, resources={"metadata": {"path": str(notebook.parent)}}
    )
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        print(f"demo: a cell of the quickstart failed:\n{exc}", file=sys.stderr)
        return 1
    build.mkdir(parents=True, exist_ok=True)
    out_nb = build / notebook.name
    nbformat.write(nb, out_nb)
    body, _ = nbconvert.HTMLExporter().from_notebook_node(nb)
    out_html = out_nb.with_suffix(".html")
    out_html.write_text(body, encoding="utf-8")
    print(f"Wrote {out_nb}")
    print(f"Wrote {out_html}")
    summary = tagged_output(nb, "summary")
    if summary is None:
        print("demo: the quickstart has no cell tagged 'summary'", file=sys.stderr)
        return 1
    print("\nQuickstart summary (the cell's peak, kept and allocated memory):")
    print(summary)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m cgmem_nb.demo", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--notebook", type=Path, default=NOTEBOOK, help="notebook to run (default: the quickstart)")
    parser.add_argument("--build", type=Path, default=BUILD, help="output folder (default: build/)")
    parser.add_argument("--kernel", default="python3", help="kernel name (default: python3)")
    args = parser.parse_args(argv)
    return run(args.notebook.resolve(), args.build.resolve(), args.kernel)


if __name__ == "__main__":
    raise SystemExit(main())

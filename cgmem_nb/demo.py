"""``make demo`` (``python -m cgmem_nb.demo``): run the quickstart notebook in a real kernel.

Executes ``notebooks/01-quickstart.ipynb`` with nbclient on the ``python3`` kernel,
writes the executed notebook and an HTML rendering under ``build/``, and prints
the quickstart's summary table (the cell tagged ``summary``) in the terminal.
nbclient and nbconvert come with the ``test`` extra.

The notebook is looked for in ``notebooks/`` of the working directory, then of
the source checkout this package runs from (an editable install); an installed
package carries no notebooks, so elsewhere give ``--notebook PATH``. Output goes
to ``build/`` under the working directory (never next to an installed package).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

#: The quickstart, relative to a checkout of the project.
QUICKSTART = Path("notebooks") / "01-quickstart.ipynb"
#: The checkout this package runs from, when it runs from one (an editable install or a clone).
CHECKOUT = Path(__file__).resolve().parent.parent


def find_notebook(cwd: Path | None = None) -> Path | None:
    """The quickstart in the working directory's checkout, else in this package's checkout, else None."""
    for root in (cwd or Path.cwd(), CHECKOUT):
        candidate = root / QUICKSTART
        if candidate.is_file():
            return candidate
    return None


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


def run(notebook: Path | None = None, build: Path | None = None, kernel: str = "python3") -> int:
    """Execute ``notebook`` (default: the quickstart), write it and its HTML under ``build``
    (default: ``build/`` in the working directory), print the summary."""
    if notebook is None:
        notebook = find_notebook()
        if notebook is None:
            print(
                f"demo: the quickstart ({QUICKSTART}) is neither under the working directory nor next to this "
                "package (an installed cgmem_nb carries no notebooks): run it from a checkout of cgmem_nb "
                "(`make demo`) or give the notebook with --notebook PATH",
                file=sys.stderr,
            )
            return 2
    elif not notebook.is_file():
        print(f"demo: notebook {notebook} not found: give the path of a .ipynb file with --notebook PATH", file=sys.stderr)
        return 2
    build = Path.cwd() / "build" if build is None else build
    nbformat = _needs("nbformat")
    nbclient = _needs("nbclient")
    nbconvert = _needs("nbconvert")
    nb = nbformat.read(notebook, as_version=4)
    print(f"Executing {notebook} in a '{kernel}' kernel ...")
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
    parser.add_argument("--notebook", type=Path, help=f"notebook to run (default: {QUICKSTART} of a checkout)")
    parser.add_argument("--build", type=Path, help="output folder (default: build/ in the working directory)")
    parser.add_argument("--kernel", default="python3", help="kernel name (default: python3)")
    args = parser.parse_args(argv)
    return run(
        args.notebook.resolve() if args.notebook else None, args.build.resolve() if args.build else None, args.kernel
    )


if __name__ == "__main__":
    raise SystemExit(main())

"""The tutorial notebooks still produce their committed outputs (``pytest --nbval``).

Each notebook runs in a pytest subprocess with nbval, in a fresh kernel of this
environment, with ``notebooks/nbval-sanitize.cfg`` masking byte counts, times,
addresses and per-run paths. Cells whose output varies say so with
``# NBVAL_IGNORE_OUTPUT`` and a reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.notebook

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
SANITIZE = ROOT / "notebooks" / "nbval-sanitize.cfg"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_tutorial_outputs_match_nbval(notebook: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable, "-m", "pytest", "--nbval", str(notebook), "--nbval-current-env",
            "--nbval-sanitize-with", str(SANITIZE), "-p", "no:cacheprovider", "-q", "--color=no",
            "-o", "addopts=", "--timeout=300",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, f"nbval failed for {notebook.name}:\n{proc.stdout[-6000:]}\n{proc.stderr[-2000:]}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_tutorial_is_committed_with_outputs_and_without_bokehjs(notebook: Path) -> None:
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(c.get("execution_count") for c in code), "commit the notebook executed"
    assert any(c.get("outputs") for c in code)
    text = notebook.read_text(encoding="utf-8")
    assert "application/javascript" not in text or len(text) < 1_000_000
    assert "Bokeh.set_log_level" not in text and "bokeh.min.js" not in text, "no inline BokehJS in committed outputs"
    assert notebook.stat().st_size < 1_000_000


def test_every_tutorial_has_one_builder_named_after_it() -> None:
    builders = sorted(p.name for p in (ROOT / "notebooks").glob("*.py"))
    expected = [f"make_{nb.stem.replace('-', '_')}.py" for nb in NOTEBOOKS]
    assert builders == sorted([*expected, "tutorial.py"]), "one builder per tutorial, make_NN_name.py"

"""``make demo``: the quickstart runs in a real kernel and leaves its files under build/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.notebook


def test_demo_writes_notebook_and_html_and_prints_the_summary(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cgmem_nb.demo", "--build", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "01-quickstart.ipynb").stat().st_size > 1000
    html = (tmp_path / "01-quickstart.html").read_text(encoding="utf-8")
    assert "cgmem_nb memory profile" in html and "<html" in html
    rows = {line.split()[0]: float(line.split()[1]) for line in proc.stdout.splitlines() if line.endswith(tuple("0123456789")) and "_bytes" in line}
    # The quickstart's cell: a 200 MB temporary and 50 MB kept.
    assert abs(rows["peak_bytes"] - 250) <= 13 and abs(rows["retained_bytes"] - 50) <= 3, proc.stdout


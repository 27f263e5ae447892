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


def test_an_installed_package_without_notebooks_says_how_to_run_the_demo(tmp_path: Path) -> None:
    # An installed cgmem_nb (a copy of the package alone, as in site-packages) has no ../notebooks.
    import shutil

    import cgmem_nb

    site = tmp_path / "site-packages"
    shutil.copytree(Path(cgmem_nb.__file__).parent, site / "cgmem_nb", ignore=shutil.ignore_patterns("__pycache__"))
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "cgmem_nb.demo"],
        capture_output=True, text=True, timeout=120, cwd=work, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "--notebook PATH" in proc.stderr and "checkout" in proc.stderr
    assert not (tmp_path / "build").exists() and not (work / "build").exists()  # nothing written anywhere


def test_the_demo_finds_the_quickstart_in_the_working_directory(tmp_path: Path) -> None:
    from cgmem_nb import demo

    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01-quickstart.ipynb").write_text("{}", encoding="utf-8")
    assert demo.find_notebook(tmp_path) == tmp_path / "notebooks" / "01-quickstart.ipynb"
    assert demo.find_notebook(tmp_path / "elsewhere") == demo.CHECKOUT / "notebooks" / "01-quickstart.ipynb"

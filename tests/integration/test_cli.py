"""``python -m cgmem_nb``: scripts run in subprocesses with allocations of known size."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SCRIPT = textwrap.dedent(
    """\
    import sys
    print("argv", sys.argv[1:], __name__)
    tmp = bytes(60_000_000)
    del tmp
    keep = [bytes(1_000_000) for _ in range(20)]
    if len(sys.argv) > 1 and sys.argv[1] == "raise":
        raise ValueError("the script failed")
    if len(sys.argv) > 1 and sys.argv[1].isdigit():
        sys.exit(int(sys.argv[1]))
    """
)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cgmem_nb", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def _mb(text: str, label: str) -> float:
    match = re.search(rf"{label}\s+\+?([0-9.]+) MB", text)
    assert match, f"no '{label} N MB' in:\n{text}"
    return float(match.group(1))


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "work.py"
    path.write_text(SCRIPT)
    return path


def test_run_reports_peak_retained_and_lines_of_the_script(script: Path) -> None:
    proc = _cli("run", "work.py", "--flag", "x", cwd=script.parent)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "argv ['--flag', 'x'] __main__"
    report = proc.stderr
    assert "cgmem_nb memory profile — work.py" in report
    assert abs(_mb(report, "Peak \\(traced\\)") - 60) <= 3
    assert abs(_mb(report, "Retained") - 20) <= 1  # the script's globals are alive at its end
    # location, peak, retained, allocated, native (none: bytes objects are Python's), from
    # (the native and from columns appear when the native hooks ran: Linux, by default)
    assert re.search(r"work\.py:3\s+60\.0 MB\s+0 B\s+60\.0 MB\s+(0 B\s+python\s+)?tmp = bytes\(60_000_000\)", report), report
    assert re.search(r"work\.py:5\s+.*20\.0 MB\s+.*keep = \[bytes", report), report


def test_json_and_html_are_written_and_report_reads_the_json(script: Path) -> None:
    proc = _cli("run", "--json", "out/r.json", "--html", "out/r.html", "--top", "3", "work.py", cwd=script.parent)
    assert proc.returncode == 0, proc.stderr
    saved = json.loads((script.parent / "out" / "r.json").read_text())
    assert saved["format"] == "cgmem_nb.ProfileResult"
    assert abs(saved["summary"]["peak_bytes"] - 60_000_000) < 3_000_000
    page = (script.parent / "out" / "r.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "tmp = bytes(60_000_000)" in page
    shown = _cli("report", "out/r.json", "--top", "1", "--html", "again.html", cwd=script.parent)
    assert shown.returncode == 0, shown.stderr
    assert "Top 1 lines by memory held at the peak" in shown.stdout
    assert abs(_mb(shown.stdout, "Peak \\(traced\\)") - 60) <= 3
    assert (script.parent / "again.html").read_text().count("tmp = bytes(60_000_000)") == 1


def test_exit_status_is_the_scripts_own(script: Path) -> None:
    proc = _cli("run", "work.py", "7", cwd=script.parent)
    assert proc.returncode == 7
    assert "cgmem_nb memory profile" in proc.stderr


def test_uncaught_exception_exits_1_with_the_scripts_traceback(script: Path) -> None:
    proc = _cli("run", "work.py", "raise", cwd=script.parent)
    assert proc.returncode == 1
    assert 'File "' in proc.stderr and "work.py\", line 7, in <module>" in proc.stderr
    assert "ValueError: the script failed" in proc.stderr
    assert "runpy" not in proc.stderr and "cli.py" not in proc.stderr
    assert re.search(r"Ended by\s+ValueError: the script failed", proc.stderr), proc.stderr


def test_limit_exceeded_exits_4_naming_limit_and_peak(script: Path) -> None:
    proc = _cli("run", "--limit", "25 MB", "-q", "work.py", cwd=script.parent)
    assert proc.returncode == 4
    assert re.search(r"work\.py was limited to 25\.0 MB but peaked at 6[0-2]\.\d MB", proc.stderr), proc.stderr
    assert "cgmem_nb memory profile" not in proc.stderr  # -q
    assert _cli("run", "--limit", "100 MB", "-q", "work.py", cwd=script.parent).returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "--limit", "lots", "work.py"), "limit 'lots' is not a size"),
        (("run", "missing.py"), "no script 'missing.py'"),
        (("run", "--bogus", "work.py"), "unrecognized arguments"),
        (("report", "missing.json"), "could not read saved result 'missing.json'"),
        (("report", "work.py"), "not valid JSON"),
    ],
)
def test_usage_errors_exit_2_and_say_what_was_wrong(script: Path, args: tuple[str, ...], message: str) -> None:
    proc = _cli(*args, cwd=script.parent)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr


def test_sample_runs_and_names_its_tracer(script: Path) -> None:
    proc = _cli("run", "--sample", "work.py", cwd=script.parent)
    assert proc.returncode == 0, proc.stderr
    tracer = re.search(r"Tracer\s+(\w+)", proc.stderr)
    assert tracer is not None
    if tracer.group(1) == "exact":  # the sampled tracer is not built in this environment
        assert "the sampled tracer is not available" in proc.stderr
    else:
        assert tracer.group(1) == "sampled"
        assert abs(_mb(proc.stderr, "Peak \\(traced\\)") - 60) <= 12

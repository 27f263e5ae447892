"""The guide builds with warnings as errors, and its generated pages come from the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]


def test_docs_build_without_warnings_and_generate_reference_pages(tmp_path: Path) -> None:
    out = ROOT / "build" / "docs"
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "-d", str(tmp_path / "doctrees"), "docs", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    magics = (out / "generated" / "magics.html").read_text(encoding="utf-8")
    from cgmem_nb.integrations.magics import CgmemMagics

    for action in CgmemMagics.memprofile.parser._actions:  # type: ignore[attr-defined]
        if action.help and action.option_strings:
            assert action.option_strings[-1] in magics, action.option_strings
    schemas = (out / "generated" / "schemas.html").read_text(encoding="utf-8")
    assert "peak_bytes" in schemas and "timeline" in schemas
    config = (out / "generated" / "configuration.html").read_text(encoding="utf-8")
    assert "MEMORY_PROFILER_LIMIT_MB" in config and "stack_trace_depth" in config
    api = (out / "generated" / "api.html").read_text(encoding="utf-8")
    assert "ProfileResult" in api and "from_json" in api
    assert "--memprofile-json" in (out / "pytest-plugin.html").read_text(encoding="utf-8")
    assert "exit codes" in (out / "cli.html").read_text(encoding="utf-8")

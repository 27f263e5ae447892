"""The extension's stub (_sampler.pyi) says what the compiled module has."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cgmem_nb.engine import sampled

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
@pytest.mark.skipif(sampled.get_tracer() is None, reason="the extension is not built here")
@pytest.mark.skipif(
    sys.version_info[:2] != (3, 11),
    reason="stubtest type-checks the whole package, which is checked on the reference Python (make typecheck)",
)
def test_the_stub_matches_the_extension() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "--mypy-config-file", "pyproject.toml", "cgmem_nb.engine._sampler"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]

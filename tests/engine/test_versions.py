"""The one table of supported versions, and everything that must agree with it."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from cgmem_nb.engine import sampled, tracers, versions

ROOT = Path(__file__).resolve().parents[2]
HERE = (sys.version_info.major, sys.version_info.minor)


def test_the_sampler_runs_wherever_the_table_says_it_builds() -> None:
    # The extension is optional at install time; this is what stops a failed build from
    # passing CI silently on the exact tracer.
    if versions.sampler_builds():
        assert sampled.unavailable_reason() is None
        assert set(tracers.available_tracers()) == {"exact", "sampled"}
    else:
        assert sampled.unavailable_reason() is not None


def test_this_interpreter_is_in_the_table() -> None:
    row = versions.lookup(HERE)
    assert row is not None and row.label == f"{HERE[0]}.{HERE[1]}"


def test_build_gate_and_hex_range_follow_the_table() -> None:
    for row in versions.VERSIONS:
        assert versions.sampler_builds(row.version, free_threaded=False) is row.sampled
        assert not versions.sampler_builds(row.version, free_threaded=True)
    first, last = versions.VERSIONS[0].version, versions.VERSIONS[-1].version
    assert not versions.sampler_builds((first[0], first[1] - 1), free_threaded=False)
    assert not versions.sampler_builds((last[0], last[1] + 1), free_threaded=False)
    low, high = versions.sampler_hex_range()
    assert low == (first[0] << 24) | (first[1] << 16) and high == (last[0] << 24) | ((last[1] + 1) << 16)


def test_setup_py_builds_from_the_table() -> None:
    # setup.py loads versions.py by path (cgmem_nb is not importable before it is
    # installed) and passes the range to compat.h, which refuses everything else.
    setup = (ROOT / "setup.py").read_text()
    assert 'versions["sampler_builds"]()' in setup and "CG_MIN_HEX" in setup and "CG_MAX_HEX" in setup
    compat = (ROOT / "cgmem_nb" / "engine" / "csrc" / "compat.h").read_text()
    assert "PY_VERSION_HEX < CG_MIN_HEX || PY_VERSION_HEX >= CG_MAX_HEX" in compat


def test_requires_python_is_the_first_row() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == f">={versions.VERSIONS[0].label}"


def test_ci_runs_every_version_the_table_marks(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "cgmem_nb" / "engine" / "versions.py"), "--ci"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    assert out == [v.label for v in versions.VERSIONS if v.ci]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "cgmem_nb/engine/versions.py --ci" in ci and "make test" in ci
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test-python:", makefile, re.M), "the Makefile runs the suite on another CPython"


def test_docs_and_readme_state_the_table() -> None:
    labels = [v.label for v in versions.VERSIONS if v.sampled]
    statement = "CPython " + ", ".join(labels[:-1]) + " and " + labels[-1]
    assert statement in (ROOT / "README.md").read_text()
    page = (ROOT / "docs" / "versions.md").read_text()
    assert "{include} generated/versions-table.md" in page
    table = versions.versions_markdown()
    for row in versions.VERSIONS:
        assert f"| {row.label} |" in table
    assert "free-threaded" in table and "cpython#126315" in table


def test_reasons_name_the_version_and_the_loss() -> None:
    message = sampled.fallback_message("the sampled tracer supports CPython 3.11-3.14; this is CPython 3.99.0")
    assert "3.99.0" in message
    if versions.is_free_threaded():
        assert "record no allocations" in message and "process figures" in message
    else:
        assert "exact tracer (tracemalloc)" in message and "slower" in message and "thread" in message
    if not versions.is_free_threaded():
        row = versions.lookup(HERE)
        assert versions.exact_unsupported_reason() is None
        assert (versions.sampled_unsupported_reason() is None) == (row is not None and row.sampled)


@pytest.mark.skipif(versions.is_free_threaded(), reason="a free-threaded build: see test_free_threaded.py")
def test_the_exact_tracer_is_available_with_the_gil() -> None:
    assert "exact" in tracers.available_tracers()

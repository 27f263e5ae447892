"""The outputs nbval compares hold no measured number (a flaky tutorial once broke CI:
a sampled peak of 35.0 MB in one run, 34.0 MB in the next).

This reads every committed tutorial, applies ``notebooks/nbval-sanitize.cfg`` as nbval does,
and fails on what is left that looks measured: a number with a unit of size, time or share
(``35.0MB``, ``0.3 s``, ``12%``), a long byte count that is not round (``250001650``), or a
number in a printed DataFrame column whose name says it is a size or a time (``peak_mb``:
what broke CI was ``35.0`` under such a header, which no sanitizer pattern can know).
Cells marked ``# NBVAL_IGNORE_OUTPUT`` or ``# NBVAL_SKIP`` (or tagged ``nbval-ignore-output`` /
``nbval-skip``, for a cell magic that must be the cell's first line) are not compared, so not read. A
cell that shows measured figures on purpose, rounded far from any rounding boundary, says why
with ``# nbval-stable: REASON`` (the quickstart's whole MB of exact 200 MB and 1 MB allocations);
then only its DataFrame columns are exempt, never a number with a unit.
"""

from __future__ import annotations

import configparser
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
COMPARED = ("text/plain", "text/html")
UNITS = re.compile(r"\d[\d,]*(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB|bytes|%|s|ms|µs|us)(?![A-Za-z0-9])")
LONG_COUNT = re.compile(r"(?<![\w.\[])\d{7,}(?![\w.\]])")
MEASURED_COLUMN = re.compile(r"(?i)(bytes|_mb|_kb|_gb|mb$|_s$|seconds|duration|peak|retained|rss|allocated|usage|rate)")
NUMBER = re.compile(r"^[+-]?\d[\d,]*(\.\d+)?(e[+-]?\d+)?$")


def _sanitizers() -> list[tuple[re.Pattern[str], str]]:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ROOT / "notebooks" / "nbval-sanitize.cfg")
    return [(re.compile(cfg[s]["regex"]), cfg[s]["replace"].strip("'")) for s in cfg.sections()]


def measured_looking(text: str) -> list[str]:
    """What is left in ``text`` after sanitizing that looks like a measured figure."""
    for pattern, replacement in _sanitizers():
        text = pattern.sub(replacement, text)
    found = [m.group(0) for m in UNITS.finditer(text)]
    found += [m.group(0) for m in LONG_COUNT.finditer(text) if int(m.group(0)) % 1000]
    return found + measured_columns(text)


def measured_columns(text: str) -> list[str]:
    """Numbers under a size- or time-named column of a DataFrame printed as text."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return []
    header = lines[0]
    found = []
    for row in lines[1:]:
        if len(row) != len(header) + 1:  # the index comes first
            continue
        for name, value in zip(header, row[1:]):
            if MEASURED_COLUMN.search(name) and NUMBER.match(value):
                found.append(f"{name}={value}")
    return found


def test_the_scanner_catches_what_broke_ci() -> None:
    assert measured_looking("Peak (traced)  35.0 MB (estimated)") == []  # masked by the sanitizer
    assert measured_looking("peak 35.0MB") == []
    assert measured_looking("pressure 12% of the limit") == ["12%"]
    assert measured_looking("peak_bytes=250001650") == ["250001650"]
    assert measured_looking("(1000000, 24)") == []
    table = "    tracer  interrupted  peak_mb\n0  sampled        False     35.0"  # the output that broke CI
    assert measured_looking(table) == ["peak_mb=35.0"]
    assert measured_looking("    tracer  interrupted\n0  sampled        False") == []


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_compared_outputs_hold_no_measured_number(notebook: Path) -> None:
    problems = []
    for index, cell in enumerate(json.loads(notebook.read_text(encoding="utf-8"))["cells"]):
        source = "".join(cell.get("source", ""))
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] != "code" or "NBVAL_IGNORE_OUTPUT" in source or "NBVAL_SKIP" in source:
            continue
        if "nbval-ignore-output" in tags or "nbval-skip" in tags:  # nbval honours the tags as the comments
            continue
        stable = re.search(r"# nbval-stable: \S", source) is not None
        for output in cell.get("outputs", []):
            texts = ["".join(output.get("text", ""))] if output.get("output_type") == "stream" else []
            texts += ["".join(output.get("data", {}).get(mime, "")) for mime in COMPARED]
            for text in texts:
                hits = measured_looking(text)
                if stable:
                    hits = [hit for hit in hits if hit not in measured_columns(text)]
                problems += [f"cell {index}: {hit!r}" for hit in hits]
    assert not problems, f"{notebook.name} shows measured numbers that nbval compares: {problems[:10]}"

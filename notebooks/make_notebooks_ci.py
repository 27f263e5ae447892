"""Build and execute tutorials 01, 02 and 07 (``python notebooks/make_notebooks_ci.py [01 02 07]``).

Each notebook is written with nbformat from the cells below, executed in a real
kernel with nbclient (so the committed outputs are real) and saved in place.
Cells whose output changes between runs carry a ``# NBVAL_IGNORE_OUTPUT`` line
and say why; the rest are compared by ``pytest --nbval`` after the
sanitizer ``notebooks/nbval-sanitize.cfg`` has masked byte counts and times.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent


def md(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(text.strip())


def code(text: str, *tags: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(text.strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


QUICKSTART = [
    md(
        """
# Quickstart: where did my cell's memory go?

`cgmem_nb` profiles memory inside the kernel you are already using. Put `%%memprofile` on a
cell and you get back what the cell allocated and where (the line of `In[n]`), its peak, what it
kept, and pandas DataFrames to dig further. Everything below runs on data the notebook makes itself.
"""
    ),
    code(
        """
%load_ext cgmem_nb
import numpy as np
"""
    ),
    md(
        """
## Profile a cell

This cell builds a 200 MB temporary array, keeps 50 MB of bytes objects and drops the temporary.
The cell still behaves as without the magic: its last expression is displayed as `Out[n]` and
`keep` stays in the namespace. `-o r` stores the `ProfileResult` as `r`; `--top 2` keeps the
report short.
"""
    ),
    code(
        """
%%memprofile -o r --top 2
tmp = np.ones(25_000_000)      # 200 MB, dropped below
keep = [bytes(1_000_000) for _ in range(50)]   # 50 MB kept
del tmp
len(keep)
"""
    ),
    md(
        """
The report says the cell peaked at about 250 MB (the temporary and the kept list were alive
together) and kept about 50 MB. The two lines responsible are named by their place in the cell:
line 2 made the temporary, line 3 made what was kept.

## The summary, in MB

`r.summary` is a read-only mapping of headline figures in bytes. A small table in MB:
"""
    ),
    code(
        """
import pandas as pd

figures = ["peak_bytes", "retained_bytes", "allocated_bytes"]
summary = pd.DataFrame({"MB": [round(r.summary[k] / 1e6) for k in figures]}, index=figures)
summary
""",
        "summary",
    ),
    md(
        """
## Memory by line

`r.lines` has one row per source line, biggest at the peak first. `peak_bytes` is what the line
held at the moment of the cell's peak, `retained_bytes` what was still alive at the end.
"""
    ),
    code(
        """
# NBVAL_IGNORE_OUTPUT
# (exact byte counts move by a few hundred bytes between runs)
r.lines.head()
"""
    ),
    md("Rounded to MB, the story is stable:"),
    code(
        """
top = r.lines.head(2)
pd.DataFrame({
    "location": top["location"].str.replace(r"In\\[\\d+\\]", "In[n]", regex=True),
    "code": top["code"],
    "peak MB": (top["peak_bytes"] / 1e6).round(),
    "retained MB": (top["retained_bytes"] / 1e6).round(),
})
"""
    ),
    md(
        """
## By category and over time

`r.categories` groups the same bytes by allocation category (numpy buffers are `Vector`);
`r.timeline` has one RSS reading per monitor tick (every 100 ms by default) while the cell ran.
"""
    ),
    code(
        """
cats = r.categories
cats.assign(peak_MB=(cats["peak_bytes"] / 1e6).round())[["category", "peak_MB"]].head(2)
"""
    ),
    code(
        """
# NBVAL_IGNORE_OUTPUT
# (RSS readings and their times differ on every run)
r.timeline.tail(3)
"""
    ),
    md(
        """
## In plain Python

The same engine works without the magic — in a script, a test or a function:
`with MEMORY_PROFILER.session():` records the block and leaves a `ProfileResult` on the session.
"""
    ),
    code(
        """
from cgmem_nb import MEMORY_PROFILER, format_bytes

def load_blocks(n):
    return [bytearray(100_000) for _ in range(n)]

with MEMORY_PROFILER.session("load_blocks") as s:
    blocks = load_blocks(300)   # 30 MB kept

print("peak", format_bytes(s.result.summary["peak_bytes"]), "| kept", format_bytes(s.result.summary["retained_bytes"]))
print("top line:", s.result.lines.iloc[0]["code"])
"""
    ),
    md(
        """
## Save it, load it back

`to_json()` writes everything (summary and tables); `ProfileResult.from_json()` gives back an
equal result — handy to compare a run before and after a change, or to render it later with
`python -m cgmem_nb report result.json`.
"""
    ),
    code(
        """
import tempfile
from pathlib import Path
from cgmem_nb import ProfileResult

with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "quickstart.json"
    r.to_json(path)
    again = ProfileResult.from_json(path)
again == r
"""
    ),
    md(
        """
Next: [02 — finding the line that made the peak](02-finding-the-peak-line.ipynb), and
[07 — memory gates in CI](07-memory-gates-in-ci.ipynb).
"""
    ),
]


PEAK_LINE = [
    md(
        """
# Finding the line that made the peak

A report pipeline runs out of memory on the full data set, but what it *keeps* is small. The
problem is a peak: some line holds a lot for a moment. `%%memprofile` takes the traced peak and
tells which line held what at that moment — also inside functions defined in the notebook.
"""
    ),
    code(
        """
%load_ext cgmem_nb
import numpy as np
import pandas as pd

rng = np.random.default_rng(7)
sales = pd.DataFrame({
    "store": rng.integers(0, 50, 2_000_000),
    "amount": rng.random(2_000_000) * 100,
    "units": rng.integers(1, 10, 2_000_000),
})
print(f"{len(sales):,} rows, {sales.memory_usage().sum() / 1e6:.0f} MB")
"""
    ),
    md("The pipeline, as first written: a helper that cleans, then a summary per store."),
    code(
        """
def clean(df):
    everything = pd.concat([df, df.iloc[:0]])          # a defensive full copy
    everything["revenue"] = everything["amount"] * everything["units"]
    return everything[everything["revenue"] > 0]

def store_report(df):
    cleaned = clean(df)
    return cleaned.groupby("store")["revenue"].sum()
"""
    ),
    code(
        """
%%memprofile -o before --top 3
report = store_report(sales)
# NBVAL_IGNORE_OUTPUT
# (what each line held at the peak depends on when the peak snapshot lands during the call)
report.shape
"""
    ),
    md(
        """
The cell keeps almost nothing (a 50-row result), yet it peaked well above the size of the data.
`before.lines` names the lines inside `clean` — defined in an earlier cell, so they show as
`In[n]:line` of that cell — with what each held at the peak:
"""
    ),
    code(
        """
# NBVAL_IGNORE_OUTPUT
# (as above: the lines' shares of the peak move a little from run to run)
def in_mb(lines, n=3):
    return pd.DataFrame({
        "location": lines["location"].str.replace(r"In\\[\\d+\\]", "In[n]", regex=True),
        "code": lines["code"],
        "peak MB": (lines["peak_bytes"] / 1e6).round(),
    }).head(n)

in_mb(before.lines)
"""
    ),
    md(
        """
`before.stacks` goes one step further: the whole call chain of each allocation, innermost
first, so a line inside a library call is tied back to the cell that called it.
"""
    ),
    code(
        """
# NBVAL_IGNORE_OUTPUT
# (stacks run through pandas internals, whose exact frames depend on the pandas version)
before.stacks[["location", "stack", "peak_bytes"]].head(3)
"""
    ),
    md(
        """
The defensive copy made by `pd.concat` (line 2 of `clean`) is the biggest holder at the peak.
The revenue column added to that copy (line 3) and the hash table that `groupby` builds inside
pandas come next — the latter is charged to a pandas line because its call chain is deeper than
the 12 frames recorded. All of these are temporaries, which is why the cell keeps almost
nothing. Computing the revenue as a plain Series and filtering once avoids the copy:
"""
    ),
    code(
        """
def store_report_lean(df):
    revenue = df["amount"] * df["units"]
    keep = revenue > 0
    return revenue[keep].groupby(df["store"][keep]).sum()
"""
    ),
    code(
        """
%%memprofile -q -o after
report_lean = store_report_lean(sales)
report_lean.shape
"""
    ),
    code(
        """
from cgmem_nb import format_bytes

assert np.allclose(report.sort_index(), report_lean.sort_index())
print("same answer; peak", format_bytes(before.summary["peak_bytes"]), "->", format_bytes(after.summary["peak_bytes"]))
print("lower peak:", after.summary["peak_bytes"] < 0.7 * before.summary["peak_bytes"])
"""
    ),
    md(
        """
For a one-liner, `%memprofile STATEMENT` does the same on one statement; `-q` hides the report
and the result stays in `MEMORY_PROFILER.last_result`.
"""
    ),
    code(
        """
%memprofile -q -o one report_lean = store_report_lean(sales)
print(round(one.summary["peak_bytes"] / 1e6) <= round(before.summary["peak_bytes"] / 1e6))
"""
    ),
]


GATES = [
    md(
        """
# Memory gates in CI

A notebook finds a memory problem once; a test keeps it fixed. Installing cgmem_nb registers a
pytest plugin (through the `pytest11` entry point), so a test suite can say:

- `@pytest.mark.memlimit("50 MB")` — fail if the test's traced peak goes over 50 MB;
- `@pytest.mark.no_leaks` — run the body a few times and fail if every run keeps more memory;
- the `memprofile` fixture — a running session whose result the test asserts on;
- `--memprofile` — a table of the heaviest tests at the end; `--memprofile-json PATH` — every
  test's figures, to compare two runs.

This notebook writes a small test file and runs pytest on it in a subprocess.
"""
    ),
    code(
        """
import subprocess, sys, tempfile, textwrap
from pathlib import Path

work = Path(tempfile.mkdtemp(prefix="cgmem-gates-"))
(work / "test_pipeline.py").write_text(textwrap.dedent('''
    import pytest

    CACHE = []

    def build(n_mb):
        return bytes(n_mb * 1_000_000)

    @pytest.mark.memlimit("50 MB")
    def test_small_build_stays_under_50_mb():
        assert len(build(20)) == 20_000_000

    @pytest.mark.memlimit("50 MB")
    def test_big_build_goes_over():
        data = build(80)
        assert len(data) == 80_000_000

    @pytest.mark.no_leaks(tolerance="1 MB")
    def test_cache_leaks():
        CACHE.append(build(5))

    def test_measure_with_the_fixture(memprofile):
        kept = build(30)
        result = memprofile.stop()
        assert abs(result.summary["retained_bytes"] - 30_000_000) < 1_000_000
'''))

def pytest(*args):
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--color=no", *args],
                          cwd=work, capture_output=True, text=True)
    return proc.returncode, proc.stdout

print("written", sorted(p.name for p in work.iterdir()))
"""
    ),
    md(
        """
Two of the four tests are meant to fail. The failure messages name the limit, the peak and the
line, and for the leak the runs, the line and the holder (`CACHE`). Under each failure pytest also
shows the full text report (left out here):
"""
    ),
    code(
        """
code, out = pytest("--tb=short", "-rN")
print("exit code", code)
for line in out.splitlines():
    if "was limited to" in line or " leaks: " in line or line.startswith("__"):
        print(line)
"""
    ),
    md(
        """
## Options, on the command line or in ini

`--memprofile` prints the heaviest tests; `--memprofile-limit` sets a default limit for every test
(a `memlimit` marker wins); `--memprofile-tracer` picks `exact` or `sampled`; `--memprofile-json`
writes the figures. The same settings go in `pytest.ini` / `pyproject.toml` as `memprofile`,
`memprofile_limit`, `memprofile_tracer`, `memprofile_json` and `memprofile_top`.
"""
    ),
    code(
        """
code, out = pytest("--memprofile", "--memprofile-top", "3", "--memprofile-json", "memory.json",
                   "-k", "not leaks and not goes_over")
print(out[out.index("cgmem_nb: memory"):out.index("figures of every")])
"""
    ),
    code(
        """
import json

figures = json.loads((work / "memory.json").read_text())["tests"]
# peak MB, to the nearest 10 MB (the allocations are 30 MB and 20 MB; pytest's own objects add a little)
{test.split("::")[1]: round(f["peak_bytes"] / 1e7) * 10 for test, f in sorted(figures.items())}
"""
    ),
    md(
        """
Compare `memory.json` from the main branch with the one from a pull request to see which test's
memory moved. The same gates exist for scripts: `python -m cgmem_nb run --limit "500 MB" job.py`
exits with status 4 when the script's peak goes over the limit.
"""
    ),
    code(
        """
import shutil
shutil.rmtree(work)
"""
    ),
]

NOTEBOOKS = {
    "01": ("01-quickstart.ipynb", QUICKSTART),
    "02": ("02-finding-the-peak-line.ipynb", PEAK_LINE),
    "07": ("07-memory-gates-in-ci.ipynb", GATES),
}


def build(key: str) -> Path:
    name, cells = NOTEBOOKS[key]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.from_dict(dict(c)) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    NotebookClient(nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(HERE)}}, record_timing=False).execute()
    nb.metadata["language_info"] = {"name": "python"}
    path = HERE / name
    nbformat.write(nb, path)
    return path


if __name__ == "__main__":
    for key in sys.argv[1:] or list(NOTEBOOKS):
        print("wrote", build(key))

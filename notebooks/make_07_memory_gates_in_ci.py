"""Build and execute ``notebooks/07-memory-gates-in-ci.ipynb`` (``.venv/bin/python notebooks/make_07_memory_gates_in_ci.py``).

Memory gates in CI: the pytest plugin on a small test file, in a subprocess.
The shared machinery (cells, execution, writing) is in ``notebooks/tutorial.py``.
"""

from __future__ import annotations

import sys

from tutorial import code, main, md

CELLS = [

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
        assert abs(result.summary.retained_bytes - 30_000_000) < 1_000_000
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

if __name__ == "__main__":
    sys.exit(main("07-memory-gates-in-ci.ipynb", CELLS))

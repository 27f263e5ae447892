"""The analysis in a real kernel (nbclient): planted leaks of each holder kind, a clean notebook, %memvars."""

from __future__ import annotations

import pytest

try:
    from .kernel_helpers import errors, execute, json_line
except ImportError:  # tests/notebook is not a package
    from kernel_helpers import errors, execute, json_line  # type: ignore[no-redef]

pytestmark = pytest.mark.notebook
MB = 1000**2

REPORT = """
import json, cgmem_nb
found = cgmem_nb.MEMORY_PROFILER.detect_leaks()
print("JSON:" + json.dumps([[k.holder, k.holder_kind, k.category, k.status, k.size] for k in found if k.status != "resolved"]))
"""


def test_planted_leaks_in_a_kernel_are_found_with_their_holders() -> None:
    nb = execute(
        [
            "%load_ext cgmem_nb\n%memwatch on",
            "import functools, gc, numpy as np, pandas as pd\n"
            "log = []\n"
            "def work():\n    log.append(np.ones(250_000))\n"
            "@functools.lru_cache(maxsize=None)\ndef load(i):\n    return np.zeros(200_000)\n"
            "class Node:\n    def __init__(self):\n        self.payload = bytearray(2_000_000)\n        self.me = self\n"
            "n = 0",
            "work(); load(n); n += 1",
            "work(); load(n); n += 1",
            "work(); load(n); n += 1",
            "work(); load(n); n += 1",
            "pd.DataFrame({'a': np.arange(1_000_000), 'b': np.ones(1_000_000)})",
            # Collect first: only the planted cycles go to gc.garbage, not the kernel's own (argparse
            # help sections of earlier magics), which linger when no automatic collection ran since.
            "gc.collect()\ngc.set_debug(gc.DEBUG_SAVEALL)\nfor _ in range(2): Node()\ngc.collect(); gc.set_debug(0)",
            "def crunch():\n    scratch = np.ones(1_500_000)\n    raise ValueError('boom')\ncrunch()",
            REPORT,
        ],
        allow_errors=True,
    )
    assert errors(nb) == ["ValueError: boom"]
    found = {(h, kind, cat): size for h, kind, cat, _status, size in json_line(nb.cells[-1])}
    assert ("log", "variable", "Vector") in found
    assert ("load (lru_cache)", "cache", "Cache") in found
    assert ("Out[7]", "output", "Vector") in found
    assert ("gc.garbage", "cycle", "Buffer") in found
    assert ("sys.last_traceback", "traceback", "Vector") in found
    assert abs(found[("Out[7]", "output", "Vector")] - 16 * MB) < 0.05 * 16 * MB


def test_clean_notebook_in_a_kernel_has_no_leak_and_memvars_matches_pandas_and_numpy() -> None:
    nb = execute(
        [
            "%load_ext cgmem_nb\n%memwatch on",
            "import functools, numpy as np, pandas as pd\n"
            "big = np.ones(5_000_000)\n"
            "@functools.lru_cache(maxsize=4)\ndef feature(i):\n    return np.zeros(250_000)",
            *[f"df = pd.DataFrame({{'s': [f'k{{j % 20}}' for j in range(100_000)], 'n': np.arange(100_000)}})\n"
              f"for j in range({i}, {i} + 4): feature(j)\nx = big.sum();" for i in range(5)],
            REPORT,
            "import json\nv = %memvars\nv = v.set_index('name')\n"
            "print('JSON:' + json.dumps({'df': [int(v.loc['df', 'size_bytes']), int(df.memory_usage(deep=True).sum())],"
            " 'big': [int(v.loc['big', 'size_bytes']), big.nbytes]}))",
            "import cgmem_nb, json\nh = cgmem_nb.history()\nprint('JSON:' + json.dumps([len(h), h['rss_peak_bytes'].notna().all().item()]))",
        ]
    )
    assert errors(nb) == []
    assert json_line(nb.cells[-3]) == []
    for ours, theirs in json_line(nb.cells[-2]).values():
        assert abs(ours - theirs) <= 0.05 * theirs
    rows, peaks_known = json_line(nb.cells[-1])
    assert rows == 8 and peaks_known

"""The benchmark workloads: each a function that does the same work every run.

Sized for a 2-core machine: each takes one to a few seconds unprofiled.
"""

from __future__ import annotations

from typing import Any, Callable


def pure_python() -> Any:
    """Allocation-heavy pure Python: dicts, tuples and strings, mostly kept."""
    rows = []
    for i in range(1_000_000):
        rows.append({"id": i, "name": f"user-{i}", "tags": (i % 7, i % 11), "score": i * 0.5})
    index = {r["name"]: r for r in rows}
    words = " ".join(r["name"] for r in rows[:100_000]).split()
    return len(index) + len(words)


def numpy_temporaries() -> Any:
    """numpy with large temporaries (each expression makes 40 MB arrays)."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.random(5_000_000)
    total = 0.0
    for _ in range(8):
        b = (a * 2.0 + 1.0) ** 2 - a / 3.0
        total += float(b.sum())
    return total


def pandas_strings() -> Any:
    """pandas with string columns: a million rows, groupby and string methods."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    n = 1_000_000
    cities = np.array([f"city-{i}" for i in range(50)])
    df = pd.DataFrame({"city": cities[rng.integers(0, 50, n)], "value": rng.random(n), "id": np.arange(n)})
    df["label"] = df["city"].str.upper() + "-" + (df["id"] % 100).astype(str)
    out = df.groupby("city")["value"].agg(["mean", "sum"])
    return len(out) + int(df["label"].str.len().sum())


def notebook_mix() -> Any:
    """A notebook-like mix: build a frame, join, a Python loop, a numpy reduction."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(2)
    n = 300_000
    left = pd.DataFrame({"key": rng.integers(0, 5000, n), "x": rng.random(n)})
    right = pd.DataFrame({"key": np.arange(5000), "name": [f"k{i}" for i in range(5000)]})
    merged = left.merge(right, on="key")
    summary = {name: float(group["x"].mean()) for name, group in list(merged.groupby("name"))[:2000]}
    arr = rng.random((1500, 1500))
    return len(summary) + float((arr @ arr.T).trace())


def growing_heap() -> Any:
    """A heap that reaches a new high at every step: chunks of records kept, a temporary per chunk."""
    kept = []
    for i in range(400):
        chunk = tuple((j, f"row-{i}-{j}", j * 0.5) for j in range(2_000))
        tmp = bytearray(300_000)  # freed at once: the peak moves on by a chunk at a time
        kept.append(chunk)
        del tmp
    return sum(len(c) for c in kept)


WORKLOADS: dict[str, Callable[[], Any]] = {
    "pure_python": pure_python,
    "numpy_temporaries": numpy_temporaries,
    "pandas_strings": pandas_strings,
    "notebook_mix": notebook_mix,
    "growing_heap": growing_heap,
}

"""Tasks with known allocations, run on the Dask workers of tests/integration/test_dask_cluster.py.

Imported by reference on the workers (the test process's path reaches them), so
their file and lines are the ones the tests read with :func:`line_of`.
"""

from __future__ import annotations

import inspect
import time

import numpy as np

MB = 1_000_000
#: What the `leaky` tasks keep on a worker (cleared by `forget`).
HOARD: list[np.ndarray] = []


def hold(nbytes: int) -> np.ndarray:
    """Allocate ``nbytes`` and return them: the result holds them."""
    kept = np.ones(nbytes // 8)  # PLANT: hold
    return kept


def temporary(nbytes: int) -> float:
    """Allocate ``nbytes`` as a temporary and return a float (nothing kept)."""
    scratch = np.ones(nbytes // 8)  # PLANT: temporary
    total = float(scratch.sum())
    del scratch
    return total


def sleepy(seconds: float) -> float:
    """Hold nothing; take ``seconds``."""
    time.sleep(seconds)
    return seconds


def leaky(nbytes: int) -> int:
    """Keep ``nbytes`` in a module-level list: memory no result accounts for."""
    HOARD.append(np.ones(nbytes // 8))  # PLANT: leaky
    return len(HOARD)


def forget() -> int:
    """Free what the `leaky` tasks kept (run on every worker)."""
    n = len(HOARD)
    HOARD.clear()
    return n


def squeeze(nbytes: int, seconds: float) -> int:
    """Hold ``nbytes`` for ``seconds`` (to cross a pressure level), then free them."""
    block = np.ones(nbytes // 8)  # PLANT: squeeze
    time.sleep(seconds)
    return int(block.size)


def grow_until_killed(step: int, pause: float, limit: int) -> int:
    """Allocate ``step`` bytes every ``pause`` seconds up to ``limit`` (the nanny kills it first)."""
    blocks = []
    while len(blocks) * step < limit:
        blocks.append(np.ones(step // 8))  # PLANT: grow
        time.sleep(pause)
    return len(blocks)


def line_of(marker: str) -> int:
    """The line of this file carrying ``# PLANT: marker``."""
    lines, first = inspect.getsourcelines(inspect.getmodule(line_of))  # type: ignore[arg-type]
    for offset, text in enumerate(lines):
        if f"# PLANT: {marker}" in text:
            return first + offset if first else offset + 1
    raise LookupError(marker)

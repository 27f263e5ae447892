"""The analysis's findings as typed records, and as the DataFrames with the same fields.

``MemoryLeak``, ``UsagePattern`` and ``Recommendation`` keep the seed's names
(``leak.size``, ``leak.age``, ``leak.category``, ``leak.estimated_impact``;
``pattern.average_usage``, ``pattern.peak_usage``; ``rec.description``,
``rec.estimated_savings``, ``rec.difficulty``, ``rec.priority``). Every field is
a column of the matching table in :data:`cgmem_nb.schema.TABLES`, in the same
order. They live here, at the bottom of the house, so that every layer can name
them: the engine's ``LeakDetected`` event carries a :class:`MemoryLeak`, the
analysis makes them, the outputs draw them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

from .levels import Difficulty, PressureLevel
from .tables import records_frame

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MemoryLeak",
    "Recommendation",
    "UsagePattern",
    "leaks_frame",
    "patterns_frame",
    "recommendations_frame",
]


@dataclass(frozen=True)
class MemoryLeak:
    """Memory that outlived its scope or keeps growing, and what holds it."""

    #: Stable identifier of the holder (``variable:log``, ``output:Out[3]``...).
    leak_id: str
    #: What keeps it alive, as the user would name it.
    holder: str
    #: ``variable``, ``output``, ``cache``, ``module``, ``cycle``, ``traceback``, ``records`` or ``native``.
    holder_kind: str
    #: Allocation category of the leaked memory.
    category: str
    #: Bytes held now.
    size: int
    #: Bytes grown between first and last observation.
    growth: int
    #: Bytes per second of growth over the observed span.
    growth_rate: float
    #: Seconds since first seen.
    age: float
    #: Unix times of the first and last observation that showed it.
    first_seen: float
    last_seen: float
    #: Cells of the first and last observation (None outside IPython).
    first_cell: int | None
    last_cell: int | None
    #: Observations the verdict rests on.
    observations: int
    #: ``growing``, ``held`` or ``resolved``.
    status: str
    #: How much it matters, on the Low..Critical scale (see the leak detector's rules).
    estimated_impact: PressureLevel
    #: Seconds until the memory limit at the current rate (None when not growing).
    time_to_limit: float | None
    #: Why it is reported.
    reason: str
    #: Code that frees it.
    fix: str


@dataclass(frozen=True)
class UsagePattern:
    """How one category of memory is used over the recorded data."""

    category: str
    average_usage: int
    peak_usage: int
    current_usage: int
    allocation_count: int
    deallocation_count: int
    #: Per second, over the observed span.
    allocation_rate: float
    deallocation_rate: float
    #: Lifetime distribution, in bytes.
    freed_within_cell_bytes: int
    freed_within_cells_bytes: int
    long_lived_freed_bytes: int
    still_alive_bytes: int
    #: Peak over retained bytes of profiled sessions (NaN when unknown).
    peak_to_retained: float
    #: Process-wide figures at the last observation (same on every row).
    rss_bytes: int | None
    heap_bytes: int | None
    fragmentation_bytes: int | None
    observations: int


@dataclass(frozen=True)
class Recommendation:
    """One change that saves memory, with the code to paste and what it saves."""

    #: 1 is the first thing to do.
    priority: int
    #: Name of the rule that made it.
    rule: str
    #: What it is about (``df.city``, ``Out[3]``...).
    target: str
    description: str
    #: Code to paste.
    action: str
    #: Bytes freed by applying it.
    estimated_savings: int
    #: 95% error bound of the savings when estimated from a sample (0 when exact).
    savings_error: int
    #: True when measured on the data.
    measured: bool
    difficulty: Difficulty


def leaks_frame(leaks: Iterable[MemoryLeak]) -> pd.DataFrame:
    """Leaks as a DataFrame (schema ``leaks``), displayed readably (sizes, times, the fix in full)."""
    from .readable import readable  # pandas, only when a frame is made

    return readable(records_frame("leaks", leaks))


def patterns_frame(patterns: Iterable[UsagePattern]) -> pd.DataFrame:
    """Patterns as a DataFrame (schema ``patterns``), displayed readably."""
    from .readable import readable  # pandas, only when a frame is made

    return readable(records_frame("patterns", patterns))


def recommendations_frame(recs: Iterable[Recommendation]) -> pd.DataFrame:
    """Recommendations as a DataFrame (schema ``recommendations``), displayed readably (the action in full)."""
    from .readable import readable  # pandas, only when a frame is made

    return readable(records_frame("recommendations", recs))

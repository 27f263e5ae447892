"""``PatternAnalyzer``: how each category of memory is used over the recorded data.

Inputs are the holder observations (one per cell while ``%memwatch`` is on) and
profiled sessions' results. Per category it reports the average, peak and
current usage, counts and rates of allocations and deallocations (a holder
appearing or being replaced by a new object is an allocation; disappearing or
being replaced, a deallocation), the lifetime distribution (freed within the
cell — the temporaries profiled sessions saw at their peak —, freed within
``lifetime_cells`` cells, freed later, still alive), peak against retained, and
the process's fragmentation (bytes malloc holds free, from glibc).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Sequence

from ..schema import UsagePattern
from ..session.holders import Observation
from ..session.result import ProfileResult


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


@dataclass
class _Life:
    category: str
    first: int
    last: int
    size: int


class PatternAnalyzer:
    """Per-category usage patterns from observations and session results."""

    def __init__(self, lifetime_cells: int = 3) -> None:
        #: Cells within which a freed object counts as short-lived.
        self.lifetime_cells = lifetime_cells

    def analyze(self, observations: Sequence[Observation], results: Sequence[ProfileResult] = ()) -> list[UsagePattern]:
        """Patterns per category, biggest peak first."""
        usage: dict[str, list[int]] = defaultdict(lambda: [0] * len(observations))
        lives: dict[tuple[str, int], _Life] = {}
        allocs: dict[str, int] = defaultdict(int)
        deallocs: dict[str, int] = defaultdict(int)
        for i, obs in enumerate(observations):
            for reading in obs.holders.values():
                if reading.kind == "records":
                    continue
                usage[reading.category][i] += reading.size
                ident = (reading.key, reading.object_id)
                life = lives.get(ident)
                if life is None:
                    lives[ident] = _Life(reading.category, i, i, reading.size)
                    if i > 0:
                        allocs[reading.category] += 1
                else:
                    life.last, life.size = i, reading.size
        last_index = len(observations) - 1
        within: dict[str, int] = defaultdict(int)
        later: dict[str, int] = defaultdict(int)
        for life in lives.values():
            if life.last < last_index:
                deallocs[life.category] += 1
                if life.last + 1 - life.first <= self.lifetime_cells:
                    within[life.category] += life.size
                else:
                    later[life.category] += life.size

        session_peak: dict[str, int] = defaultdict(int)
        session_retained: dict[str, int] = defaultdict(int)
        temporaries: dict[str, int] = defaultdict(int)
        session_count: dict[str, int] = defaultdict(int)
        for result in results:
            for row in result.categories.to_dict("records"):
                cat = str(row["category"])
                peak, retained = _int(row["peak_bytes"]), _int(row["retained_bytes"])
                session_peak[cat] = max(session_peak[cat], peak)
                session_retained[cat] += retained
                temporaries[cat] += max(_int(row["allocated_bytes"]) - retained, 0)
                session_count[cat] += _int(row["count"])

        if observations:
            span = max(observations[-1].t - observations[0].t, 0.0)
        else:
            span = sum(r.summary.duration_s for r in results)
        last = observations[-1] if observations else None
        categories = sorted(set(usage) | set(session_peak))
        patterns = []
        for cat in categories:
            series = usage.get(cat, [])
            current = series[-1] if series else 0
            peak = max(max(series, default=0), session_peak.get(cat, 0))
            retained = session_retained.get(cat, 0)
            ratio = session_peak.get(cat, 0) / retained if retained else math.nan
            n_alloc = allocs.get(cat, 0) + session_count.get(cat, 0)
            n_dealloc = deallocs.get(cat, 0)
            patterns.append(
                UsagePattern(
                    category=cat,
                    average_usage=int(sum(series) / len(series)) if series else 0,
                    peak_usage=peak,
                    current_usage=current,
                    allocation_count=n_alloc,
                    deallocation_count=n_dealloc,
                    allocation_rate=n_alloc / span if span > 0 else 0.0,
                    deallocation_rate=n_dealloc / span if span > 0 else 0.0,
                    freed_within_cell_bytes=temporaries.get(cat, 0),
                    freed_within_cells_bytes=within.get(cat, 0),
                    long_lived_freed_bytes=later.get(cat, 0),
                    still_alive_bytes=current,
                    peak_to_retained=float(ratio),
                    rss_bytes=last.rss if last else None,
                    heap_bytes=last.heap_in_use if last else None,
                    fragmentation_bytes=last.heap_free if last else None,
                    observations=len(observations) + len(results),
                )
            )
        patterns.sort(key=lambda p: p.peak_usage, reverse=True)
        return patterns


#: The process-wide pattern analyzer.
PATTERN_ANALYZER = PatternAnalyzer()

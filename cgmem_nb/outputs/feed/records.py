"""What the live feed hands its readers: samples, gaps, markers, figures, and updates since a cursor."""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ...schema import MemoryLeak, PressureLevel, Recommendation, Summary
from .cluster import ClusterUpdate

__all__ = ["FeedCursor", "FeedFigures", "FeedGap", "FeedMarker", "FeedSample", "FeedUpdate", "after"]

R = TypeVar("R", "FeedSample", "FeedGap", "FeedMarker")


def after(items: deque[R], seq: int) -> list[R]:
    """The items of ``items`` (consecutive ``seq`` numbers, oldest first) after ``seq``."""
    if not items or items[-1].seq <= seq:
        return []
    start = max(seq - items[0].seq + 1, 0)
    return list(itertools.islice(items, start, None))


@dataclass(frozen=True, slots=True)
class FeedSample:
    """One point of the live timeline."""

    seq: int
    #: Unix time of the reading.
    wall: float
    rss_bytes: int
    traced_bytes: int | None
    limit_bytes: int
    #: Bytes at which the ``CRITICAL`` pressure level is entered.
    critical_bytes: int
    level: PressureLevel
    alloc_bytes_s: float
    dealloc_bytes_s: float


@dataclass(frozen=True, slots=True)
class FeedGap:
    """A stretch without samples, and the RSS drawn for it."""

    seq: int
    start: float
    end: float
    rss_bytes: int
    #: True when ``rss_bytes`` is the kernel's peak RSS reached during the gap.
    from_kernel_peak: bool


@dataclass(frozen=True, slots=True)
class FeedMarker:
    """A session or cell boundary on the timeline."""

    seq: int
    wall: float
    label: str
    #: ``"start"`` or ``"end"``.
    kind: str
    #: ``"session"`` or ``"cell"``.
    source: str


@dataclass(frozen=True)
class FeedFigures:
    """The figures of the feed now."""

    current_bytes: int
    #: Highest RSS seen (samples, gap fills, the final result); since the current cell started.
    peak_bytes: int
    traced_bytes: int | None
    traced_peak_bytes: int | None
    limit_bytes: int
    limit_source: str
    level: PressureLevel
    alloc_bytes_s: float = 0.0
    dealloc_bytes_s: float = 0.0
    #: Label of the session running now, if any.
    session_label: str | None = None
    #: Summary of the latest finished session (or the final one given to :meth:`LiveFeed.close`).
    last_summary: Summary | None = None
    gaps: int = 0
    #: One note per finished cell, newest last (``"In[12]: peak 537.1 MB, +400.0 MB in 2.0 s"``).
    cell_notes: tuple[str, ...] = ()
    #: Since when ``peak_bytes`` counts: ``"In[12] started"``, or the clock time the feed started.
    peak_since: str = ""

    @property
    def fraction(self) -> float:
        """``current_bytes / limit_bytes``."""
        return self.current_bytes / self.limit_bytes if self.limit_bytes else 0.0


@dataclass(frozen=True)
class FeedCursor:
    """Where a reader is: the last sample, gap and marker it has, and the findings version."""

    sample: int = 0
    gap: int = 0
    marker: int = 0
    findings: int = -1
    metrics: int = -1
    #: The last worker reading and the version of the cluster's prefixes, lost workers and lines.
    cluster: int = 0
    cluster_version: int = -1


@dataclass(frozen=True)
class FeedUpdate:
    """What is new for a reader since its cursor."""

    cursor: FeedCursor
    figures: FeedFigures
    samples: list[FeedSample] = field(default_factory=list)
    gaps: list[FeedGap] = field(default_factory=list)
    markers: list[FeedMarker] = field(default_factory=list)
    #: The findings now, when they changed since the cursor (else None).
    leaks: list[MemoryLeak] | None = None
    recommendations: list[Recommendation] | None = None
    #: The metrics and category rows now, when they changed since the cursor (else None).
    metrics: dict[str, Any] | None = None
    categories: list[dict[str, Any]] | None = None
    #: What is new about a profiled Dask cluster (empty when there is none).
    cluster: ClusterUpdate = field(default_factory=ClusterUpdate)

"""What the live feed keeps of a profiled Dask cluster: each worker's memory, task prefixes, lost workers, top lines.

A part of :class:`~cgmem_nb.outputs.feed.LiveFeed` (which takes the events and
hands its readers a :class:`ClusterUpdate` in every ``FeedUpdate``):

* ``WorkerSample`` events: a bounded series of readings per worker;
* ``TasksFinished`` events: per task prefix, the tasks, their largest peak and
  retained bytes and their total duration;
* ``WorkerLost`` events: which workers were lost, and why;
* the top lines of the latest finished session that profiled a cluster (with
  their ``where``), read from its result when its ``SessionFinished`` arrives.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...engine.events.kinds import TasksFinished, WorkerLost, WorkerSample
from ...schema import KERNEL

if TYPE_CHECKING:
    from ...session.result import ProfileResult

__all__ = ["ClusterFeed", "ClusterUpdate", "PrefixStats", "WorkerReading"]

_LINES_SHOWN = 10


@dataclass(frozen=True, slots=True)
class WorkerReading:
    """One reading of one worker."""

    seq: int
    worker: str
    #: Unix time of the reading (when the kernel received it).
    wall: float
    rss_bytes: int
    traced_bytes: int
    managed_bytes: int
    limit_bytes: int


@dataclass(frozen=True, slots=True)
class PrefixStats:
    """The tasks of one key prefix seen so far."""

    prefix: str
    tasks: int
    peak_bytes: int
    retained_bytes: int
    duration_s: float


@dataclass(frozen=True)
class ClusterUpdate:
    """What is new about the cluster for a reader (empty when nothing is)."""

    readings: list[WorkerReading] = field(default_factory=list)
    #: The prefixes by largest peak, when they changed since the cursor (else None).
    prefixes: list[PrefixStats] | None = None
    #: Lost workers and why, when that changed (else None).
    lost: dict[str, str] | None = None
    #: Top lines of the latest cluster session (``where``, ``location``, ``peak_bytes``,
    #: ``retained_bytes``, ``code``), when they changed (else None).
    lines: list[dict[str, Any]] | None = None

    @property
    def empty(self) -> bool:
        """True when there is nothing new."""
        return not self.readings and self.prefixes is None and self.lost is None and self.lines is None


class ClusterFeed:
    """The cluster part of a live feed. Not locked: the feed calls it under its own lock."""

    def __init__(self, history: int) -> None:
        self._readings: deque[WorkerReading] = deque(maxlen=history)
        self._seq = itertools.count(1)
        self._prefixes: dict[str, list[float]] = {}
        self._lost: dict[str, str] = {}
        self._lines: list[dict[str, Any]] = []
        #: Bumped when prefixes, lost workers or lines change.
        self.version = 0

    def take(self, event: WorkerSample | TasksFinished | WorkerLost) -> None:
        """Take one cluster event."""
        if isinstance(event, WorkerSample):
            self._readings.append(
                WorkerReading(
                    next(self._seq), event.worker, event.timestamp, event.rss_bytes, event.traced_bytes,
                    event.managed_bytes, event.limit_bytes,
                )
            )
        elif isinstance(event, TasksFinished):
            for task in event.tasks:
                stats = self._prefixes.setdefault(task.prefix, [0, 0, 0, 0.0])
                stats[0] += 1
                stats[1] = max(stats[1], task.peak_bytes or 0)
                stats[2] = max(stats[2], task.retained_bytes or 0)
                stats[3] += task.duration_s
            self.version += 1
        else:
            self._lost[event.worker] = event.reason
            self.version += 1

    def take_result(self, result: ProfileResult | None) -> None:
        """Take the top lines of a finished session, if it profiled a cluster."""
        if result is None or not result.summary.workers:
            return
        lines = result.lines
        shown = lines.head(_LINES_SHOWN)
        self._lines = [
            {
                "where": str(row["where"]) if row["where"] is not None else KERNEL,
                "location": str(row["location"]),
                "peak_bytes": int(row["peak_bytes"]),
                "retained_bytes": int(row["retained_bytes"]),
                "code": str(row["code"] or ""),
            }
            for _, row in shown.iterrows()
        ]
        self.version += 1

    def prefixes(self) -> list[PrefixStats]:
        """Every prefix seen, largest peak first."""
        rows = [PrefixStats(p, int(s[0]), int(s[1]), int(s[2]), float(s[3])) for p, s in self._prefixes.items()]
        return sorted(rows, key=lambda r: (r.peak_bytes, r.tasks), reverse=True)

    @property
    def lost(self) -> dict[str, str]:
        """Workers lost so far, and why."""
        return dict(self._lost)

    @property
    def readings(self) -> list[WorkerReading]:
        """The readings kept, oldest first."""
        return list(self._readings)

    def since(self, seq: int, version: int) -> tuple[ClusterUpdate, int, int]:
        """What is new after reading ``seq`` and ``version``; and the cursor's new ``seq`` and ``version``."""
        kept = self._readings
        newer = max(min(kept[-1].seq - seq, len(kept)), 0) if kept else 0
        readings = list(itertools.islice(kept, len(kept) - newer, None))
        changed = version != self.version
        update = ClusterUpdate(
            readings,
            self.prefixes() if changed else None,
            dict(self._lost) if changed else None,
            list(self._lines) if changed else None,
        )
        return update, (readings[-1].seq if readings else seq), self.version

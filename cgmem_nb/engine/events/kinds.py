"""The event types: small frozen dataclasses, each with a ``kind`` and a ``timestamp``.

Who publishes what:

=========================  =======================================================
event                      published by
=========================  =======================================================
``Sample``                 the monitor thread, every tick while anyone listens
``MemoryPressure``         the monitor thread, once per level crossing
``SessionStarted``         a session, when it starts
``SessionFinished``        a session, when its result is final
``CellStarted``            the IPython extension, before each cell runs
``CellFinished``           the IPython extension, after each cell
``LeakDetected``           the facade, for each new (or grown) leak the analysis finds
``RecommendationGenerated``  the facade, for each new recommendation
``ThresholdBreached``      user code and gates (a named figure over a threshold)
``WorkerSample``           the Dask integration, for each reading of a profiled worker
``TasksFinished``          the Dask integration, for the tasks a worker finished since its last reading
``WorkerLost``             the Dask integration, when a profiled worker dies or leaves
=========================  =======================================================

``MemoryPressure`` and ``LeakDetected`` say ``where`` they happened: ``"kernel"``
(this process) or a Dask worker's address.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from ...schema.findings import MemoryLeak, Recommendation
from ...schema.levels import PressureLevel
from ...schema.summary import Summary
from ...schema.tables import KERNEL

__all__ = [
    "CellFinished",
    "CellStarted",
    "LeakDetected",
    "MemoryPressure",
    "ProfilerEvent",
    "RecommendationGenerated",
    "FinishedTask",
    "Sample",
    "SessionFinished",
    "SessionStarted",
    "TasksFinished",
    "ThresholdBreached",
    "WorkerLost",
    "WorkerSample",
]


@dataclass(frozen=True)
class ProfilerEvent:
    """Base class of every event on the bus.

    Subclasses are frozen dataclasses whose own fields come first, so they can be
    built positionally or by keyword; ``timestamp`` is keyword-only and defaults
    to ``time.time()`` at construction.
    """

    #: Short, stable name of the event type (``"memory_pressure"`` …), for logs and JSON.
    kind: ClassVar[str] = "event"
    #: Seconds since the epoch (``time.time()``) when the event was made.
    timestamp: float = field(default_factory=time.time, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        """``{"kind": ..., "timestamp": ..., <fields>}`` (shallow: values are not converted)."""
        out: dict[str, Any] = {"kind": self.kind}
        for f in fields(self):
            out[f.name] = getattr(self, f.name)
        return out


@dataclass(frozen=True)
class MemoryPressure(ProfilerEvent):
    """Memory use crossed into another :class:`PressureLevel` (up or down)."""

    kind: ClassVar[str] = "memory_pressure"
    #: The level now in force.
    level: PressureLevel
    #: Bytes in use when the crossing was seen.
    current_usage: int
    #: The memory limit in bytes the level is measured against.
    limit: int
    #: Where: ``"kernel"``, or the address of the Dask worker whose memory crossed it.
    where: str = KERNEL

    @property
    def fraction(self) -> float:
        """``current_usage / limit``."""
        return self.current_usage / self.limit if self.limit else 0.0


@dataclass(frozen=True)
class LeakDetected(ProfilerEvent):
    """The leak detector reported a new or grown leak."""

    kind: ClassVar[str] = "leak_detected"
    #: The finding.
    leak: MemoryLeak
    #: Where: ``"kernel"``, or the address of the Dask worker that leaks.
    where: str = KERNEL


@dataclass(frozen=True)
class RecommendationGenerated(ProfilerEvent):
    """The recommendation engine produced a finding."""

    kind: ClassVar[str] = "recommendation_generated"
    #: The finding.
    recommendation: Recommendation


@dataclass(frozen=True)
class ThresholdBreached(ProfilerEvent):
    """A named figure went over a configured threshold (e.g. a CI gate or a guard)."""

    kind: ClassVar[str] = "threshold_breached"
    #: Name of the figure, e.g. ``"peak_bytes"`` or ``"rss_bytes"``.
    name: str
    #: The value that breached the threshold.
    value: float
    #: The threshold it breached.
    threshold: float


@dataclass(frozen=True)
class SessionStarted(ProfilerEvent):
    """A profiling session (a cell, a ``with`` block, a test) started."""

    kind: ClassVar[str] = "session_started"
    #: Identifier of the session, unique within the process.
    session_id: str
    #: What is profiled, for people (``"In[7]"``, a test id, a user label), or None.
    label: str | None = None


@dataclass(frozen=True)
class SessionFinished(ProfilerEvent):
    """A profiling session finished and its result is final."""

    kind: ClassVar[str] = "session_finished"
    #: Identifier of the session (same as in its :class:`SessionStarted`).
    session_id: str
    #: The session's label, or None.
    label: str | None = None
    #: Headline figures of the result; the full result stays with the session.
    summary: Summary = field(default_factory=Summary)


@dataclass(frozen=True)
class CellStarted(ProfilerEvent):
    """A notebook cell is about to run."""

    kind: ClassVar[str] = "cell_started"
    #: Execution count of the cell (None when IPython does not say).
    cell: int | None
    #: ``"In[7]"`` (or ``"cell"``).
    label: str


@dataclass(frozen=True)
class CellFinished(ProfilerEvent):
    """A notebook cell finished (with or without an error)."""

    kind: ClassVar[str] = "cell_finished"
    cell: int | None
    label: str
    #: The exception the cell raised, as ``"Name: message"``, or None.
    error: str | None = None


@dataclass(frozen=True)
class Sample(ProfilerEvent):
    """One timeline sample taken by the monitor thread."""

    kind: ClassVar[str] = "sample"
    #: Seconds since the monitor started (monotonic clock).
    t_s: float
    #: Resident set size of the process in bytes.
    rss_bytes: int
    #: Bytes the running tracer sees, or None when no tracer runs.
    traced_bytes: int | None = None
    #: The memory limit pressure is measured against, when the monitor knows it.
    limit_bytes: int | None = None
    #: The pressure level in force (the monitor's policy, with hysteresis), when known.
    level: PressureLevel | None = None


@dataclass(frozen=True)
class WorkerSample(ProfilerEvent):
    """A reading of a Dask worker profiled with the kernel (``%%memprofile --dask``)."""

    kind: ClassVar[str] = "worker_sample"
    #: The worker's address.
    worker: str
    #: Process memory of the worker.
    rss_bytes: int
    #: Bytes its tracer sees above the session's start there.
    traced_bytes: int
    #: Dask's managed memory (the task results it holds).
    managed_bytes: int
    #: Dask's memory limit of the worker (0 when none).
    limit_bytes: int = 0
    #: Keys of the tasks running at the reading.
    executing: tuple[str, ...] = ()


@dataclass(frozen=True)
class FinishedTask:
    """One task a worker finished (a row of the result's ``tasks`` table, in brief)."""

    key: str
    prefix: str
    duration_s: float
    #: Estimated peak and retained bytes (None when the tracer could not tell).
    peak_bytes: int | None
    retained_bytes: int | None
    #: Size of its result as Dask measured it (None for a task that failed).
    result_bytes: int | None


@dataclass(frozen=True)
class TasksFinished(ProfilerEvent):
    """Tasks a profiled Dask worker finished since its last reading."""

    kind: ClassVar[str] = "tasks_finished"
    worker: str
    tasks: tuple[FinishedTask, ...] = ()


@dataclass(frozen=True)
class WorkerLost(ProfilerEvent):
    """A profiled Dask worker died or left the cluster during the session."""

    kind: ClassVar[str] = "worker_lost"
    worker: str
    #: Why, as far as the scheduler said (``"killed by its nanny for memory"``, ``"removed"``).
    reason: str
    #: The tasks it was running.
    tasks: tuple[str, ...] = ()
    #: Its process memory at the last reading (or as the nanny saw it).
    rss_bytes: int | None = None

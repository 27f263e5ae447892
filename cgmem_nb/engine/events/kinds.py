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
=========================  =======================================================
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from ...schema.findings import MemoryLeak, Recommendation
from ...schema.levels import PressureLevel
from ...schema.summary import Summary

__all__ = [
    "CellFinished",
    "CellStarted",
    "LeakDetected",
    "MemoryPressure",
    "ProfilerEvent",
    "RecommendationGenerated",
    "Sample",
    "SessionFinished",
    "SessionStarted",
    "ThresholdBreached",
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

"""``Summary``: the headline figures of one profiling session, as a typed, frozen record.

``result.summary.peak_bytes`` is the way to read a figure. :meth:`Summary.to_dict`
gives the JSON form (what ``ProfileResult.to_json`` writes) and
:meth:`Summary.from_dict` reads it back, tolerating figures an older version did
not write (they take their defaults).

Compatibility: cgmem_nb 0.1 handed out the summary as a read-only mapping. Its
string keys still work for one more release: ``summary["peak_bytes"]`` and
``summary.get("peak_bytes")`` return the value of :meth:`to_dict` (the guard
report as a dict, as before) with a ``DeprecationWarning``; they stop working in
cgmem_nb 0.3.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import Any, Mapping

__all__ = ["GuardLine", "GuardReport", "Summary"]


@dataclass(frozen=True)
class GuardLine:
    """A line that held memory when the guard fired."""

    #: ``In[7]:3`` or ``file.py:12``.
    location: str
    #: Execution count of the cell, or None for a file.
    cell: int | None
    lineno: int
    code: str
    #: Bytes the line held at that moment.
    bytes: int


@dataclass(frozen=True)
class GuardReport:
    """What the memory guard saw when it interrupted a session."""

    #: Unix time of the reading that fired the guard.
    time: float
    rss_bytes: int
    #: RSS at which the guard fires (``fraction x limit``).
    threshold_bytes: int
    limit_bytes: int
    fraction: float
    cell: int | None
    cell_label: str
    #: Lines holding the most memory at that moment, biggest first.
    top_lines: tuple[GuardLine, ...]
    seconds_into_session: float
    #: How the interrupt was delivered: ``"signal"``, ``"async-exception"`` or ``"shared"``.
    method: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, strict: bool = False) -> GuardReport:
        """Read the form written by :meth:`Summary.to_dict` (``strict``: check every figure's
        type, raising ``TypeError`` / ``ValueError`` naming it)."""
        values = _known(cls, data, strict=strict)
        lines = data.get("top_lines", ())
        if strict and not isinstance(lines, (list, tuple)):
            raise TypeError(f"guard.top_lines must be a list, not {type(lines).__name__}")
        values["top_lines"] = tuple(
            line if isinstance(line, GuardLine) else GuardLine(**_known(GuardLine, _mapping(line, "guard line"), strict=strict))
            for line in lines
        )
        return cls(**values)


@dataclass(frozen=True)
class Summary:
    """Headline figures of one session (bytes, seconds). Every field has a documented default."""

    #: What was profiled: ``In[7]``, a function or test name, a user label.
    label: str = "session"
    #: Execution count of the profiled cell, or None.
    cell: int | None = None
    #: ``"exact"``, ``"sampled"`` or ``"disabled"``.
    tracer: str = "disabled"
    #: True when the traced figures are estimates from samples.
    estimate: bool = False
    #: ISO 8601 start time (UTC).
    started_at: str = ""
    duration_s: float = 0.0
    #: Most traced bytes held at once above the session's start.
    peak_bytes: int = 0
    #: Traced bytes still alive at the end (negative when the session freed more than it kept).
    retained_bytes: int = 0
    #: Bytes allocated in the session (see the ``lines`` table).
    allocated_bytes: int = 0
    #: Bytes the tracer already saw when the session started.
    traced_start_bytes: int = 0
    #: Share of the peak that the line table explains (0 to 1).
    peak_coverage: float = 1.0
    rss_before_bytes: int = 0
    rss_after_bytes: int = 0
    #: Peak RSS during the session (the kernel's own peak where it can be reset).
    rss_peak_bytes: int = 0
    #: The memory limit the session was measured against, and where it came from.
    limit_bytes: int = 0
    limit_source: str = ""
    #: Frames kept per allocation stack.
    stack_depth: int = 0
    #: Mean sampling interval of the sampled tracer (None for the exact one).
    sample_interval_bytes: int | None = None
    #: Allocating stacks seen (the ``stacks`` table keeps the biggest 500).
    stacks_total: int = 0
    #: ``"ZeroDivisionError: division by zero"`` when the session ended with an exception.
    error: str | None = None
    #: True when it ended with ``KeyboardInterrupt`` (the guard, or the user).
    interrupted: bool = False
    #: Something the user should know about the figures (e.g. a tracer fallback).
    note: str | None = None
    #: The profiler's own traced bytes, left out of the tables.
    profiler_bytes: int = 0
    #: True when native allocations (C heap, mmap, library pools) were sampled too.
    native: bool = False
    #: Of ``peak_bytes``: what Python's allocators held (objects and numpy buffers)...
    python_peak_bytes: int = 0
    #: ...and what native allocators held (the lines' ``native_peak_bytes`` summed).
    native_peak_bytes: int = 0
    #: Of ``retained_bytes``, what native allocators still hold at the end.
    native_retained_bytes: int = 0
    #: Bytes (most held: peak or end) allocated on threads with no Python frame and
    #: charged to the statement the session ran (rows with ``via="worker thread"``).
    worker_bytes: int = 0
    #: Bytes (most held: peak or end) that no running statement explains (``<unknown>``).
    unknown_bytes: int = 0
    #: Share of the RSS growth at its peak (``rss_peak_bytes - rss_before_bytes``) that
    #: the lines explain (their bytes at the session's peak), 0 to 1; None when RSS did not grow.
    rss_explained: float | None = None
    #: Seconds the profiler spent on snapshots and on building the result.
    report_s: float = 0.0
    #: Seconds the end of the session took on the profiled code's critical path: from
    #: ``stop()`` to the finished result. Tables become DataFrames, and the analysis
    #: (leaks, patterns, recommendations) runs, when first read; neither is counted here.
    stop_s: float = 0.0
    #: True when the memory guard watched the session.
    guard_armed: bool = False
    #: RSS at which the guard would fire, when armed.
    guard_threshold_bytes: int | None = None
    #: True when the guard interrupted the session.
    guard_triggered: bool = False
    #: What the guard saw when it fired.
    guard: GuardReport | None = None
    #: Dask workers profiled with the session (``%%memprofile --dask``), and the tasks they ran.
    workers: int = 0
    tasks: int = 0
    #: What to know about the cluster part (a worker lost, a client gone), one message per line.
    cluster_notes: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of every figure (the guard report as a nested dict)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | Summary, *, strict: bool = False) -> Summary:
        """Rebuild a summary from :meth:`to_dict` output (missing figures take their defaults;
        figures this version does not know are ignored). ``strict`` (what the file readers use)
        checks each figure's type and range, raising ``TypeError`` / ``ValueError`` naming it."""
        if isinstance(data, Summary):
            return data
        values = _known(cls, data, strict=strict)
        guard = values.get("guard")
        if guard is not None and not isinstance(guard, GuardReport):
            values["guard"] = GuardReport.from_dict(_mapping(guard, "guard"), strict=strict)
        return cls(**values)

    def replace(self, **changes: Any) -> Summary:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    # -- the 0.1 mapping interface, deprecated ------------------------------------------
    def __getitem__(self, key: str) -> Any:
        _warn_key(key)
        data = self.to_dict()
        try:
            return data[key]
        except KeyError:
            raise KeyError(f"{key!r} is not a summary figure; figures: {', '.join(data)}") from None

    def get(self, key: str, default: Any = None) -> Any:
        """Deprecated: read ``summary.FIELD`` instead."""
        _warn_key(key)
        return self.to_dict().get(key, default)


def _warn_key(key: str) -> None:
    warnings.warn(
        f'summary["{key}"] is deprecated: read summary.{key} (string keys stop working in cgmem_nb 0.3; '
        "summary.to_dict() gives a plain dict)",
        DeprecationWarning,
        stacklevel=3,
    )


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"{what} must be an object, not {type(value).__name__}")
    return value


_INT_RANGE = 2**63
_CHECKS: dict[str, Any] = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool) and -_INT_RANGE < v < _INT_RANGE,
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "None": lambda v: v is None,
}


def _known(cls: type, data: Mapping[str, Any], *, strict: bool = False) -> dict[str, Any]:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {k: v for k, v in data.items() if k in fields}
    if strict:
        for name, value in values.items():
            kinds = [t.strip() for t in str(fields[name].type).split("|")]
            checks = [_CHECKS[k] for k in kinds if k in _CHECKS]
            if len(checks) == len(kinds) and not any(check(value) for check in checks):
                shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
                raise ValueError(f"{name}={shown} is not accepted: expected {' or '.join(kinds)}")
    return values

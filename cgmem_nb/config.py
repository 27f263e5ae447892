"""``ProfilerConfig``: the profiler's settings, validated where they are made.

Fields follow the seed specification. Durations are seconds (a ``timedelta`` is
accepted too). ``ProfilerConfig.from_env()`` reads the ``MEMORY_PROFILER_*``
environment variables; every bad value raises :class:`~cgmem_nb.errors.ConfigError`
naming the field or variable, the value and what is accepted.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal, Mapping, get_args

from .errors import ConfigError, SizeError
from .units import parse_size

#: Which tracer a session uses: ``"auto"`` (follow ``ProfilerConfig.sampling_rate``: the
#: sampled tracer where it is available), ``"exact"`` (tracemalloc) or ``"sampled"``.
TracerChoice = Literal["auto", "exact", "sampled"]
#: The accepted tracer choices, in the order the docs and the option parsers list them.
TRACER_CHOICES: tuple[TracerChoice, ...] = get_args(TracerChoice)


def check_tracer(value: Any, *, what: str = "tracer") -> TracerChoice:
    """``value`` if it is a tracer choice; else a :class:`ConfigError` naming it and the choices."""
    if value not in TRACER_CHOICES:
        choices = ", ".join(repr(c) for c in TRACER_CHOICES)
        raise ConfigError(f"{what}={value!r} is not accepted: use one of {choices}")
    return value  # type: ignore[no-any-return]

#: Environment variables read by :meth:`ProfilerConfig.from_env`, and the field each sets.
ENV_VARS: dict[str, str] = {
    "MEMORY_PROFILER_ENABLED": "enabled",
    "MEMORY_PROFILER_LIMIT_MB": "memory_limit_bytes",
    "MEMORY_PROFILER_SAMPLING_RATE": "sampling_rate",
    "MEMORY_PROFILER_DASHBOARD_PORT": "dashboard_port",
    "MEMORY_PROFILER_NATIVE": "native_memory",
}

#: Smallest ``sampling_rate`` accepted: one sample per 4 GB allocated on average. Below it a
#: session would record nothing at all.
MIN_SAMPLING_RATE = 1e-6

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


#: Stack depths a tracer accepts.
MAX_STACK_DEPTH = 100


def check_depth(value: Any, *, what: str = "stack_trace_depth", error: type[Exception] = ConfigError) -> int:
    """``value`` if it is a stack depth (a whole number from 1 to 100); else ``error``
    naming ``what``, the value and the accepted range."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_STACK_DEPTH:
        raise error(f"{what}={value!r} is not accepted: give a whole number of frames from 1 to {MAX_STACK_DEPTH}")
    return value


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name}={value!r} is not accepted: give a number of seconds or a timedelta")
    if value <= 0:
        raise ConfigError(f"{name}={value!r} is not accepted: it must be more than 0 seconds")
    return float(value)


@dataclass(frozen=True)
class ProfilerConfig:
    """Settings of a :class:`~cgmem_nb.MemoryProfiler` (immutable; use :meth:`replace`)."""

    #: Turn profiling on or off. When off, sessions record nothing and cost nothing.
    enabled: bool = True
    #: Frames kept per allocation stack (1 to 100). More frames cost more time.
    stack_trace_depth: int = 12
    #: Seconds between background leak checks.
    leak_detection_interval: float = 30.0
    #: Seconds of history (timeline, cell history, leak history) kept.
    history_retention: float = 3600.0
    #: Memory limit in bytes; ``None`` detects it (cgroup limit, else physical memory).
    memory_limit_bytes: int | None = None
    #: How many allocations are recorded. ``None`` (the default): the sampled tracer at
    #: its default interval where it is available, else the exact one. ``1.0``: every
    #: allocation (the exact tracer, tracemalloc). Below 1.0: the sampled tracer, the
    #: rate being the chance that a 4 KiB allocation is recorded
    #: (see :func:`cgmem_nb.engine.sampled.interval_for_rate`).
    sampling_rate: float | None = None
    #: Publish live events (samples, pressure, session, cell and findings events) on the
    #: event bus. Off: nothing is published, and ``start_monitoring()``, ``subscribe()``,
    #: the live panel and the dashboard refuse with a ``ConfigError``.
    real_time_monitoring: bool = True
    #: Record a stack per allocation (off: only totals and the timeline).
    enable_stack_traces: bool = True
    #: Seconds between timeline samples of the monitor thread.
    sample_interval: float = 0.1
    #: Port of the web dashboard (0 picks a free port).
    dashboard_port: int = 8080
    #: Interrupt a cell that reaches the Critical level (see the memory guard).
    guard: bool = False
    #: Fraction of the limit at which the guard interrupts the cell.
    guard_fraction: float = 0.95
    #: Sample native allocations too (the C heap, anonymous mmaps, the allocators inside
    #: Polars, Arrow, DuckDB, PyTorch), with the sampled tracer on Linux (the default).
    #: Off: only Python's allocators and numpy's buffers (see docs/native-memory.md).
    native_memory: bool = True
    #: Extra user settings kept verbatim (not validated).
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("enabled", "real_time_monitoring", "enable_stack_traces", "guard", "native_memory"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise ConfigError(f"{name}={value!r} is not accepted: give True or False")
        check_depth(self.stack_trace_depth)
        object.__setattr__(self, "leak_detection_interval", _seconds("leak_detection_interval", self.leak_detection_interval))
        object.__setattr__(self, "history_retention", _seconds("history_retention", self.history_retention))
        object.__setattr__(self, "sample_interval", _seconds("sample_interval", self.sample_interval))
        for name, most in (("leak_detection_interval", 86_400.0), ("history_retention", 366 * 86_400.0)):
            if getattr(self, name) > most:
                raise ConfigError(f"{name}={getattr(self, name)!r} is not accepted: give seconds up to {most:.0f}")
        if self.sample_interval < 0.01 or self.sample_interval > 60:
            raise ConfigError(
                f"sample_interval={self.sample_interval!r} is not accepted: give seconds from 0.01 to 60"
            )
        limit = self.memory_limit_bytes
        if limit is not None:
            if isinstance(limit, str):
                try:
                    limit = parse_size(limit, what="memory_limit_bytes")
                except SizeError as exc:
                    raise ConfigError(str(exc)) from None
                object.__setattr__(self, "memory_limit_bytes", limit)
            if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
                raise ConfigError(
                    f"memory_limit_bytes={limit!r} is not accepted: give a positive number of bytes, "
                    "a size string like '2 GiB', or None to detect the limit"
                )
        rate = self.sampling_rate
        if rate is not None:
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not (MIN_SAMPLING_RATE <= rate <= 1.0):
                raise ConfigError(
                    f"sampling_rate={rate!r} is not accepted: give a number from {MIN_SAMPLING_RATE:g} (one sample per "
                    "4 GB) to 1.0, or None for the default (1.0 records every allocation; use enabled=False to turn "
                    "profiling off)"
                )
            object.__setattr__(self, "sampling_rate", float(rate))
        port = self.dashboard_port
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigError(f"dashboard_port={port!r} is not accepted: give a port from 0 to 65535 (0 picks a free one)")
        frac = self.guard_fraction
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not (0.0 < frac <= 1.0):
            raise ConfigError(f"guard_fraction={frac!r} is not accepted: give a fraction above 0 and at most 1")

    def replace(self, **changes: Any) -> "ProfilerConfig":
        """Return a copy with ``changes`` applied (validated like the constructor)."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ConfigError(f"unknown ProfilerConfig field(s) {unknown}; known fields: {sorted(names)}")
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "ProfilerConfig":
        """Build a config from ``MEMORY_PROFILER_*`` variables (see :data:`ENV_VARS`).

        ``overrides`` win over the environment. A bad value raises ``ConfigError``
        naming the variable, its value and what is accepted.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for var, name in (("MEMORY_PROFILER_ENABLED", "enabled"), ("MEMORY_PROFILER_NATIVE", "native_memory")):
            raw = env.get(var)
            if raw is not None:
                low = raw.strip().lower()
                if low not in _TRUE | _FALSE:
                    raise ConfigError(f"{var}={raw!r} is not accepted: use one of 1/0, true/false, yes/no, on/off")
                values[name] = low in _TRUE
        raw = env.get("MEMORY_PROFILER_LIMIT_MB")
        if raw is not None:
            try:
                mb = float(raw)
            except ValueError:
                mb = float("nan")
            if not math.isfinite(mb) or mb <= 0:
                raise ConfigError(
                    f"MEMORY_PROFILER_LIMIT_MB={raw!r} is not accepted: give a positive number of megabytes, e.g. 2048"
                )
            if mb * 1000**2 > 2**63 - 1:
                raise ConfigError(
                    f"MEMORY_PROFILER_LIMIT_MB={raw!r} is not accepted: give at most {(2**63 - 1) // 1000**2} megabytes"
                )
            values["memory_limit_bytes"] = int(mb * 1000**2)
        raw = env.get("MEMORY_PROFILER_SAMPLING_RATE")
        if raw is not None:
            try:
                rate = float(raw)
            except ValueError:
                rate = float("nan")
            if not (MIN_SAMPLING_RATE <= rate <= 1.0):
                raise ConfigError(
                    f"MEMORY_PROFILER_SAMPLING_RATE={raw!r} is not accepted: give a number from {MIN_SAMPLING_RATE:g} "
                    "(one sample per 4 GB allocated) to 1.0 (every allocation)"
                )
            values["sampling_rate"] = rate
        raw = env.get("MEMORY_PROFILER_DASHBOARD_PORT")
        if raw is not None:
            try:
                port = int(raw)
            except ValueError:
                port = -1
            if not 0 <= port <= 65535:
                raise ConfigError(
                    f"MEMORY_PROFILER_DASHBOARD_PORT={raw!r} is not accepted: give a port from 0 to 65535"
                )
            values["dashboard_port"] = port
        values.update(overrides)
        return cls(**values)

"""``Session``: one scoped profiling session (a cell, a ``with`` block, a test, a decorated call).

A session starts a :class:`~cgmem_nb.session.recording.Recording` (which chooses and
starts a tracer), optionally arms the memory guard, and on stop hands back a
finished :class:`~cgmem_nb.session.result.ProfileResult`. Sessions nest: an inner
session is a sub-session and the outer one still sees everything.

When a session stops, its result goes through the facade (:mod:`cgmem_nb.session.hooks`),
which adds the leak, pattern and recommendation tables, before it is stored on
the profiler and announced with a ``SessionFinished`` event.
"""

from __future__ import annotations

import functools
import itertools
import time
import sys
import warnings
from typing import Any, Callable, Iterable, Protocol, TypeVar

from ..config import ProfilerConfig, TracerChoice, check_depth, check_tracer
from ..engine import probes
from ..engine.events.bus import EVENT_BUS
from ..engine.events.kinds import SessionFinished, SessionStarted
from ..engine.tracers import EXACT_TRACER, Tracer, available_tracers
from ..engine.versions import exact_unsupported_reason
from ..errors import ConfigError, SessionError, TracerError
from ..units import parse_size
from . import hooks, interrupts, notebook
from .guard import MemoryGuard, guard_summary
from .recording import Recording
from .result import ProfileResult

__all__ = ["Companion", "Session", "SessionOwner", "choose_tracer"]

F = TypeVar("F", bound=Callable[..., Any])

_SESSION_IDS = itertools.count(1)
_WARNED: set[str] = set()


#: Frames the sampled tracer walks at least (unless a session asks for a depth): it walks a
#: stack per sample, not per allocation, so reaching the user's line through a deep library
#: call costs little, and without it such bytes land on a library line.
SAMPLED_MIN_DEPTH = 64


def choose_tracer(
    choice: TracerChoice, rate: float | None, interval: int | None, native: bool = False
) -> tuple[Tracer | None, str | None]:
    """The tracer a session uses, and a note for the result when it is not the one asked for.

    ``"auto"`` follows ``rate`` (``ProfilerConfig.sampling_rate``: 1.0 is exact, else the
    sampled tracer where it is available). A sampled tracer already running keeps its
    interval and its native setting (``ProfilerConfig.native_memory``; the session
    shares them, with a note).
    """
    tracers = available_tracers()
    want = choice
    if want == "auto":
        want = "exact" if rate == 1.0 or "sampled" not in tracers else "sampled"
    if want not in tracers and "exact" not in tracers:
        # Free-threaded builds: no tracer may run (see cgmem_nb.engine.versions).
        return None, f"no allocation tracer runs here: {exact_unsupported_reason()}; process figures only"
    if want == "sampled" and "sampled" not in tracers:
        note = "the sampled tracer is not available in this process; the exact tracer (tracemalloc) ran instead"
        if "sampled" not in _WARNED:
            _WARNED.add("sampled")
            warnings.warn(f"cgmem_nb: {note}", RuntimeWarning, stacklevel=5)
        return EXACT_TRACER, note
    tracer = tracers[want]
    if want == "sampled":
        from ..engine.sampled import DEFAULT_INTERVAL_BYTES, SampledTracer, interval_for_rate

        assert isinstance(tracer, SampledTracer)
        if interval is None:
            interval = interval_for_rate(rate) if rate is not None and rate < 1.0 else DEFAULT_INTERVAL_BYTES
        if tracer.interval != interval:
            if tracer.is_running():
                return tracer, f"the sampled tracer was already running with a {tracer.interval}-byte interval; this session shares it"
            tracer.set_interval(interval)
        if not tracer.set_native(native and tracer.native_supported()):
            state = "on" if tracer.native else "off"
            return tracer, f"the sampled tracer was already running with native allocations {state}; this session shares it"
    return tracer, None


class Companion(Protocol):
    """A part of a session that runs somewhere else and joins its result.

    A session's companions (``MEMORY_PROFILER.session(companions=[...])``) are started
    right after its own recording starts and, when it stops, each hands back the
    result with its part added, before the result is analysed, stored and announced.
    The Dask integration is one: it profiles a cluster's workers for the span of the
    session (:mod:`cgmem_nb.integrations.dask`). A companion reports its own trouble in
    the result; it raises only what must stop the code (``KeyboardInterrupt``), and its
    ``finish`` is called even when its ``start`` was not (or failed).
    """

    def start(self, session: Session) -> None:
        """Begin, for ``session`` (whose recording has just started)."""

    def finish(self, result: ProfileResult, error: BaseException | None) -> ProfileResult:
        """End, and return ``result`` (the session's own) with this companion's part added."""


class SessionOwner(Protocol):
    """What a session needs of the profiler that made it (a ``MemoryProfiler``)."""

    @property
    def config(self) -> ProfilerConfig:
        """The configuration in force."""

    @property
    def publishing(self) -> bool:
        """True when session events should be published."""

    def memory_limit(self) -> probes.MemoryLimit:
        """The limit in force."""

    def session_started(self, session: Session) -> None:
        """Count ``session`` as running."""

    def session_stopped(self, session: Session) -> None:
        """Stop counting ``session`` as running."""

    def keep(self, result: ProfileResult) -> None:
        """Store a finished result."""


class Session:
    """A profiling session: a context manager, and a decorator for functions.

    After the ``with`` block, :attr:`result` holds the :class:`ProfileResult`.
    Used as a decorator, every call of the function is its own session and the
    latest result is at ``profiler.last_result``. Make one with
    ``MEMORY_PROFILER.session(...)`` (the arguments are documented there).
    """

    def __init__(
        self,
        profiler: SessionOwner,
        label: str | None = None,
        *,
        tracer: TracerChoice = "auto",
        depth: int | None = None,
        limit: int | str | None = None,
        cell: int | None = None,
        guard: bool | None = None,
        interval: int | str | None = None,
        analyze: bool = True,
        companions: Iterable[Companion] = (),
    ) -> None:
        check_tracer(tracer)
        if depth is not None:
            check_depth(depth, what="depth")
        self.profiler = profiler
        self.label = label
        self.tracer_choice: TracerChoice = tracer
        self.depth = depth
        self.limit = parse_size(limit, what="limit") if limit is not None else None
        if self.limit == 0:
            raise ConfigError(
                f"limit={limit!r} is not accepted: give a positive size such as '500 MB', or None for the profiler's limit"
            )
        #: Mean sampling interval in bytes for the sampled tracer (None: from the config).
        self.interval = parse_size(interval, what="sampling interval") if interval is not None else None
        if self.interval is not None:
            from ..engine.sampled import parse_interval

            try:
                parse_interval(self.interval)
            except TracerError as exc:
                raise ConfigError(str(exc).replace(str(self.interval), repr(interval), 1)) from None
        self.cell = cell
        if guard is not None and not isinstance(guard, bool):
            raise ConfigError(f"guard={guard!r} is not accepted: give True, False or None (None follows ProfilerConfig.guard)")
        #: Interrupt the code at ``guard_fraction`` of the limit (None: ``ProfilerConfig.guard``).
        self.guard = guard
        #: Add the analysis tables (leaks, patterns, recommendations) to the result.
        self.analyze = analyze
        #: Parts of the session that run elsewhere and join its result (e.g. a Dask cluster's workers).
        self.companions = tuple(companions)
        self._guard: MemoryGuard | None = None
        #: The finished result, once the session has ended.
        self.result: ProfileResult | None = None
        self._recording: Recording | None = None
        self._main_thread = False
        #: Identifier of the session in its SessionStarted / SessionFinished events.
        self.session_id = f"session-{next(_SESSION_IDS)}"

    @property
    def running(self) -> bool:
        """True between start and stop."""
        return self._recording is not None

    @property
    def traced_bytes(self) -> int | None:
        """Bytes the session's tracer sees now (process-wide), or None when it traces nothing."""
        rec = self._recording
        return rec.tracer.current() if rec is not None and rec.tracer is not None else None

    @property
    def tracer(self) -> Tracer | None:
        """The tracer the running session records with (None when it is not running or traces nothing)."""
        rec = self._recording
        return rec.tracer if rec is not None else None

    def start(self) -> Session:
        """Start recording (``with`` does this for you).

        Interrupt-safe: a Ctrl-C that arrives while the session starts waits until it has
        started, then the start is undone and the ``KeyboardInterrupt`` raised, so a session
        either starts whole or not at all (see :mod:`cgmem_nb.session.interrupts`).
        """
        if self._recording is not None:
            raise SessionError("this session is already running; a Session object records once")
        if self.result is not None:
            raise SessionError("this session has ended; start a new one with MEMORY_PROFILER.session()")
        held = interrupts.hold()
        try:
            recording = self._begin()
            try:
                self._recording = recording
                self.profiler.session_started(self)
                config = self.profiler.config
                if self.guard if self.guard is not None else config.guard:
                    self._guard = MemoryGuard(recording, fraction=config.guard_fraction, limit=recording.limit.bytes).arm()
            except BaseException:
                self._undo_start(recording)
                raise
        except BaseException:
            interrupts.release(held, deliver=False)
            raise
        if held and interrupts.pending():  # Ctrl-C while starting: undo, then deliver it
            self._undo_start(recording)
            interrupts.release(held)
        if self.profiler.publishing:
            try:
                EVENT_BUS.publish(SessionStarted(self.session_id, recording.label))
            except BaseException:
                self._undo_start(recording)
                interrupts.release(held, deliver=False)
                raise
        self._main_thread = held
        # The last step: a plain update, so an interrupt arriving now is raised in the caller.
        interrupts.release(held, session_delta=1)
        try:
            for companion in self.companions:
                companion.start(self)
        except BaseException:
            self.stop()
            raise
        return self

    def _undo_start(self, recording: Recording) -> None:
        """Take back a start that could not finish: nothing stays registered or running."""
        guard, self._guard = self._guard, None
        if guard is not None:
            guard.disarm_catching()
        self._recording = None
        self.profiler.session_stopped(self)
        if recording.running:
            recording.stop()

    def _begin(self) -> Recording:
        config = self.profiler.config
        limit = probes.MemoryLimit(self.limit, "session") if self.limit else self.profiler.memory_limit()
        if not config.enabled:
            tracer: Tracer | None = None
            note: str | None = "profiling is disabled (ProfilerConfig.enabled=False)"
        else:
            tracer, note = choose_tracer(self.tracer_choice, config.sampling_rate, self.interval, config.native_memory)
        depth = self.depth or (config.stack_trace_depth if config.enable_stack_traces else 1)
        if self.depth is None and config.enable_stack_traces and tracer is not None and tracer.estimate:
            depth = max(depth, SAMPLED_MIN_DEPTH)
        cell = self.cell if self.cell is not None else notebook.current_cell()
        label = self.label or (f"In[{cell}]" if cell is not None else "session")
        recording = Recording(tracer=tracer, config=config, label=label, cell=cell, depth=depth, limit=limit, tracer_note=note)
        recording.start()
        return recording

    def stop(self, error: BaseException | None = None) -> ProfileResult:
        """Stop recording and return (and store) the result.

        ``error`` is the exception the profiled code raised, if any (it is named in the
        summary). If the guard's interrupt (or a Ctrl-C) lands while the session stops, the
        session stops cleanly first and the ``KeyboardInterrupt`` is raised after (the
        finished result is then on :attr:`result`).
        """
        recording = self._recording
        if recording is None:
            raise SessionError("this session is not running; use it as `with MEMORY_PROFILER.session() as s:`")
        began = time.perf_counter()
        held = interrupts.hold()
        try:
            guard, self._guard = self._guard, None
            # The guard's interrupt may land while it is being disarmed: keep it, stop cleanly, re-raise.
            pending = guard.disarm_catching() if guard is not None else None
            self._recording = None
            try:
                result = recording.stop(error if error is not None else pending)
                if guard is not None:
                    result = result.with_summary(**guard_summary(guard))
            finally:
                self.profiler.session_stopped(self)
            self.result = result
        finally:
            interrupts.release(held, session_delta=-1 if self._main_thread else 0)
        for companion in self.companions:
            result = companion.finish(result, error if error is not None else pending)
        if self.analyze:
            result = hooks.facade().finish(self.profiler, result)
        result = result.with_summary(stop_s=round(time.perf_counter() - began, 6))
        self.result = result
        self.profiler.keep(result)
        if self.profiler.publishing:
            EVENT_BUS.publish(SessionFinished(self.session_id, recording.label, summary=result.summary))
        if pending is not None and error is None:
            raise pending
        return result

    @property
    def needs_checkpoints(self) -> bool:
        """True while the session's tracer needs :meth:`checkpoint` calls to see its peak: the
        exact tracer does; the sampled tracer keeps the composition of its peak itself."""
        rec = self._recording
        return rec is not None and rec.tracer is not None and not rec.keeps_peak

    def checkpoint(self) -> None:
        """Take a peak snapshot now if memory is at a new high (cheap otherwise).

        Called by the code being profiled (before each statement of a cell, from the
        line checkpoints of a test or script): its statement becomes the one that
        native allocations on worker threads are charged to.
        """
        if self._recording is not None:
            self._recording.announce(sys._getframe(1))
            self._recording.checkpoint()

    def __enter__(self) -> Session:
        return self.start()

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._recording is not None:
            self.stop(exc)

    def __call__(self, func: F) -> F:
        label = self.label or getattr(func, "__qualname__", repr(func))

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with Session(
                self.profiler, label, tracer=self.tracer_choice, depth=self.depth, limit=self.limit,
                guard=self.guard, interval=self.interval, analyze=self.analyze,
            ):
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    def __repr__(self) -> str:
        state = "running" if self.running else ("finished" if self.result is not None else "not started")
        return f"<Session {self.session_id} {self.label or ''} {state}>"


# A signal at the first bytecode of __exit__ (or the last of __enter__) would skip the stop.
interrupts.defer_in(Session.__enter__, Session.__exit__)

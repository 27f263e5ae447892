"""Profiler events and the bus that carries them.

Everything that happens in the profiler that someone may want to react to is an
*event*: a small frozen dataclass derived from :class:`ProfilerEvent`, with a
``kind`` string and the ``timestamp`` (``time.time()``) at which it was made.

Events travel on an :class:`EventBus`. The process-wide bus is :data:`EVENT_BUS`;
the monitor thread, sessions and the analysis publish on it, and the panel, the
dashboard, the pytest plugin and user code listen. There are two ways to listen:

* **Callbacks** — ``bus.subscribe(callback)`` returns a :class:`Subscription`.
  The callback runs *on the publishing thread* (often the monitor thread), so it
  must be quick and must not block. An exception raised by a callback is logged
  and counted in :attr:`Subscription.errors`; it never reaches the publisher and
  never stops the other subscribers.
* **Receivers** — ``bus.receiver()`` returns an :class:`EventReceiver`, a bounded
  queue per listener that an asyncio task reads with ``await receiver.recv()`` or
  ``async for event in receiver:``. Publishing never waits for a slow reader: when
  the queue is full the *oldest* event is dropped and counted in
  :attr:`EventReceiver.dropped`. A receiver may be created outside any event loop
  and fed from any thread; the awaiting loop is woken with
  ``loop.call_soon_threadsafe``.

Example::

    from cgmem_nb.engine.events import EVENT_BUS, MemoryPressure, PressureLevel

    async def watch() -> None:
        with EVENT_BUS.receiver(types=(MemoryPressure,)) as receiver:
            async for event in receiver:
                if isinstance(event, MemoryPressure) and event.level >= PressureLevel.HIGH:
                    print("memory pressure:", event.level.value)

Pressure levels are computed by :class:`PressureTracker`, a small pure class that
turns a stream of usage readings into one :class:`MemoryPressure` event per
level crossing, with hysteresis so that a reading hovering around a threshold
does not produce a storm of events.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
import threading
import time
import weakref
from dataclasses import dataclass, field, fields
from types import TracebackType
from typing import Any, Callable, ClassVar, Iterable, Mapping, TypeAlias

__all__ = [
    "DEFAULT_PRESSURE_THRESHOLDS",
    "EVENT_BUS",
    "EventBus",
    "EventCallback",
    "EventReceiver",
    "LeakDetected",
    "MemoryPressure",
    "PressureLevel",
    "PressureTracker",
    "ProfilerEvent",
    "RecommendationGenerated",
    "Sample",
    "SessionFinished",
    "SessionStarted",
    "Subscription",
    "ThresholdBreached",
]

logger = logging.getLogger(__name__)

#: Callback errors logged with a traceback per subscription; later ones are only counted.
_LOGGED_ERRORS_PER_SUBSCRIPTION = 3


# --------------------------------------------------------------------------- levels


class PressureLevel(enum.Enum):
    """How close memory use is to the limit, from ``LOW`` to ``CRITICAL``.

    Levels are ordered (``PressureLevel.HIGH > PressureLevel.MEDIUM``). The value is
    the display name in the seed's spelling, so ``PressureLevel("High")`` is
    ``PressureLevel.HIGH``.

    Default thresholds, as fractions of the memory limit (see
    :data:`DEFAULT_PRESSURE_THRESHOLDS`):

    ============  ===========================
    level         entered at usage / limit ≥
    ============  ===========================
    ``LOW``       (below ``MEDIUM``)
    ``MEDIUM``    0.70
    ``HIGH``      0.85
    ``CRITICAL``  0.95
    ============  ===========================
    """

    LOW = "Low"
    MEDIUM = "Medium"
    HIGH = "High"
    CRITICAL = "Critical"

    @property
    def rank(self) -> int:
        """0 for ``LOW`` up to 3 for ``CRITICAL``."""
        return _RANK[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, PressureLevel):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, PressureLevel):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, PressureLevel):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, PressureLevel):
            return NotImplemented
        return self.rank >= other.rank


_RANK: dict[PressureLevel, int] = {
    PressureLevel.LOW: 0,
    PressureLevel.MEDIUM: 1,
    PressureLevel.HIGH: 2,
    PressureLevel.CRITICAL: 3,
}

#: Fraction of the memory limit at which each level above ``LOW`` is entered.
DEFAULT_PRESSURE_THRESHOLDS: Mapping[PressureLevel, float] = {
    PressureLevel.MEDIUM: 0.70,
    PressureLevel.HIGH: 0.85,
    PressureLevel.CRITICAL: 0.95,
}


# --------------------------------------------------------------------------- events


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
    #: The leak finding (a ``cgmem_nb.analysis.leaks`` record; typed loosely because
    #: the engine must not import the analysis layer).
    leak: Any


@dataclass(frozen=True)
class RecommendationGenerated(ProfilerEvent):
    """The recommendation engine produced a finding."""

    kind: ClassVar[str] = "recommendation_generated"
    #: The recommendation (a ``cgmem_nb.analysis.recommend`` record; typed loosely).
    recommendation: Any


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
    #: Headline figures of the result (e.g. ``peak_bytes``, ``retained_bytes``,
    #: ``duration_s``); the full result stays with the session.
    summary: Mapping[str, Any] = field(default_factory=dict)


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


# --------------------------------------------------------------------------- pressure


class PressureTracker:
    """Turn usage readings into one :class:`MemoryPressure` event per level crossing.

    A level is *entered* when ``current / limit`` reaches its threshold, and *left*
    (downwards) only when the fraction falls below ``threshold - hysteresis``, so a
    reading that hovers around a threshold emits once, not on every sample. An
    update that jumps several levels at once emits one event with the final level.
    The tracker starts at ``LOW`` and has no clock, thread or I/O: feed it readings
    with :meth:`update`.

    Args:
        limit: memory limit in bytes (positive).
        thresholds: fraction of ``limit`` at which ``MEDIUM``, ``HIGH`` and
            ``CRITICAL`` are entered; missing levels take
            :data:`DEFAULT_PRESSURE_THRESHOLDS`. They must rise with the level and
            lie in (0, 1].
        hysteresis: fraction of ``limit`` that usage must fall below a threshold
            before its level is left; 0 disables hysteresis.

    Raises:
        ValueError: a limit, threshold or hysteresis that is not accepted.
    """

    def __init__(
        self,
        limit: int,
        thresholds: Mapping[PressureLevel, float] | None = None,
        hysteresis: float = 0.02,
    ) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
            raise ValueError(f"limit={limit!r} is not accepted: give a positive number of bytes")
        merged = dict(DEFAULT_PRESSURE_THRESHOLDS)
        if thresholds is not None:
            for level, value in thresholds.items():
                if not isinstance(level, PressureLevel) or level is PressureLevel.LOW:
                    raise ValueError(
                        f"threshold key {level!r} is not accepted: use PressureLevel.MEDIUM, HIGH or CRITICAL"
                    )
                merged[level] = value
        previous = 0.0
        for level in (PressureLevel.MEDIUM, PressureLevel.HIGH, PressureLevel.CRITICAL):
            value = merged[level]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
                raise ValueError(f"threshold {level.name}={value!r} is not accepted: give a fraction in (0, 1]")
            if value <= previous:
                raise ValueError(
                    f"threshold {level.name}={value!r} is not accepted: thresholds must rise "
                    f"from MEDIUM to CRITICAL (got {merged})"
                )
            previous = float(value)
        if isinstance(hysteresis, bool) or not isinstance(hysteresis, (int, float)) or not 0.0 <= hysteresis < 1.0:
            raise ValueError(f"hysteresis={hysteresis!r} is not accepted: give a fraction from 0 up to 1")
        self._limit = limit
        self._thresholds: dict[PressureLevel, float] = {k: float(v) for k, v in merged.items()}
        self._hysteresis = float(hysteresis)
        self._level = PressureLevel.LOW

    @property
    def limit(self) -> int:
        """The memory limit in bytes."""
        return self._limit

    @property
    def level(self) -> PressureLevel:
        """The level in force after the last :meth:`update`."""
        return self._level

    @property
    def thresholds(self) -> Mapping[PressureLevel, float]:
        """Entry fraction of each level above ``LOW``."""
        return dict(self._thresholds)

    @property
    def hysteresis(self) -> float:
        """Fraction of the limit that usage must fall below a threshold to leave its level."""
        return self._hysteresis

    def level_for(self, current: int) -> PressureLevel:
        """The level ``current`` bytes would enter from ``LOW`` (no hysteresis, no state change)."""
        fraction = current / self._limit
        level = PressureLevel.LOW
        for candidate, threshold in self._thresholds.items():
            if fraction >= threshold and candidate > level:
                level = candidate
        return level

    def update(self, current: int) -> MemoryPressure | None:
        """Feed one reading; return a :class:`MemoryPressure` if the level changed, else None."""
        fraction = current / self._limit
        entered = self.level_for(current)
        if entered > self._level:
            new = entered
        else:
            # Going down (or staying): keep the highest level, at or below the
            # current one, whose threshold minus hysteresis the reading still meets.
            new = PressureLevel.LOW
            for candidate in (PressureLevel.CRITICAL, PressureLevel.HIGH, PressureLevel.MEDIUM):
                if candidate <= self._level and fraction >= self._thresholds[candidate] - self._hysteresis:
                    new = candidate
                    break
        if new is self._level:
            return None
        self._level = new
        return MemoryPressure(level=new, current_usage=current, limit=self._limit)

    def reset(self) -> None:
        """Go back to ``LOW`` without emitting anything."""
        self._level = PressureLevel.LOW


# --------------------------------------------------------------------------- bus

#: A synchronous event callback. Its return value is ignored.
EventCallback: TypeAlias = Callable[[ProfilerEvent], object]
#: Event types a listener asks for; None means every event.
EventTypes: TypeAlias = "tuple[type[ProfilerEvent], ...] | None"


def _normalize_types(types: Iterable[type[ProfilerEvent]] | type[ProfilerEvent] | None) -> EventTypes:
    if types is None:
        return None
    if isinstance(types, type):
        types = (types,)
    result = tuple(types)
    for t in result:
        if not (isinstance(t, type) and issubclass(t, ProfilerEvent)):
            raise TypeError(f"types={t!r} is not accepted: give ProfilerEvent subclasses such as MemoryPressure")
    return result


class Subscription:
    """A callback registered on an :class:`EventBus`; close it to unsubscribe.

    Usable as a context manager: the callback is removed when the block ends.
    """

    def __init__(
        self,
        bus: EventBus,
        callback: EventCallback,
        types: EventTypes,
        on_close: Callable[[], object] | None = None,
    ) -> None:
        self._bus = bus
        self._types = types
        self.callback: EventCallback = callback
        #: Exceptions the callback raised (each was logged or counted, never re-raised).
        self.errors = 0
        self._closed = False
        # Run once when the subscription closes (e.g. release the monitor thread).
        self._on_close = on_close

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called (or the bus was closed)."""
        return self._closed

    def wants(self, event: ProfilerEvent) -> bool:
        """True if this subscription receives ``event`` (type filter)."""
        return self._types is None or isinstance(event, self._types)

    def close(self) -> None:
        """Unsubscribe; later events are not delivered. Idempotent."""
        if not self._closed:
            self._closed = True
            self._bus._remove_subscription(self)
            _run_on_close(self._on_close)
            self._on_close = None

    unsubscribe = close

    def _deliver(self, event: ProfilerEvent) -> None:
        if self._closed or not self.wants(event):
            return
        try:
            self.callback(event)
        except Exception:
            self.errors += 1
            if self.errors <= _LOGGED_ERRORS_PER_SUBSCRIPTION:
                logger.exception(
                    "cgmem_nb: event callback %r raised on %s event (error %d; the bus goes on%s)",
                    self.callback,
                    event.kind,
                    self.errors,
                    "; further errors of this callback are only counted in Subscription.errors"
                    if self.errors == _LOGGED_ERRORS_PER_SUBSCRIPTION
                    else "",
                )

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "active"
        return f"<Subscription {self.callback!r} {state} errors={self.errors}>"


class EventReceiver:
    """A bounded queue of events for one listener, readable from asyncio or synchronously.

    * ``await receiver.recv()`` returns the next event, waiting if none is queued;
      once the receiver is closed it returns the events still queued and then None.
    * ``async for event in receiver:`` does the same and ends when closed.
    * :meth:`get_nowait` and :meth:`drain` read without waiting (any thread).

    The queue holds at most ``maxsize`` events; when a new event arrives on a full
    queue the oldest is dropped and :attr:`dropped` grows by one. A receiver can
    be created outside an event loop; the loop is bound at each ``recv()``, and the
    publisher wakes it with ``loop.call_soon_threadsafe`` from whatever thread it
    runs on. The bus keeps only a weak reference: a receiver nobody holds stops
    receiving and is freed. Usable as a (sync or async) context manager that closes it.
    """

    def __init__(
        self,
        bus: EventBus | None,
        maxsize: int = 1000,
        types: EventTypes = None,
        on_close: Callable[[], object] | None = None,
    ) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ValueError(f"maxsize={maxsize!r} is not accepted: give a whole number of events, at least 1")
        self._bus = bus
        self._maxsize = maxsize
        self._types = types
        self._queue: collections.deque[ProfilerEvent] = collections.deque()
        self._lock = threading.RLock()  # re-entrant for the same reason as EventBus._lock
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._closed = False
        self._dropped = 0
        self._received = 0
        # Run once at close() or, for a receiver dropped without close(), when it is freed.
        self._on_close = weakref.finalize(self, _run_on_close, on_close) if on_close is not None else None

    # ---------------------------------------------------------------- state

    @property
    def maxsize(self) -> int:
        """Most events queued at once."""
        return self._maxsize

    @property
    def dropped(self) -> int:
        """Events dropped (oldest first) because the queue was full."""
        return self._dropped

    @property
    def received(self) -> int:
        """Events put into this receiver's queue, dropped ones included."""
        return self._received

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called (or the bus was closed)."""
        return self._closed

    def __len__(self) -> int:
        """Events queued now."""
        with self._lock:
            return len(self._queue)

    def wants(self, event: ProfilerEvent) -> bool:
        """True if this receiver takes ``event`` (type filter)."""
        return self._types is None or isinstance(event, self._types)

    # ---------------------------------------------------------------- producer side

    def put(self, event: ProfilerEvent) -> bool:
        """Queue ``event`` without blocking (any thread); False if closed or filtered out.

        The bus calls this; call it directly only for a receiver made without a bus.
        """
        if not self.wants(event):
            return False
        with self._lock:
            if self._closed:
                return False
            if len(self._queue) >= self._maxsize:
                self._queue.popleft()
                self._dropped += 1
            self._queue.append(event)
            self._received += 1
            waiters, self._waiters = self._waiters, []
        self._wake(waiters)
        return True

    @staticmethod
    def _wake(waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]) -> None:
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:
                # The loop was closed while its task waited; nobody is left to wake.
                pass

    # ---------------------------------------------------------------- consumer side

    def get_nowait(self) -> ProfilerEvent | None:
        """The oldest queued event, or None if the queue is empty (never waits)."""
        with self._lock:
            return self._queue.popleft() if self._queue else None

    def drain(self) -> list[ProfilerEvent]:
        """All queued events, oldest first, emptying the queue (never waits)."""
        with self._lock:
            events = list(self._queue)
            self._queue.clear()
            return events

    async def recv(self) -> ProfilerEvent | None:
        """The next event; waits for one. None once the receiver is closed and empty."""
        while True:
            with self._lock:
                if self._queue:
                    return self._queue.popleft()
                if self._closed:
                    return None
                loop = asyncio.get_running_loop()
                future: asyncio.Future[None] = loop.create_future()
                entry = (loop, future)
                self._waiters.append(entry)
            try:
                await future
            finally:
                with self._lock:
                    if entry in self._waiters:
                        self._waiters.remove(entry)

    def __aiter__(self) -> EventReceiver:
        return self

    async def __anext__(self) -> ProfilerEvent:
        event = await self.recv()
        if event is None:
            raise StopAsyncIteration
        return event

    def close(self) -> None:
        """Stop receiving: detach from the bus and wake waiting ``recv()`` calls.

        Events already queued can still be read; after them ``recv()`` returns None.
        Idempotent and callable from any thread.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            waiters, self._waiters = self._waiters, []
        self._wake(waiters)
        if self._bus is not None:
            self._bus._remove_receiver(self)
        if self._on_close is not None:
            self._on_close()

    def __enter__(self) -> EventReceiver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> EventReceiver:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<EventReceiver {state} queued={len(self)} dropped={self._dropped} maxsize={self._maxsize}>"


def _run_on_close(hook: Callable[[], object] | None) -> None:
    if hook is None:
        return
    try:
        hook()
    except Exception:
        logger.exception("cgmem_nb: close hook %r raised", hook)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class EventBus:
    """Publish :class:`ProfilerEvent` objects to callbacks and receivers.

    :meth:`publish` is thread-safe and never waits for a listener (receivers drop
    their oldest event when full; callbacks run inline and their exceptions are
    contained). Listeners registered while an event is being published may or may
    not see that event; every later event reaches them, in publishing order per
    publishing thread.
    """

    def __init__(self) -> None:
        # Re-entrant: a finalizer run by the garbage collector inside a locked
        # region may itself subscribe or close a receiver on this thread.
        self._lock = threading.RLock()
        # Copy-on-write tuples: publish() reads them without taking the lock.
        self._subscriptions: tuple[Subscription, ...] = ()
        self._receivers: tuple[weakref.ref[EventReceiver], ...] = ()

    @property
    def has_listeners(self) -> bool:
        """True if any subscription or live receiver is registered (cheap; lets producers skip work)."""
        return bool(self._subscriptions) or any(ref() is not None for ref in self._receivers)

    def publish(self, event: ProfilerEvent) -> None:
        """Deliver ``event`` to every receiver and callback; callable from any thread, never blocks.

        Callbacks run on the calling thread, after the receivers have been fed.
        """
        if not isinstance(event, ProfilerEvent):
            raise TypeError(f"publish({event!r}) is not accepted: give a ProfilerEvent instance")
        dead = False
        for ref in self._receivers:
            receiver = ref()
            if receiver is None:
                dead = True
            else:
                receiver.put(event)
        if dead:
            self._prune()
        for subscription in self._subscriptions:
            subscription._deliver(event)

    def subscribe(
        self,
        callback: EventCallback,
        types: Iterable[type[ProfilerEvent]] | type[ProfilerEvent] | None = None,
        *,
        on_close: Callable[[], object] | None = None,
    ) -> Subscription:
        """Call ``callback(event)`` on the publishing thread for every event (of ``types``, if given).

        Returns a :class:`Subscription`; close it (or use it as a context manager)
        to stop. The bus holds the callback strongly until then. ``on_close`` runs
        once when the subscription is closed.
        """
        if not callable(callback):
            raise TypeError(f"subscribe({callback!r}) is not accepted: give a callable taking one event")
        subscription = Subscription(self, callback, _normalize_types(types), on_close=on_close)
        with self._lock:
            self._subscriptions = self._subscriptions + (subscription,)
        return subscription

    def receiver(
        self,
        maxsize: int = 1000,
        types: Iterable[type[ProfilerEvent]] | type[ProfilerEvent] | None = None,
        *,
        on_close: Callable[[], object] | None = None,
    ) -> EventReceiver:
        """A new :class:`EventReceiver` holding at most ``maxsize`` events (of ``types``, if given).

        ``on_close`` runs once when the receiver is closed, or when it is freed unclosed.
        """
        receiver = EventReceiver(self, maxsize=maxsize, types=_normalize_types(types), on_close=on_close)
        with self._lock:
            self._receivers = tuple(r for r in self._receivers if r() is not None) + (weakref.ref(receiver),)
        return receiver

    def close(self) -> None:
        """Close every receiver and subscription (their readers see the end of the stream)."""
        with self._lock:
            subscriptions, self._subscriptions = self._subscriptions, ()
            refs, self._receivers = self._receivers, ()
        for subscription in subscriptions:
            subscription._closed = True
            _run_on_close(subscription._on_close)
            subscription._on_close = None
        for ref in refs:
            receiver = ref()
            if receiver is not None:
                receiver.close()

    def _prune(self) -> None:
        with self._lock:
            self._receivers = tuple(r for r in self._receivers if r() is not None)

    def _remove_subscription(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions = tuple(s for s in self._subscriptions if s is not subscription)

    def _remove_receiver(self, receiver: EventReceiver) -> None:
        with self._lock:
            self._receivers = tuple(r for r in self._receivers if r() is not None and r() is not receiver)

    def __repr__(self) -> str:
        live = sum(1 for r in self._receivers if r() is not None)
        return f"<EventBus subscriptions={len(self._subscriptions)} receivers={live}>"


#: The process-wide bus: the monitor, sessions and analysis publish here.
EVENT_BUS = EventBus()

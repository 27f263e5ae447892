"""``EventReceiver``: a bounded queue of events for one listener, readable from asyncio or synchronously."""

from __future__ import annotations

import asyncio
import collections
import threading
import weakref
from types import TracebackType
from typing import Callable, TypeAlias

from ..subscription import Closing, run_hook
from .kinds import ProfilerEvent

__all__ = ["EventReceiver", "EventTypes"]

#: Event types a listener asks for; None means every event.
EventTypes: TypeAlias = "tuple[type[ProfilerEvent], ...] | None"


class EventReceiver(Closing):
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
        detach: Callable[[EventReceiver], object] | None,
        maxsize: int = 1000,
        types: EventTypes = None,
        on_close: Callable[[], object] | None = None,
    ) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ValueError(f"maxsize={maxsize!r} is not accepted: give a whole number of events, at least 1")
        # What the bus does to forget this receiver (None for a receiver made without a bus).
        self._detach = detach
        self._maxsize = maxsize
        self._types = types
        self._queue: collections.deque[ProfilerEvent] = collections.deque()
        self._lock = threading.RLock()  # re-entrant: a finalizer run by the collector may close a receiver
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._closed = False
        self._dropped = 0
        self._received = 0
        # Run once at close() or, for a receiver dropped without close(), when it is freed.
        self._on_close = weakref.finalize(self, run_hook, on_close) if on_close is not None else None

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
        if self._detach is not None:
            self._detach(self)
        if self._on_close is not None:
            self._on_close()

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


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)

"""``Subscription``: a callback registered with the event bus or the monitor thread.

Both the :class:`~cgmem_nb.engine.events.EventBus` (events) and the
:class:`~cgmem_nb.engine.monitor.Monitor` (ticks) hand one of these back. Close it
(or use it as a context manager) to stop. The callback runs on the thread that
delivers (often the monitor thread): an exception it raises is contained here,
logged with a traceback the first few times and then only counted in
:attr:`Subscription.errors`, so it never reaches the publisher and never stops
the other subscribers.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Callable, Generic, Self, TypeVar

__all__ = ["Closing", "Subscription"]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Callback errors logged with a traceback per subscription; later ones are only counted.
LOGGED_ERRORS = 3


class Closing(ABC):
    """Mixin: ``with thing:`` closes ``thing`` when the block ends (``close()`` is the subclass's)."""

    @abstractmethod
    def close(self) -> None:
        """Stop what this object does (each subclass says how); closing twice does nothing."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class Subscription(Closing, Generic[T]):
    """A registered ``callback``; :meth:`close` removes it. Usable as a context manager.

    Args:
        callback: called with each delivered value.
        remove: what the owner does to forget this subscription (called once, by :meth:`close`).
        types: deliver only instances of these types (None: everything).
        interval: seconds between deliveries the subscriber asked for (monitor subscriptions).
        on_close: run once when the subscription closes (e.g. release the monitor thread).
    """

    def __init__(
        self,
        callback: Callable[[T], object],
        remove: Callable[[Subscription[T]], object],
        *,
        types: tuple[type, ...] | None = None,
        interval: float | None = None,
        on_close: Callable[[], object] | None = None,
    ) -> None:
        self.callback = callback
        self.types = types
        self.interval = interval
        #: Exceptions the callback raised (each was logged or counted, never re-raised).
        self.errors = 0
        self._remove: Callable[[Subscription[T]], object] | None = remove
        self._on_close = on_close
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called (or the owner closed every subscription)."""
        return self._closed

    def wants(self, value: object) -> bool:
        """True if this subscription receives ``value`` (type filter)."""
        return self.types is None or isinstance(value, self.types)

    def deliver(self, value: T, what: str = "value") -> None:
        """Call the callback with ``value`` unless closed or filtered out; contain what it raises."""
        if self._closed or not self.wants(value):
            return
        try:
            self.callback(value)
        except Exception:
            self.errors += 1
            if self.errors <= LOGGED_ERRORS:
                log.exception(
                    "cgmem_nb: callback %r raised on a %s (error %d; delivery goes on%s)",
                    self.callback,
                    what,
                    self.errors,
                    "; further errors of this callback are only counted in Subscription.errors"
                    if self.errors == LOGGED_ERRORS
                    else "",
                )

    def close(self) -> None:
        """Stop delivering; the owner forgets the callback and ``on_close`` runs. Idempotent."""
        if self._closed:
            return
        self._closed = True
        remove, self._remove = self._remove, None
        hook, self._on_close = self._on_close, None
        if remove is not None:
            remove(self)
        run_hook(hook)

    unsubscribe = close

    def __repr__(self) -> str:
        state = "closed" if self._closed else "active"
        return f"<Subscription {self.callback!r} {state} errors={self.errors}>"


def run_hook(hook: Callable[[], object] | None) -> None:
    """Run a close hook, logging (never raising) what it raises."""
    if hook is None:
        return
    try:
        hook()
    except Exception:
        log.exception("cgmem_nb: close hook %r raised", hook)

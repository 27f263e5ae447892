"""``EventBus``: publish profiler events to callbacks and receivers; :data:`EVENT_BUS` is the process's.

There are two ways to listen:

* **Callbacks** — ``bus.subscribe(callback)`` returns a
  :class:`~cgmem_nb.engine.subscription.Subscription`. The callback runs *on the
  publishing thread* (often the monitor thread), so it must be quick and must not
  block. An exception raised by a callback is logged and counted in
  ``Subscription.errors``; it never reaches the publisher and never stops the other
  subscribers.
* **Receivers** — ``bus.receiver()`` returns an
  :class:`~cgmem_nb.engine.events.receiver.EventReceiver`, a bounded queue per
  listener that an asyncio task reads with ``await receiver.recv()`` or
  ``async for event in receiver:``. Publishing never waits for a slow reader: when
  the queue is full the *oldest* event is dropped and counted in ``receiver.dropped``.
"""

from __future__ import annotations

import threading
import weakref
from typing import Callable, Iterable, TypeAlias

from ..subscription import Subscription
from .kinds import ProfilerEvent
from .receiver import EventReceiver, EventTypes

__all__ = ["EVENT_BUS", "EventBus", "EventCallback"]

#: A synchronous event callback. Its return value is ignored.
EventCallback: TypeAlias = Callable[[ProfilerEvent], object]


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
        self._subscriptions: tuple[Subscription[ProfilerEvent], ...] = ()
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
            subscription.deliver(event, f"{event.kind} event")

    def subscribe(
        self,
        callback: EventCallback,
        types: Iterable[type[ProfilerEvent]] | type[ProfilerEvent] | None = None,
        *,
        on_close: Callable[[], object] | None = None,
    ) -> Subscription[ProfilerEvent]:
        """Call ``callback(event)`` on the publishing thread for every event (of ``types``, if given).

        Returns a :class:`Subscription`; close it (or use it as a context manager)
        to stop. The bus holds the callback strongly until then. ``on_close`` runs
        once when the subscription is closed.
        """
        if not callable(callback):
            raise TypeError(f"subscribe({callback!r}) is not accepted: give a callable taking one event")
        subscription: Subscription[ProfilerEvent] = Subscription(
            callback, self._forget_subscription, types=_normalize_types(types), on_close=on_close
        )
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
        receiver = EventReceiver(self.forget_receiver, maxsize=maxsize, types=_normalize_types(types), on_close=on_close)
        with self._lock:
            self._receivers = tuple(r for r in self._receivers if r() is not None) + (weakref.ref(receiver),)
        return receiver

    def close(self) -> None:
        """Close every receiver and subscription (their readers see the end of the stream)."""
        with self._lock:
            subscriptions, self._subscriptions = self._subscriptions, ()
            refs, self._receivers = self._receivers, ()
        for subscription in subscriptions:
            subscription.close()  # already forgotten: this only marks it closed and runs its hook
        for ref in refs:
            receiver = ref()
            if receiver is not None:
                receiver.close()

    def _prune(self) -> None:
        with self._lock:
            self._receivers = tuple(r for r in self._receivers if r() is not None)

    def _forget_subscription(self, subscription: Subscription[ProfilerEvent]) -> None:
        with self._lock:
            self._subscriptions = tuple(s for s in self._subscriptions if s is not subscription)

    def forget_receiver(self, receiver: EventReceiver) -> None:
        """Stop feeding ``receiver`` (its ``close()`` calls this)."""
        with self._lock:
            self._receivers = tuple(r for r in self._receivers if r() is not None and r() is not receiver)

    def __repr__(self) -> str:
        live = sum(1 for r in self._receivers if r() is not None)
        return f"<EventBus subscriptions={len(self._subscriptions)} receivers={live}>"


#: The process-wide bus: the monitor, sessions, the IPython extension and the facade publish here.
EVENT_BUS = EventBus()

"""Ctrl-C while a session starts or stops: the interrupt waits until the session is whole.

A ``KeyboardInterrupt`` (the kernel's *Interrupt* button, Ctrl-C, the guard's
SIGINT) can land between any two bytecodes of the main thread. Landing inside a
session's start (after the tracer started, before the session was registered) or
inside its stop (after the tracer stopped, before the monitor was released) it
used to leave tracemalloc on and the monitor thread running for good.

So the main thread holds SIGINT during those critical sections: :func:`hold`
installs (once) a forwarding handler that, while held, only records the signal;
:func:`release` lets it through again and re-delivers a recorded one by raising
``KeyboardInterrupt`` after the section ends (a session start that was
interrupted is undone first, so it either happened whole or not at all). Between
critical sections the forwarder calls the handler that was there before
(``default_int_handler`` raises ``KeyboardInterrupt`` as usual). Releasing is a
plain attribute update, so a signal that arrives just then is raised in the
caller, after the section, never inside it. The previous handler is put back
when the last session of the main thread has stopped.

Two places cannot hold: the first bytecode of a ``with`` block's ``__exit__`` and
the last one of its ``__enter__``. An interrupt raised there skips the session's
stop for good (Python calls ``__exit__`` only for exceptions raised in the body).
So a signal that lands while one of the functions named with :func:`defer_in` is
on the top few frames is sent again a moment later, from a timer thread, instead of
raised: it is raised once the main thread has left those functions, or held by the
stop it entered.

Only SIGINT on the main thread is held (Python runs signal handlers there
only). An asynchronous exception injected into a thread
(``PyThreadState_SetAsyncExc``) cannot be held from Python; the guard delivers
its interrupt by SIGINT whenever the cell runs on the main thread.
"""

from __future__ import annotations

import signal
import threading
from types import CodeType, FrameType
from typing import Any, Callable

__all__ = ["defer_in", "forwards_to_default", "hold", "pending", "release"]

#: Code objects in which a SIGINT is sent again rather than raised (see :func:`defer_in`).
_DEFERRING: set[CodeType] = set()
#: Frames looked at, from the innermost: the deferring function and what it calls before it holds.
_DEFER_DEPTH = 12


def defer_in(*functions: Callable[..., Any]) -> None:
    """Never raise a SIGINT's ``KeyboardInterrupt`` while one of ``functions`` (or what it
    calls, a few frames deep) runs on the main thread: send the signal again instead."""
    for function in functions:
        _DEFERRING.add(function.__code__)


#: Seconds before a deferred signal is sent again.
_RESEND_S = 0.002


def _resend(signum: int) -> None:
    main = threading.main_thread().ident
    if main is not None and threading.main_thread().is_alive():
        signal.pthread_kill(main, signum)


def _deferring(frame: FrameType | None) -> bool:
    for _ in range(_DEFER_DEPTH):
        if frame is None:
            return False
        if frame.f_code in _DEFERRING:
            return True
        frame = frame.f_back
    return False


class _Shield:
    """The process's SIGINT forwarder and its hold count (main thread only)."""

    def __init__(self) -> None:
        self.previous: Any = None
        self.installed = False
        self.holds = 0
        self.pending: tuple[int, FrameType | None] | None = None
        #: Sessions of the main thread between their start and their stop.
        self.sessions = 0

    def handler(self, signum: int, frame: FrameType | None) -> Any:
        if self.holds > 0:
            self.pending = (signum, frame)
            return None
        if _deferring(frame):
            # Sent again in a moment, from another thread (never from inside this handler,
            # which would run it again within this very frame).
            threading.Timer(_RESEND_S, _resend, args=(signum,)).start()
            return None
        previous = self.previous
        if callable(previous):
            return previous(signum, frame)
        raise KeyboardInterrupt


_SHIELD = _Shield()


def _main() -> bool:
    return threading.current_thread() is threading.main_thread()


def hold() -> bool:
    """Hold SIGINT on the main thread until :func:`release`; False (nothing held) on other
    threads, or when SIGINT's handler is not a Python function (ignored or default)."""
    if not _main():
        return False
    shield = _SHIELD
    current = signal.getsignal(signal.SIGINT)
    if current != shield.handler:
        # Not installed yet, or replaced since (ipykernel puts its own handler back after each
        # cell, so a session that spans cells finds it gone): forward to the handler in force.
        if not callable(current):
            return False
        shield.previous = current
        signal.signal(signal.SIGINT, shield.handler)
        shield.installed = True
    shield.holds += 1
    return True


def release(held: bool, *, session_delta: int = 0, deliver: bool = True) -> None:
    """End one :func:`hold` (``held`` is what it returned). ``session_delta`` counts main-thread
    sessions started (+1) or stopped (-1) in the section. Raises the ``KeyboardInterrupt`` that
    arrived while held, when ``deliver``; when the last session has stopped, the previous
    SIGINT handler is put back."""
    if not held:
        return
    shield = _SHIELD
    shield.sessions = max(shield.sessions + session_delta, 0)
    shield.holds -= 1
    if shield.holds > 0:
        return
    pending, shield.pending = shield.pending, None
    if shield.sessions == 0 and shield.installed:
        shield.installed = False
        if signal.getsignal(signal.SIGINT) == shield.handler:
            signal.signal(signal.SIGINT, shield.previous)
    if pending is not None and deliver:
        previous = shield.previous
        if callable(previous):
            previous(*pending)
        else:
            raise KeyboardInterrupt


def pending() -> bool:
    """True when a SIGINT arrived during the current hold."""
    return _SHIELD.pending is not None


def forwards_to_default() -> bool:
    """True when SIGINT's handler is Python's ``default_int_handler``, directly or through
    this module's forwarder (the guard then interrupts with SIGINT)."""
    current = signal.getsignal(signal.SIGINT)
    if current is signal.default_int_handler:
        return True
    return bool(current == _SHIELD.handler and _SHIELD.previous is signal.default_int_handler)

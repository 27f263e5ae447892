"""The one session runner: start a session, run code in it, stop it (on error too), deliver the result.

The ``%%memprofile`` magic, the command line and the pytest plugin all run code
this way, so they agree on what happens when the code raises: the session is
stopped with the exception recorded in its summary, the result is delivered,
and the exception propagates unchanged (``KeyboardInterrupt`` and
``SystemExit`` included).
"""

from __future__ import annotations

from typing import Callable, TypeVar

from .result import ProfileResult
from . import interrupts
from .session import Session

__all__ = ["Deliver", "run_in_session"]

T = TypeVar("T")

#: Receives the finished result and the exception the code raised (None when it returned).
Deliver = Callable[[ProfileResult, "BaseException | None"], object]


def _nothing(result: ProfileResult, error: BaseException | None) -> None:
    """The default delivery: the result stays on ``session.result`` and the profiler."""


def run_in_session(session: Session, body: Callable[[], T], deliver: Deliver = _nothing) -> T:
    """Run ``body()`` in ``session`` and return its value.

    The session is started unless it already runs (a caller may start it itself,
    e.g. to catch the tracer's start-up warnings). Whether ``body`` returns or
    raises, the session is stopped (with the exception, if any), then
    ``deliver(result, exception)`` is called, then the value is returned or the
    exception re-raised as it was. If ``body`` stopped the session itself (the pytest
    fixture's ``memprofile.stop()``), that result is the one delivered. A guard
    interrupt or a Ctrl-C that lands as ``body`` returns, or while the session
    stops, is delivered and raised the same way: the session never stays running.
    """
    __tracebackhide__ = True  # noqa: F841 - IPython and pytest hide this frame in tracebacks
    try:
        if not session.running:
            session.start()
        value = body()
    except BaseException as exc:
        _finish(session, deliver, exc)
        raise
    _finish(session, deliver, None)
    return value


def _finish(session: Session, deliver: Deliver, error: BaseException | None) -> None:
    """Stop ``session`` (unless the body already did) and deliver its result.

    An interrupt that lands here (the stop holds Ctrl-C, but it can arrive just before
    or just after) is kept: the stop is completed, the result delivered, then it is raised.
    """
    late: BaseException | None = None
    for _ in range(100):
        try:
            if session.running:
                session.stop(error)
            break
        except KeyboardInterrupt as exc:
            late = exc
    if session.result is not None:
        deliver(session.result, error if late is None else late)
    if late is not None:
        raise late


# A signal at _finish's first bytecodes (before its retry loop) would skip the session's stop.
interrupts.defer_in(_finish)

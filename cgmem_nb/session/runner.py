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
    interrupt that lands just as ``body`` returns is delivered and raised the same way.
    """
    __tracebackhide__ = True  # noqa: F841 - IPython and pytest hide this frame in tracebacks
    if not session.running:
        session.start()
    try:
        value = body()
    except BaseException as exc:
        _finish(session, deliver, exc)
        raise
    try:
        _finish(session, deliver, None)
    except KeyboardInterrupt as late:  # the guard fired as the code returned: the result is stored
        if session.result is not None:
            deliver(session.result, late)
        raise
    return value


def _finish(session: Session, deliver: Deliver, error: BaseException | None) -> None:
    """Stop ``session`` (unless the body already did) and deliver its result."""
    result = session.stop(error) if session.running else session.result
    if result is not None:
        deliver(result, error)

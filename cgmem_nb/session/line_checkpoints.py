"""Checkpoints from a trace function, for code that is not a notebook cell.

A session snapshots its peak at checkpoints. A cell gets one after each of its
statements (the cell runner inserts them); a test function or a script gets
them from here: after each line of the top frame (the test body, the script's
module code) and when any function of the user's own code returns (its locals
are still alive then, so a short-lived peak inside it is seen). Library code
is not traced, so the cost stays on the user's lines.

If another trace function is installed (a debugger, coverage.py), it is left
alone and only the monitor's periodic checkpoints are taken.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from types import CodeType, FrameType
from typing import Any, Callable, Iterator

from . import notebook


@contextmanager
def line_checkpoints(checkpoint: Callable[[], None], top: Callable[[CodeType], bool]) -> Iterator[bool]:
    """Call ``checkpoint`` on each line of frames whose code ``top`` accepts, and on
    returns from user code.

    Yields True when the trace function is installed, False when another one was
    already in place (then nothing is changed).
    """
    if sys.gettrace() is not None:
        yield False
        return

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line" or event == "return":
            checkpoint()
        return local

    def global_trace(frame: FrameType, event: str, arg: Any) -> Any:
        code = frame.f_code
        if top(code):
            return local
        if notebook.is_user_code(code.co_filename):
            frame.f_trace_lines = False
            return local
        return None

    sys.settrace(global_trace)
    try:
        yield True
    finally:
        sys.settrace(None)

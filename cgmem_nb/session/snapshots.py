"""What a recording needs around its snapshots: stack keys, and a short-stack worker thread.

* :func:`by_key` groups a snapshot's stats by (frames, thread, tag), merging stats whose
  frames read the same;
* :data:`SHORT_STACK` takes the exact tracer's snapshots on a thread with a short stack
  (see :class:`ShortStack`).
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable

from ..engine.tracers import Frame, StackStat, TraceSnapshot

__all__ = ["SHORT_STACK", "ShortStack", "StackKey", "by_key", "stack_key"]

StackKey = tuple[tuple[Frame, ...], "int | None", "str | None"]


def stack_key(stat: StackStat) -> StackKey:
    return (stat.frames, stat.thread_id, stat.tag)


def by_key(stats: tuple[StackStat, ...]) -> dict[StackKey, StackStat]:
    """Stats by key, merging stats whose frames read the same (a tracer may group by
    code object and offset, and two offsets can resolve to the same file and line)."""
    out: dict[StackKey, StackStat] = {}
    for stat in stats:
        key = stack_key(stat)
        old = out.get(key)
        out[key] = stat if old is None else StackStat(
            stat.frames,
            old.live_bytes + stat.live_bytes,
            old.live_count + stat.live_count,
            old.allocated_bytes + stat.allocated_bytes,
            old.allocated_count + stat.allocated_count,
            stat.thread_id,
            stat.tag,
        )
    return out


class ShortStack:
    """A worker thread that takes the exact tracer's snapshots on a short stack.

    tracemalloc records a traceback for every allocation the snapshot code makes,
    turning each frame into a line number by scanning its function's line table.
    Under a cell the stack is a dozen frames of IPython with long functions; on
    this thread it is a few short ones, and a snapshot of a long cell is about 3x
    cheaper. The thread is started before tracemalloc is (so its own start-up is
    never traced) and then waits, idle, for the next snapshot.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: queue.SimpleQueue[tuple[Callable[[], TraceSnapshot], list[Any], threading.Event]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def ensure(self) -> None:
        """Start the worker unless it runs (call before tracing starts)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="cgmem-snapshot", daemon=True)
                self._thread.start()

    def call(self, func: Callable[[], TraceSnapshot]) -> TraceSnapshot:
        """``func()`` on the worker (on the calling thread when the worker is not running)."""
        thread = self._thread
        if thread is None or not thread.is_alive() or thread is threading.current_thread():
            return func()
        box: list[Any] = []
        done = threading.Event()
        self._requests.put((func, box, done))
        done.wait()
        value = box[0]
        if isinstance(value, BaseException):
            raise value
        return value  # type: ignore[no-any-return]

    def _serve(self) -> None:
        while True:
            func, box, done = self._requests.get()
            try:
                box.append(func())
            except BaseException as exc:  # handed back to the caller
                box.append(exc)
            done.set()
            del func, box, done


#: The worker the exact tracer's snapshots run on.
SHORT_STACK = ShortStack()

"""IPython magics of the notebook-aware analysis: ``%memwatch``, ``%memvars``, ``%memleaks``, ``%memrecs``.

Each returns a pandas DataFrame (so ``v = %memvars`` works) or, for
``%memwatch``, prints its state. The options come from one argument parser per
magic, which also makes the ``%memvars?`` help.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar, cast

import pandas as pd
from IPython.core import magic_arguments as _magic_arguments
from IPython.core.error import UsageError
from IPython.core.magic import Magics, magics_class
from IPython.core.magic import line_magic as _line_magic

from ..schema import leaks_frame, recommendations_frame
from ..schema.readable import readable
from ..session.history import MAX_WATCH_INTERVAL, MIN_WATCH_INTERVAL, WATCHER
from ..session.profiler import MEMORY_PROFILER
from ..session.variables import variables
from ..units import format_bytes
from . import magic_args

F = TypeVar("F", bound=Callable[..., Any])


# IPython's decorators are untyped: these typed wrappers keep mypy --strict honest.
def _arguments() -> Callable[[F], F]:
    return cast(Callable[[F], F], _magic_arguments.magic_arguments())


def _argument(*args: Any, **kwargs: Any) -> Callable[[F], F]:
    return cast(Callable[[F], F], _magic_arguments.argument(*args, **kwargs))


def _parse(magic: Any, line: str) -> Any:
    args = magic_args.parse(magic, line)
    magic_args.checked_config()
    return args


line_magic = cast(Callable[[F], F], _line_magic)


def _top(frame: pd.DataFrame, top: int | None) -> pd.DataFrame:
    if top is not None and not 0 <= top <= 1_000_000:
        raise UsageError(f"--top {top} is not accepted: give 0 to 1000000 rows")
    return frame if top is None else readable(frame.head(top))


@magics_class
class AnalysisMagics(Magics):
    """``%memwatch``, ``%memvars``, ``%memleaks``, ``%memrecs``."""

    @_arguments()
    @_argument("state", nargs="?", choices=("on", "off"), help="Turn cell recording on or off; omit to show the state.")
    @_argument("--stacks", action="store_true", help="Also trace allocations (tracemalloc): fills traced_peak_bytes, costs time.")
    @_argument("--no-holders", action="store_true", help="Do not observe holders after each cell (no leak detection across cells).")
    @_argument("--interval", type=float, default=None, metavar="SECONDS",
               help="Also observe holders this often while a cell runs (default: ProfilerConfig.leak_detection_interval; 0: off).")
    @line_magic
    def memwatch(self, line: str) -> None:
        """Record every cell's memory from now on: ``%memwatch on`` / ``%memwatch off``.

        ``cgmem_nb.history()`` is the DataFrame of recorded cells (RSS before,
        after and peak, duration, heavy flag); ``%memleaks`` uses the holder
        observations taken after each cell.
        """
        args = _parse(self.memwatch, line)
        if args.state == "on":
            interval = magic_args.seconds(
                self.memwatch, "--interval", args.interval, low=MIN_WATCH_INTERVAL, high=MAX_WATCH_INTERVAL, zero=True
            )
            if interval is None:
                interval = min(MEMORY_PROFILER.config.leak_detection_interval, MAX_WATCH_INTERVAL)
            WATCHER.start(self.shell, MEMORY_PROFILER, stacks=args.stacks, observe_holders=not args.no_holders, interval=interval)
        elif args.state == "off":
            WATCHER.stop()
        state = "on" if WATCHER.on else "off"
        extra = f" (stacks {'on' if WATCHER.stacks else 'off'})" if WATCHER.on else ""
        print(f"memwatch is {state}{extra}; {len(WATCHER.records)} cells recorded "
              f"(overhead so far {WATCHER.overhead_s:.3f} s). See cgmem_nb.history().")

    @_arguments()
    @_argument("--top", type=int, default=None, metavar="N", help="Show the N biggest variables only.")
    @line_magic
    def memvars(self, line: str) -> pd.DataFrame:
        """The variables of this notebook by deep size, with what else holds them (``Out[n]``, ``_``, caches)."""
        args = _parse(self.memvars, line)
        frame = variables()
        total = int(frame["unique_bytes"].sum()) if len(frame) else 0
        print(f"{len(frame)} variables hold {format_bytes(total)} (each object counted once).")
        return _top(frame, args.top)

    @_arguments()
    @_argument("--all", action="store_true", help="Include resolved leaks.")
    @line_magic
    def memleaks(self, line: str) -> pd.DataFrame:
        """Memory that outlived its scope or keeps growing, with its holder and how to free it."""
        args = _parse(self.memleaks, line)
        leaks = MEMORY_PROFILER.detect_leaks()
        if not args.all:
            leaks = [leak for leak in leaks if leak.status != "resolved"]
        if not leaks:
            print("No leaks found." + ("" if WATCHER.on else " Turn on %memwatch to find memory that grows across cells."))
        return leaks_frame(leaks)

    @_arguments()
    @_argument("--top", type=int, default=None, metavar="N", help="Show the N most important only.")
    @line_magic
    def memrecs(self, line: str) -> pd.DataFrame:
        """What to change to use less memory, with the code to paste and the bytes it saves."""
        args = _parse(self.memrecs, line)
        recs = MEMORY_PROFILER.generate_recommendations()
        if not recs:
            print("No recommendations: nothing found that would save at least 1 MB.")
        return _top(recommendations_frame(recs), args.top)

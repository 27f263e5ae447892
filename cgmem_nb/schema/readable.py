"""DataFrames that read well when displayed and stay raw underneath.

:class:`ReadableFrame` is a plain :class:`pandas.DataFrame` (same columns, same
dtypes, same numbers: ``frame["size"].sum()`` is bytes) whose *display* shows
sizes as ``1.1 GB``, rates as ``2.0 MB/s``, Unix times as ``3 min ago``, seconds
as ``4.2 s`` and the long text columns (a leak's ``fix``, a recommendation's
``action``) in full, not cut at pandas' 50 characters. ``frame.raw`` is the same data as a plain DataFrame.

The helpers that hand a table to a person return one: ``%memvars``,
``%memleaks``, ``%memrecs``, ``cgmem_nb.variables()``, ``cgmem_nb.history()`` and
:func:`~cgmem_nb.schema.leaks_frame`, :func:`~cgmem_nb.schema.patterns_frame`,
:func:`~cgmem_nb.schema.recommendations_frame`. A ``ProfileResult``'s tables stay plain.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import pandas as pd

from ..units import format_bytes

#: Columns that hold bytes besides those named ``*_bytes``.
BYTE_COLUMNS = frozenset({
    "size", "growth", "estimated_savings", "savings_error", "average_usage", "peak_usage", "current_usage",
})
#: Columns of bytes per second.
RATE_COLUMNS = frozenset({"growth_rate"})
#: Columns of Unix times (shown relative to now).
TIME_COLUMNS = frozenset({"first_seen", "last_seen", "started_at", "timestamp"})
#: Columns of seconds (durations).
SECONDS_COLUMNS = frozenset({"age", "duration_s", "time_to_limit"})


_BREAK = "\ue000"


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def format_seconds(value: Any) -> str:
    """``0.42 s``, ``12 s``, ``4.0 min``, ``2.5 h``, ``3.0 days``; ``never`` for infinity, ``–`` when missing."""
    if _missing(value):
        return "–"
    s = float(value)
    if math.isinf(s):
        return "never"
    if abs(s) < 10:
        return f"{s:.2f} s"
    if abs(s) < 120:
        return f"{s:.0f} s"
    if abs(s) < 7200:
        return f"{s / 60:.1f} min"
    if abs(s) < 172_800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86_400:.1f} days"


def format_ago(value: Any, now: float | None = None) -> str:
    """A Unix time as ``just now``, ``12 s ago``, ``4.0 min ago``... (``–`` when missing)."""
    if _missing(value):
        return "–"
    delta = (time.time() if now is None else now) - float(value)
    if delta < 1:
        return "just now"
    return f"{format_seconds(delta)} ago"


def _bytes(value: Any) -> str:
    return "–" if _missing(value) else format_bytes(int(value))


def _rate(value: Any) -> str:
    if _missing(value):
        return "–"
    return f"{format_bytes(float(value), signed=float(value) < 0)}/s"


def _formatter(column: str, now: float) -> Callable[[Any], str] | None:
    if column.endswith("_bytes") or column in BYTE_COLUMNS:
        return _bytes
    if column in RATE_COLUMNS:
        return _rate
    if column in TIME_COLUMNS:
        return lambda v: format_ago(v, now)
    if column in SECONDS_COLUMNS:
        return format_seconds
    return None


def display_frame(frame: pd.DataFrame, now: float | None = None) -> pd.DataFrame:
    """A copy of ``frame`` for people: sizes, rates, times and durations as text."""
    moment = time.time() if now is None else now
    out = pd.DataFrame(frame, copy=True)
    for column in out.columns:
        fmt = _formatter(str(column), moment)
        if fmt is not None:
            out[column] = [fmt(v) for v in frame[column]]
    return out


class ReadableFrame(pd.DataFrame):
    """A DataFrame whose display is readable (see the module); its data is untouched.

    What pandas derives from it (``frame.head()``, a selection) is a plain DataFrame again.
    """

    @property
    def raw(self) -> pd.DataFrame:
        """The same data as a plain :class:`pandas.DataFrame`."""
        return pd.DataFrame(self)

    def _display_options(self) -> Any:
        return pd.option_context("display.max_colwidth", None, "display.width", 10_000, "display.max_columns", 50)

    def __repr__(self) -> str:
        if self.empty:
            return pd.DataFrame.__repr__(self.raw)
        with self._display_options():
            return pd.DataFrame.__repr__(display_frame(self.raw))

    def _repr_html_(self) -> str | None:
        shown = self.raw if self.empty else display_frame(self.raw)
        # pandas writes a line break inside a cell as the two characters "\n": carry it past
        # pandas as a private-use character, and show it as a line break (pre-wrap), so a
        # multi-line fix copied from the page pastes as the lines it is.
        for column in shown.columns:
            if shown[column].dtype == object or str(shown[column].dtype) in ("string", "str"):
                shown[column] = [v.replace("\n", _BREAK) if isinstance(v, str) else v for v in shown[column]]
        with self._display_options():
            text = getattr(shown, "_repr_html_")()
        if not isinstance(text, str):
            return None
        text = text.replace(_BREAK, "\n")
        return f'<div class="cgmem-readable"><style>.cgmem-readable td{{white-space:pre-wrap}}</style>{text}</div>'


def readable(frame: pd.DataFrame) -> ReadableFrame:
    """``frame`` as a :class:`ReadableFrame` (no copy of the data)."""
    return frame if isinstance(frame, ReadableFrame) else ReadableFrame(frame)


__all__ = ["ReadableFrame", "display_frame", "format_ago", "format_seconds", "readable"]

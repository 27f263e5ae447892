"""Tables of a result that are built when first read, not when the session ends.

Turning rows into typed DataFrames costs milliseconds per table, and the
analysis (a holder observation, the leak rules, the recommendation rules) can
cost seconds in a notebook with a large namespace. A session's end is on the
critical path of the code it profiled, so a :class:`Deferred` holds the function
that builds one or more tables and runs it once, on the first read of any of
them, from whichever thread reads first.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Deferred", "deferred_frame"]


class Deferred:
    """Tables built once, on first need, by one function (thread-safe).

    ``build()`` returns a mapping of every name in ``names`` to its DataFrame. It must
    not raise: a deferred analysis catches its own failures and returns empty tables.
    """

    __slots__ = ("names", "_build", "_tables", "_lock")

    def __init__(self, build: Callable[[], Mapping[str, pd.DataFrame]], names: Iterable[str]) -> None:
        self.names = tuple(names)
        self._build: Callable[[], Mapping[str, pd.DataFrame]] | None = build
        self._tables: dict[str, pd.DataFrame] | None = None
        self._lock = threading.Lock()

    @property
    def done(self) -> bool:
        """True once the tables have been built."""
        return self._tables is not None

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables, built now if they were not yet."""
        tables = self._tables
        if tables is not None:
            return tables
        with self._lock:
            if self._tables is None:
                build, self._build = self._build, None  # drop what the closure holds once built
                assert build is not None
                self._tables = dict(build())
            return self._tables

    def __repr__(self) -> str:
        return f"<Deferred {', '.join(self.names)} {'built' if self.done else 'pending'}>"


def deferred_frame(table: str, rows: list[dict[str, Any]]) -> Deferred:
    """``table`` (a :data:`cgmem_nb.schema.TABLES` name) from ``rows``, built on first read."""
    from ..schema import make_frame

    return Deferred(lambda: {table: make_frame(table, rows)}, (table,))

"""``ProfileResult``: the finished, immutable record of one profiling session.

A result holds a :class:`~cgmem_nb.schema.Summary` (headline figures, a frozen
dataclass) and tables (DataFrames whose columns are documented in
:mod:`cgmem_nb.schema`). The table properties hand out copies, so a result never
changes after it is made. ``to_json()`` / ``ProfileResult.from_json()`` and
``to_csv()`` / ``from_csv()`` round-trip to an equal result (the file formats are
:mod:`cgmem_nb.session.serialize`'s).

Tables may be given as :class:`~cgmem_nb.session.deferred.Deferred`: they are built
on first read (a session's tables, and its analysis), so ending a session costs
what its samples cost, not what DataFrames and the analysis cost.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ..errors import ResultFormatError
from ..schema import TABLES, Summary, make_frame
from . import hooks
from .deferred import Deferred

if TYPE_CHECKING:  # pandas is imported when a table is first built or read
    import pandas as pd

_FORMAT = "cgmem_nb.ProfileResult"
_VERSION = 1


class ProfileResult:
    """What one profiling session saw. Immutable; tables are returned as copies."""

    __slots__ = ("_summary", "_tables", "_deferred")

    def __init__(
        self,
        summary: Summary | Mapping[str, Any],
        tables: Mapping[str, pd.DataFrame | Deferred],
        *,
        copy: bool = True,
    ) -> None:
        """A result of ``summary`` (a :class:`Summary`, or its :meth:`~Summary.to_dict` form)
        and ``tables`` (tables of :data:`cgmem_nb.schema.TABLES` not given are empty).

        A table given as a :class:`~cgmem_nb.session.deferred.Deferred` is built when first
        read. ``copy=False`` takes the frames as they are: for frames made for this result
        that nobody else holds (the session layer's recordings, a result's own frames).
        """
        self._summary = Summary.from_dict(summary)
        self._tables: dict[str, pd.DataFrame] = {}
        self._deferred: dict[str, Deferred] = {}
        for name, table in tables.items():
            if isinstance(table, Deferred):
                self._deferred[name] = table
            elif copy or type(table).__name__ != "DataFrame":
                # A result keeps plain DataFrames (the helpers' readable frames are for display).
                import pandas as pd

                self._tables[name] = pd.DataFrame(table, copy=True)
            else:
                self._tables[name] = table

    def _frame(self, name: str) -> pd.DataFrame:
        """The table ``name`` itself (not a copy), built now if it was deferred."""
        frame = self._tables.get(name)
        if frame is None:
            deferred = self._deferred.get(name)
            if deferred is not None:
                frame = deferred.tables()[name]
            elif name in TABLES:
                frame = make_frame(name)
            else:
                raise KeyError(f"no table {name!r} in this result; tables: {sorted(self.table_names)}")
            self._tables[name] = frame  # one dict store: safe if two threads race here
        return frame

    def _all(self) -> dict[str, pd.DataFrame]:
        return {name: self._frame(name) for name in self.table_names}

    def _parts(self) -> dict[str, pd.DataFrame | Deferred]:
        """The tables as given (built ones as frames, pending ones as their Deferred)."""
        parts: dict[str, pd.DataFrame | Deferred] = dict(self._deferred)
        parts.update(self._tables)
        return parts

    # -- figures -----------------------------------------------------------------
    @property
    def summary(self) -> Summary:
        """Headline figures (``summary.peak_bytes``, ``summary.retained_bytes``, ...; see
        :class:`~cgmem_nb.schema.Summary`)."""
        return self._summary

    def table(self, name: str) -> pd.DataFrame:
        """A copy of the table ``name`` (see :data:`cgmem_nb.schema.TABLES`)."""
        return self._frame(name).copy()

    @property
    def table_names(self) -> list[str]:
        """Names of the tables this result holds."""
        given = set(self._tables) | set(self._deferred)
        return [name for name in TABLES] + sorted(given - set(TABLES))

    @property
    def lines(self) -> pd.DataFrame:
        """Memory by source line (``In[n]:line`` for cell code), biggest peak first."""
        return self.table("lines")

    @property
    def stacks(self) -> pd.DataFrame:
        """Memory by allocating stack."""
        return self.table("stacks")

    @property
    def categories(self) -> pd.DataFrame:
        """Memory by allocation category."""
        return self.table("categories")

    @property
    def threads(self) -> pd.DataFrame:
        """Memory by thread (empty when the tracer does not record threads)."""
        return self.table("threads")

    @property
    def timeline(self) -> pd.DataFrame:
        """RSS and traced bytes over the session, one row per monitor tick."""
        return self.table("timeline")

    @property
    def leaks(self) -> pd.DataFrame:
        """Leaks found for this session (schema ``leaks``; empty when none or not analysed).

        A session's analysis (leaks, patterns, recommendations) runs when one of the three
        is first read, over the holders and variables as they are then."""
        return self.table("leaks")

    @property
    def patterns(self) -> pd.DataFrame:
        """Per-category usage patterns of this session (schema ``patterns``)."""
        return self.table("patterns")

    @property
    def recommendations(self) -> pd.DataFrame:
        """Recommendations made when this session stopped (schema ``recommendations``)."""
        return self.table("recommendations")

    @property
    def tasks(self) -> pd.DataFrame:
        """Dask tasks run in the session, one row each (``%%memprofile --dask``; else empty)."""
        return self.table("tasks")

    @property
    def workers(self) -> pd.DataFrame:
        """Dask workers profiled with the session, one row each (``%%memprofile --dask``; else empty)."""
        return self.table("workers")

    @property
    def cluster_timeline(self) -> pd.DataFrame:
        """Each Dask worker's memory over the session (``%%memprofile --dask``; else empty)."""
        return self.table("cluster_timeline")

    def with_tables(self, **tables: pd.DataFrame | Deferred) -> ProfileResult:
        """A new result with tables added or replaced (used by the analysis); a table given
        as a :class:`~cgmem_nb.session.deferred.Deferred` is built when first read."""
        merged = self._parts()  # frames of an immutable result: safe to share
        merged.update({name: t if isinstance(t, Deferred) else t.copy() for name, t in tables.items()})
        return ProfileResult(self._summary, merged, copy=False)

    def with_summary(self, **changes: Any) -> ProfileResult:
        """A new result whose summary has ``changes`` applied (tables shared, not copied)."""
        return ProfileResult(self._summary.replace(**changes), self._parts(), copy=False)

    # -- equality and display ------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProfileResult):
            return NotImplemented
        if self._summary != other._summary or self.table_names != other.table_names:
            return False
        return all(self._frame(n).equals(other._frame(n)) for n in self.table_names)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        s = self._summary
        return f"<ProfileResult {s.label} peak={s.peak_bytes} retained={s.retained_bytes} tracer={s.tracer}>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        # Rendering is the outputs layer's job; it is reached through the facade.
        return hooks.facade().render(self)

    # -- serialization ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict holding everything in the result."""
        from .serialize import table_to_dict

        tables = {name: table_to_dict(frame) for name, frame in self._all().items()}
        return {"format": _FORMAT, "version": _VERSION, "summary": self._summary.to_dict(), "tables": tables}

    def to_json(self, path: str | os.PathLike[str] | None = None, *, indent: int | None = None) -> str:
        """The result as JSON text; also written (atomically) to ``path`` when given."""
        from .serialize import dumps, write_atomically

        text = dumps(self.to_dict(), indent=indent)
        if path is not None:
            write_atomically(path, text)
        return text

    def to_csv(self, directory: str | os.PathLike[str]) -> dict[str, Path]:
        """Write each table to ``directory/NAME.csv`` (atomically) plus a ``manifest.json``
        with the dtypes and the summary; returns ``{table: path}``. Read it back with
        :meth:`from_csv` or ``cgmem_nb.export.read_csv_tables(directory)``."""
        from .serialize import write_tables_csv

        return write_tables_csv(directory, self._all(), extra={"summary": self._summary.to_dict()})

    @classmethod
    def from_csv(cls, directory: str | os.PathLike[str]) -> ProfileResult:
        """Read a result written by :meth:`to_csv` (a mixed or damaged set is a ``ResultFormatError``)."""
        from .serialize import read_csv_export

        tables, manifest = read_csv_export(directory)
        return cls(_summary(manifest.get("summary", {}), f"{str(directory)!r}"), tables)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "saved result") -> ProfileResult:
        """Rebuild a result from :meth:`to_dict` output (anything else is a ``ResultFormatError``)."""
        from .serialize import check_table_name, table_from_dict

        if not isinstance(data, Mapping) or data.get("format") != _FORMAT:
            raise ResultFormatError(
                f"{source} is not a saved cgmem_nb result: expected a JSON object with "
                f"format={_FORMAT!r}; save one with ProfileResult.to_json()"
            )
        if data.get("version") != _VERSION:
            raise ResultFormatError(f"{source}: result version {data.get('version')!r} is not supported (expected {_VERSION})")
        specs = data.get("tables", {})
        if not isinstance(specs, Mapping):
            raise ResultFormatError(f"{source}: 'tables' must map table names to tables")
        tables = {
            check_table_name(name, where=f" in {source}"): table_from_dict(spec, where=f"{source}, table {name!r}")
            for name, spec in specs.items()
        }
        return cls(_summary(data.get("summary", {}), source), tables)

    @classmethod
    def from_json(cls, source: str | os.PathLike[str]) -> ProfileResult:
        """Read a result from JSON text or from a file path (a damaged or hostile file is a
        ``ResultFormatError`` naming it)."""
        from .serialize import loads

        text: str | bytes = str(source) if isinstance(source, str) else ""
        name = "saved result"
        if isinstance(source, os.PathLike) or not str(source).lstrip().startswith("{"):
            name = repr(str(source)[:200])
            try:
                text = Path(source).read_bytes()
            except (OSError, ValueError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                raise ResultFormatError(f"could not read saved result {name}: {reason}") from None
        data = loads(text, what=name)
        return cls.from_dict(data, source=name)


def _summary(data: Any, source: str) -> Summary:
    """The summary of a saved result, or a ``ResultFormatError`` naming ``source`` and the field."""
    if not isinstance(data, Mapping):
        raise ResultFormatError(f"{source}: 'summary' must be an object of figures")
    try:
        return Summary.from_dict(data, strict=True)
    except (TypeError, ValueError) as exc:
        raise ResultFormatError(f"{source}: the summary is not valid ({exc})") from None

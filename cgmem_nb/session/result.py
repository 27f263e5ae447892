"""``ProfileResult``: the finished, immutable record of one profiling session.

A result holds a summary (a read-only mapping of headline figures) and tables
(DataFrames whose columns are documented in :mod:`cgmem_nb.schema`). The
properties hand out copies, so a result never changes after it is made.
``to_json()`` / ``ProfileResult.from_json()`` round-trip to an equal result.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import pandas as pd

from ..errors import ResultFormatError
from ..schema import TABLES, make_frame

_FORMAT = "cgmem_nb.ProfileResult"
_VERSION = 1


def json_value(value: Any) -> Any:
    """A JSON-safe form of a table cell or summary value: pandas NA and NaN become
    None, numpy scalars Python ones, dataclasses dicts, enums their value; what is
    already JSON-safe is returned as is, anything else as text."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (str, int, float, bool, list, dict)):
        return value
    if hasattr(value, "item"):
        return value.item()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "value") and hasattr(value, "name"):  # enums
        return value.value
    if isinstance(value, Mapping):
        return dict(value)
    return str(value)


def table_to_dict(frame: pd.DataFrame) -> dict[str, Any]:
    """A table as ``{"columns", "dtypes", "data"}`` (JSON-safe; :func:`table_from_dict` undoes it)."""
    return {
        "columns": list(frame.columns),
        "dtypes": {c: str(t) for c, t in frame.dtypes.items()},
        "data": [[json_value(v) for v in row] for row in frame.itertuples(index=False, name=None)],
    }


def table_from_dict(spec: Mapping[str, Any]) -> pd.DataFrame:
    """The table saved by :func:`table_to_dict`, with its dtypes."""
    frame = pd.DataFrame(spec["data"], columns=spec["columns"])
    return frame.astype(spec["dtypes"]) if len(spec["columns"]) else frame


def write_atomically(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class ProfileResult:
    """What one profiling session saw. Immutable; tables are returned as copies."""

    __slots__ = ("_summary", "_tables")

    def __init__(self, summary: Mapping[str, Any], tables: Mapping[str, pd.DataFrame]) -> None:
        self._summary: Mapping[str, Any] = MappingProxyType(dict(summary))
        full = {name: make_frame(name) for name in TABLES if name not in tables}
        full.update({name: frame.copy() for name, frame in tables.items()})
        self._tables: Mapping[str, pd.DataFrame] = MappingProxyType(full)

    @classmethod
    def _owning(cls, summary: Mapping[str, Any], tables: Mapping[str, pd.DataFrame]) -> "ProfileResult":
        """A result that takes ``tables`` without copying them (for frames nobody else holds)."""
        result = cls.__new__(cls)
        result._summary = MappingProxyType(dict(summary))
        full = {name: make_frame(name) for name in TABLES if name not in tables}
        full.update(tables)
        result._tables = MappingProxyType(full)
        return result

    # -- figures -----------------------------------------------------------------
    @property
    def summary(self) -> Mapping[str, Any]:
        """Headline figures: ``peak_bytes``, ``retained_bytes``, ``allocated_bytes``,
        ``rss_before_bytes``, ``rss_after_bytes``, ``rss_peak_bytes``, ``duration_s``,
        ``tracer``, ``cell`` and more (see the docs)."""
        return self._summary

    def table(self, name: str) -> pd.DataFrame:
        """A copy of the table ``name`` (see :data:`cgmem_nb.schema.TABLES`)."""
        try:
            return self._tables[name].copy()
        except KeyError:
            raise KeyError(f"no table {name!r} in this result; tables: {sorted(self._tables)}") from None

    @property
    def table_names(self) -> list[str]:
        """Names of the tables this result holds."""
        return list(self._tables)

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
        """Leaks found for this session (schema ``leaks``; empty when none or not analysed)."""
        return self.table("leaks")

    @property
    def patterns(self) -> pd.DataFrame:
        """Per-category usage patterns of this session (schema ``patterns``)."""
        return self.table("patterns")

    @property
    def recommendations(self) -> pd.DataFrame:
        """Recommendations made when this session stopped (schema ``recommendations``)."""
        return self.table("recommendations")

    def with_tables(self, **tables: pd.DataFrame) -> "ProfileResult":
        """A new result with tables added or replaced (used by the analysis)."""
        merged = dict(self._tables)  # frames of an immutable result: safe to share
        merged.update({name: frame.copy() for name, frame in tables.items()})
        return ProfileResult._owning(self._summary, merged)

    # -- equality and display ------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProfileResult):
            return NotImplemented
        if dict(self._summary) != dict(other._summary) or set(self._tables) != set(other._tables):
            return False
        return all(self._tables[n].equals(other._tables[n]) for n in self._tables)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        s = self._summary
        return (
            f"<ProfileResult {s.get('label') or ''} peak={s.get('peak_bytes')} "
            f"retained={s.get('retained_bytes')} tracer={s.get('tracer')}>"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        # Display is the outputs layer's job; imported here, lazily, at the edge.
        from ..outputs.report import render_bundle

        return render_bundle(self)

    # -- serialization ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict holding everything in the result."""
        tables = {name: table_to_dict(frame) for name, frame in self._tables.items()}
        return {"format": _FORMAT, "version": _VERSION, "summary": dict(self._summary), "tables": tables}

    def to_json(self, path: str | os.PathLike[str] | None = None, *, indent: int | None = None) -> str:
        """The result as JSON text; also written (atomically) to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False, default=json_value)
        if path is not None:
            write_atomically(path, text)
        return text

    def to_csv(self, directory: str | os.PathLike[str]) -> dict[str, Path]:
        """Write each table to ``directory/NAME.csv`` (atomically) plus a ``manifest.json``
        with the dtypes and the summary; returns ``{table: path}``. Read it back with
        :meth:`from_csv` or ``cgmem_nb.export.read_csv_tables(directory)``."""
        from ..outputs.export import result_to_csv

        return result_to_csv(self, directory)

    @classmethod
    def from_csv(cls, directory: str | os.PathLike[str]) -> "ProfileResult":
        """Read a result written by :meth:`to_csv`."""
        from ..outputs.export import read_result_csv

        return read_result_csv(directory)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ProfileResult":
        """Rebuild a result from :meth:`to_dict` output."""
        if not isinstance(data, Mapping) or data.get("format") != _FORMAT:
            raise ResultFormatError(
                "this is not a saved cgmem_nb result: expected a JSON object with "
                f"format={_FORMAT!r}; save one with ProfileResult.to_json()"
            )
        if data.get("version") != _VERSION:
            raise ResultFormatError(f"saved result version {data.get('version')!r} is not supported (expected {_VERSION})")
        tables = {name: table_from_dict(spec) for name, spec in data.get("tables", {}).items()}
        return cls(data.get("summary", {}), tables)

    @classmethod
    def from_json(cls, source: str | os.PathLike[str]) -> "ProfileResult":
        """Read a result from JSON text or from a file path."""
        text = str(source)
        if isinstance(source, os.PathLike) or not text.lstrip().startswith("{"):
            try:
                text = Path(source).read_text(encoding="utf-8")
            except OSError as exc:
                raise ResultFormatError(f"could not read saved result {str(source)!r}: {exc}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ResultFormatError(f"saved result is not valid JSON ({exc}); was it written by to_json()?") from None
        return cls.from_dict(data)

"""The one place that writes and reads files: JSON and CSV forms of tables, and atomic writes.

Used by ``ProfileResult.to_json`` / ``to_csv``, the profiler's exports
(``MEMORY_PROFILER.export_json`` / ``export_csv``, the dashboard's ``/api/export``)
and the pytest plugin's ``--memprofile-json`` file.

* JSON: a table is ``{"columns", "dtypes", "data"}`` (:func:`table_to_dict`,
  :func:`table_from_dict`); cells and figures pass through :func:`json_value`.
* CSV: one file per table plus a ``manifest.json`` with each table's file and
  dtypes (and whatever the caller adds, e.g. a result's summary). A missing value
  is written as ``<NA>`` (so an empty string stays an empty string); floats in
  their shortest round-trip form. Without :func:`read_csv_tables`, pandas reads a
  table exactly with::

      dtypes = json.load(open(d / "manifest.json"))["tables"]["lines"]["dtypes"]
      pd.read_csv(d / "lines.csv", dtype=dtypes, keep_default_na=False, na_values=["<NA>"])

  (with pandas < 3 add ``float_precision="round_trip"``; :func:`read_csv_kwargs` does this).
* Every file is written atomically (:func:`write_atomically`: a temporary file in
  the same directory, then a rename), so a crash never leaves half a file behind.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from ..errors import ExportError, ResultFormatError

__all__ = [
    "CSV_MANIFEST",
    "NA_REP",
    "dumps",
    "frame_to_csv_text",
    "json_value",
    "read_csv_export",
    "read_csv_kwargs",
    "read_csv_tables",
    "table_from_dict",
    "table_to_dict",
    "write_atomically",
    "write_tables_csv",
]

#: How a missing value is written in CSV files.
NA_REP = "<NA>"
#: Name of the manifest next to the CSV tables.
CSV_MANIFEST = "manifest.json"
_CSV_FORMAT = "cgmem_nb.csv"
_CSV_VERSION = 1


# -- JSON ------------------------------------------------------------------------------------
def json_value(value: Any) -> Any:
    """A JSON-safe form of a table cell or a figure: pandas NA and NaN become None, numpy
    scalars Python ones, dataclasses dicts, enums their value; what is already JSON-safe
    is returned as is, anything else as text."""
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


def dumps(data: Any, *, indent: int | None = None, sort_keys: bool = False) -> str:
    """``data`` as strict JSON (no NaN), converting what :func:`json_value` knows."""
    return json.dumps(data, indent=indent, allow_nan=False, default=json_value, sort_keys=sort_keys)


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


# -- files -----------------------------------------------------------------------------------
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


# -- CSV -------------------------------------------------------------------------------------
def frame_to_csv_text(frame: pd.DataFrame) -> str:
    """``frame`` as CSV text in the export's conventions (no index, ``<NA>`` for missing)."""
    return str(frame.to_csv(index=False, na_rep=NA_REP, lineterminator="\n"))


def read_csv_kwargs() -> dict[str, Any]:
    """Keyword arguments for ``pd.read_csv`` that read an export's file exactly (add ``dtype=``)."""
    kwargs: dict[str, Any] = {"keep_default_na": False, "na_values": [NA_REP]}
    if int(pd.__version__.split(".")[0]) < 3:  # pandas 3 parses floats round-trip by default
        kwargs["float_precision"] = "round_trip"
    return kwargs


def _read_csv(path: Path, dtypes: Mapping[str, str]) -> pd.DataFrame:
    frame: pd.DataFrame = pd.read_csv(path, dtype=dict(dtypes), **read_csv_kwargs())
    return frame.astype(dict(dtypes)) if len(frame.columns) else frame


def write_tables_csv(
    directory: str | os.PathLike[str], tables: Mapping[str, pd.DataFrame], *, extra: Mapping[str, Any] | None = None
) -> dict[str, Path]:
    """Write each table to ``directory/NAME.csv`` and a ``manifest.json`` with the dtypes
    (plus ``extra`` entries). Returns ``{table: path}``. Each file is written atomically;
    the manifest last."""
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise ExportError(f"cannot export CSV into {str(target)!r}: it is a file; give a directory")
    paths: dict[str, Path] = {}
    manifest: dict[str, Any] = {"format": _CSV_FORMAT, "version": _CSV_VERSION, "tables": {}}
    for name, frame in tables.items():
        path = target / f"{name}.csv"
        write_atomically(path, frame_to_csv_text(frame))
        paths[name] = path
        manifest["tables"][name] = {"file": path.name, "dtypes": {c: str(t) for c, t in frame.dtypes.items()}}
    if extra:
        manifest.update(extra)
    write_atomically(target / CSV_MANIFEST, dumps(manifest, indent=1))
    return paths


def read_csv_export(directory: str | os.PathLike[str]) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """A CSV export's tables (with their dtypes) and its whole manifest."""
    target = Path(directory)
    try:
        manifest = json.loads((target / CSV_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ResultFormatError(
            f"{str(target)!r} does not hold a cgmem_nb CSV export ({exc}); write one with "
            "ProfileResult.to_csv(directory) or MEMORY_PROFILER.export_csv(directory)"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != _CSV_FORMAT:
        raise ResultFormatError(f"{str(target / CSV_MANIFEST)!r} is not a cgmem_nb CSV manifest")
    tables = {name: _read_csv(target / spec["file"], spec["dtypes"]) for name, spec in manifest["tables"].items()}
    return tables, manifest


def read_csv_tables(directory: str | os.PathLike[str]) -> dict[str, pd.DataFrame]:
    """Read a CSV export (of a result or of the profiler) back as DataFrames with their dtypes."""
    return read_csv_export(directory)[0]

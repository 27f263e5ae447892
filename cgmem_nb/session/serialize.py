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
  the same directory, then a rename), so a crash never leaves half a file behind,
  with the usual file mode (``0666`` less the umask). An OS error (a full disk,
  no permission) is an :class:`~cgmem_nb.errors.ExportError` naming the user's path.
* A CSV set is replaced as a whole: every table and the manifest are first written
  to temporary files (an error there leaves the previous export untouched and no
  temporary file behind), then the old manifest is removed, the tables renamed into
  place and the new manifest renamed last. The manifest records each table's
  SHA-256, which :func:`read_csv_export` checks: a set that a crash (or another
  writer) left mixed is refused with a message, never read. Temporary files that
  a killed writer left behind are removed by the next export into the folder.
* Every path stays inside the folder the user gave: table names are identifiers
  (a result file naming a table ``../../x`` or ``/abs`` is refused on load and on
  write) and a manifest's ``file`` entries are plain names of files in the folder.
* Reading a hostile or broken file raises :class:`~cgmem_nb.errors.ResultFormatError`
  naming the file and what is wrong, whatever the damage (bad JSON, bad UTF-8,
  deep nesting, wrong types, unknown dtypes, rows of the wrong length).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from ..errors import ExportError, ResultFormatError
from .files import os_error, remove_stale_temporaries, temporary_name, unlink_quietly, write_atomically, write_new

__all__ = [
    "CSV_MANIFEST",
    "DTYPES",
    "NA_REP",
    "check_table_name",
    "dumps",
    "frame_to_csv_text",
    "json_value",
    "loads",
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
#: Version 2 records each table's SHA-256 (version 1 exports are still read, unchecked).
_CSV_VERSION = 2


# -- names and dtypes ---------------------------------------------------------------------------
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
#: dtypes a saved table may declare (what cgmem_nb writes, and plain numpy/pandas ones).
DTYPES = frozenset(
    {"Int64", "Int32", "Int16", "Int8", "int64", "int32", "float64", "float32", "Float64", "Float32",
     "boolean", "bool", "string", "str", "object"}
)


def check_table_name(name: object, *, error: type[Exception] = ResultFormatError, where: str = "") -> str:
    """``name`` if it can name a table (and so a file ``NAME.csv`` inside the export folder)."""
    if not isinstance(name, str) or not _TABLE_NAME.fullmatch(name):
        raise error(
            f"table name {str(name)[:80]!r}{where} is not accepted: a table name is a letter or _ followed by "
            "up to 63 letters, digits or _ (it becomes the file NAME.csv inside the export folder)"
        )
    return name


def _check_dtypes(dtypes: object, columns: list[str], where: str) -> dict[str, str]:
    if not isinstance(dtypes, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in dtypes.items()):
        raise ResultFormatError(f"{where}: 'dtypes' must map column names to dtype names")
    unknown = sorted({v for v in dtypes.values() if v not in DTYPES})
    if unknown:
        raise ResultFormatError(f"{where}: dtype(s) {unknown[:5]} are not accepted; accepted: {', '.join(sorted(DTYPES))}")
    extra = sorted(set(dtypes) - set(columns))
    if extra:
        raise ResultFormatError(f"{where}: dtypes name column(s) {extra[:5]} that the table does not have")
    return dict(dtypes)


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


def loads(text: str | bytes, *, what: str) -> Any:
    """JSON from ``text`` (``what`` names it in errors); bad UTF-8, bad JSON and nesting too
    deep to read are :class:`ResultFormatError`."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return json.loads(text)
    except UnicodeDecodeError as exc:
        raise ResultFormatError(f"{what} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ResultFormatError(f"{what} is not valid JSON ({exc})") from None
    except (RecursionError, ValueError) as exc:
        raise ResultFormatError(f"{what} cannot be read as JSON ({type(exc).__name__}: {str(exc)[:200]})") from None


def table_to_dict(frame: pd.DataFrame) -> dict[str, Any]:
    """A table as ``{"columns", "dtypes", "data"}`` (JSON-safe; :func:`table_from_dict` undoes it)."""
    return {
        "columns": list(frame.columns),
        "dtypes": {c: str(t) for c, t in frame.dtypes.items()},
        "data": [[json_value(v) for v in row] for row in frame.itertuples(index=False, name=None)],
    }


def table_from_dict(spec: Any, *, where: str = "table") -> pd.DataFrame:
    """The table saved by :func:`table_to_dict`, with its dtypes; a malformed one is a
    :class:`ResultFormatError` naming ``where``."""
    if not isinstance(spec, Mapping):
        raise ResultFormatError(f"{where} must be an object with 'columns', 'dtypes' and 'data'")
    columns, data = spec.get("columns"), spec.get("data")
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns) or len(set(columns)) != len(columns):
        raise ResultFormatError(f"{where}: 'columns' must be a list of distinct column names")
    dtypes = _check_dtypes(spec.get("dtypes", {}), columns, where)
    if not isinstance(data, list) or not all(isinstance(row, list) and len(row) == len(columns) for row in data):
        raise ResultFormatError(f"{where}: 'data' must be a list of rows of {len(columns)} values each")
    scalar = (str, int, float, bool, type(None))
    if not all(isinstance(v, scalar) for row in data for v in row):
        raise ResultFormatError(f"{where}: a cell holds a list or an object; cells are numbers, text, true/false or null")
    try:
        frame = pd.DataFrame(data, columns=columns)
        return frame.astype(dtypes) if len(columns) and dtypes else frame
    except (ValueError, TypeError, OverflowError) as exc:
        raise ResultFormatError(f"{where}: the values do not fit the dtypes ({type(exc).__name__}: {str(exc)[:200]})") from None


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


def write_tables_csv(
    directory: str | os.PathLike[str], tables: Mapping[str, pd.DataFrame], *, extra: Mapping[str, Any] | None = None
) -> dict[str, Path]:
    """Write each table to ``directory/NAME.csv`` and a ``manifest.json`` with the dtypes and
    each file's SHA-256 (plus ``extra`` entries). Returns ``{table: path}``.

    The set is replaced as a whole (see the module's docs): on any error the previous
    export in ``directory`` is left as it was and an :class:`ExportError` names the path.
    """
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise ExportError(f"cannot export CSV into {str(target)!r}: it is a file; give a directory")
    for name in tables:
        check_table_name(name, error=ExportError)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_error(exc, "create the export folder", target) from None
    remove_stale_temporaries(target)
    paths: dict[str, Path] = {}
    manifest: dict[str, Any] = {"format": _CSV_FORMAT, "version": _CSV_VERSION, "tables": {}}
    staged: list[tuple[Path, Path]] = []  # (temporary file, final path)
    current: Path = target
    try:
        for name, frame in tables.items():
            current = target / f"{name}.csv"
            data = frame_to_csv_text(frame).encode("utf-8")
            tmp = temporary_name(current)
            staged.append((tmp, current))
            write_new(tmp, data)
            paths[name] = current
            manifest["tables"][name] = {
                "file": current.name,
                "dtypes": {c: str(t) for c, t in frame.dtypes.items()},
                "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": len(data),
            }
        if extra:
            manifest.update(extra)
        current = target / CSV_MANIFEST
        tmp = temporary_name(current)
        staged.append((tmp, current))
        write_new(tmp, dumps(manifest, indent=1).encode("utf-8"))
        # Only renames from here: a crash leaves the old set, no manifest (refused), or the new set.
        try:
            os.unlink(target / CSV_MANIFEST)
        except FileNotFoundError:
            pass
        for tmp, final in staged:
            current = final
            os.replace(tmp, final)
    except OSError as exc:
        for tmp, _ in staged:
            unlink_quietly(tmp)
        raise os_error(exc, "write the CSV export", current) from None
    except BaseException:
        for tmp, _ in staged:
            unlink_quietly(tmp)
        raise
    return paths


def _manifest_file(target: Path, name: str, spec: Mapping[str, Any], where: str) -> Path:
    file = spec.get("file")
    if not isinstance(file, str) or file in ("", ".", "..") or "/" in file or "\\" in file or "\0" in file:
        raise ResultFormatError(f"{where}: file {str(file)[:80]!r} of table {name!r} is not a plain file name in the export folder")
    path = target / file
    try:
        inside = os.path.realpath(path).startswith(os.path.realpath(target) + os.sep)
    except (OSError, ValueError):
        inside = False
    if not inside:
        raise ResultFormatError(f"{where}: file {file!r} of table {name!r} leads out of the export folder")
    return path


def read_csv_export(directory: str | os.PathLike[str]) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """A CSV export's tables (with their dtypes) and its whole manifest.

    Refuses (with :class:`ResultFormatError` naming the folder) a folder without a manifest,
    a manifest that is not cgmem_nb's, a table file that leads out of the folder, and a
    table whose bytes differ from the SHA-256 the manifest recorded (a mixed set).
    """
    target = Path(directory)
    where = str(target / CSV_MANIFEST)
    try:
        raw = (target / CSV_MANIFEST).read_bytes()
    except (OSError, ValueError) as exc:
        missing = isinstance(exc, FileNotFoundError) and target.is_dir()
        raise ResultFormatError(
            f"{str(target)!r} does not hold a cgmem_nb CSV export ("
            + ("no manifest.json: an export into it was interrupted, or it never held one" if missing else str(exc))
            + "); write one with ProfileResult.to_csv(directory) or MEMORY_PROFILER.export_csv(directory)"
        ) from None
    manifest = loads(raw, what=repr(where))
    if not isinstance(manifest, dict) or manifest.get("format") != _CSV_FORMAT:
        raise ResultFormatError(f"{where!r} is not a cgmem_nb CSV manifest")
    if manifest.get("version") not in (1, _CSV_VERSION):
        raise ResultFormatError(f"{where!r}: CSV export version {manifest.get('version')!r} is not supported (expected 1 or {_CSV_VERSION})")
    specs = manifest.get("tables")
    if not isinstance(specs, dict):
        raise ResultFormatError(f"{where!r}: 'tables' must map table names to their file and dtypes")
    tables: dict[str, pd.DataFrame] = {}
    for name, spec in specs.items():
        check_table_name(name, where=f" in {where!r}")
        if not isinstance(spec, dict):
            raise ResultFormatError(f"{where!r}: the entry of table {name!r} must be an object with 'file' and 'dtypes'")
        path = _manifest_file(target, name, spec, repr(where))
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ResultFormatError(f"cannot read table {name!r} of the export {str(target)!r}: {exc.strerror or exc}") from None
        digest = spec.get("sha256")
        if manifest.get("version") != 1 and digest != hashlib.sha256(data).hexdigest():
            raise ResultFormatError(
                f"table {name!r} ({path.name}) of the export {str(target)!r} does not match its manifest: the set is "
                "mixed (an export into this folder was interrupted, or a file was changed or copied in); export it again"
            )
        tables[name] = _read_csv(data, spec.get("dtypes", {}), f"{str(path)!r}")
    return tables, manifest


def _read_csv(data: bytes, dtypes: Any, where: str) -> pd.DataFrame:
    try:
        header = pd.read_csv(io.BytesIO(data), nrows=0, **read_csv_kwargs())
    except pd.errors.EmptyDataError:
        header = pd.DataFrame()
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ResultFormatError(f"{where} is not a CSV table ({type(exc).__name__}: {str(exc)[:200]})") from None
    columns = [str(c) for c in header.columns]
    checked = _check_dtypes(dtypes, columns, where)
    if not columns:
        return pd.DataFrame()
    try:
        frame: pd.DataFrame = pd.read_csv(io.BytesIO(data), dtype=checked, **read_csv_kwargs())
        return frame.astype(checked)
    except (ValueError, TypeError, OverflowError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ResultFormatError(f"{where}: the values do not fit the dtypes ({type(exc).__name__}: {str(exc)[:200]})") from None


def read_csv_tables(directory: str | os.PathLike[str]) -> dict[str, pd.DataFrame]:
    """Read a CSV export (of a result or of the profiler) back as DataFrames with their dtypes."""
    return read_csv_export(directory)[0]

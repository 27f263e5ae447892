"""Byte sizes: parse ``"500 MB"`` / ``"2 GiB"`` and format byte counts for people.

Decimal units are powers of 1000 (``KB``, ``MB``, ``GB``, ``TB``) and binary units
powers of 1024 (``KiB``, ``MiB``, ``GiB``, ``TiB``), as the SI and IEC define them.
A bare number is a count of bytes.
"""

from __future__ import annotations

import math
import re

from .errors import SizeError

#: The largest size accepted anywhere (the largest value of an int64 column): 9.2 EB.
MAX_SIZE = 2**63 - 1
_ACCEPTED = "write a number and a unit such as '500 MB', '2 GiB', '750MiB' or plain bytes (units: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"

_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "k": 1000,
    "m": 1000**2,
    "g": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}

_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]*)\s*$")


def parse_size(value: str | int | float, *, what: str = "size") -> int:
    """Return the number of bytes that ``value`` names.

    Accepts ints (bytes), floats (bytes, rounded) and strings such as ``"500 MB"``,
    ``"2 GiB"``, ``"750MiB"`` or ``"1048576"``. Raises :class:`SizeError` naming the
    value and the accepted forms otherwise.
    """
    if isinstance(value, bool):
        raise SizeError(f"{what} {value!r} is a bool; give a number of bytes or a string like '500 MB'")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise SizeError(f"{what} {value!r} is not a size: give a finite number of bytes, or {_ACCEPTED}")
        if value < 0:
            raise SizeError(f"{what} {value!r} must be a non-negative number of bytes")
        return _checked(round(value), value, what)
    if not isinstance(value, str):
        raise SizeError(f"{what} {value!r} must be a number of bytes or a string like '500 MB'")
    match = _SIZE_RE.match(value)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        shown = value if len(value) <= 100 else value[:40] + "..."
        raise SizeError(f"{what} {shown!r} is not a size; {_ACCEPTED}")
    number = float(match.group(1))
    if not math.isfinite(number):
        raise SizeError(f"{what} {value[:40]!r}... is too large: the largest size is {MAX_SIZE} bytes (9.2 EB)")
    return _checked(round(number * _UNITS[unit]), value, what)


def _checked(size: int, value: object, what: str) -> int:
    if size > MAX_SIZE:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:40] + "..."
        raise SizeError(f"{what} {shown} is too large: the largest size is {MAX_SIZE} bytes (9.2 EB)")
    return int(size)


def format_bytes(n: float | int | None, *, signed: bool = False) -> str:
    """Format a byte count in decimal units (``"200.0 MB"``); ``None`` becomes ``"–"``."""
    if n is None:
        return "–"
    sign = ""
    if n < 0:
        sign, n = "-", -n
    elif signed and n > 0:
        sign = "+"
    for unit, scale in (("TB", 1000**4), ("GB", 1000**3), ("MB", 1000**2), ("KB", 1000)):
        if n >= scale:
            return f"{sign}{n / scale:.1f} {unit}"
    return f"{sign}{int(n)} B"

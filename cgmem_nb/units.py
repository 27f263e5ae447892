"""Byte sizes: parse ``"500 MB"`` / ``"2 GiB"`` and format byte counts for people.

Decimal units are powers of 1000 (``KB``, ``MB``, ``GB``, ``TB``) and binary units
powers of 1024 (``KiB``, ``MiB``, ``GiB``, ``TiB``), as the SI and IEC define them.
A bare number is a count of bytes.
"""

from __future__ import annotations

import re

from .errors import SizeError

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
        if value < 0 or value != value:
            raise SizeError(f"{what} {value!r} must be a non-negative number of bytes")
        return int(round(value))
    if not isinstance(value, str):
        raise SizeError(f"{what} {value!r} must be a number of bytes or a string like '500 MB'")
    match = _SIZE_RE.match(value)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise SizeError(
            f"{what} {value!r} is not a size; write a number and a unit such as "
            "'500 MB', '2 GiB', '750MiB' or plain bytes (units: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"
        )
    return int(round(float(match.group(1)) * _UNITS[unit]))


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

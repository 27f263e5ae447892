"""Parsing a magic's options: the one splitter every cgmem_nb magic uses.

IPython's own ``parse_argstring`` splits the line without removing quotes
(``--token "x"`` would give ``"x"`` with its quotes). Here the line is split
as a POSIX shell would (:func:`shlex.split`): quotes group and are removed,
backslashes escape. An unbalanced quote, a bad option or a bad value is an
IPython ``UsageError`` naming what was wrong, followed by the magic's usage line.
"""

from __future__ import annotations

import argparse
import math
import re
import shlex
from typing import Any

from IPython.core.error import UsageError

from ..config import ProfilerConfig
from ..errors import CgmemError

__all__ = ["checked_config", "parse", "seconds", "unit_hint", "usage_error"]


def usage_error(magic: Any, message: str) -> UsageError:
    """A ``UsageError`` with ``message`` and the usage line of ``magic``'s parser."""
    usage = " ".join(magic.parser.format_usage().replace("::", "").split())
    return UsageError(f"{message}\nusage: {usage}")


def split(line: str, magic: Any) -> list[str]:
    """``line`` split as a POSIX shell would; an unbalanced quote is a ``UsageError``."""
    try:
        return shlex.split(line, posix=True)
    except ValueError as exc:
        raise usage_error(magic, f"cannot read the options {line!r}: {exc} (close the quote, or escape it with a backslash)") from None


_UNIT = re.compile(r"^(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)
_NUMBER = re.compile(r"^[0-9]*\.?[0-9]+$")


def unit_hint(argv: list[str]) -> str | None:
    """A hint when a size was written as two words (``--limit 500 MB``): the unit became an
    argument of its own. None when ``argv`` has no such pair."""
    for option, number, unit in zip(argv, argv[1:], argv[2:]):
        if option.startswith("-") and _NUMBER.match(number) and _UNIT.match(unit):
            return (f"the size {number} {unit} after {option} was read as two words: write it as one, "
                    f'{option} {number}{unit}, or quote it, {option} "{number} {unit}"')
    return None


def parse(magic: Any, line: str) -> argparse.Namespace:
    """The options of ``magic`` (a function decorated with ``magic_arguments``) in ``line``."""
    argv = split(line, magic)
    try:
        return magic.parser.parse_args(argv)  # type: ignore[no-any-return]
    except UsageError as exc:
        hint = unit_hint(argv)
        raise usage_error(magic, str(exc) + (f" ({hint})" if hint else "")) from None


def seconds(magic: Any, option: str, value: float | None, *, low: float, high: float, zero: bool = False) -> float | None:
    """``value`` if it is a finite number of seconds from ``low`` to ``high`` (or 0 when ``zero``)."""
    if value is None:
        return None
    if zero and value == 0:
        return 0.0
    if not math.isfinite(value) or not low <= value <= high:
        accepted = f"{'0 (off) or ' if zero else ''}seconds from {low:g} to {high:g}"
        raise usage_error(magic, f"{option} {value!r} is not accepted: give {accepted}")
    return float(value)


def checked_config() -> ProfilerConfig:
    """The process-wide profiler's configuration; a bad ``MEMORY_PROFILER_*`` variable is a
    one-line ``UsageError`` naming it (not a library traceback)."""
    from ..session.profiler import MEMORY_PROFILER

    try:
        return MEMORY_PROFILER.config
    except CgmemError as exc:
        raise UsageError(f"cgmem_nb: {exc}") from None

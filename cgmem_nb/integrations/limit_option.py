"""``%%memprofile --limit``: what the limit means, and the checks that catch a mistyped one.

The limit is the **kernel's total memory** (its RSS) while the cell runs, like a
container's limit, not the cell's own growth: the pressure levels, the report's
``Limit`` row and ``--guard`` all compare the kernel's RSS with it. So a limit
at or below what the kernel already holds is refused with ``--guard`` (the guard
would stop the cell on its first tick) and warned about without; a number with
no unit under 1 MB is a forgotten unit (``--limit 5`` would be 5 bytes); a limit
under 64 MB is warned about (no Python kernel with pandas fits in it).
"""

from __future__ import annotations

import re
import sys
from typing import Callable

from IPython.core.error import UsageError

from ..engine import probes
from ..errors import CgmemError
from ..units import format_bytes, parse_size

#: A limit written without a unit and below this is a forgotten unit.
BARE_MIN = 1000**2
#: A limit below this gets a warning: no kernel with pandas loaded fits in it.
SMALL = 64 * 1000**2
_BARE = re.compile(r"^\s*[0-9]*\.?[0-9]+\s*$")


def check_limit(text: str | None, *, guard: bool, fraction: float, error: Callable[[str], UsageError]) -> int | None:
    """The limit ``text`` names in bytes (None when not given), after the checks above.

    Raises ``error(message)`` for a forgotten unit, a bad size, or (with ``guard``) a
    limit whose guard threshold the kernel has already reached; prints a warning to
    stderr for a limit below what the kernel holds, or below :data:`SMALL`.
    """
    if text is None:
        return None
    try:
        value = parse_size(text, what="--limit")
    except CgmemError as exc:
        raise error(str(exc)) from None
    if value <= 0:
        return value  # the session refuses it, naming the value
    if _BARE.match(text) and value < BARE_MIN:
        number = text.strip()
        raise error(f'--limit {number} is {value} bytes: write the unit, e.g. --limit {number}GB or --limit "{number} MB"')
    held = probes.rss()
    meaning = "the limit is the kernel's total memory (RSS) while the cell runs, not the cell's growth"
    if guard and held >= fraction * value:
        raise error(
            f"--limit {format_bytes(value)} with --guard: the kernel already holds {format_bytes(held)}, "
            f"over {fraction:.0%} of it, so the guard would stop the cell at once ({meaning}). "
            f"Give more than {format_bytes(held / fraction)}, e.g. --limit {_suggest(held)}"
        )
    if value <= held:
        _warn(f"--limit {format_bytes(value)} is below the {format_bytes(held)} the kernel already holds ({meaning}); "
              "the cell is measured against it as given")
    elif value < SMALL:
        _warn(f"--limit {format_bytes(value)} is very small: a Python kernel with pandas loaded alone takes more")
    return value


def _suggest(held: int) -> str:
    """A round limit well above ``held``: the next whole GB above 1.5x."""
    gb = int(1.5 * held / 1000**3) + 1
    return f"{gb}GB"


def _warn(message: str) -> None:
    print(f"cgmem_nb: warning: {message}", file=sys.stderr)


__all__ = ["BARE_MIN", "SMALL", "check_limit"]

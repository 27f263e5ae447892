"""The one table of CPython versions cgmem_nb supports, and what works on each.

Every place that depends on the Python version reads this table:

- ``setup.py`` builds the native sampler only where :func:`sampler_builds` says so
  (it loads this file by path, before cgmem_nb is installed) and passes the range
  to the C code (``compat.h`` refuses to compile outside it);
- :mod:`cgmem_nb.engine.sampled` and :mod:`cgmem_nb.engine.tracers` decide at run
  time which tracers may run (:func:`sampled_unsupported_reason`,
  :func:`exact_unsupported_reason`);
- the documentation's versions page is generated from :func:`versions_markdown`;
- CI runs the suite on every version whose ``ci`` is True (``python
  cgmem_nb/engine/versions.py --ci`` prints them).

This module imports nothing from cgmem_nb, so it can be loaded on its own.
"""

from __future__ import annotations

import sys
import sysconfig
from dataclasses import dataclass

__all__ = [
    "PythonVersion",
    "VERSIONS",
    "FREE_THREADED_NOTE",
    "supported",
    "lookup",
    "is_free_threaded",
    "sampler_builds",
    "sampler_hex_range",
    "sampled_unsupported_reason",
    "exact_unsupported_reason",
    "versions_markdown",
]


@dataclass(frozen=True)
class PythonVersion:
    """One CPython minor version and what cgmem_nb does on it."""

    #: ``(major, minor)``.
    version: tuple[int, int]
    #: The sampled tracer (the default) builds and runs on this version (GIL builds).
    sampled: bool
    #: CI runs the test suite on this version (``.ci/run``).
    ci: bool
    #: What is known, in one sentence for the versions page.
    note: str

    @property
    def label(self) -> str:
        """``"3.13"``."""
        return f"{self.version[0]}.{self.version[1]}"


#: Supported CPython versions, oldest first. Python below the first is refused by
#: ``requires-python``; versions after the last run the exact tracer (with a note).
VERSIONS: tuple[PythonVersion, ...] = (
    PythonVersion((3, 11), sampled=True, ci=True, note="Tested in CI (the reference version)."),
    PythonVersion(
        (3, 12),
        sampled=True,
        ci=False,
        note="Built from the public C API only; not run here (no source package is served on the reference machine).",
    ),
    PythonVersion((3, 13), sampled=True, ci=True, note="Tested in CI (built from Debian's source by scripts/build-cpython.sh)."),
    PythonVersion(
        (3, 14),
        sampled=True,
        ci=False,
        note="Built from the public C API only; not run here (no source package is served on the reference machine).",
    ),
)

#: What happens on a free-threaded build (3.13t, 3.14t), for messages and the docs.
FREE_THREADED_NOTE = (
    "free-threaded builds (3.13t, 3.14t) run no allocation tracer: the sampled tracer relies on the GIL, "
    "and tracemalloc can abort the process when threads allocate without a GIL (cpython#126315); "
    "sessions still measure RSS, the kernel's peak, the timeline and variables"
)


def supported() -> tuple[tuple[int, int], ...]:
    """Every ``(major, minor)`` in the table."""
    return tuple(v.version for v in VERSIONS)


def lookup(version: tuple[int, int]) -> PythonVersion | None:
    """The table's row for ``(major, minor)``, or None."""
    for row in VERSIONS:
        if row.version == tuple(version[:2]):
            return row
    return None


def is_free_threaded() -> bool:
    """True on a free-threaded (``--disable-gil``) CPython build, whether or not the GIL is on."""
    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def _this_version() -> str:
    return sys.version.split()[0]


def sampler_builds(version: tuple[int, int] | None = None, *, free_threaded: bool | None = None) -> bool:
    """Whether setup.py should compile the native sampler for this interpreter."""
    version = version or (sys.version_info.major, sys.version_info.minor)
    free_threaded = is_free_threaded() if free_threaded is None else free_threaded
    row = lookup(version)
    return sys.implementation.name == "cpython" and row is not None and row.sampled and not free_threaded


def sampler_hex_range() -> tuple[int, int]:
    """``(first supported, first unsupported)`` as ``PY_VERSION_HEX`` values, for the C build."""
    rows = [v.version for v in VERSIONS if v.sampled]
    low, high = min(rows), max(rows)
    return (low[0] << 24) | (low[1] << 16), (high[0] << 24) | ((high[1] + 1) << 16)


def sampled_unsupported_reason() -> str | None:
    """Why the sampled tracer cannot run in this interpreter, or None when the table allows it."""
    here = f"CPython {_this_version()}"
    if sys.implementation.name != "cpython":
        return f"the sampled tracer needs CPython, not {sys.implementation.name} {_this_version()}"
    if is_free_threaded():
        return f"{here} is a free-threaded build: {FREE_THREADED_NOTE}"
    row = lookup((sys.version_info.major, sys.version_info.minor))
    labels = ", ".join(v.label for v in VERSIONS if v.sampled)
    if row is None or not row.sampled:
        return f"the sampled tracer supports CPython {labels}; this is {here}"
    return None


def exact_unsupported_reason() -> str | None:
    """Why the exact tracer (tracemalloc) must not run here, or None when it may."""
    if is_free_threaded():
        return (
            f"CPython {_this_version()} is a free-threaded build, where tracemalloc can abort the process "
            "when threads allocate (cpython#126315)"
        )
    return None


def versions_markdown() -> str:
    """The versions table for the documentation (docs/generated/versions.md)."""
    lines = [
        "| CPython | sampled tracer (default) | exact tracer | tested in CI | note |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in VERSIONS:
        lines.append(
            f"| {row.label} | {'yes' if row.sampled else 'no'} | yes | {'yes' if row.ci else 'no'} | {row.note} |"
        )
    labels = "t, ".join(v.label for v in VERSIONS if v.version >= (3, 13)) + "t"
    lines.append(f"| {labels} (free-threaded) | no | no | no | Process figures only: {FREE_THREADED_NOTE}. |")
    return "\n".join(lines) + "\n"


def _main(argv: list[str]) -> int:
    if argv == ["--ci"]:
        print(" ".join(v.label for v in VERSIONS if v.ci))
        return 0
    if argv == ["--markdown"]:
        print(versions_markdown(), end="")
        return 0
    print("usage: python cgmem_nb/engine/versions.py --ci | --markdown", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))

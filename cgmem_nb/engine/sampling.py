"""The native sampler's module and its settings: whether it can run here, what a sampling
rate means, and the threads' category tags.

The module (:mod:`cgmem_nb.engine._sampler`) is loaded on first use, never on import;
:func:`unavailable_reason` says why it cannot run (an unsupported interpreter or
build, no compiled extension) and :func:`fallback_message` what a session does
instead. The tracer itself is :class:`cgmem_nb.engine.sampled.SampledTracer`.

Sampling rate and interval (the one place that maps them)
---------------------------------------------------------
``ProfilerConfig.sampling_rate`` of 1.0 means exact (tracemalloc). A rate ``r``
below 1.0 selects the sampled tracer with the mean interval
:func:`interval_for_rate(r) <interval_for_rate>` ``= -4096 / ln(1 - r)`` bytes:
``r`` is exactly the chance that a 4 KiB allocation is recorded. For example
0.5 gives 5.9 KiB, 0.1 gives 38.9 KiB, 0.01 gives 407 KiB.
"""

from __future__ import annotations

import importlib
import math
import sys
from types import ModuleType

from ..errors import TracerError
from ..units import parse_size
from .versions import exact_unsupported_reason, sampled_unsupported_reason

#: Mean sampling interval used unless told otherwise (see ``benchmarks/RESULTS-sampler.md``).
DEFAULT_INTERVAL_BYTES = 32 * 1024
#: Smallest accepted mean interval (bytes).
MIN_INTERVAL_BYTES = 256
#: Largest accepted mean interval (bytes).
MAX_INTERVAL_BYTES = 1 << 40

#: The allocation size whose chance of being recorded equals the sampling rate.
_RATE_REFERENCE_BYTES = 4096


def interval_for_rate(rate: float) -> int:
    """Map a ``sampling_rate`` in (0, 1) to a mean sampling interval in bytes.

    ``rate`` is the chance that a 4 KiB allocation is recorded:
    ``interval = -4096 / ln(1 - rate)``, clamped to
    [:data:`MIN_INTERVAL_BYTES`, :data:`MAX_INTERVAL_BYTES`]. A rate of 1.0 means the
    exact tracer and is not accepted here.
    """
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 < rate < 1.0:
        raise TracerError(
            f"sampling rate {rate!r} is not accepted here: give a number above 0.0 and below 1.0 "
            "(1.0 selects the exact tracer)"
        )
    interval = -_RATE_REFERENCE_BYTES / math.log1p(-rate)
    return int(min(max(round(interval), MIN_INTERVAL_BYTES), MAX_INTERVAL_BYTES))


def parse_interval(value: int | float | str) -> int:
    """Return a mean sampling interval in bytes from an int or a size string (``"64 KiB"``)."""
    try:
        interval = parse_size(value, what="sampling interval")
    except ValueError as exc:
        raise TracerError(str(exc)) from None
    if not MIN_INTERVAL_BYTES <= interval <= MAX_INTERVAL_BYTES:
        raise TracerError(
            f"sampling interval {value!r} is out of range: give {MIN_INTERVAL_BYTES} bytes to 1 TiB, "
            f"e.g. '{DEFAULT_INTERVAL_BYTES // 1024} KiB'"
        )
    return interval


def _load_extension() -> tuple[ModuleType | None, str | None]:
    reason = sampled_unsupported_reason()
    if reason is not None:
        return None, reason
    try:
        return importlib.import_module("cgmem_nb.engine._sampler"), None
    except ImportError as exc:
        return None, (
            f"the native sampler (cgmem_nb.engine._sampler) could not be loaded on CPython "
            f"{sys.version.split()[0]} ({exc}); reinstall cgmem_nb where a C compiler is available"
        )


_ext: ModuleType | None = None
_reason: str | None = None
_loaded = False


def extension() -> ModuleType | None:
    """The native module, loaded on first use (importing this module loads nothing)."""
    global _ext, _reason, _loaded
    if not _loaded:
        _ext, _reason = _load_extension()
        _loaded = True
    return _ext


def unavailable_reason() -> str | None:
    """Why the sampled tracer cannot run here, or None when it can."""
    extension()
    return _reason


def fallback_message(reason: str) -> str:
    """What the profiler says once when the sampled tracer cannot run: why, and what is lost."""
    if exact_unsupported_reason() is None:
        return (
            f"cgmem_nb: {reason}. Sessions use the exact tracer (tracemalloc) instead: the same tables, "
            "but profiled code runs about 5-70x slower on allocation-heavy work (about 1.1x sampled), "
            "and samples lose their thread and category tag"
        )
    return f"cgmem_nb: {reason}. Sessions record no allocations here, only process figures"


def set_tag(name: str | None) -> str | None:
    """Set the calling thread's category tag for new samples; return the previous one."""
    ext = extension()
    if ext is None:
        return None
    previous: str | None = ext.set_tag(name)
    return previous


def get_tag() -> str | None:
    """The calling thread's current category tag."""
    ext = extension()
    if ext is None:
        return None
    tag: str | None = ext.get_tag()
    return tag

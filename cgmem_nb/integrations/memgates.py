"""Memory gates: the verdicts behind the pytest plugin, free of pytest.

A *limit gate* compares a result's peak with a limit; a *leak gate* looks at
the memory each repetition of a body kept and decides whether it keeps
growing. Both write messages that name the lines (and, for leaks, the holders
that grew), in decimal units (``"73.4 MB"``).

Holders are found two ways: a census of the test module's containers and
caches before and after the runs (:func:`holder_census`, :func:`grown_holders`),
and the leak detector over holder observations taken after each run
(:func:`analysis_holders`, which names what grew anywhere in the user's modules,
``gc.garbage`` or the manual records, through :func:`cgmem_nb.analysis.describe_holders`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..analysis import LEAK_DETECTOR, LeakDetector, describe_holders
from ..session.holders import Observation
from ..session.namespace import is_lru_cache
from ..session.result import ProfileResult
from ..units import format_bytes

#: Lines named in a failure message.
TOP_LINES = 3
#: Default tolerance of ``@pytest.mark.no_leaks``: bytes a repetition may keep.
DEFAULT_LEAK_TOLERANCE = 100_000
#: Default repetitions of ``@pytest.mark.no_leaks``: unmeasured warm-ups, then measured runs.
DEFAULT_WARMUP = 1
DEFAULT_RUNS = 3


def _describe_lines(result: ProfileResult, column: str, top: int) -> str:
    lines = result.lines
    if lines.empty:
        return "no line was traced"
    values = lines[column].fillna(0)
    # Lines under 1% of the biggest are noise in a one-line message (the full report is attached).
    lines = lines[(values > 0) & (values >= 0.01 * values.max())]
    lines = lines.sort_values(column, ascending=False, kind="stable").head(top)
    if lines.empty:
        return "no line was traced"
    parts = []
    for row in lines.itertuples():
        code = str(row.code or "").strip()
        sign = column == "retained_bytes"
        text = f"{row.location} ({format_bytes(getattr(row, column), signed=sign)})"
        parts.append(f"{text} `{code}`" if code else text)
    return "; ".join(parts)


def limit_message(name: str, limit: int, result: ProfileResult, *, top: int = TOP_LINES) -> str | None:
    """The failure message when ``result`` peaked above ``limit`` bytes, else None."""
    peak = result.summary.peak_bytes
    if peak <= limit:
        return None
    return (
        f"{name} was limited to {format_bytes(limit)} but peaked at {format_bytes(peak)}; "
        f"top lines: {_describe_lines(result, 'peak_bytes', top)}"
    )


# -- holders ------------------------------------------------------------------------------


def _measure(value: Any) -> int | None:
    """A growth measure for containers and caches, None for anything else."""
    if is_lru_cache(value):
        return int(value.cache_info().currsize)
    if isinstance(value, (list, dict, set, bytearray)) or type(value).__name__ in {"deque", "OrderedDict", "defaultdict"}:
        try:
            return len(value)
        except TypeError:
            return None
    return None


def holder_census(namespaces: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """Sizes of the containers and caches in ``namespaces`` (``{"module": vars}``):
    ``{"module.name": len}``. Compare two censuses with :func:`grown_holders`."""
    census: dict[str, int] = {}
    for prefix, namespace in namespaces.items():
        for key, value in list(namespace.items()):
            if key.startswith("__"):
                continue
            size = _measure(value)
            if size is not None:
                census[f"{prefix}.{key}"] = size
    return census


def grown_holders(before: Mapping[str, int], after: Mapping[str, int]) -> list[str]:
    """Holders that grew between two censuses, biggest growth first (``"mod.CACHE (+30 items)"``)."""
    grown = [(after[k] - before.get(k, 0), k) for k in after if after[k] > before.get(k, 0)]
    grown.sort(reverse=True)
    return [f"{k} (+{d} item{'s' if d != 1 else ''})" for d, k in grown]


def analysis_holders(observations: Sequence[Observation], known: Sequence[str] = ()) -> list[str]:
    """Holders the leak detector finds growing over ``observations`` (one after each run),
    leaving out those already named in ``known`` (census entries such as ``"mod.CACHE (+3 items)"``)."""
    leaks = LeakDetector(LEAK_DETECTOR.settings, LEAK_DETECTOR.rules).detect(observations)
    named = {entry.split(" (", 1)[0] for entry in known}
    return describe_holders([leak for leak in leaks if leak.status == "growing" and leak.holder not in named])


def module_namespaces(func: Any) -> dict[str, Mapping[str, Any]]:
    """The namespace of the module that defines ``func`` (where leaking globals live)."""
    module = sys.modules.get(getattr(func, "__module__", "") or "")
    if module is not None:
        return {module.__name__: vars(module)}
    globs = getattr(func, "__globals__", None)
    return {str((globs or {}).get("__name__", "module")): globs} if isinstance(globs, dict) else {}


# -- leaks ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeakVerdict:
    """What the repetitions of a body kept, and whether that is a leak."""

    #: Bytes kept by each measured repetition.
    retained: tuple[int, ...]
    #: Bytes one repetition may keep without counting as growth.
    tolerance: int
    #: Holders that grew over the measured repetitions.
    holders: tuple[str, ...]

    @property
    def leaking(self) -> bool:
        """True when every measured repetition kept more than the tolerance."""
        return bool(self.retained) and min(self.retained) > self.tolerance


def leak_message(name: str, verdict: LeakVerdict, last: ProfileResult, *, top: int = TOP_LINES) -> str | None:
    """The failure message when ``verdict`` is a leak, else None."""
    if not verdict.leaking:
        return None
    kept = ", ".join(format_bytes(r, signed=True) for r in verdict.retained)
    msg = (
        f"{name} leaks: each of {len(verdict.retained)} runs kept more than the tolerance of "
        f"{format_bytes(verdict.tolerance)} ({kept}, {format_bytes(sum(verdict.retained))} in all); "
        f"lines (last run): {_describe_lines(last, 'retained_bytes', top)}"
    )
    if verdict.holders:
        msg += f"; held by: {', '.join(verdict.holders[:top])}"
    return msg


def summarize(results: Sequence[ProfileResult]) -> dict[str, Any]:
    """Figures of one test for the summary table and the JSON file."""
    s = results[-1].summary
    return {
        "peak_bytes": s.peak_bytes,
        "retained_bytes": s.retained_bytes,
        "allocated_bytes": s.allocated_bytes,
        "rss_peak_bytes": s.rss_peak_bytes,
        "duration_s": s.duration_s,
        "tracer": s.tracer,
    }

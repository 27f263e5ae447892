"""The analysis of one finished session: its leaks, patterns and recommendations, from recorded data.

A pure function of what the caller recorded: the session's result, the holder
observations taken during it (the last one taken as it ended), the observation
before it (the baseline) and the user's variables. The facade gathers them and
turns the findings into the result's ``leaks``, ``patterns`` and
``recommendations`` tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..schema import MemoryLeak, Recommendation, UsagePattern
from ..session.holders import Observation
from ..session.result import ProfileResult
from .leaks import LEAK_DETECTOR, LeakDetector
from .patterns import PATTERN_ANALYZER, PatternAnalyzer
from .recommend import RECOMMENDATION_ENGINE, Context, RecommendationEngine

__all__ = ["SessionFindings", "analyze_session", "touched_variables"]


@dataclass(frozen=True)
class SessionFindings:
    """What the analysis found for one session."""

    leaks: list[MemoryLeak]
    patterns: list[UsagePattern]
    recommendations: list[Recommendation]


def touched_variables(namespace: Mapping[str, Any], baseline: Observation | None) -> dict[str, Any]:
    """Variables new or rebound since ``baseline`` (all of them without one)."""
    if baseline is None:
        return dict(namespace)
    out = {}
    for name, obj in namespace.items():
        before = baseline.holders.get(f"variable:{name}")
        if before is None or before.object_id != id(obj):
            out[name] = obj
    return out


def analyze_session(
    result: ProfileResult,
    window: Sequence[Observation],
    baseline: Observation | None,
    namespace: Mapping[str, Any],
    *,
    detector: LeakDetector = LEAK_DETECTOR,
    analyzer: PatternAnalyzer = PATTERN_ANALYZER,
    engine: RecommendationEngine = RECOMMENDATION_ENGINE,
) -> SessionFindings:
    """Findings of the session that made ``result``.

    Leaks: ``detector``'s rules (not its history) over ``window``, keeping holders that
    appeared or grew during the session (compared with ``baseline``). Patterns: over
    ``window`` and ``result``. Recommendations: over the variables the session touched.
    """
    leaks = LeakDetector(detector.settings, detector.rules).detect(window)
    if baseline is not None:
        step = detector.settings.min_step
        leaks = [
            leak for leak in leaks
            if leak.leak_id not in baseline.holders or leak.size > baseline.holders[leak.leak_id].size + step
        ]
    patterns = analyzer.analyze(window, [result])
    ctx = Context(namespace=touched_variables(namespace, baseline), observations=window, leaks=leaks, results=[result])
    return SessionFindings(leaks, patterns, engine.recommend(ctx))

"""Analysis: leaks, usage patterns and recommendations, from recorded data.

The modules here are pure: they read observations (:mod:`cgmem_nb.session.holders`),
cell history and session results, and return findings; they do no I/O and no
display. This package's functions are the orchestration the profiler calls:
take an observation, run the detector / analyzer / engine, return typed objects.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any, Mapping

from ..session.holders import OBSERVATIONS, Observation, observe
from ..session.result import ProfileResult
from ..session.variables import get_shell, hidden_names, user_variables
from .leaks import LeakDetector, LeakSettings
from .model import (
    Difficulty,
    LeakImpact,
    MemoryLeak,
    Recommendation,
    UsagePattern,
    leaks_frame,
    patterns_frame,
    recommendations_frame,
)
from .patterns import PatternAnalyzer
from .recommend import Context, Draft, RecommendationEngine

if TYPE_CHECKING:
    from ..session.profiler import MemoryProfiler

log = logging.getLogger(__name__)

#: The process-wide leak detector (keeps leak history across calls).
LEAK_DETECTOR = LeakDetector()
#: The process-wide pattern analyzer.
PATTERN_ANALYZER = PatternAnalyzer()
#: The process-wide recommendation engine (add rules with ``RECOMMENDATION_ENGINE.add_rule``).
RECOMMENDATION_ENGINE = RecommendationEngine()

__all__ = [
    "Context", "Difficulty", "Draft", "LEAK_DETECTOR", "LeakDetector", "LeakImpact", "LeakSettings", "MemoryLeak",
    "PATTERN_ANALYZER", "PatternAnalyzer", "RECOMMENDATION_ENGINE", "Recommendation", "RecommendationEngine",
    "UsagePattern", "analyze_patterns", "analyze_result", "detect_leaks", "generate_recommendations",
    "leaks_frame", "patterns_frame", "recommendations_frame",
]


def _namespace() -> Mapping[str, Any]:
    shell = get_shell()
    if shell is None:
        return {}
    return user_variables(shell.user_ns, hidden_names(shell))


def _observe_now(profiler: "MemoryProfiler") -> Observation:
    obs = observe(limit=profiler.memory_limit().bytes)
    OBSERVATIONS.add(obs, profiler.config.history_retention)
    return obs


_PUBLISHED: set[tuple[str, ...]] = set()


def publish_findings(leaks: list[MemoryLeak], recommendations: list[Recommendation]) -> None:
    """Publish ``LeakDetected`` / ``RecommendationGenerated`` for findings not published
    before (a leak again once it has grown by a tenth), when anyone listens."""
    from ..engine.events import EVENT_BUS, LeakDetected, RecommendationGenerated

    if not EVENT_BUS.has_listeners:
        return
    for leak in leaks:
        key = ("leak", leak.leak_id, str(int(math.log(max(leak.size, 1), 1.1))))
        if key not in _PUBLISHED:
            _PUBLISHED.add(key)
            EVENT_BUS.publish(LeakDetected(leak))
    for rec in recommendations:
        key = ("rec", rec.rule, rec.target)
        if key not in _PUBLISHED:
            _PUBLISHED.add(key)
            EVENT_BUS.publish(RecommendationGenerated(rec))


def detect_leaks(profiler: "MemoryProfiler") -> list[MemoryLeak]:
    """Take an observation now and run the leak detector over every observation kept."""
    _observe_now(profiler)
    leaks = LEAK_DETECTOR.detect(OBSERVATIONS.items())
    publish_findings(leaks, [])
    return leaks


def analyze_patterns(profiler: "MemoryProfiler") -> list[UsagePattern]:
    """Per-category patterns over the observations and the stored session results."""
    return PATTERN_ANALYZER.analyze(OBSERVATIONS.items(), profiler.results)


def generate_recommendations(profiler: "MemoryProfiler") -> list[Recommendation]:
    """Recommendations over the namespace, the leaks, the observations and the results."""
    leaks = detect_leaks(profiler)
    ctx = Context(namespace=_namespace(), observations=OBSERVATIONS.items(), leaks=leaks, results=profiler.results)
    recs = RECOMMENDATION_ENGINE.recommend(ctx)
    publish_findings([], recs)
    return recs


def analyze_result(profiler: "MemoryProfiler", result: ProfileResult) -> ProfileResult:
    """``result`` with its session's ``leaks``, ``patterns`` and ``recommendations`` tables.

    Leaks: the detector over the observations made during the session plus one
    taken now, keeping holders that appeared or grew during the session. Never
    raises: on failure the result is returned unchanged (and the error logged).
    """
    try:
        duration = float(result.summary.get("duration_s") or 0.0)
        until = time.time()
        since = until - duration
        before = OBSERVATIONS.items(until=since)
        now = _observe_now(profiler)
        window = [o for o in OBSERVATIONS.items(since=since) if o is not now] + [now]
        baseline = before[-1] if before else None
        leaks = LeakDetector(LEAK_DETECTOR.settings, LEAK_DETECTOR.rules).detect(window)
        if baseline is not None:
            leaks = [
                leak for leak in leaks
                if leak.leak_id not in baseline.holders or leak.size > baseline.holders[leak.leak_id].size + LEAK_DETECTOR.settings.min_step
            ]
        patterns = PATTERN_ANALYZER.analyze(window, [result])
        ctx = Context(namespace=_touched(_namespace(), baseline), observations=window, leaks=leaks, results=[result])
        recs = RECOMMENDATION_ENGINE.recommend(ctx)
        publish_findings(leaks, recs)
        return result.with_tables(leaks=leaks_frame(leaks), patterns=patterns_frame(patterns), recommendations=recommendations_frame(recs))
    except Exception:
        log.exception("cgmem_nb: the analysis of a session failed; the result has no analysis tables")
        return result


def _touched(ns: Mapping[str, Any], baseline: Observation | None) -> dict[str, Any]:
    """Variables new or rebound since ``baseline`` (all of them without one)."""
    if baseline is None:
        return dict(ns)
    out = {}
    for name, obj in ns.items():
        before = baseline.holders.get(f"variable:{name}")
        if before is None or before.object_id != id(obj):
            out[name] = obj
    return out

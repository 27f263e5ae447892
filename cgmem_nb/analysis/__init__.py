"""Analysis: leaks, usage patterns and recommendations — pure functions of recorded data.

Everything here reads what the session layer recorded (holder observations,
results, a namespace handed in) and returns typed findings
(:class:`~cgmem_nb.schema.MemoryLeak`, :class:`~cgmem_nb.schema.UsagePattern`,
:class:`~cgmem_nb.schema.Recommendation`). Nothing here reads the shell or the
process, publishes events, writes files or displays anything: gathering the
data and publishing the findings is the facade's job (:mod:`cgmem_nb.facade`).

* :mod:`~cgmem_nb.analysis.leaks`: :class:`LeakDetector` (ordered leak rules, leak history);
* :mod:`~cgmem_nb.analysis.patterns`: :class:`PatternAnalyzer`;
* :mod:`~cgmem_nb.analysis.recommend`: :class:`RecommendationEngine` (ordered rules) and
  :mod:`~cgmem_nb.analysis.savings` (savings measured on the data);
* :mod:`~cgmem_nb.analysis.session`: the analysis of one finished session.

The process-wide instances (:data:`LEAK_DETECTOR`, :data:`PATTERN_ANALYZER`,
:data:`RECOMMENDATION_ENGINE`) are the ones ``MEMORY_PROFILER`` uses: add rules to them.
"""

from __future__ import annotations

from ..schema import (
    Difficulty,
    LeakImpact,
    MemoryLeak,
    Recommendation,
    UsagePattern,
    leaks_frame,
    patterns_frame,
    recommendations_frame,
)
from .leaks import LEAK_DETECTOR, LeakDetector, LeakSettings, describe_holders
from .patterns import PATTERN_ANALYZER, PatternAnalyzer
from .recommend import RECOMMENDATION_ENGINE, Context, Draft, RecommendationEngine
from .session import SessionFindings, analyze_session, touched_variables

__all__ = [
    "LEAK_DETECTOR",
    "PATTERN_ANALYZER",
    "RECOMMENDATION_ENGINE",
    "Context",
    "Difficulty",
    "Draft",
    "LeakDetector",
    "LeakImpact",
    "LeakSettings",
    "MemoryLeak",
    "PatternAnalyzer",
    "Recommendation",
    "RecommendationEngine",
    "SessionFindings",
    "UsagePattern",
    "analyze_session",
    "describe_holders",
    "leaks_frame",
    "patterns_frame",
    "recommendations_frame",
    "touched_variables",
]

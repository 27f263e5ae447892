"""The facade: the seed's profiler calls that need every layer, in one top-level module.

``MEMORY_PROFILER.detect_leaks()``, ``analyze_patterns()``,
``generate_recommendations()``, ``export_json()`` / ``export_csv()`` /
``export_prometheus()``, the analysis tables of every finished session and the
report a result displays as all need layers above the session. They are served
here, through the plug-in point :mod:`cgmem_nb.session.hooks` (the package root
installs :data:`FACADE` there), in the way pyinstrument's ``Profiler.output(renderer)``
hands its session to a renderer: the profiler passes itself, this module does the
work with the layers.

What each call does:

* gather the recorded data from the session layer (a holder observation now,
  the observation log, the user's variables),
* run the pure analysis (:mod:`cgmem_nb.analysis`),
* publish new findings on the event bus (``LeakDetected``, ``RecommendationGenerated``;
  a leak again once it has grown by a tenth) so the live panel and the dashboard
  fill in,
* or hand the profiler to the exports (:mod:`cgmem_nb.outputs.export`) and a
  result to the report (:mod:`cgmem_nb.outputs.report`).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import pandas as pd

from .analysis import LEAK_DETECTOR, PATTERN_ANALYZER, RECOMMENDATION_ENGINE, Context, analyze_session
from .engine.events.bus import EVENT_BUS
from .engine.events.kinds import LeakDetected, RecommendationGenerated
from .outputs import export, report
from .schema import MemoryLeak, Recommendation, UsagePattern, leaks_frame, patterns_frame, recommendations_frame
from .session.holders import OBSERVATIONS, log_observation
from .session.namespace import user_namespace
from .session.result import ProfileResult

if TYPE_CHECKING:
    from .session.profiler import MemoryProfiler

__all__ = ["FACADE", "Facade", "FindingsPublisher"]

log = logging.getLogger(__name__)


class FindingsPublisher:
    """Publishes each finding once: a leak again when it has grown by a tenth, a
    recommendation once per rule and target."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._published: set[tuple[str, ...]] = set()

    def publish(self, profiler: MemoryProfiler, leaks: Sequence[MemoryLeak], recs: Sequence[Recommendation]) -> None:
        """Publish what is new in ``leaks`` and ``recs``, when ``profiler`` publishes live events."""
        if not profiler.publishing:
            return
        for leak in leaks:
            if self._first(("leak", leak.leak_id, str(int(math.log(max(leak.size, 1), 1.1))))):
                EVENT_BUS.publish(LeakDetected(leak))
        for rec in recs:
            if self._first(("rec", rec.rule, rec.target)):
                EVENT_BUS.publish(RecommendationGenerated(rec))

    def _first(self, key: tuple[str, ...]) -> bool:
        with self._lock:
            if key in self._published:
                return False
            self._published.add(key)
            return True


class Facade:
    """The implementation of :class:`cgmem_nb.session.hooks.Facade`."""

    def __init__(self) -> None:
        self.findings = FindingsPublisher()

    def finish(self, profiler: MemoryProfiler, result: ProfileResult) -> ProfileResult:
        """``result`` with the leaks, patterns and recommendations of its session.

        The leak window is the observations taken during the session plus one taken
        now; the baseline is the last observation before it. Never raises: on failure
        the result is returned unchanged and the error logged.
        """
        try:
            until = time.time()
            since = until - result.summary.duration_s
            before = OBSERVATIONS.items(until=since)
            now = log_observation(profiler)
            window = [o for o in OBSERVATIONS.items(since=since) if o is not now] + [now]
            found = analyze_session(result, window, before[-1] if before else None, user_namespace())
            self.findings.publish(profiler, found.leaks, found.recommendations)
            leaks = leaks_frame(found.leaks)
            if not result.leaks.empty:  # found elsewhere before the analysis (a Dask cluster's workers)
                leaks = pd.concat([leaks, result.leaks], ignore_index=True) if len(leaks) else result.leaks
            return result.with_tables(
                leaks=leaks,
                patterns=patterns_frame(found.patterns),
                recommendations=recommendations_frame(found.recommendations),
            )
        except Exception:
            log.exception("cgmem_nb: the analysis of a session failed; the result has no analysis tables")
            return result

    def detect_leaks(self, profiler: MemoryProfiler, *, observe: bool = True) -> list[MemoryLeak]:
        """Take an observation now and run the leak detector over every observation kept.

        ``observe=False`` is a read: no observation is taken, the detector's leak history is
        not updated and nothing is published (the exports and the dashboard read this way)."""
        if not observe:
            return LEAK_DETECTOR.detect(OBSERVATIONS.items(), remember=False)
        log_observation(profiler)
        leaks = LEAK_DETECTOR.detect(OBSERVATIONS.items())
        self.findings.publish(profiler, leaks, [])
        return leaks

    def analyze_patterns(self, profiler: MemoryProfiler) -> list[UsagePattern]:
        """Per-category patterns over the observations and the stored session results."""
        return PATTERN_ANALYZER.analyze(OBSERVATIONS.items(), profiler.results)

    def generate_recommendations(self, profiler: MemoryProfiler, *, observe: bool = True) -> list[Recommendation]:
        """Recommendations over the user's variables, the leaks, the observations and the results
        (``observe=False``: a read, as for :meth:`detect_leaks`)."""
        leaks = self.detect_leaks(profiler, observe=observe)
        ctx = Context(namespace=user_namespace(), observations=OBSERVATIONS.items(), leaks=leaks, results=profiler.results)
        recs = RECOMMENDATION_ENGINE.recommend(ctx)
        if observe:
            self.findings.publish(profiler, [], recs)
        return recs

    def export_json(self, profiler: MemoryProfiler, path: str | os.PathLike[str] | None, *, indent: int | None) -> str:
        """The profiler's state as JSON (see :func:`cgmem_nb.outputs.export.profiler_json`)."""
        return export.profiler_json(profiler, path, indent=indent)

    def export_csv(self, profiler: MemoryProfiler, directory: str | os.PathLike[str]) -> dict[str, Path]:
        """The profiler's tables as CSV files (see :func:`cgmem_nb.outputs.export.profiler_csv`)."""
        return export.profiler_csv(profiler, directory)

    def export_prometheus(self, profiler: MemoryProfiler) -> str:
        """The profiler's figures as Prometheus text (see :func:`cgmem_nb.outputs.export.prometheus`)."""
        return export.prometheus(profiler)

    def render(self, result: ProfileResult) -> dict[str, str]:
        """The static report of ``result`` (see :mod:`cgmem_nb.outputs.report`)."""
        return report.render_bundle(result)


#: The facade the package root installs.
FACADE = Facade()

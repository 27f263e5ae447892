"""The registry of charts the live views render: :data:`CHARTS`.

The live panel renders every chart registered for :data:`PANEL`, the dashboard
every chart registered for :data:`DASHBOARD`, in this order, each fed from the
same :class:`~cgmem_nb.outputs.feed.LiveFeed`. To add a chart to both views,
write a class with a ``model`` (its Bokeh model) and an
``update(feed_update)`` method, and add one entry here with
``views=BOTH`` (see ``docs/architecture.md``).
"""

from __future__ import annotations

from .activity import CategoriesChart, RatesChart
from .cluster import ClusterLinesChart, TaskPrefixChart, WorkerMemoryChart
from .base import DASHBOARD, PANEL, Chart, ChartContext, ChartSpec, View
from .findings import LeaksChart, RecommendationsChart
from .timeline import TimelineChart, limit_title

__all__ = [
    "BOTH",
    "CHARTS",
    "DASHBOARD",
    "PANEL",
    "Chart",
    "ChartContext",
    "ChartSpec",
    "TimelineChart",
    "View",
    "charts_for",
    "limit_title",
]

#: Shown in the panel and in the dashboard.
BOTH: frozenset[View] = frozenset({PANEL, DASHBOARD})
_DASHBOARD_ONLY: frozenset[View] = frozenset({DASHBOARD})

#: Every chart of the live views, in the order they are shown.
CHARTS: tuple[ChartSpec, ...] = (
    ChartSpec("timeline", TimelineChart, BOTH),
    ChartSpec("rates", RatesChart, _DASHBOARD_ONLY),
    ChartSpec("categories", CategoriesChart, _DASHBOARD_ONLY, width="half"),
    ChartSpec("leaks", LeaksChart, _DASHBOARD_ONLY, width="half"),
    ChartSpec("recommendations", RecommendationsChart, _DASHBOARD_ONLY),
    # a profiled Dask cluster (hidden until there is one)
    ChartSpec("cluster_memory", WorkerMemoryChart, BOTH),
    ChartSpec("task_prefixes", TaskPrefixChart, BOTH, width="half"),
    ChartSpec("cluster_lines", ClusterLinesChart, BOTH, width="half"),
)


def charts_for(view: View) -> list[ChartSpec]:
    """The charts ``view`` shows, in order."""
    return [spec for spec in CHARTS if view in spec.views]

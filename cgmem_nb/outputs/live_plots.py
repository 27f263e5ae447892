"""Bokeh figure builders for the live panel: pure functions, no display, no threads.

The panel streams rows into the sources these functions make; everything about
how the chart looks lives here so the dashboard can draw the same chart later
(the lead folds this module into ``outputs/plots.py``).

Units: the x axis is seconds since the panel started, the y axis megabytes
(10**6 bytes, like :func:`cgmem_nb.units.format_bytes`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:
    from bokeh.models import ColumnDataSource
    from bokeh.models.annotations import Span
    from bokeh.plotting import figure as Figure

__all__ = [
    "GAP_COLUMNS",
    "LIMIT_COLOR",
    "TIMELINE_COLUMNS",
    "gap_source",
    "include_limit",
    "limit_title",
    "live_timeline_figure",
    "timeline_source",
]

MB = 1000**2
#: Columns of the timeline source: seconds, RSS in MB, traced heap in MB (NaN: none).
TIMELINE_COLUMNS = ("t", "rss_mb", "traced_mb")
#: Columns of the gap source: gap start / end / middle (s) and the RSS drawn for it (MB).
GAP_COLUMNS = ("t0", "t1", "t", "rss_mb")
RSS_COLOR = "#1f77b4"
TRACED_COLOR = "#ff7f0e"
LIMIT_COLOR = "#d62728"
GAP_COLOR = "#7f7f7f"

#: Name of the timeline ColumnDataSource (the browser tests find it by name).
TIMELINE_SOURCE_NAME = "cgmem_live_timeline"
GAP_SOURCE_NAME = "cgmem_live_gaps"


def timeline_source(seed: Mapping[str, Sequence[float]] | None = None) -> ColumnDataSource:
    """A ColumnDataSource with :data:`TIMELINE_COLUMNS`, seeded with ``seed``.

    Seed at least one row: a source that starts empty makes BokehJS log
    "could not set initial ranges".
    """
    from bokeh.models import ColumnDataSource

    data = {name: list((seed or {}).get(name, ())) for name in TIMELINE_COLUMNS}
    return ColumnDataSource(data=data, name=TIMELINE_SOURCE_NAME)


def gap_source() -> ColumnDataSource:
    """An empty ColumnDataSource with :data:`GAP_COLUMNS` (gaps are rare; its glyphs do not set ranges)."""
    from bokeh.models import ColumnDataSource

    return ColumnDataSource(data={name: [] for name in GAP_COLUMNS}, name=GAP_SOURCE_NAME)


def live_timeline_figure(
    source: ColumnDataSource,
    gaps: ColumnDataSource,
    limit_bytes: int,
    *,
    limit_label: str = "limit",
    width: int = 640,
    height: int = 280,
) -> tuple[Figure, Span]:
    """The live chart: RSS and traced heap against time, the limit as a dashed line.

    Gaps (seconds without samples, e.g. while a C call held the GIL) are drawn
    as grey dashed segments at the RSS filled in for them, with a triangle at
    their middle. Returns the figure and the limit ``Span`` (move it with
    ``span.location = new_limit_mb`` if the limit changes).
    """
    from bokeh.models import DataRange1d, HoverTool
    from bokeh.models.annotations import Span
    from bokeh.plotting import figure

    y_range = DataRange1d(start=0, range_padding=0.1)
    fig = figure(
        width=width,
        height=height,
        x_axis_label="seconds",
        y_axis_label="MB",
        y_range=y_range,
        tools="pan,wheel_zoom,box_zoom,reset,save",
        toolbar_location="right",
    )
    rss = fig.line("t", "rss_mb", source=source, color=RSS_COLOR, line_width=2, legend_label="RSS")
    traced = fig.line("t", "traced_mb", source=source, color=TRACED_COLOR, line_width=2, legend_label="traced heap")
    fig.segment("t0", "rss_mb", "t1", "rss_mb", source=gaps, color=GAP_COLOR, line_dash="dashed", line_width=2)
    fig.scatter(
        "t", "rss_mb", source=gaps, marker="inverted_triangle", size=10, color=GAP_COLOR,
        legend_label="gap without samples: kernel peak",
    )
    y_range.renderers = [rss, traced]
    span = Span(location=limit_bytes / MB, dimension="width", line_color=LIMIT_COLOR, line_dash="dashed", line_width=2)
    fig.add_layout(span)
    fig.title = limit_title(limit_bytes, limit_label)
    legend = fig.legend[0]
    legend.click_policy = "hide"
    legend.label_text_font_size = "11px"
    fig.add_layout(legend, "below")  # outside the plot area: never covers the lines
    legend.orientation = "horizontal"
    fig.add_tools(HoverTool(renderers=[rss, traced], tooltips=[("t", "@t{0.0} s"), ("RSS", "@rss_mb{0,0.0} MB"), ("traced", "@traced_mb{0,0.0} MB")]))
    return fig, span


def limit_title(limit_bytes: int, limit_label: str = "limit") -> str:
    """The chart title naming the limit (it may be off-scale)."""
    return f"{limit_label}: {limit_bytes / MB:,.0f} MB (red dashed line)"


def include_limit(fig: Any, limit_bytes: int, peak_bytes: int, factor: float = 1.5) -> bool:
    """Stretch the y axis to show the limit once usage comes within ``factor`` of it; True if stretched.

    A limit far above the data (say 24 GB of RAM against 300 MB used) would flatten
    the lines, so it stays off-scale (the title names it) until it matters.
    """
    if limit_bytes <= 0 or peak_bytes * factor < limit_bytes:
        return False
    fig.y_range.end = limit_bytes / MB * 1.05
    return True

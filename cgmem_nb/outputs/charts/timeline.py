"""The memory timeline: RSS and traced heap over time, the limit and where Critical starts,
gaps without samples, and session and cell markers. One chart for the panel and the dashboard.
"""

from __future__ import annotations

from typing import Any, Sequence

from ...engine.pressure import DEFAULT_PRESSURE_THRESHOLDS, critical_bytes
from ...schema import PressureLevel
from ..feed import FeedGap, FeedMarker, FeedSample, FeedUpdate
from ..theme import GAP_COLOR, MB, RSS_COLOR, SERIES_COLORS, TRACED_COLOR
from .base import ChartContext, figure

__all__ = ["GAP_COLUMNS", "MARKER_COLUMNS", "TIMELINE_COLUMNS", "TimelineChart", "limit_title"]

#: Columns of the timeline source: time, plotted MB, exact bytes.
TIMELINE_COLUMNS = ("t", "rss_mb", "traced_mb", "limit_mb", "critical_mb", "rss_bytes", "traced_bytes")
#: Columns of the gap source: gap start / end / middle and the RSS drawn for it (MB).
GAP_COLUMNS = ("t0", "t1", "t", "rss_mb")
#: Columns of the marker source.
MARKER_COLUMNS = ("t", "label", "kind", "color")

_NAN = float("nan")
_CRITICAL_PERCENT = round(100 * DEFAULT_PRESSURE_THRESHOLDS[PressureLevel.CRITICAL])


def limit_title(limit_bytes: int, source: str = "") -> str:
    """The chart title naming the limit (which may be off-scale)."""
    where = f" ({source})" if source else ""
    return f"Memory (MB) · limit{where}: {limit_bytes / MB:,.0f} MB, dashed"


class TimelineChart:
    """RSS and traced heap against time, with the limit, the Critical level, gaps and markers.

    The limit (grey dotted) and the level where ``CRITICAL`` pressure begins (red
    dashed, the pressure policy's threshold, not the guard's) are drawn per sample,
    so a changed limit shows; the y axis stretches to them once usage comes within
    1.5x of the limit (a limit far above the data would flatten the lines, so until
    then the title names it). Gaps are grey dashed segments at the RSS drawn for
    them, with a triangle at their middle; a gap filled from the kernel's peak also
    puts that peak on the RSS line.
    """

    def __init__(self, ctx: ChartContext) -> None:
        from bokeh.models import ColumnDataSource, DataRange1d, HoverTool

        self.ctx = ctx
        self.source = ColumnDataSource({c: [] for c in TIMELINE_COLUMNS}, name="cgmem_timeline")
        if ctx.seed is not None:
            self.source.data = self._rows([ctx.seed])
        self.gaps = ColumnDataSource({c: [] for c in GAP_COLUMNS}, name="cgmem_gaps")
        self.markers = ColumnDataSource({c: [] for c in MARKER_COLUMNS}, name="cgmem_markers")
        self.limit_bytes = ctx.limit_bytes
        self._limit_in_range = False
        y_range = DataRange1d(start=0, range_padding=0.1)
        fig = figure(ctx, limit_title(ctx.limit_bytes, ctx.limit_source), height=int(ctx.options.get("height", 280)), y_range=y_range)
        fig.yaxis.axis_label = "MB"
        rss = fig.line("t", "rss_mb", source=self.source, color=RSS_COLOR, line_width=2, legend_label="RSS")
        traced = fig.line("t", "traced_mb", source=self.source, color=TRACED_COLOR, line_width=2, legend_label="traced heap")
        fig.line(
            "t", "critical_mb", source=self.source, color=SERIES_COLORS["critical"], line_dash="dashed",
            legend_label=f"Critical ({_CRITICAL_PERCENT}% of limit)", name="critical",
        )
        fig.line("t", "limit_mb", source=self.source, color=SERIES_COLORS["limit"], line_dash="dotted", legend_label="limit", name="limit")
        fig.segment("t0", "rss_mb", "t1", "rss_mb", source=self.gaps, color=GAP_COLOR, line_dash="dashed", line_width=2)
        fig.scatter(
            "t", "rss_mb", source=self.gaps, marker="inverted_triangle", size=10, color=GAP_COLOR,
            legend_label="gap without samples: kernel peak",
        )
        fig.vspan(x="t", source=self.markers, line_color="color", line_alpha=0.5, line_width=1)
        y_range.renderers = [rss, traced]
        tooltips = [("RSS", "@rss_mb{0,0.0} MB"), ("traced", "@traced_mb{0,0.0} MB")]
        when = ("time", "@t{%T}") if ctx.datetime_axis else ("t", "@t{0.0} s")
        fig.add_tools(
            HoverTool(
                renderers=[rss, traced], tooltips=[when, *tooltips], mode="vline",
                formatters={"@t": "datetime"} if ctx.datetime_axis else {},
            )
        )
        legend = fig.legend[0]
        legend.click_policy = "hide"
        legend.label_text_font_size = "11px"
        fig.add_layout(legend, "below")  # outside the plot area: never covers the lines
        legend.orientation = "horizontal"
        legend.ncols = 2  # five items on one row are wider than a phone (390 px)
        self.figure = fig
        self.model = fig

    def _rows(self, samples: Sequence[FeedSample], gaps: Sequence[FeedGap] = ()) -> dict[str, Any]:
        points: list[tuple[float, int, int | None, int, int]] = [
            (s.wall, s.rss_bytes, s.traced_bytes, s.limit_bytes, s.critical_bytes) for s in samples
        ]
        limit = samples[-1].limit_bytes if samples else self.limit_bytes
        for gap in gaps:
            if gap.from_kernel_peak:  # the line reaches the peak reached inside the gap
                points.append(((gap.start + gap.end) / 2, gap.rss_bytes, None, limit, critical_bytes(limit)))
        points.sort(key=lambda p: p[0])
        x = self.ctx.x
        return {
            "t": [x(p[0]) for p in points],
            "rss_mb": [p[1] / MB for p in points],
            "traced_mb": [_NAN if p[2] is None else p[2] / MB for p in points],
            "limit_mb": [p[3] / MB for p in points],
            "critical_mb": [p[4] / MB for p in points],
            "rss_bytes": [p[1] for p in points],
            "traced_bytes": [p[2] for p in points],
        }

    def update(self, update: FeedUpdate) -> None:
        """Stream new samples, gaps and markers; follow a changed limit."""
        rollover = self.ctx.rollover
        if update.samples or any(g.from_kernel_peak for g in update.gaps):
            self.source.stream(self._rows(update.samples, update.gaps), rollover=rollover)
        if update.gaps:
            x = self.ctx.x
            self.gaps.stream(
                {
                    "t0": [x(g.start) for g in update.gaps],
                    "t1": [x(g.end) for g in update.gaps],
                    "t": [x((g.start + g.end) / 2) for g in update.gaps],
                    "rss_mb": [g.rss_bytes / MB for g in update.gaps],
                },
                rollover=rollover,
            )
        if update.markers:
            self.markers.stream(self._marker_rows(update.markers), rollover=400)
        figures = update.figures
        if figures.limit_bytes != self.limit_bytes:
            self.limit_bytes = figures.limit_bytes
            self._limit_in_range = False
            self.figure.title.text = limit_title(figures.limit_bytes, figures.limit_source)
        if not self._limit_in_range and self.limit_bytes > 0 and figures.peak_bytes * 1.5 >= self.limit_bytes:
            self.figure.y_range.end = self.limit_bytes / MB * 1.05
            self._limit_in_range = True

    def _marker_rows(self, markers: list[FeedMarker]) -> dict[str, Any]:
        x = self.ctx.x
        return {
            "t": [x(m.wall) for m in markers],
            "label": [m.label for m in markers],
            "kind": [m.kind for m in markers],
            "color": [SERIES_COLORS["session" if m.kind == "start" else "cell"] for m in markers],
        }

    @property
    def limit_in_range(self) -> bool:
        """True once the y axis was stretched to show the limit."""
        return self._limit_in_range

"""A profiled Dask cluster in the live views: each worker's memory over time, task prefixes by peak, top lines.

The three charts stay hidden until the feed has something about a cluster
(``%%memprofile --dask``, ``cgmem_nb.dask.session``), so a view of one kernel
looks as it did.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ...units import format_bytes
from ..feed import FeedUpdate
from ..theme import MB, SERIES_COLORS, WORKER_COLORS
from .base import ChartContext, figure
from .findings import text_table

__all__ = ["ClusterLinesChart", "TaskPrefixChart", "WorkerMemoryChart"]

#: Columns of the top lines table.
LINE_COLUMNS = ("where", "location", "peak", "retained", "code")
_PREFIXES_SHOWN = 12


class WorkerMemoryChart:
    """Process memory of each Dask worker over time (the first eight workers, one colour each)."""

    def __init__(self, ctx: ChartContext) -> None:
        from bokeh.models import ColumnDataSource, HoverTool
        from bokeh.models.annotations import Legend

        self.ctx = ctx
        fig = figure(ctx, "Dask workers: process memory (MB)", height=200)
        self.sources = []
        self.renderers = []
        for i, color in enumerate(WORKER_COLORS):
            source = ColumnDataSource({"t": [], "mb": [], "managed_mb": [], "worker": []}, name=f"cgmem_worker_memory_{i}")
            self.sources.append(source)
            self.renderers.append(fig.line("t", "mb", source=source, color=color, line_width=2, visible=False))
        fig.add_tools(HoverTool(tooltips=[("worker", "@worker"), ("memory", "@mb{0,0.0} MB"), ("managed", "@managed_mb{0,0.0} MB")]))
        self.legend = Legend(items=[], location="top_left", label_text_font_size="11px")
        fig.add_layout(self.legend)
        fig.visible = False
        self.slots: dict[str, int] = {}
        self.model = fig

    def update(self, update: FeedUpdate) -> None:
        """Stream the new readings, one line per worker."""
        from bokeh.models.annotations import LegendItem

        readings = update.cluster.readings
        if not readings:
            return
        rows: dict[int, dict[str, Any]] = defaultdict(lambda: {"t": [], "mb": [], "managed_mb": [], "worker": []})
        for r in readings:
            slot = self.slots.get(r.worker)
            if slot is None:
                if len(self.slots) >= len(self.sources):
                    continue
                slot = self.slots[r.worker] = len(self.slots)
                self.renderers[slot].visible = True
                self.legend.items = [*self.legend.items, LegendItem(label=r.worker, renderers=[self.renderers[slot]])]
            row = rows[slot]
            row["t"].append(self.ctx.x(r.wall))
            row["mb"].append(r.rss_bytes / MB)
            row["managed_mb"].append(r.managed_bytes / MB)
            row["worker"].append(r.worker)
        for slot, row in rows.items():
            self.sources[slot].stream(row, rollover=self.ctx.rollover)
        self.model.visible = True


class TaskPrefixChart:
    """Dask task prefixes by the largest peak one of their tasks reached (hover: tasks, retained, time)."""

    def __init__(self, ctx: ChartContext) -> None:
        from bokeh.models import ColumnDataSource, FactorRange, HoverTool

        self.source = ColumnDataSource(
            {"prefix": [], "mb": [], "peak": [], "tasks": [], "retained": [], "seconds": []}, name="cgmem_task_prefixes"
        )
        fig = figure(ctx, "Task prefixes by peak (MB)", height=240, time_axis=False, y_range=FactorRange(), tools="save", toolbar_location=None)
        fig.hbar(y="prefix", right="mb", height=0.7, source=self.source, color=SERIES_COLORS["allocation"])
        fig.x_range.start = 0
        fig.add_tools(
            HoverTool(tooltips=[("prefix", "@prefix"), ("tasks", "@tasks"), ("peak", "@peak"), ("retained", "@retained"), ("time", "@seconds{0.00} s")])
        )
        fig.visible = False
        self.figure = fig
        self.model = fig

    def update(self, update: FeedUpdate) -> None:
        """Redraw when the prefixes changed."""
        prefixes = update.cluster.prefixes
        if not prefixes:
            return
        shown = prefixes[:_PREFIXES_SHOWN]
        self.source.data = {
            "prefix": [p.prefix for p in shown],
            "mb": [p.peak_bytes / MB for p in shown],
            "peak": [format_bytes(p.peak_bytes) for p in shown],
            "tasks": [p.tasks for p in shown],
            "retained": [format_bytes(p.retained_bytes) for p in shown],
            "seconds": [p.duration_s for p in shown],
        }
        self.figure.y_range.factors = [p.prefix for p in reversed(shown)]
        self.model.visible = True


class ClusterLinesChart:
    """The top lines of the latest cluster session, with where they ran, and the workers lost."""

    def __init__(self, ctx: ChartContext) -> None:
        from bokeh.layouts import column
        from bokeh.models.widgets.markups import Div

        self.lost = Div(text="", sizing_mode="stretch_width", styles={"font-family": "sans-serif", "font-size": "12px"})
        self.title = Div(text="<b>Top lines (kernel and workers)</b>", styles={"font-family": "sans-serif", "font-size": "13px"})
        table, self.rows = text_table("cgmem_cluster_lines", LINE_COLUMNS, height=200)
        self.model: Any = column(self.title, self.lost, table, sizing_mode="stretch_width", min_width=340)
        self.model.visible = False

    def update(self, update: FeedUpdate) -> None:
        """Redraw when the lines or the lost workers changed."""
        cluster = update.cluster
        if cluster.lost:
            self.lost.text = "".join(
                f"<div style='color:{SERIES_COLORS['leak']}'>lost {worker}: {reason}</div>" for worker, reason in cluster.lost.items()
            )
            self.model.visible = True
        if cluster.lines:
            self.rows.data = {
                "where": [r["where"] for r in cluster.lines],
                "location": [r["location"] for r in cluster.lines],
                "peak": [format_bytes(r["peak_bytes"]) for r in cluster.lines],
                "retained": [format_bytes(r["retained_bytes"]) for r in cluster.lines],
                "code": [r["code"] for r in cluster.lines],
            }
            self.model.visible = True

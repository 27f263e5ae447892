"""How memory moves: allocation / deallocation rates over time, and bytes by category."""

from __future__ import annotations

from typing import Any

from ..feed import FeedUpdate
from ..theme import MB, SERIES_COLORS
from .base import ChartContext, figure

__all__ = ["CategoriesChart", "RatesChart"]


class RatesChart:
    """Growth (allocation) and release (deallocation) of the traced heap (or RSS) per second."""

    def __init__(self, ctx: ChartContext) -> None:
        from bokeh.models import ColumnDataSource

        self.ctx = ctx
        self.source = ColumnDataSource({"t": [], "alloc_mb_s": [], "dealloc_mb_s": []}, name="cgmem_rates")
        fig = figure(ctx, "Allocation / deallocation rate (MB/s)", height=200)
        fig.line("t", "alloc_mb_s", source=self.source, legend_label="allocation", color=SERIES_COLORS["allocation"], line_width=2)
        fig.line("t", "dealloc_mb_s", source=self.source, legend_label="deallocation", color=SERIES_COLORS["deallocation"], line_width=2)
        fig.legend.location = "top_left"
        fig.legend.label_text_font_size = "11px"
        self.model = fig

    def update(self, update: FeedUpdate) -> None:
        """Stream the rates of the new samples."""
        if update.samples:
            x = self.ctx.x
            self.source.stream(
                {
                    "t": [x(s.wall) for s in update.samples],
                    "alloc_mb_s": [s.alloc_bytes_s / MB for s in update.samples],
                    "dealloc_mb_s": [s.dealloc_bytes_s / MB for s in update.samples],
                },
                rollover=self.ctx.rollover,
            )


class CategoriesChart:
    """Bytes by allocation category (the latest session's peak, manual records alive now): bars and a table."""

    def __init__(self, ctx: ChartContext) -> None:
        from bokeh.layouts import column
        from bokeh.models import ColumnDataSource, FactorRange, HoverTool
        from bokeh.models.widgets.tables import DataTable, NumberFormatter, TableColumn

        self.source = ColumnDataSource({"category": [], "mb": [], "bytes": [], "source": []}, name="cgmem_categories")
        fig = figure(ctx, "Memory by category (MB)", height=240, time_axis=False, y_range=FactorRange(), tools="save", toolbar_location=None)
        fig.hbar(y="category", right="mb", height=0.7, source=self.source, color=SERIES_COLORS["category"])
        fig.x_range.start = 0
        fig.add_tools(HoverTool(tooltips=[("category", "@category"), ("bytes", "@bytes{0,0}"), ("from", "@source")]))
        table = DataTable(
            source=self.source,
            columns=[
                TableColumn(field="category", title="category"),
                TableColumn(field="source", title="from"),
                TableColumn(field="bytes", title="bytes", formatter=NumberFormatter(format="0,0")),
            ],
            height=180,
            sizing_mode="stretch_width",
            index_position=None,
        )
        self.figure = fig
        self.model: Any = column(fig, table, sizing_mode="stretch_width", min_width=340)

    def update(self, update: FeedUpdate) -> None:
        """Redraw when the category rows changed."""
        if update.categories is None:
            return
        rows = [r for r in update.categories if r["bytes"] > 0]
        labels = [r["category"] if r["source"] == "last_session" else f"{r['category']} ({r['source']})" for r in rows]
        self.source.data = {
            "category": labels,
            "mb": [r["bytes"] / MB for r in rows],
            "bytes": [r["bytes"] for r in rows],
            "source": [r["source"] for r in rows],
        }
        self.figure.y_range.factors = list(dict.fromkeys(labels))

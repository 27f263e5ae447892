"""The analysis's findings in the live views: leaks over time with their table, and recommendations."""

from __future__ import annotations

from typing import Any

from ...units import format_bytes
from ..feed import FeedUpdate
from ..theme import MB, SERIES_COLORS
from .base import ChartContext, figure

__all__ = ["LeaksChart", "RecommendationsChart", "text_table"]

#: Columns of the leaks table.
LEAK_COLUMNS = ("last seen", "holder", "size", "impact", "reason", "fix")
#: Columns of the recommendations table.
RECOMMENDATION_COLUMNS = ("priority", "description", "action", "savings", "difficulty")


def text_table(name: str, columns: tuple[str, ...], *, height: int) -> tuple[Any, Any]:
    """A table of text columns and its source (named ``name``)."""
    from bokeh.models import ColumnDataSource
    from bokeh.models.widgets.tables import DataTable, TableColumn

    source = ColumnDataSource({c: [] for c in columns}, name=name)
    table = DataTable(
        source=source,
        columns=[TableColumn(field=c, title=c) for c in columns],
        height=height,
        sizing_mode="stretch_width",
        index_position=None,
    )
    return table, source


class LeaksChart:
    """Leaks as points (when last seen, how big) over a table naming holder, impact and fix."""

    def __init__(self, ctx: ChartContext) -> None:
        from bokeh.layouts import column
        from bokeh.models import ColumnDataSource, HoverTool

        self.ctx = ctx
        self.points = ColumnDataSource(
            {"t": [], "mb": [], "bytes": [], "size": [], "label": [], "impact": []}, name="cgmem_leak_points"
        )
        fig = figure(ctx, "Leaks over time (MB)", height=200)
        fig.scatter("t", "mb", source=self.points, size=9, color=SERIES_COLORS["leak"], alpha=0.7)
        fig.add_tools(HoverTool(tooltips=[("leak", "@label"), ("size", "@size"), ("impact", "@impact")]))
        table, self.rows = text_table("cgmem_leaks", LEAK_COLUMNS, height=160)
        self.model: Any = column(fig, table, sizing_mode="stretch_width", min_width=340)

    def update(self, update: FeedUpdate) -> None:
        """Redraw when the findings changed."""
        if update.leaks is None:
            return
        leaks = update.leaks
        x = self.ctx.x
        self.points.data = {
            "t": [x(k.last_seen) for k in leaks],
            "mb": [k.size / MB for k in leaks],
            "bytes": [k.size for k in leaks],
            "size": [format_bytes(k.size) for k in leaks],
            "label": [k.holder for k in leaks],
            "impact": [k.estimated_impact.value for k in leaks],
        }
        self.rows.data = {
            "last seen": [f"In[{k.last_cell}]" if k.last_cell is not None else "" for k in leaks],
            "holder": [k.holder for k in leaks],
            "size": [format_bytes(k.size) for k in leaks],
            "impact": [k.estimated_impact.value for k in leaks],
            "reason": [k.reason for k in leaks],
            "fix": [k.fix for k in leaks],
        }


class RecommendationsChart:
    """The recommendations, most important first, with the code to paste and the bytes it saves."""

    def __init__(self, ctx: ChartContext) -> None:
        table, self.rows = text_table("cgmem_recommendations", RECOMMENDATION_COLUMNS, height=180)
        self.model = table

    def update(self, update: FeedUpdate) -> None:
        """Redraw when the findings changed."""
        recs = update.recommendations
        if recs is None:
            return
        recs = sorted(recs, key=lambda r: r.priority)  # priority 1 first
        self.rows.data = {
            "priority": [str(r.priority) for r in recs],
            "description": [r.description for r in recs],
            "action": [r.action for r in recs],
            "savings": [format_bytes(r.estimated_savings) for r in recs],
            "difficulty": [r.difficulty.value for r in recs],
        }

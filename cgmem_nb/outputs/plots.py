"""Bokeh figure builders shared by the live panel and the web dashboard.

Each builder is a pure function: it makes a new figure (or table) and the
``ColumnDataSource`` that feeds it, and returns both. Callers own the source and
update it (``source.stream(...)``, ``source.data = ...``) on the thread that
owns the document. Nothing here touches the profiler.

Units: times are milliseconds since the epoch (Bokeh's datetime axis), sizes are
megabytes (10^6 bytes) in the plotted columns, with the exact bytes kept in
``*_bytes`` columns for hover tools and tables.

Bokeh is imported here, so import this module only where Bokeh is wanted.
"""

from __future__ import annotations

from typing import Any

from bokeh.models import ColumnDataSource, FactorRange, HoverTool
from bokeh.models.widgets.tables import DataTable, NumberFormatter, TableColumn
from bokeh.plotting import figure

__all__ = [
    "MB",
    "TIMELINE_COLUMNS",
    "category_figure",
    "cell_markers",
    "findings_table",
    "leak_timeline_figure",
    "rate_figure",
    "timeline_figure",
    "category_table",
]

#: Bytes per plotted megabyte.
MB = 1_000_000.0

#: Columns of the timeline source (see :func:`timeline_figure`).
TIMELINE_COLUMNS = ("t", "rss_mb", "traced_mb", "limit_mb", "critical_mb", "rss_bytes", "traced_bytes")

_TOOLS = "pan,xwheel_zoom,box_zoom,reset,save"


def _figure(title: str, *, height: int, x_datetime: bool = True, **kwargs: Any) -> Any:
    fig = figure(
        title=title,
        height=height,
        sizing_mode="stretch_width",
        min_width=300,
        x_axis_type="datetime" if x_datetime else "linear",
        tools=_TOOLS,
        toolbar_location="above",
        **kwargs,
    )
    fig.toolbar.logo = None
    _title_size(fig)
    return fig


def _title_size(fig: Any) -> None:
    fig.title.text_font_size = "13px"


def timeline_figure(*, height: int = 260, title: str = "Memory over time (MB)") -> tuple[Any, ColumnDataSource]:
    """RSS, traced bytes, the limit and the Critical threshold over time.

    Source columns: :data:`TIMELINE_COLUMNS` (``t`` in ms since the epoch, ``*_mb``
    plotted, ``*_bytes`` exact). Add cell boundaries with :func:`cell_markers`.
    """
    source = ColumnDataSource({name: [] for name in TIMELINE_COLUMNS})
    fig = _figure(title, height=height)
    fig.line("t", "rss_mb", source=source, legend_label="RSS", line_width=2, color="#1f77b4")
    fig.line("t", "traced_mb", source=source, legend_label="traced", line_width=2, color="#2ca02c")
    # Named so a caller can hide them while usage is far below the limit (they flatten the chart).
    fig.line("t", "critical_mb", source=source, legend_label="Critical", line_dash="dashed", color="#d62728", name="critical")
    fig.line("t", "limit_mb", source=source, legend_label="limit", line_dash="dotted", color="#7f7f7f", name="limit")
    fig.legend.location = "top_left"
    fig.legend.click_policy = "hide"
    fig.legend.label_text_font_size = "11px"
    fig.add_tools(
        HoverTool(
            tooltips=[("time", "@t{%T}"), ("RSS", "@rss_mb{0,0.0} MB"), ("traced", "@traced_mb{0,0.0} MB")],
            formatters={"@t": "datetime"},
            mode="vline",
        )
    )
    return fig, source


def cell_markers(fig: Any) -> ColumnDataSource:
    """Vertical marks on a timeline figure at cell (or session) boundaries.

    Returns the source to fill: ``t`` (ms since the epoch), ``label`` (``"In[7]"``),
    ``kind`` (``"start"`` or ``"end"``), ``color``. The marks span the plot without
    changing its y range.
    """
    source = ColumnDataSource({"t": [], "label": [], "kind": [], "color": []})
    fig.vspan(x="t", source=source, line_color="color", line_alpha=0.5, line_width=1)
    return source


def rate_figure(*, height: int = 200, title: str = "Allocation / deallocation rate (MB/s)") -> tuple[Any, ColumnDataSource]:
    """Memory growth (allocation) and release (deallocation) rates over time.

    Source columns: ``t``, ``alloc_mb_s``, ``dealloc_mb_s``.
    """
    source = ColumnDataSource({"t": [], "alloc_mb_s": [], "dealloc_mb_s": []})
    fig = _figure(title, height=height)
    fig.line("t", "alloc_mb_s", source=source, legend_label="allocation", color="#ff7f0e", line_width=2)
    fig.line("t", "dealloc_mb_s", source=source, legend_label="deallocation", color="#9467bd", line_width=2)
    fig.legend.location = "top_left"
    fig.legend.label_text_font_size = "11px"
    return fig, source


def category_figure(*, height: int = 240, title: str = "Memory by category (MB)") -> tuple[Any, ColumnDataSource]:
    """Horizontal bars of bytes by category.

    Source columns: ``category``, ``mb``, ``bytes``, ``source`` (where the figure
    comes from, e.g. ``last_session`` or ``tracked``). Set ``fig.y_range.factors``
    to the categories when the data changes.
    """
    source = ColumnDataSource({"category": [], "mb": [], "bytes": [], "source": []})
    fig: Any = figure(
        title=title,
        height=height,
        sizing_mode="stretch_width",
        min_width=300,
        y_range=FactorRange(),
        tools="save",
        toolbar_location=None,
    )
    _title_size(fig)
    fig.hbar(y="category", right="mb", height=0.7, source=source, color="#1f77b4")
    fig.x_range.start = 0
    fig.add_tools(HoverTool(tooltips=[("category", "@category"), ("bytes", "@bytes{0,0}"), ("from", "@source")]))
    return fig, source


def category_table(source: ColumnDataSource, *, height: int = 180) -> DataTable:
    """A table view of a :func:`category_figure` source."""
    return DataTable(
        source=source,
        columns=[
            TableColumn(field="category", title="category"),
            TableColumn(field="source", title="from"),
            TableColumn(field="bytes", title="bytes", formatter=NumberFormatter(format="0,0")),
        ],
        height=height,
        sizing_mode="stretch_width",
        index_position=None,
    )


def leak_timeline_figure(*, height: int = 200, title: str = "Leaks over time (MB)") -> tuple[Any, ColumnDataSource]:
    """Leaks as points: when they were reported and how big they were.

    Source columns: ``t``, ``mb``, ``bytes``, ``label`` (what holds the memory), ``impact``.
    """
    source = ColumnDataSource({"t": [], "mb": [], "bytes": [], "label": [], "impact": []})
    fig = _figure(title, height=height)
    fig.scatter("t", "mb", source=source, size=9, color="#d62728", alpha=0.7)
    fig.add_tools(HoverTool(tooltips=[("leak", "@label"), ("size", "@bytes{0,0} bytes"), ("impact", "@impact")]))
    return fig, source


def findings_table(columns: list[str], *, height: int = 200) -> tuple[DataTable, ColumnDataSource]:
    """A table of findings (leaks, recommendations) with the given columns, all as text."""
    source = ColumnDataSource({c: [] for c in columns})
    table = DataTable(
        source=source,
        columns=[TableColumn(field=c, title=c.replace("_", " ")) for c in columns],
        height=height,
        sizing_mode="stretch_width",
        index_position=None,
    )
    return table, source

"""Bokeh figure builders shared by the live panel and the web dashboard.

Each builder is a pure function: it makes a new figure (or table) and the
``ColumnDataSource`` that feeds it, and returns both. Callers own the source and
update it (``source.stream(...)``, ``source.data = ...``) on the thread that
owns the document. Nothing here touches the profiler.

Units: times are milliseconds since the epoch (Bokeh's datetime axis), sizes are
megabytes (10^6 bytes) in the plotted columns, with the exact bytes kept in
``*_bytes`` columns for hover tools and tables.

Bokeh is imported inside the builders, so importing this module is cheap and
works where Bokeh is not installed (the live panel then falls back to the
static report).

Two families: the dashboard's charts (datetime x axis, ``timeline_figure`` and
friends) and the live panel's chart (seconds since the panel started,
``live_timeline_figure`` with ``timeline_source`` / ``gap_source``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:
    from bokeh.models import ColumnDataSource
    from bokeh.models.annotations import Span
    from bokeh.models.widgets.tables import DataTable
    from bokeh.plotting import figure as Figure

__all__ = [
    "GAP_COLUMNS",
    "LIMIT_COLOR",
    "LIVE_TIMELINE_COLUMNS",
    "MB",
    "gap_source",
    "include_limit",
    "limit_title",
    "live_timeline_figure",
    "timeline_source",
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
    from bokeh.plotting import figure

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
    from bokeh.models import ColumnDataSource, HoverTool

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
    from bokeh.models import ColumnDataSource

    source = ColumnDataSource({"t": [], "label": [], "kind": [], "color": []})
    fig.vspan(x="t", source=source, line_color="color", line_alpha=0.5, line_width=1)
    return source


def rate_figure(*, height: int = 200, title: str = "Allocation / deallocation rate (MB/s)") -> tuple[Any, ColumnDataSource]:
    """Memory growth (allocation) and release (deallocation) rates over time.

    Source columns: ``t``, ``alloc_mb_s``, ``dealloc_mb_s``.
    """
    from bokeh.models import ColumnDataSource

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
    from bokeh.models import ColumnDataSource, FactorRange, HoverTool
    from bokeh.plotting import figure

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
    from bokeh.models.widgets.tables import DataTable, NumberFormatter, TableColumn

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
    from bokeh.models import ColumnDataSource, HoverTool

    source = ColumnDataSource({"t": [], "mb": [], "bytes": [], "label": [], "impact": []})
    fig = _figure(title, height=height)
    fig.scatter("t", "mb", source=source, size=9, color="#d62728", alpha=0.7)
    fig.add_tools(HoverTool(tooltips=[("leak", "@label"), ("size", "@bytes{0,0} bytes"), ("impact", "@impact")]))
    return fig, source


def findings_table(columns: list[str], *, height: int = 200) -> tuple[DataTable, ColumnDataSource]:
    """A table of findings (leaks, recommendations) with the given columns, all as text."""
    from bokeh.models import ColumnDataSource
    from bokeh.models.widgets.tables import DataTable, TableColumn

    source = ColumnDataSource({c: [] for c in columns})
    table = DataTable(
        source=source,
        columns=[TableColumn(field=c, title=c.replace("_", " ")) for c in columns],
        height=height,
        sizing_mode="stretch_width",
        index_position=None,
    )
    return table, source


# -- the live panel's chart: x in seconds since the panel started ----------------------------

#: Columns of the live timeline source: seconds, RSS in MB, traced heap in MB (NaN: none).
LIVE_TIMELINE_COLUMNS = ("t", "rss_mb", "traced_mb")
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
    """A ColumnDataSource with :data:`LIVE_TIMELINE_COLUMNS`, seeded with ``seed``.

    Seed at least one row: a source that starts empty makes BokehJS log
    "could not set initial ranges".
    """
    from bokeh.models import ColumnDataSource

    data = {name: list((seed or {}).get(name, ())) for name in LIVE_TIMELINE_COLUMNS}
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

"""What a chart of the live views is: a Bokeh model built once, updated from the live feed.

A chart class takes a :class:`ChartContext` and builds its Bokeh model (a figure,
a table, or a column of both) and the data sources behind it; its
:meth:`Chart.update` applies a :class:`~cgmem_nb.outputs.feed.FeedUpdate` on the
thread that owns the document (the monitor thread for the panel, the server's
document callback for the dashboard). Bokeh is imported inside the constructors,
so importing the charts is cheap and works where Bokeh is not installed.

Units: sizes are plotted in MB (10^6 bytes), with exact bytes kept in ``*_bytes``
columns for hovers and tables. Time is seconds since the view started in the
panel and the wall clock (a datetime axis) in the dashboard: :meth:`ChartContext.x`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Protocol

from ..feed import FeedSample, FeedUpdate

__all__ = ["DASHBOARD", "PANEL", "Chart", "ChartContext", "ChartSpec", "View", "figure"]

View = Literal["panel", "dashboard"]
#: The live panel under a notebook cell.
PANEL: View = "panel"
#: The web dashboard.
DASHBOARD: View = "dashboard"

_TOOLS = "pan,xwheel_zoom,box_zoom,reset,save"


@dataclass
class ChartContext:
    """What a chart needs to know about the view it is built for."""

    view: View
    #: Unix time the panel's seconds count from (the dashboard uses the wall clock).
    t0: float = 0.0
    #: Most rows kept in each streamed source.
    rollover: int = 3000
    limit_bytes: int = 0
    limit_source: str = ""
    #: A shared x range (the view links its time charts), or None.
    x_range: Any = None
    #: A first point for streamed sources (a source that starts empty makes BokehJS log
    #: "could not set initial ranges").
    seed: FeedSample | None = None
    #: Extra settings a view passes to its charts.
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def datetime_axis(self) -> bool:
        """True when time is the wall clock (milliseconds since the epoch, Bokeh's datetime)."""
        return self.view == DASHBOARD

    def x(self, wall: float) -> float:
        """The x value of Unix time ``wall`` on this view's time axis."""
        return wall * 1000.0 if self.datetime_axis else wall - self.t0


class Chart(Protocol):
    """A chart of the live views."""

    #: The Bokeh model the view lays out.
    model: Any

    def update(self, update: FeedUpdate) -> None:
        """Apply what is new (on the thread that owns the document)."""


@dataclass(frozen=True)
class ChartSpec:
    """One entry of the chart registry."""

    #: Name of the chart (its Bokeh model carries ``cgmem_<name>``).
    name: str
    #: Builds the chart for a view.
    make: Callable[[ChartContext], Chart]
    #: The views that show it.
    views: frozenset[View]
    #: Layout hint for the dashboard: ``"full"`` width, or ``"half"`` (two side by side).
    width: Literal["full", "half"] = "full"


def figure(ctx: ChartContext, title: str, *, height: int, time_axis: bool = True, **kwargs: Any) -> Any:
    """A figure in the live views' style (time on x unless ``time_axis`` is False)."""
    from bokeh.plotting import figure as bokeh_figure

    if time_axis:
        kwargs.setdefault("x_axis_type", "datetime" if ctx.datetime_axis else "linear")
        if not ctx.datetime_axis:
            kwargs.setdefault("x_axis_label", "seconds")
        if ctx.x_range is not None:
            kwargs.setdefault("x_range", ctx.x_range)
    kwargs.setdefault("tools", _TOOLS)
    kwargs.setdefault("toolbar_location", "above")
    if ctx.view == PANEL:  # a widget output has no width to stretch into until it is shown
        kwargs.setdefault("width", int(ctx.options.get("width", 640)))
    else:
        kwargs.setdefault("sizing_mode", "stretch_width")
        kwargs.setdefault("min_width", 300)
    fig: Any = bokeh_figure(title=title, height=height, **kwargs)
    if time_axis and ctx.datetime_axis:
        from bokeh.models import DatetimeTickFormatter

        # Clock times at every zoom: Bokeh's defaults label sub-second ticks "844000us".
        fig.xaxis.formatter = DatetimeTickFormatter(
            microseconds="%H:%M:%S.%3N", milliseconds="%H:%M:%S.%3N", seconds="%H:%M:%S",
            minsec="%H:%M:%S", minutes="%H:%M", hourmin="%H:%M", hours="%H:%M",
        )
    fig.toolbar.logo = None
    fig.title.text_font_size = "13px"
    return fig

"""The live panel: ipywidgets plus the panel's charts, moving while a cell runs.

A :class:`LivePanel` reads a :class:`~cgmem_nb.outputs.feed.LiveFeed` (the one live
feed, which the dashboard reads too) and redraws when the feed takes an event,
on the publishing thread (the monitor thread), at most ``max_rate`` times a
second: one ``source.stream(..., rollover=N)`` per chart and one ``hold_sync()``
block for the figures per redraw. There is no sampling loop of its own.

What it shows:

* current / peak / limit / traced figures and a pressure bar coloured by level
  (the feed's pressure, the house's one policy and one colour scheme);
* the charts registered for the panel (:data:`cgmem_nb.outputs.charts.CHARTS`):
  RSS and traced heap over time with the limit, gaps and cell markers;
* leaks and recommendations, filled in as the feed receives them ("none yet" until then);
* after :meth:`LivePanel.finalize`, the final figures of the cell's
  :class:`~cgmem_nb.session.result.ProfileResult`.

Without a widget front end (a terminal IPython, a plain Python process) the
panel shows no widgets; its text form is stable (no ids, no versions) and the
static report is what the user gets at the end of the cell.
"""

from __future__ import annotations

import html
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..engine.events.kinds import ProfilerEvent, Sample, TasksFinished, WorkerSample
from ..errors import CgmemError
from ..schema import MemoryLeak, PressureLevel, Recommendation
from ..session.profiler import MEMORY_PROFILER, MemoryProfiler
from ..session.result import ProfileResult
from ..units import format_bytes
from .charts import PANEL, Chart, ChartContext, TimelineChart, charts_for
from .feed import FeedCursor, FeedFigures, LiveFeed
from .bokehjs import clear_bokehjs_output, has_widget_frontend, load_bokehjs
from .panel_static import static_bundle, timeline_svg
from .report import native_line
from .theme import LEVEL_COLORS

#: Events that come several times a second: they redraw at most ``max_rate`` times a second.
_STREAMED = (Sample, WorkerSample, TasksFinished)

if TYPE_CHECKING:
    import ipywidgets

__all__ = ["LEVEL_COLORS", "PANEL_TEXT", "LivePanel", "clear_bokehjs_output", "has_widget_frontend", "last_panel", "load_bokehjs"]

#: Text form of a panel (what nbval, nbconvert and terminals see): stable by design.
PANEL_TEXT = "cgmem_nb live panel (ipywidgets: it moves in JupyterLab, Notebook 7 and VS Code)"
_ITEMS_SHOWN = 8

_last_panel: LivePanel | None = None


def last_panel() -> LivePanel | None:
    """The panel shown most recently (by ``%%memprofile --live``, ``%mempanel`` or :meth:`LivePanel.show`)."""
    return _last_panel


def _require_widgets() -> None:
    try:
        import bokeh  # noqa: F401
        import ipywidgets  # noqa: F401
        import jupyter_bokeh  # noqa: F401
    except ImportError as exc:
        raise CgmemError(
            f"the live panel needs ipywidgets, bokeh and jupyter_bokeh ({exc}); "
            "install them with: pip install 'cgmem_nb[jupyter]'"
        ) from None


def _describe(item: MemoryLeak | Recommendation) -> str:
    """One line for a finding."""
    if isinstance(item, MemoryLeak):
        return f"[{item.estimated_impact.value}] {item.holder}: {item.reason} ({format_bytes(item.size)})"
    return f"[{item.priority}] {item.description} ({format_bytes(item.estimated_savings)})"


def _section_html(title: str, items: Sequence[MemoryLeak | Recommendation]) -> str:
    e = html.escape
    head = f"<b>{e(title)}</b> ({len(items)})" if items else f"<b>{e(title)}</b>"
    if not items:
        return f'<div class="cgmem-panel-section">{head}: <i>none yet</i></div>'
    if all(isinstance(item, Recommendation) for item in items):
        # Recommendations in their order of importance: priority 1 first.
        ordered = sorted(items, key=lambda item: item.priority if isinstance(item, Recommendation) else 0)
        shown = ordered[:_ITEMS_SHOWN]
        more = f"<li><i>and {len(items) - len(shown)} more</i></li>" if len(items) > len(shown) else ""
    else:  # leaks: the newest first
        shown = list(reversed(list(items)[-_ITEMS_SHOWN:]))
        more = f"<li><i>and {len(items) - len(shown)} earlier</i></li>" if len(items) > len(shown) else ""
    rows = "".join(f"<li>{e(_describe(item))}</li>" for item in shown)
    return f'<div class="cgmem-panel-section">{head}<ul style="margin:2px 0 2px 1em;padding:0">{rows}{more}</ul></div>'


class LivePanel:
    """A live memory panel fed by a :class:`LiveFeed`. Show it with :meth:`show`, end it with :meth:`finalize`.

    Args:
        title: heading of the panel (e.g. ``"In[7]"``).
        profiler: whose limit and events to follow (default ``MEMORY_PROFILER``).
        rollover: most points kept in the charts.
        max_rate: most redraws per second (2 to 5 reach the page smoothly).
        build_widgets: build the ipywidgets and charts (default: always, so tests can read
            them in a plain shell); False gives a text-only panel.
        clock: the clock redraws are throttled by (tests pass a fake one).
    """

    def __init__(
        self,
        title: str = "kernel",
        *,
        profiler: MemoryProfiler | None = None,
        rollover: int = 3000,
        max_rate: float = 4.0,
        build_widgets: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(rollover, bool) or not isinstance(rollover, int) or rollover < 10:
            raise CgmemError(f"rollover={rollover!r} is not accepted: give a whole number of points, at least 10")
        if isinstance(max_rate, bool) or not isinstance(max_rate, (int, float)) or not 0.1 <= max_rate <= 30:
            raise CgmemError(f"max_rate={max_rate!r} is not accepted: give redraws per second from 0.1 to 30 (2 to 5 is right)")
        self.title = title
        self.profiler = profiler or MEMORY_PROFILER
        self.rollover = rollover
        self.max_rate = float(max_rate)
        self._clock = clock
        self._lock = threading.RLock()
        #: The live feed the panel draws.
        self.feed = LiveFeed(self.profiler, history=rollover)
        self._cursor = FeedCursor()
        self._t0 = clock()
        self._last_redraw = float("-inf")
        self._forget: Callable[[], None] | None = None
        #: Findings shown, oldest first.
        self.leaks: list[MemoryLeak] = []
        self.recommendations: list[Recommendation] = []
        #: Redraws done (each one stream per chart + one hold_sync).
        self.redraws = 0
        self.final: ProfileResult | None = None
        self.closed = False
        #: True once :meth:`show` displayed the panel in a front end.
        self.shown = False
        self.charts: list[Chart] = []
        self._context: ChartContext | None = None
        self.widget: ipywidgets.VBox | None = None
        if build_widgets:
            self._build()

    # ------------------------------------------------------------------ figures
    @property
    def figures(self) -> FeedFigures:
        """The figures shown (the feed's)."""
        return self.feed.figures

    @property
    def level(self) -> PressureLevel:
        """The pressure level shown."""
        return self.figures.level

    @property
    def limit_bytes(self) -> int:
        """The memory limit pressure is measured against."""
        return self.figures.limit_bytes

    @property
    def current_bytes(self) -> int:
        """The latest RSS."""
        return self.figures.current_bytes

    @property
    def peak_bytes(self) -> int:
        """The highest RSS seen (samples, gap fills, the final result)."""
        return self.figures.peak_bytes

    @property
    def cell_notes(self) -> tuple[str, ...]:
        """Per-cell notes of a kernel-wide panel (``%mempanel``), newest last."""
        return self.figures.cell_notes

    @property
    def gaps(self) -> list[tuple[float, float, int, bool]]:
        """Gaps in the samples: ``(start_s, end_s, rss_drawn_bytes, from_kernel_peak)``, seconds since the panel started."""
        return [(g.start - self._t0, g.end - self._t0, g.rss_bytes, g.from_kernel_peak) for g in self.feed.gaps]

    @property
    def timeline(self) -> TimelineChart | None:
        """The timeline chart (None for a text-only panel)."""
        return next((c for c in self.charts if isinstance(c, TimelineChart)), None)

    # ------------------------------------------------------------------ widgets
    def _build(self) -> None:
        _require_widgets()
        import ipywidgets as widgets
        from bokeh.layouts import column
        from jupyter_bokeh import BokehModel

        f = self.figures
        ctx = self._context = ChartContext(
            PANEL, t0=self._t0, rollover=self.rollover, limit_bytes=f.limit_bytes, limit_source=f.limit_source,
            seed=self.feed.seed_sample(self._t0),
        )
        self.charts = [spec.make(ctx) for spec in charts_for(PANEL)]
        self.status = widgets.HTML(value=self._status_html())
        self.status.add_class("cgmem-panel-status")
        self.leaks_html = widgets.HTML(value=_section_html("Leaks", self.leaks))
        self.leaks_html.add_class("cgmem-panel-leaks")
        self.recs_html = widgets.HTML(value=_section_html("Recommendations", self.recommendations))
        self.recs_html.add_class("cgmem-panel-recommendations")
        self.leaks_html.layout.margin = "0 2em 0 0"
        models = [c.model for c in self.charts]
        self.chart = BokehModel(models[0] if len(models) == 1 else column(*models))
        self.chart.add_class("cgmem-panel-chart")
        self.widget = widgets.VBox([self.status, self.chart, widgets.HBox([self.leaks_html, self.recs_html])])
        self.widget.add_class("cgmem-panel")

    def _figure_items(self) -> list[tuple[str, str]]:
        f = self.figures
        return [
            ("current", format_bytes(f.current_bytes)),
            ("peak", format_bytes(f.peak_bytes)),
            ("limit", f"{format_bytes(f.limit_bytes)} ({f.limit_source})"),
            ("traced", "–" if f.traced_bytes is None else format_bytes(f.traced_bytes)),
            ("traced peak", "–" if f.traced_peak_bytes is None else format_bytes(f.traced_peak_bytes)),
        ]

    def _state(self) -> str:
        return "final" if self.final is not None else ("closed" if self.closed else "live")

    def native_text(self) -> str:
        """The latest finished session's Python / native split, as the report words it
        (``""`` unless that session sampled native memory)."""
        s = self.figures.last_summary
        line = native_line(s)
        return f"{s.label}: {line}" if s is not None and line else ""

    def status_text(self) -> str:
        """The figures and pressure as one plain line (what the status widget says)."""
        figures = " · ".join(f"{k} {v}" for k, v in self._figure_items())
        f = self.figures
        native = self.native_text()
        return f"{self.title} [{self._state()}] pressure {f.level.value} ({f.fraction:.0%}) · {figures}" + (
            f" · {native}" if native else ""
        )

    def _status_html(self) -> str:
        e = html.escape
        f = self.figures
        width = min(max(f.fraction, 0.0), 1.0) * 100
        cells = "".join(
            f'<span style="margin-right:1.2em"><span style="color:#666">{e(k)}</span> '
            f'<b class="cgmem-fig-{e(k.replace(" ", "-"))}">{e(v)}</b></span>'
            for k, v in self._figure_items()
        )
        extra = ""
        if f.session_label:
            extra += f'<span style="color:#666">session</span> {e(f.session_label)} '
        if f.gaps:
            extra += f'<span style="color:#666">gaps without samples</span> {f.gaps} '
        if f.cell_notes:
            extra += f'<span style="color:#666">last cell</span> {e(f.cell_notes[-1])}'
        native = self.native_text()
        if native:
            extra += f'<div class="cgmem-panel-native">{e(native)}</div>'
        return (
            '<div style="font-family:var(--jp-ui-font-family,sans-serif);font-size:13px">'
            f"<b>cgmem_nb · {e(self.title)}</b> <span style=\"color:#666\">[{self._state()}]</span>"
            f'<div style="margin:4px 0">{cells}</div>'
            '<div style="display:flex;align-items:center;gap:8px">'
            f'<span class="cgmem-pressure" style="min-width:11em">pressure <b>{e(f.level.value)}</b> '
            f"({f.fraction:.0%})</span>"
            '<div style="flex:1;max-width:420px;height:12px;background:#eee;border-radius:3px">'
            f'<div style="width:{width:.1f}%;height:100%;background:{LEVEL_COLORS[f.level]};border-radius:3px"></div></div></div>'
            f'<div style="margin-top:2px;font-size:12px">{extra}</div>'
            "</div>"
        )

    # ------------------------------------------------------------------ life cycle
    def start(self) -> LivePanel:
        """Follow the feed (which keeps the monitor sampling). Idempotent."""
        if self._forget is None and not self.closed:
            with self._lock:
                # Time runs from here: showing the panel (BokehJS, widgets) is not part of the chart.
                self._t0 = self._clock()
                if self._context is not None:
                    self._context.t0 = self._t0
            self._forget = self.feed.listen(self._on_feed)
            self.feed.start()
        return self

    def show(self) -> LivePanel:
        """Display the panel under the running cell and start following the feed.

        In a Jupyter kernel this loads BokehJS inline the first time (once per
        kernel) and displays the widgets; elsewhere it displays the text form.
        """
        from IPython.display import display

        global _last_panel
        _last_panel = self
        if self.widget is not None and has_widget_frontend():
            load_bokehjs()
            self.shown = True
        display(self)  # type: ignore[no-untyped-call]
        return self.start()

    def stop(self) -> None:
        """Stop following the feed (releases the monitor thread); the widgets stay as they are."""
        forget, self._forget = self._forget, None
        if forget is not None:
            forget()
        self.feed.stop()

    def finalize(self, result: ProfileResult | None = None) -> None:
        """Stop, draw what is pending and show the final figures (from ``result`` if given).

        In a Jupyter kernel it then displays the panel's final picture (static HTML that
        nbconvert and GitHub show; hidden in JupyterLab next to the live widget) and empties
        the output that carried BokehJS, so the saved notebook stays small.
        """
        self.stop()
        with self._lock:
            if result is not None:
                self.final = result
            else:
                self.closed = True
            self.feed.close(result.summary if result is not None else None)
            self._redraw(force=True)
        if self.widget is not None and has_widget_frontend() and self.shown:
            from IPython.display import display

            display(self.static_bundle(), raw=True)  # type: ignore[no-untyped-call]
            clear_bokehjs_output()

    def static_bundle(self) -> dict[str, str]:
        """The final picture's MIME bundle (an SVG chart of the timeline, the figures, the findings)."""
        chart = self.timeline
        data = chart.source.data if chart is not None else {}
        svg = timeline_svg(list(data.get("t", [])), list(data.get("rss_mb", [])), list(data.get("traced_mb", [])))
        findings = _section_html("Leaks", self.leaks) + _section_html("Recommendations", self.recommendations)
        return static_bundle(self._status_html(), svg, findings)

    close = finalize

    # ------------------------------------------------------------------ drawing
    def handle(self, event: ProfilerEvent) -> None:
        """Take one event (as the bus would deliver it) and redraw at most ``max_rate`` times a second."""
        self.feed.handle(event)
        if self._forget is None:  # not following the feed: redraw here
            self._on_feed(event)

    def _on_feed(self, event: ProfilerEvent | None) -> None:
        # Samples (and a cluster's readings) redraw at most max_rate times a second; the rare events (a cell or a session
        # ending, a finding) redraw at once.
        with self._lock:
            if not isinstance(event, _STREAMED) or self._clock() - self._last_redraw >= 1.0 / self.max_rate:
                self._redraw()

    def _redraw(self, force: bool = False) -> None:
        """One batched update of the page: one stream per chart and one hold_sync for the figures."""
        self._last_redraw = self._clock()
        update = self.feed.read(self._cursor)
        self._cursor = update.cursor
        findings = update.leaks is not None
        if not (update.samples or update.gaps or update.markers or findings or force or not update.cluster.empty):
            return
        self.redraws += 1
        if findings:
            self.leaks = list(update.leaks or [])
            self.recommendations = list(update.recommendations or [])
        if self.widget is None:
            return
        for chart in self.charts:
            chart.update(update)
        with self.status.hold_sync():
            self.status.value = self._status_html()
        if findings:
            self.leaks_html.value = _section_html("Leaks", self.leaks)
            self.recs_html.value = _section_html("Recommendations", self.recommendations)

    def flush(self) -> None:
        """Redraw now whatever is pending (tests and ``finalize`` use it)."""
        with self._lock:
            self._redraw(force=True)

    # ------------------------------------------------------------------ display
    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {"text/plain": PANEL_TEXT}
        if self.widget is not None and has_widget_frontend():
            view = self.widget._repr_mimebundle_()
            if view and "application/vnd.jupyter.widget-view+json" in view:
                bundle["application/vnd.jupyter.widget-view+json"] = view["application/vnd.jupyter.widget-view+json"]
        return bundle

    def __repr__(self) -> str:
        return PANEL_TEXT

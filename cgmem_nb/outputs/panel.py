"""The live panel: ipywidgets plus one Bokeh chart that move while a cell runs.

A :class:`LivePanel` listens to the event bus through
``MEMORY_PROFILER.subscribe`` (which keeps the one monitor thread sampling) and
redraws from that callback, on the monitor thread, at most ``max_rate`` times a
second: one ``source.stream(..., rollover=N)`` into the chart and one
``hold_sync()`` block for the figures per redraw. There is no sampling loop of
its own.

What it shows:

* current / peak / limit figures and a pressure bar coloured by level
  (Low, Medium, High, Critical; levels come from ``MemoryPressure`` events);
* a chart of RSS and traced heap over time with the limit as a dashed line;
* leaks and recommendations, filled in as ``LeakDetected`` and
  ``RecommendationGenerated`` events arrive ("none yet" until then);
* after :meth:`LivePanel.finalize`, the final figures of the cell's
  :class:`~cgmem_nb.session.result.ProfileResult`.

Gaps: a C call that holds the GIL stops the monitor thread, so no samples arrive
for its duration. When samples resume after a gap, the panel reads the kernel's
peak RSS (``VmHWM``); if it grew during the gap, the peak reached inside the call
is drawn at the middle of the gap (grey triangle and dashed segment) and counted
in the peak figure. Clicks on widgets are delivered only when the busy cell ends,
so the panel has no buttons that pretend otherwise.

Without a widget front end (a terminal IPython, a plain Python process) the
panel shows no widgets; its text form is stable (no ids, no versions) and the
static report is what the user gets at the end of the cell.
"""

from __future__ import annotations

import html
import math
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..engine import probes
from ..engine.events import (
    LeakDetected,
    MemoryPressure,
    PressureLevel,
    PressureTracker,
    ProfilerEvent,
    RecommendationGenerated,
    Sample,
    SessionFinished,
    SessionStarted,
    Subscription,
)
from ..errors import CgmemError
from ..session.profiler import MEMORY_PROFILER, MemoryProfiler
from ..session.result import ProfileResult
from ..units import format_bytes
from . import plots

if TYPE_CHECKING:
    import ipywidgets

__all__ = ["LEVEL_COLORS", "PANEL_TEXT", "LivePanel", "has_widget_frontend", "last_panel", "load_bokehjs"]

#: Colour of the pressure bar per level.
LEVEL_COLORS: dict[PressureLevel, str] = {
    PressureLevel.LOW: "#2a9d8f",
    PressureLevel.MEDIUM: "#e9c46a",
    PressureLevel.HIGH: "#f4a261",
    PressureLevel.CRITICAL: "#e63946",
}
#: Text form of a panel (what nbval, nbconvert and terminals see): stable by design.
PANEL_TEXT = "cgmem_nb live panel (ipywidgets: it moves in JupyterLab, Notebook 7 and VS Code)"
_ITEMS_SHOWN = 8
_NAN = float("nan")
MB = plots.MB

_bokehjs_loaded = False
_bokehjs_lock = threading.Lock()
_last_panel: LivePanel | None = None


def last_panel() -> LivePanel | None:
    """The panel shown most recently (by ``%%memprofile --live``, ``%mempanel`` or :meth:`LivePanel.show`)."""
    return _last_panel


def has_widget_frontend() -> bool:
    """True inside a Jupyter kernel (ipykernel), where widgets can reach a front end.

    A terminal IPython or a plain process has no comm channel to a page; there
    the panel shows its text form and the static report instead.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def load_bokehjs() -> bool:
    """Put BokehJS on the page once per kernel process, inline (the CDN fails offline).

    Returns True if it was loaded by this call. Called when the first panel is
    shown, so kernels that never show a panel never carry the ~4 MB script.
    """
    global _bokehjs_loaded
    with _bokehjs_lock:
        if _bokehjs_loaded or not has_widget_frontend():
            return False
        from bokeh.io import output_notebook
        from bokeh.resources import INLINE

        output_notebook(INLINE, hide_banner=True)
        _bokehjs_loaded = True
        return True


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


def _describe(item: Any) -> str:
    """One line for a leak or recommendation record of any shape (they come from the analysis layer)."""
    for name in ("description", "summary", "message", "title"):
        text = getattr(item, name, None)
        if isinstance(text, str) and text:
            break
    else:
        text = str(item)
    for name in ("estimated_savings_bytes", "savings_bytes", "size_bytes", "retained_bytes", "bytes"):
        value = getattr(item, name, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value:
            text += f" ({format_bytes(value)})"
            break
    for name in ("impact", "priority", "severity"):
        value = getattr(item, name, None)
        if value is not None:
            text = f"[{getattr(value, 'value', value)}] {text}"
            break
    return text


def _section_html(title: str, items: Sequence[Any]) -> str:
    e = html.escape
    head = f"<b>{e(title)}</b> ({len(items)})" if items else f"<b>{e(title)}</b>"
    if not items:
        return f'<div class="cgmem-panel-section">{head}: <i>none yet</i></div>'
    shown = list(items)[-_ITEMS_SHOWN:]
    more = f"<li><i>and {len(items) - len(shown)} earlier</i></li>" if len(items) > len(shown) else ""
    rows = "".join(f"<li>{e(_describe(item))}</li>" for item in reversed(shown))
    return f'<div class="cgmem-panel-section">{head}<ul style="margin:2px 0 2px 1em;padding:0">{rows}{more}</ul></div>'


class LivePanel:
    """A live memory panel fed by the event bus. Show it with :meth:`show`, end it with :meth:`finalize`.

    Args:
        title: heading of the panel (e.g. ``"In[7]"``).
        profiler: whose limit and events to follow (default ``MEMORY_PROFILER``).
        rollover: most points kept in the chart.
        max_rate: most redraws per second (2 to 5 reach the page smoothly).
        build_widgets: build the ipywidgets and chart (default: always, so tests can read
            them in a plain shell); False gives a text-only panel.
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
        limit = self.profiler.memory_limit()
        #: Memory limit in bytes the pressure is measured against, and where it came from.
        self.limit_bytes = limit.bytes
        self.limit_source = limit.source
        self._tracker = PressureTracker(limit.bytes)
        self._t0 = clock()
        rss = probes.rss()
        #: Latest RSS and traced bytes (traced is None while no session traces).
        self.current_bytes = rss
        self.traced_bytes: int | None = self.profiler._traced_bytes()
        #: Highest RSS seen (samples, gap fills, the final result).
        self.peak_bytes = rss
        #: Highest traced heap seen (None until a session traces).
        self.traced_peak_bytes = self.traced_bytes
        #: Pressure level shown (from MemoryPressure events; first guessed from RSS).
        self.level = self._tracker.level_for(rss)
        #: Findings received as events, oldest first.
        self.leaks: list[Any] = []
        self.recommendations: list[Any] = []
        #: Gaps in the samples: ``(start_s, end_s, rss_drawn_bytes, from_kernel_peak)``.
        self.gaps: list[tuple[float, float, int, bool]] = []
        #: Redraws done (each one stream + one hold_sync).
        self.redraws = 0
        #: Label of the session running now / the last one finished.
        self.session_label: str | None = None
        self.last_session: dict[str, Any] | None = None
        #: Per-cell notes of a kernel-wide panel (``%mempanel``), newest last.
        self.cell_notes: list[str] = []
        self.final: ProfileResult | None = None
        self.closed = False
        self._pending: dict[str, list[float]] = {name: [] for name in plots.LIVE_TIMELINE_COLUMNS}
        self._pending_gaps: dict[str, list[float]] = {name: [] for name in plots.GAP_COLUMNS}
        self._last_sample_wall: float | None = None
        self._last_hwm = probes.KERNEL_PEAK.read()
        self._last_redraw = float("-inf")
        self._dirty_sections = False
        self._subscription: Subscription | None = None
        self._interval = self.profiler.config.sample_interval
        self._limit_in_range = False
        self.widget: ipywidgets.VBox | None = None
        if build_widgets:
            self._build(rss)

    # ------------------------------------------------------------------ widgets
    def _build(self, rss: int) -> None:
        _require_widgets()
        import ipywidgets as widgets
        from jupyter_bokeh import BokehModel

        traced_mb = self.traced_bytes / MB if self.traced_bytes is not None else _NAN
        self.source = plots.timeline_source({"t": [0.0], "rss_mb": [rss / MB], "traced_mb": [traced_mb]})
        self.gap_source = plots.gap_source()
        self.figure, self.limit_span = plots.live_timeline_figure(
            self.source, self.gap_source, self.limit_bytes, limit_label=f"limit ({self.limit_source})"
        )
        self._limit_in_range = plots.include_limit(self.figure, self.limit_bytes, rss)
        self.status = widgets.HTML(value=self._status_html())
        self.status.add_class("cgmem-panel-status")
        self.leaks_html = widgets.HTML(value=_section_html("Leaks", self.leaks))
        self.leaks_html.add_class("cgmem-panel-leaks")
        self.recs_html = widgets.HTML(value=_section_html("Recommendations", self.recommendations))
        self.recs_html.add_class("cgmem-panel-recommendations")
        self.leaks_html.layout.margin = "0 2em 0 0"
        self.chart = BokehModel(self.figure)
        self.chart.add_class("cgmem-panel-chart")
        self.widget = widgets.VBox(
            [self.status, self.chart, widgets.HBox([self.leaks_html, self.recs_html])]
        )
        self.widget.add_class("cgmem-panel")

    def _figures(self) -> list[tuple[str, str]]:
        traced = "–" if self.traced_bytes is None else format_bytes(self.traced_bytes)
        traced_peak = "–" if self.traced_peak_bytes is None else format_bytes(self.traced_peak_bytes)
        return [
            ("current", format_bytes(self.current_bytes)),
            ("peak", format_bytes(self.peak_bytes)),
            ("limit", f"{format_bytes(self.limit_bytes)} ({self.limit_source})"),
            ("traced", traced),
            ("traced peak", traced_peak),
        ]

    @property
    def fraction(self) -> float:
        """``current_bytes / limit_bytes``."""
        return self.current_bytes / self.limit_bytes if self.limit_bytes else 0.0

    def status_text(self) -> str:
        """The figures and pressure as one plain line (what the status widget says)."""
        state = "final" if self.final is not None else ("closed" if self.closed else "live")
        figures = " · ".join(f"{k} {v}" for k, v in self._figures())
        return f"{self.title} [{state}] pressure {self.level.value} ({self.fraction:.0%}) · {figures}"

    def _status_html(self) -> str:
        e = html.escape
        color = LEVEL_COLORS[self.level]
        width = min(max(self.fraction, 0.0), 1.0) * 100
        state = "final" if self.final is not None else ("closed" if self.closed else "live")
        cells = "".join(
            f'<span style="margin-right:1.2em"><span style="color:#666">{e(k)}</span> '
            f'<b class="cgmem-fig-{e(k.replace(" ", "-"))}">{e(v)}</b></span>'
            for k, v in self._figures()
        )
        extra = ""
        if self.session_label:
            extra += f'<span style="color:#666">session</span> {e(self.session_label)} '
        if self.gaps:
            extra += f'<span style="color:#666">gaps without samples</span> {len(self.gaps)} '
        if self.cell_notes:
            extra += f'<span style="color:#666">last cell</span> {e(self.cell_notes[-1])}'
        return (
            '<div style="font-family:var(--jp-ui-font-family,sans-serif);font-size:13px">'
            f"<b>cgmem_nb · {e(self.title)}</b> <span style=\"color:#666\">[{state}]</span>"
            f'<div style="margin:4px 0">{cells}</div>'
            '<div style="display:flex;align-items:center;gap:8px">'
            f'<span class="cgmem-pressure" style="min-width:11em">pressure <b>{e(self.level.value)}</b> '
            f"({self.fraction:.0%})</span>"
            '<div style="flex:1;max-width:420px;height:12px;background:#eee;border-radius:3px">'
            f'<div style="width:{width:.1f}%;height:100%;background:{color};border-radius:3px"></div></div></div>'
            f'<div style="margin-top:2px;font-size:12px">{extra}</div>'
            "</div>"
        )

    # ------------------------------------------------------------------ life cycle
    def start(self) -> LivePanel:
        """Subscribe to the bus (keeping the monitor sampling). Idempotent."""
        if self._subscription is None and not self.closed:
            with self._lock:
                # Time runs from here: showing the panel (BokehJS, widgets) is not part of the chart.
                self._t0 = self._clock()
            self._subscription = self.profiler.subscribe(self.handle)
        return self

    def show(self) -> LivePanel:
        """Display the panel under the running cell and start following events.

        In a Jupyter kernel this loads BokehJS inline the first time (once per
        kernel) and displays the widgets; elsewhere it displays the text form.
        """
        from IPython.display import display

        global _last_panel
        _last_panel = self
        if self.widget is not None and has_widget_frontend():
            load_bokehjs()
        display(self)  # type: ignore[no-untyped-call]
        return self.start()

    def stop(self) -> None:
        """Stop following events (releases the monitor thread); the widgets stay as they are."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.close()

    def finalize(self, result: ProfileResult | None = None) -> None:
        """Stop, draw what is pending and show the final figures (from ``result`` if given)."""
        self.stop()
        with self._lock:
            if result is not None:
                s = result.summary
                self.final = result
                rss_peak = int(s.get("rss_peak_bytes") or 0)
                self.peak_bytes = max(self.peak_bytes, rss_peak)
                if s.get("rss_after_bytes"):
                    self.current_bytes = int(s["rss_after_bytes"])
                if s.get("tracer") != "disabled":
                    self.traced_peak_bytes = int(s.get("peak_bytes") or 0)
                    self.traced_bytes = int(s.get("retained_bytes") or 0)
                self.level = self._tracker.level_for(self.current_bytes)
            else:
                self.closed = True
            self._redraw(force=True)

    close = finalize

    # ------------------------------------------------------------------ events
    def handle(self, event: ProfilerEvent) -> None:
        """Take one event (the bus calls this on the publishing thread); redraws at most ``max_rate``/s."""
        with self._lock:
            if isinstance(event, Sample):
                self._on_sample(event)
            elif isinstance(event, MemoryPressure):
                self.level = event.level
                if event.limit != self.limit_bytes:
                    self._set_limit(event.limit)
            elif isinstance(event, LeakDetected):
                self.leaks.append(event.leak)
                self._dirty_sections = True
            elif isinstance(event, RecommendationGenerated):
                self.recommendations.append(event.recommendation)
                self._dirty_sections = True
            elif isinstance(event, SessionStarted):
                self.session_label = event.label
            elif isinstance(event, SessionFinished):
                self.last_session = {"label": event.label, **dict(event.summary)}
                peak = event.summary.get("rss_peak_bytes")
                if isinstance(peak, int) and peak > self.peak_bytes:
                    self.peak_bytes = peak
            if self._clock() - self._last_redraw >= 1.0 / self.max_rate:
                self._redraw()

    def _set_limit(self, limit: int) -> None:
        # The monitor measures pressure against the process-wide limit; follow it if it changed.
        self.limit_bytes = limit
        self.limit_source = "changed"
        self._tracker = PressureTracker(limit)
        self._limit_in_range = False
        if self.widget is not None:
            self.limit_span.location = limit / MB
            self.figure.title = plots.limit_title(limit)

    def _on_sample(self, sample: Sample) -> None:
        t = sample.timestamp - self._t0
        hwm = probes.KERNEL_PEAK.read()
        last = self._last_sample_wall
        gap_after = max(0.5, 4 * self._interval)
        if last is not None and sample.timestamp - last > gap_after:
            self._fill_gap(last - self._t0, t, sample.rss_bytes, hwm)
        self._last_sample_wall = sample.timestamp
        self._last_hwm = hwm
        self.current_bytes = sample.rss_bytes
        self.peak_bytes = max(self.peak_bytes, sample.rss_bytes)
        self.traced_bytes = sample.traced_bytes
        if sample.traced_bytes is not None:
            self.traced_peak_bytes = max(self.traced_peak_bytes or 0, sample.traced_bytes)
        p = self._pending
        p["t"].append(t)
        p["rss_mb"].append(sample.rss_bytes / MB)
        p["traced_mb"].append(sample.traced_bytes / MB if sample.traced_bytes is not None else _NAN)

    def _fill_gap(self, t0: float, t1: float, rss_after: int, hwm: int) -> None:
        """Mark a stretch without samples; fill it with the kernel peak if that grew meanwhile."""
        before = self._pending["rss_mb"][-1] * MB if self._pending["rss_mb"] else float(self.current_bytes)
        neighbours = max(int(before), rss_after)
        # VmHWM only grows (a session may reset it: then trust it only above both neighbours).
        grew = hwm > self._last_hwm if hwm >= self._last_hwm else hwm > neighbours
        from_peak = grew and hwm > neighbours
        drawn = hwm if from_peak else neighbours
        mid = (t0 + t1) / 2
        self.gaps.append((t0, t1, drawn, from_peak))
        g = self._pending_gaps
        g["t0"].append(t0)
        g["t1"].append(t1)
        g["t"].append(mid)
        g["rss_mb"].append(drawn / MB)
        if from_peak:
            self.peak_bytes = max(self.peak_bytes, hwm)
            p = self._pending
            p["t"].append(mid)
            p["rss_mb"].append(hwm / MB)
            p["traced_mb"].append(_NAN)

    def _redraw(self, force: bool = False) -> None:
        """One batched update of the page: one stream into the chart and one hold_sync for the figures."""
        self._last_redraw = self._clock()
        rows = self._pending
        gaps = self._pending_gaps
        has_rows = bool(rows["t"])
        if not (has_rows or force or self._dirty_sections or gaps["t"]):
            return
        self._pending = {name: [] for name in plots.LIVE_TIMELINE_COLUMNS}
        self._pending_gaps = {name: [] for name in plots.GAP_COLUMNS}
        self.redraws += 1
        if self.widget is None:
            self._dirty_sections = False
            return
        if has_rows:
            self.source.stream(dict(rows), rollover=self.rollover)
        if gaps["t"]:
            self.gap_source.stream(dict(gaps), rollover=self.rollover)
        if not self._limit_in_range:
            self._limit_in_range = plots.include_limit(self.figure, self.limit_bytes, self.peak_bytes)
        with self.status.hold_sync():
            self.status.value = self._status_html()
        if self._dirty_sections:
            self._dirty_sections = False
            self.leaks_html.value = _section_html("Leaks", self.leaks)
            self.recs_html.value = _section_html("Recommendations", self.recommendations)

    def flush(self) -> None:
        """Redraw now whatever is pending (tests and ``finalize`` use it)."""
        with self._lock:
            self._redraw(force=True)

    # ------------------------------------------------------------------ kernel-wide use
    def cell_started(self) -> None:
        """Note the start of a cell (``%mempanel`` calls this from IPython's pre_run_cell)."""
        with self._lock:
            self._cell: tuple[int, float] | None = (probes.rss(), self._clock())
            self.peak_bytes = self.current_bytes  # the peak figure follows the current cell

    def cell_finished(self, execution_count: int | None = None) -> None:
        """Note the end of a cell: its RSS peak and change (``%mempanel``, post_run_cell)."""
        with self._lock:
            cell = getattr(self, "_cell", None)
            if cell is None:
                return
            count = execution_count
            before, started = cell
            now = probes.rss()
            self.current_bytes = now
            self.peak_bytes = max(self.peak_bytes, now)
            where = f"In[{count}]" if count is not None else "cell"
            self.cell_notes.append(
                f"{where}: peak {format_bytes(self.peak_bytes)}, {format_bytes(now - before, signed=True)} "
                f"in {self._clock() - started:.1f} s"
            )
            self._cell = None
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

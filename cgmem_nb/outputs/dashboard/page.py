"""One dashboard page (a Bokeh ``Document`` per browser tab): the header and the registered charts.

The page lays out every chart registered for the dashboard
(:data:`cgmem_nb.outputs.charts.CHARTS`), full-width ones one under the other and
half-width ones side by side (wrapping on a phone), under a header of figure
cards. A periodic callback of the document (on the server thread, holding the
document's lock) reads the live feed from the page's own cursor and updates the
charts every ``update_ms`` milliseconds; no document is modified from another thread.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ...units import format_bytes
from ..report import native_line
from ..charts import DASHBOARD, Chart, ChartContext, charts_for
from ..feed import FeedCursor, FeedFigures, LiveFeed
from ..theme import LEVEL_COLORS

if TYPE_CHECKING:
    from bokeh.document import Document

__all__ = ["build_page", "header_html"]

#: Title of the page.
TITLE = "cgmem_nb memory dashboard"
#: What the page's ``<head>`` adds to Bokeh's own template: a phone lays it out at its own width
#: (without it, mobile browsers assume 980 px and shrink the page).
VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'
_TEMPLATE = "{% extends base %}{% block preamble %}" + VIEWPORT + "{% endblock %}"


def header_html(figures: FeedFigures, metrics: dict[str, Any], pages: int) -> str:
    """The figure cards: current, peak, limit, pressure, rates, traced, sessions; under them, the
    latest session's Python / native split when it sampled native memory."""
    level = figures.level

    def card(title: str, value: str, extra: str = "") -> str:
        return (
            "<div style='flex:1 1 150px;min-width:140px;border:1px solid #ddd;border-radius:6px;padding:6px 10px'>"
            f"<div style='font-size:11px;color:#666'>{title}</div><div style='font-size:18px;{extra}'>{value}</div></div>"
        )

    def size(value: int | None) -> str:
        return "–" if value is None else format_bytes(int(value))

    cards = [
        card("current (RSS)", size(figures.current_bytes)),
        card(f"peak since {figures.peak_since}" if figures.peak_since else "peak", size(metrics.get("peak_bytes", figures.peak_bytes))),
        card("limit", size(figures.limit_bytes) + f" <span style='font-size:11px'>({figures.limit_source})</span>"),
        card("pressure", f"{level.value} · {100 * figures.fraction:.0f}%", f"color:{LEVEL_COLORS[level]};font-weight:bold"),
        card("allocation rate", f"{max(0.0, figures.alloc_bytes_s) / 1e6:,.1f} MB/s"),
        card("deallocation rate", f"{max(0.0, figures.dealloc_bytes_s) / 1e6:,.1f} MB/s"),
        card("traced", size(figures.traced_bytes)),
        card("sessions", f"{metrics.get('active_sessions', 0)} running · {metrics.get('sessions_finished', 0)} done"),
    ]
    last = figures.last_summary
    native = native_line(last)
    split = (
        f"<div class='cgmem-native' style='font-size:12px;margin-top:4px'><span style='color:#666'>"
        f"{html.escape(last.label)}</span> {html.escape(native)}</div>"
        if last is not None and native
        else ""
    )
    return (
        "<div style='display:flex;flex-wrap:wrap;gap:6px;font-family:sans-serif'>"
        + "".join(cards)
        + f"</div>{split}<div style='font-size:10px;color:#888;margin-top:2px'>{pages} page(s) open</div>"
    )


def _layout(charts: Sequence[tuple[str, Chart]], header: Any) -> Any:
    from bokeh.layouts import column, row

    parts: list[Any] = [header]
    pending: list[Any] = []

    def flush() -> None:
        if pending:
            parts.append(row(*pending, sizing_mode="stretch_width", stylesheets=[":host { flex-wrap: wrap; gap: 8px; }"]))
            pending.clear()

    for width, chart in charts:
        if width == "half":
            pending.append(chart.model)
            if len(pending) == 2:
                flush()
        else:
            flush()
            parts.append(chart.model)
    flush()
    return column(*parts, sizing_mode="stretch_width", styles={"padding": "4px"})


def build_page(
    doc: Document,
    feed: LiveFeed,
    *,
    rollover: int,
    update_ms: int,
    pages: Callable[[], int],
) -> None:
    """Fill ``doc`` with the dashboard and keep it updated from ``feed``."""
    from bokeh.models import DataRange1d
    from bokeh.models.widgets.markups import Div

    figures = feed.figures
    ctx = ChartContext(
        DASHBOARD, rollover=rollover, limit_bytes=figures.limit_bytes, limit_source=figures.limit_source,
        x_range=DataRange1d(), seed=feed.seed_sample(),
    )
    charts = [(spec.width, spec.make(ctx)) for spec in charts_for(DASHBOARD)]
    header = Div(text="", sizing_mode="stretch_width", styles={"font-family": "sans-serif"})
    layout = _layout(charts, header)
    layout.name = "cgmem-dashboard"
    doc.title = TITLE
    from jinja2 import Template

    doc.template = Template(_TEMPLATE)
    doc.add_root(layout)
    state: dict[str, Any] = {"cursor": FeedCursor(), "header": "", "metrics": {}}

    def update() -> None:
        session = getattr(doc.session_context, "session", None)
        if session is not None and session.connection_count == 0:
            return  # the tab is closed; the document waits to be destroyed
        upd = feed.read(state["cursor"])
        state["cursor"] = upd.cursor
        for _, chart in charts:
            chart.update(upd)
        if upd.metrics is not None:
            state["metrics"] = upd.metrics
        text = header_html(upd.figures, state["metrics"], pages())
        if text != state["header"]:
            header.text = state["header"] = text

    update()
    doc.add_periodic_callback(update, update_ms)

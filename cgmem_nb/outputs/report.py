"""The static report: a full MIME bundle (text/plain and text/html) of a result.

No IFrame, port or file: the HTML is self-contained with inline styles, so it
renders in JupyterLab, Notebook 7, VS Code and nbconvert, and the plain text
reads well in a terminal or a CI log.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from ..schema import KERNEL, Summary
from ..session.result import ProfileResult
from ..units import format_bytes
from .cluster_report import cluster_html, cluster_text

DEFAULT_TOP = 10
#: Most lines a report shows (``--top``).
MAX_TOP = 10_000


def _headline(result: ProfileResult) -> list[tuple[str, str]]:
    s = result.summary
    est = " (estimated)" if s.estimate else ""
    rows = [
        ("Peak (traced)", format_bytes(s.peak_bytes) + est),
        ("Retained", format_bytes(s.retained_bytes, signed=True) + est),
        ("RSS", f"{format_bytes(s.rss_before_bytes)} → {format_bytes(s.rss_after_bytes)} (peak {format_bytes(s.rss_peak_bytes)})"),
        *native_rows(s),
        ("Limit", f"{format_bytes(s.limit_bytes)} ({s.limit_source})"),
        ("Duration", f"{s.duration_s:.2f} s"),
        ("Tracer", f"{s.tracer}, {s.stack_depth} frames"),
    ]
    rows += [("Unexplained", text) for text in unexplained(result)]
    if s.error:
        rows.append(("Ended by", ended_by(result)))
    if s.note:
        rows.append(("Note", s.note))
    return rows


def native_rows(s: Summary) -> list[tuple[str, str]]:
    """Python, native and process figures kept apart (sessions that sampled native memory; none
    for the others, whose views stay as they were). The report's headline rows, the live
    panel's and the dashboard's line (:func:`native_line`)."""
    if not s.native:
        return []
    if s.rss_explained is None:
        explained = "RSS did not grow"
    else:
        explained = f"the lines explain {s.rss_explained:.0%} of the RSS growth"
    return [
        ("Python / native", f"{format_bytes(s.python_peak_bytes)} / {format_bytes(s.native_peak_bytes)} at the peak"),
        ("RSS explained", explained),
        (
            "Worker threads",
            f"{format_bytes(s.worker_bytes)} charged to the running statement; "
            f"{format_bytes(s.unknown_bytes)} no statement explains (<unknown>)",
        ),
    ]


def native_line(s: Summary | None) -> str:
    """:func:`native_rows` as one line (``"Python / native: 0.1 MB / 200.0 MB at the peak · ..."``),
    or ``""`` when the session did not sample native memory."""
    return "" if s is None else " · ".join(f"{k}: {v}" for k, v in native_rows(s))


def ended_by(result: ProfileResult) -> str:
    """The error that ended the session, with its reason when the exception carries none
    (the guard's or the user's ``KeyboardInterrupt``)."""
    s = result.summary
    error = s.error or ""
    name, _, message = error.partition(":")
    if message.strip() or name != "KeyboardInterrupt":
        return error
    guard = s.guard
    if s.guard_triggered and guard is not None:
        return (f"KeyboardInterrupt: the memory guard stopped the cell when the kernel's RSS reached "
                f"{format_bytes(guard.rss_bytes)}, {guard.fraction:.0%} of the {format_bytes(guard.limit_bytes)} limit")
    return "KeyboardInterrupt: interrupted (Ctrl-C, or the notebook's stop button)"


#: A gap smaller than this is not worth a headline row.
UNEXPLAINED_MIN_BYTES = 1000**2
#: RSS growth the tracer did not see, at least this much (and a quarter of the growth), gets a row.
UNTRACED_MIN_BYTES = 50 * 1000**2


def unexplained(result: ProfileResult) -> list[str]:
    """What the headline's figures hold that the line tables do not, and why, one sentence each.

    - the traced peak beyond what the lines held at the peak's snapshot;
    - the traced retained bytes beyond the lines' retained bytes;
    - RSS growth beyond the traced peak (memory the tracer cannot see).
    """
    s = result.summary
    lines = result.lines
    if s.workers and not lines.empty:
        lines = lines[lines["where"].fillna(KERNEL) == KERNEL]
    found = []
    peak_lines = int(lines["peak_bytes"].fillna(0).sum()) if not lines.empty else 0
    gap = s.peak_bytes - peak_lines
    if s.peak_bytes and gap >= UNEXPLAINED_MIN_BYTES and gap >= 0.2 * s.peak_bytes:
        found.append(
            f"{format_bytes(gap)} of the {format_bytes(s.peak_bytes)} traced peak is in no line: it was reached "
            "and freed inside one statement, between the snapshots the lines are read from"
        )
    kept_lines = int(lines["retained_bytes"].fillna(0).sum()) if not lines.empty else 0
    kept_gap = s.retained_bytes - kept_lines
    if kept_gap >= UNEXPLAINED_MIN_BYTES and kept_gap >= 0.2 * abs(s.retained_bytes):
        found.append(
            f"{format_bytes(kept_gap)} of the {format_bytes(s.retained_bytes)} retained is in no line: held by the "
            "profiler or the front end, or allocated by threads the tables leave out"
        )
    untraced = max(s.rss_peak_bytes - s.rss_before_bytes, s.rss_after_bytes - s.rss_before_bytes) - max(s.peak_bytes, 0)
    growth = max(s.rss_peak_bytes, s.rss_after_bytes) - s.rss_before_bytes
    if untraced >= UNTRACED_MIN_BYTES and untraced >= 0.25 * growth:
        found.append(
            f"RSS grew {format_bytes(untraced)} more than the tracer saw: native memory (C/C++/Rust libraries such as "
            "Arrow, Polars, DuckDB, torch), memory-mapped files, or freed memory malloc has not returned"
        )
    return found


def _top_lines(result: ProfileResult, top: int) -> list[dict[str, Any]]:
    lines = result.lines
    if lines.empty:
        return []
    if result.summary.workers:  # the workers' lines have their own section
        lines = lines[lines["where"].fillna(KERNEL) == KERNEL]
    return [dict(r) for _, r in lines.head(top).iterrows()]


def _source(row: dict[str, Any]) -> str:
    """Where a line's bytes came from: its main domain, and ``+ workers`` when worker
    threads allocated for it."""
    domain = row.get("domain")
    text = "" if domain is None or domain is pd.NA else str(domain)
    via = row.get("via")
    if via is not None and via is not pd.NA:
        text += " + workers"
    return text


def _calls(row: dict[str, Any]) -> str:
    value = row.get("calls")
    return value if isinstance(value, str) else ""


def render_text(result: ProfileResult, top: int = DEFAULT_TOP) -> str:
    """The report as plain text."""
    title = f"cgmem_nb memory profile — {result.summary.label or 'session'}"
    out = [title, "=" * len(title)]
    width = max(len(k) for k, _ in _headline(result))
    out += [f"{k:<{width}}  {v}" for k, v in _headline(result)]
    rows = _top_lines(result, top)
    out.append("")
    if rows:
        out.append(f"Top {len(rows)} lines by memory held at the peak:")
        native = result.summary.native
        extra = f" {'native':>10} {'from':<13}" if native else ""
        out.append(f"  {'location':<22} {'peak':>10} {'retained':>10} {'allocated':>10}{extra}  code")
        for r in rows:
            code = str(r["code"] or "")[:60]
            if native:
                extra = f" {format_bytes(r['native_peak_bytes']):>10} {_source(r):<13}"
            out.append(
                f"  {str(r['location']):<22} {format_bytes(r['peak_bytes']):>10} {format_bytes(r['retained_bytes']):>10} "
                f"{format_bytes(r['allocated_bytes']):>10}{extra}  {code}"
            )
            if _calls(r):
                out.append(f"  {'':<22} {'':>10} {'':>10} {'':>10}    via {_calls(r)}")
    else:
        out.append("No allocations were traced.")
    cats = result.categories
    if not cats.empty:
        out.append("")
        out.append("By category: " + ", ".join(f"{c} {format_bytes(int(b))}" for c, b in zip(cats["category"], cats["peak_bytes"])))
    out += cluster_text(result, top)
    return "\n".join(out)


_CSS_TABLE = "border-collapse:collapse;font-size:12px;margin:4px 0"
_CSS_TD = "padding:2px 8px;text-align:left;border-bottom:1px solid #ddd"
_CSS_NUM = "padding:2px 8px;text-align:right;border-bottom:1px solid #ddd;font-variant-numeric:tabular-nums"


def render_html(result: ProfileResult, top: int = DEFAULT_TOP) -> str:
    """The report as self-contained HTML (inline styles only)."""
    e = html.escape
    s = result.summary
    parts = [
        '<div class="cgmem-report" style="font-family:var(--jp-ui-font-family,sans-serif);font-size:13px">',
        f"<b>cgmem_nb memory profile — {e(s.label or 'session')}</b>",
        f'<table style="{_CSS_TABLE}">',
    ]
    for k, v in _headline(result):
        parts.append(f'<tr><th style="{_CSS_TD}">{e(k)}</th><td style="{_CSS_TD}">{e(v)}</td></tr>')
    parts.append("</table>")
    rows = _top_lines(result, top)
    peak = max(s.peak_bytes, 1)
    if rows:
        parts.append(f"<div>Top {len(rows)} lines by memory held at the peak</div>")
        parts.append(f'<table style="{_CSS_TABLE}"><tr>')
        heads = ("location", "peak", "retained", "allocated", "native", "from", "category", "code") if s.native else (
            "location", "peak", "retained", "allocated", "category", "code")
        for h in heads:
            parts.append(f'<th style="{_CSS_TD}">{h}</th>')
        parts.append("</tr>")
        for r in rows:
            share = min(int(r["peak_bytes"] or 0) / peak, 1.0)
            bar = f'<div style="background:#f4a261;height:4px;width:{share * 100:.0f}%"></div>'
            parts.append(
                f'<tr><td style="{_CSS_TD}"><code>{e(str(r["location"]))}</code></td>'
                f'<td style="{_CSS_NUM}">{e(format_bytes(r["peak_bytes"]))}{bar}</td>'
                f'<td style="{_CSS_NUM}">{e(format_bytes(r["retained_bytes"]))}</td>'
                f'<td style="{_CSS_NUM}">{e(format_bytes(r["allocated_bytes"]))}</td>'
                + (
                    f'<td style="{_CSS_NUM}">{e(format_bytes(r["native_peak_bytes"]))}</td><td style="{_CSS_TD}">{e(_source(r))}</td>'
                    if s.native
                    else ""
                )
                + f'<td style="{_CSS_TD}">{e(str(r["category"]))}</td>'
                f'<td style="{_CSS_TD}"><code>{e(str(r["code"] or "")[:100])}</code>'
                + (f'<div style="color:#777;font-size:11px">via <code>{e(_calls(r))}</code></div>' if _calls(r) else "")
                + "</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append("<div>No allocations were traced.</div>")
    cats = result.categories
    if not cats.empty:
        parts.append(f'<table style="{_CSS_TABLE}"><tr><th style="{_CSS_TD}">category</th><th style="{_CSS_TD}">peak</th><th style="{_CSS_TD}">retained</th></tr>')
        for cat, peak_b, kept_b in zip(cats["category"], cats["peak_bytes"], cats["retained_bytes"]):
            parts.append(
                f'<tr><td style="{_CSS_TD}">{e(str(cat))}</td><td style="{_CSS_NUM}">{e(format_bytes(int(peak_b)))}</td>'
                f'<td style="{_CSS_NUM}">{e(format_bytes(int(kept_b)))}</td></tr>'
            )
        parts.append("</table>")
    parts.append(cluster_html(result, top))
    parts.append("</div>")
    return "".join(parts)


def render_bundle(result: ProfileResult, top: int = DEFAULT_TOP) -> dict[str, str]:
    """The report as a MIME bundle: ``text/plain`` and ``text/html``."""
    return {"text/plain": render_text(result, top), "text/html": render_html(result, top)}


class Report:
    """A displayable report of one result (``display(Report(result, top=5))``)."""

    def __init__(self, result: ProfileResult, top: int = DEFAULT_TOP) -> None:
        self.result = result
        self.top = top

    def render(self) -> dict[str, str]:
        """The MIME bundle."""
        return render_bundle(self.result, self.top)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return self.render()

    def __repr__(self) -> str:
        return render_text(self.result, self.top)

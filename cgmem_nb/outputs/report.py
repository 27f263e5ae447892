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
        *_native_rows(s),
        ("Limit", f"{format_bytes(s.limit_bytes)} ({s.limit_source})"),
        ("Duration", f"{s.duration_s:.2f} s"),
        ("Tracer", f"{s.tracer}, {s.stack_depth} frames"),
    ]
    if s.error:
        rows.append(("Ended by", s.error))
    if s.note:
        rows.append(("Note", s.note))
    return rows


def _native_rows(s: Summary) -> list[tuple[str, str]]:
    """Python, native and process figures kept apart (sessions that sampled native memory)."""
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
                f'<td style="{_CSS_TD}"><code>{e(str(r["code"] or "")[:100])}</code></td></tr>'
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

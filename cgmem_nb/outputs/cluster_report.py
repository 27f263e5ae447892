"""The cluster part of the static report: workers (with their memory over time), task prefixes, top lines.

Shown under the kernel's report when a result profiled a Dask cluster
(``%%memprofile --dask``): text for terminals and logs (memory over time as a
sparkline), self-contained HTML with inline SVG for notebooks (no IFrame, port
or file).
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from ..schema import KERNEL
from ..session.result import ProfileResult
from ..units import format_bytes

__all__ = ["cluster_html", "cluster_text", "prefix_table"]

_BLOCKS = "▁▂▃▄▅▆▇█"
_SPARK_WIDTH = 24
_CSS_TABLE = "border-collapse:collapse;font-size:12px;margin:4px 0"
_CSS_TD = "padding:2px 8px;text-align:left;border-bottom:1px solid #ddd"
_CSS_NUM = "padding:2px 8px;text-align:right;border-bottom:1px solid #ddd;font-variant-numeric:tabular-nums"


def prefix_table(tasks: pd.DataFrame) -> pd.DataFrame:
    """Tasks by key prefix: ``tasks``, ``peak_bytes`` (largest), ``retained_bytes`` (largest),
    ``result_bytes`` (total), ``duration_s`` (total); largest peak first."""
    if tasks.empty:
        return pd.DataFrame(columns=["prefix", "tasks", "peak_bytes", "retained_bytes", "result_bytes", "duration_s"])
    grouped = tasks.groupby("prefix", sort=False).agg(
        tasks=("key", "size"),
        peak_bytes=("peak_bytes", "max"),
        retained_bytes=("retained_bytes", "max"),
        result_bytes=("result_bytes", "sum"),
        duration_s=("duration_s", "sum"),
    )
    return grouped.sort_values(["peak_bytes", "tasks"], ascending=False).reset_index()


def _series(result: ProfileResult) -> dict[str, list[int]]:
    timeline = result.cluster_timeline
    return {str(w): [int(v) for v in g["rss_bytes"].dropna()] for w, g in timeline.groupby("worker", sort=False)}


def _spark(values: list[int]) -> str:
    if not values:
        return ""
    step = max(len(values) / _SPARK_WIDTH, 1.0)
    picked = [max(values[int(i * step) : int((i + 1) * step)] or values[-1:]) for i in range(min(_SPARK_WIDTH, len(values)))]
    low, high = min(picked), max(picked)
    span = max(high - low, 1)
    return "".join(_BLOCKS[min(int((v - low) / span * (len(_BLOCKS) - 1)), len(_BLOCKS) - 1)] for v in picked)


def _svg(values: list[int], limit: int) -> str:
    if len(values) < 2:
        return ""
    width, height = 160, 28
    top = max(max(values), limit if limit else 0, 1)
    step = width / (len(values) - 1)
    points = " ".join(f"{i * step:.1f},{height - v / top * height:.1f}" for i, v in enumerate(values))
    limit_line = (
        f'<line x1="0" x2="{width}" y1="{height - limit / top * height:.1f}" y2="{height - limit / top * height:.1f}" '
        'stroke="#e63946" stroke-dasharray="3,2" stroke-width="1"/>'
        if limit
        else ""
    )
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">{limit_line}'
        f'<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{points}"/></svg>'
    )


def _size(value: Any) -> str:
    return "–" if value is None or pd.isna(value) else format_bytes(int(value))


def _worker_rows(result: ProfileResult) -> list[dict[str, Any]]:
    return [dict(r) for _, r in result.workers.iterrows()]


def _worker_lines(result: ProfileResult, top: int) -> pd.DataFrame:
    lines = result.lines
    return lines[lines["where"].fillna(KERNEL) != KERNEL].head(top)


def cluster_text(result: ProfileResult, top: int) -> list[str]:
    """The cluster section as text lines (none when the result profiled no cluster)."""
    workers = _worker_rows(result)
    if not workers and not result.summary.cluster_notes:
        return []
    s = result.summary
    out = ["", f"Dask cluster: {s.workers} worker(s) profiled, {s.tasks} task(s)"]
    series = _series(result)
    for w in workers:
        memory = f"{_size(w['rss_before_bytes'])} → {_size(w['rss_after_bytes'])} (peak {_size(w['rss_peak_bytes'])})"
        explained = "" if pd.isna(w["explained"]) else f", tasks explain {float(w['explained']):.0%}"
        out.append(f"  {w['worker']}  {w['status']:<8} {str(w['tracer'] or '–'):<7} {memory}{explained}  {_spark(series.get(str(w['worker']), []))}")
    prefixes = prefix_table(result.tasks).head(top)
    if not prefixes.empty:
        out.append("Task prefixes by peak:")
        out.append(f"  {'prefix':<24} {'tasks':>6} {'peak':>10} {'retained':>10} {'results':>10}")
        for _, p in prefixes.iterrows():
            out.append(
                f"  {str(p['prefix'])[:24]:<24} {int(p['tasks']):>6} {_size(p['peak_bytes']):>10} "
                f"{_size(p['retained_bytes']):>10} {_size(p['result_bytes']):>10}"
            )
    lines = _worker_lines(result, top)
    if not lines.empty:
        out.append("Top lines on the workers:")
        for _, r in lines.iterrows():
            out.append(f"  {str(r['location']):<22} {_size(r['peak_bytes']):>10}  {r['where']}  {str(r['code'] or '')[:50]}")
    if s.cluster_notes:
        out += [f"Note: {note}" for note in s.cluster_notes.splitlines()]
    return out


def cluster_html(result: ProfileResult, top: int) -> str:
    """The cluster section as HTML ("" when the result profiled no cluster)."""
    workers = _worker_rows(result)
    if not workers and not result.summary.cluster_notes:
        return ""
    e = html.escape
    s = result.summary
    parts = [f'<div style="margin-top:8px"><b>Dask cluster</b>: {s.workers} worker(s) profiled, {s.tasks} task(s)</div>']
    if workers:
        series = _series(result)
        parts.append(f'<table style="{_CSS_TABLE}"><tr>')
        parts += [f'<th style="{_CSS_TD}">{h}</th>' for h in ("worker", "status", "tracer", "memory", "peak", "tasks explain", "tasks", "over time")]
        parts.append("</tr>")
        for w in workers:
            explained = "–" if pd.isna(w["explained"]) else f"{float(w['explained']):.0%}"
            parts.append(
                f'<tr><td style="{_CSS_TD}"><code>{e(str(w["worker"]))}</code></td><td style="{_CSS_TD}">{e(str(w["status"]))}</td>'
                f'<td style="{_CSS_TD}">{e(str(w["tracer"] or "–"))}</td>'
                f'<td style="{_CSS_NUM}">{e(_size(w["rss_before_bytes"]))} → {e(_size(w["rss_after_bytes"]))}</td>'
                f'<td style="{_CSS_NUM}">{e(_size(w["rss_peak_bytes"]))}</td><td style="{_CSS_NUM}">{e(explained)}</td>'
                f'<td style="{_CSS_NUM}">{int(w["tasks"] or 0)}</td>'
                f'<td style="{_CSS_TD}">{_svg(series.get(str(w["worker"]), []), int(w["memory_limit_bytes"] or 0))}</td></tr>'
            )
        parts.append("</table>")
    prefixes = prefix_table(result.tasks).head(top)
    if not prefixes.empty:
        parts.append(f'<div>Task prefixes by peak</div><table style="{_CSS_TABLE}"><tr>')
        parts += [f'<th style="{_CSS_TD}">{h}</th>' for h in ("prefix", "tasks", "peak", "retained", "results", "time")]
        parts.append("</tr>")
        for _, p in prefixes.iterrows():
            parts.append(
                f'<tr><td style="{_CSS_TD}"><code>{e(str(p["prefix"]))}</code></td><td style="{_CSS_NUM}">{int(p["tasks"])}</td>'
                f'<td style="{_CSS_NUM}">{e(_size(p["peak_bytes"]))}</td><td style="{_CSS_NUM}">{e(_size(p["retained_bytes"]))}</td>'
                f'<td style="{_CSS_NUM}">{e(_size(p["result_bytes"]))}</td><td style="{_CSS_NUM}">{float(p["duration_s"]):.2f} s</td></tr>'
            )
        parts.append("</table>")
    lines = _worker_lines(result, top)
    if not lines.empty:
        parts.append(f'<div>Top lines on the workers</div><table style="{_CSS_TABLE}"><tr>')
        parts += [f'<th style="{_CSS_TD}">{h}</th>' for h in ("location", "peak", "retained", "where", "code")]
        parts.append("</tr>")
        for _, r in lines.iterrows():
            parts.append(
                f'<tr><td style="{_CSS_TD}"><code>{e(str(r["location"]))}</code></td><td style="{_CSS_NUM}">{e(_size(r["peak_bytes"]))}</td>'
                f'<td style="{_CSS_NUM}">{e(_size(r["retained_bytes"]))}</td><td style="{_CSS_TD}"><code>{e(str(r["where"]))}</code></td>'
                f'<td style="{_CSS_TD}"><code>{e(str(r["code"] or "")[:100])}</code></td></tr>'
            )
        parts.append("</table>")
    if s.cluster_notes:
        parts += [f'<div style="color:#a4161a">{e(note)}</div>' for note in s.cluster_notes.splitlines()]
    return "".join(parts)

"""The live panel's final picture: static HTML (an inline SVG chart and the final figures).

A live panel is an ipywidget: it needs the kernel that drew it, and nbconvert, GitHub's
viewer or a reopened notebook show at most a placeholder for it. When a panel is
finalized, this picture is displayed after it: the RSS and traced lines as an inline
SVG, the final figures and the findings, with no script, port or file. In JupyterLab
and Notebook 7, a style rule hides the picture while the live widget is on the page
above it (no duplicate); everywhere else the picture is what is left.
"""

from __future__ import annotations

import html
import math
from typing import Sequence

from ..units import format_bytes
from .theme import MB, RSS_COLOR, TRACED_COLOR

__all__ = ["STATIC_TEXT", "static_bundle", "timeline_svg"]

#: Text form of the picture (stable: what nbval and terminals see).
STATIC_TEXT = "cgmem_nb live panel, final picture (HTML: the memory chart and the final figures)"
# While the live widget (it carries .cgmem-panel-status) is in an earlier output of the same
# cell, the picture is hidden: JupyterLab and Notebook 7 show the widget itself.
_HIDE_WHILE_LIVE = (
    "<style>.jp-OutputArea-child:has(.cgmem-panel-status) ~ .jp-OutputArea-child .cgmem-static-panel"
    "{display:none}</style>"
)


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def timeline_svg(xs: Sequence[float], rss_mb: Sequence[float], traced_mb: Sequence[float], *, width: int = 560, height: int = 140) -> str:
    """An inline SVG of RSS (and the traced heap) in MB against ``xs`` (seconds), the y axis fitted to the data."""
    points = [(x, r, t) for x, r, t in zip(xs, rss_mb, traced_mb) if isinstance(x, (int, float)) and math.isfinite(x)]
    if len(points) < 2:
        return ""
    x0, x1 = points[0][0], points[-1][0]
    top = max(_finite([p[1] for p in points] + [p[2] for p in points]) or [1.0]) * 1.1 or 1.0
    left, bottom, pad = 52, 18, 6

    def xy(x: float, y: float) -> str:
        px = left + (x - x0) / ((x1 - x0) or 1.0) * (width - left - pad)
        py = pad + (1 - y / top) * (height - bottom - pad)
        return f"{px:.1f},{py:.1f}"

    def line(index: int, color: str) -> str:
        coords = " ".join(xy(p[0], p[index]) for p in points if math.isfinite(p[index]))
        return f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{coords}"/>' if coords else ""

    peak = max(points, key=lambda p: p[1])
    px, py = xy(peak[0], peak[1]).split(",")
    label = html.escape(f"peak {format_bytes(peak[1] * MB)}")
    axis = (
        f'<text x="{left - 4}" y="{pad + 10}" text-anchor="end" font-size="10">{html.escape(format_bytes(top * MB))}</text>'
        f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end" font-size="10">0</text>'
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - pad}" y2="{height - bottom}" stroke="#bbb"/>'
        f'<text x="{width - pad}" y="{height - 4}" text-anchor="end" font-size="10">'
        f"{x1 - x0:.1f} s</text>"
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="memory over time" style="max-width:100%;font-family:sans-serif">'
        f"{axis}{line(2, TRACED_COLOR)}{line(1, RSS_COLOR)}"
        f'<circle cx="{px}" cy="{py}" r="3" fill="{RSS_COLOR}"/>'
        f'<text x="{float(px) + (-5 if float(px) > 0.7 * width else 5):.1f}" y="{max(float(py) - 4, 10):.1f}" '
        f'text-anchor="{"end" if float(px) > 0.7 * width else "start"}" font-size="10">{label}</text>'
        f'<text x="{left + 4}" y="{height - bottom - 4}" font-size="10" fill="{RSS_COLOR}">RSS</text>'
        f'<text x="{left + 34}" y="{height - bottom - 4}" font-size="10" fill="{TRACED_COLOR}">traced heap</text>'
        "</svg>"
    )


def static_bundle(status_html: str, svg: str, findings_html: str) -> dict[str, str]:
    """The picture's MIME bundle: ``text/html`` (hidden next to a live widget) and a stable ``text/plain``."""
    body = (
        f'{_HIDE_WHILE_LIVE}<div class="cgmem-static-panel" style="border:1px solid #ddd;border-radius:6px;'
        f'padding:6px 10px;max-width:100%;overflow-x:auto">{status_html}{svg}{findings_html}</div>'
    )
    return {"text/html": body, "text/plain": STATIC_TEXT}

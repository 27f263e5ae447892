"""One colour scheme and the units of the live views (the panel and the dashboard share them)."""

from __future__ import annotations

from ..schema import PressureLevel

__all__ = ["GAP_COLOR", "LEVEL_COLORS", "MB", "RSS_COLOR", "SERIES_COLORS", "TRACED_COLOR", "WORKER_COLORS", "level_color"]

#: Bytes per plotted megabyte (charts plot MB; tables and hovers keep exact bytes).
MB = 1_000_000.0

#: Colour of each pressure level: the panel's bar, the dashboard's pressure card, the limit lines.
LEVEL_COLORS: dict[PressureLevel, str] = {
    PressureLevel.LOW: "#2a9d8f",
    PressureLevel.MEDIUM: "#e9c46a",
    PressureLevel.HIGH: "#f4a261",
    PressureLevel.CRITICAL: "#e63946",
}

RSS_COLOR = "#1f77b4"
TRACED_COLOR = "#ff7f0e"
GAP_COLOR = "#7f7f7f"
#: Colours of the other series, by name.
SERIES_COLORS: dict[str, str] = {
    "limit": "#7f7f7f",
    "critical": LEVEL_COLORS[PressureLevel.CRITICAL],
    "allocation": "#d62728",
    "deallocation": "#9467bd",
    "category": RSS_COLOR,
    "leak": LEVEL_COLORS[PressureLevel.CRITICAL],
    "session": "#444444",
    "cell": "#aaaaaa",
}

#: One colour per Dask worker in the cluster charts (the first eight workers).
WORKER_COLORS: tuple[str, ...] = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#ff7f0e")


def level_color(level: PressureLevel | str) -> str:
    """The colour of ``level`` (a level or its name, e.g. ``"High"``)."""
    return LEVEL_COLORS[PressureLevel(level)]

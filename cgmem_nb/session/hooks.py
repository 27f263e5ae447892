"""The plug-in point through which the layers above serve the seed's facade calls.

Imports point left (engine -> session -> analysis -> outputs -> integrations), so
the session layer cannot call the analysis or the outputs. Yet the seed's API
puts ``detect_leaks()``, ``generate_recommendations()`` and ``export_json()`` on
the profiler, every finished session carries its leak, pattern and
recommendation tables, and a result displays as a report. Those calls are
served by a :class:`Facade` (the profiler hands itself over, as pyinstrument's
``Profiler.output(renderer)`` hands its session to a renderer).

The one implementation is :mod:`cgmem_nb.facade`, a top-level module that may
import every layer. The package root (``cgmem_nb/__init__.py``, which Python
runs before any submodule) installs a loader for it with :func:`install_facade`;
the loader imports it on first use, so ``import cgmem_nb`` stays cheap. This
module imports nothing heavy, so the root can reach it cheaply.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

from ..errors import SessionError

if TYPE_CHECKING:
    from ..schema import MemoryLeak, Recommendation, UsagePattern

__all__ = ["Facade", "facade", "install_facade"]


class Facade(Protocol):
    """What a profiler asks of the layers above it.

    ``profiler`` is the :class:`~cgmem_nb.session.profiler.MemoryProfiler` asking and
    ``result`` a :class:`~cgmem_nb.session.result.ProfileResult` (typed loosely here: this
    module must stay importable without them).
    """

    def finish(self, profiler: Any, result: Any) -> Any:
        """The finished session's result with its analysis tables; never raises."""

    def detect_leaks(self, profiler: Any, *, observe: bool = True) -> list[MemoryLeak]:
        """``MemoryProfiler.detect_leaks()``."""

    def analyze_patterns(self, profiler: Any) -> list[UsagePattern]:
        """``MemoryProfiler.analyze_patterns()``."""

    def generate_recommendations(self, profiler: Any, *, observe: bool = True) -> list[Recommendation]:
        """``MemoryProfiler.generate_recommendations()``."""

    def export_json(self, profiler: Any, path: str | os.PathLike[str] | None, *, indent: int | None) -> str:
        """``MemoryProfiler.export_json()``."""

    def export_csv(self, profiler: Any, directory: str | os.PathLike[str]) -> dict[str, Path]:
        """``MemoryProfiler.export_csv()``."""

    def export_prometheus(self, profiler: Any) -> str:
        """``MemoryProfiler.export_prometheus()``."""

    def render(self, result: Any) -> dict[str, str]:
        """A result's MIME bundle (``text/plain`` and ``text/html``)."""


_lock = threading.RLock()
_loader: Callable[[], Facade] | None = None
_facade: Facade | None = None


def install_facade(loader: Callable[[], Facade]) -> None:
    """Serve the facade calls with what ``loader()`` returns (called once, on first use)."""
    global _loader, _facade
    with _lock:
        _loader, _facade = loader, None


def facade() -> Facade:
    """The facade in force (loaded on first use)."""
    global _facade
    current = _facade
    if current is not None:
        return current
    with _lock:
        if _facade is None:
            if _loader is None:
                raise SessionError(
                    "no facade is installed, so analysis, exports and reports are unavailable; "
                    "they are attached by the cgmem_nb package itself: import cgmem_nb"
                )
            _facade = _loader()
        return _facade

"""The pytest plugin's options and plans: what cgmem_nb does with each test.

Options come from the command line first, then the ini file; a bad value is a
``pytest.UsageError`` naming it. A :class:`Plan` says how one test runs: in an
outer session (with an optional limit), in the ``no_leaks`` repetition loop, or
only with the ``memprofile`` fixture; :func:`plan_for` is None for a test the
plugin leaves alone (the common case).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ..config import TRACER_CHOICES, TracerChoice
from ..errors import SizeError
from ..units import parse_size
from .memgates import DEFAULT_LEAK_TOLERANCE, DEFAULT_RUNS, DEFAULT_WARMUP

__all__ = ["FIXTURE_SESSION", "SETTINGS", "LeakSpec", "Plan", "Settings", "plan_for", "pytest_addoption", "resolve_settings"]

_MARKERS = (
    'memlimit(limit): fail the test if its traced memory peak goes over `limit` (e.g. "50 MB").',
    "no_leaks(tolerance=\"100 KB\", warmup=1, runs=3): run the test body warmup+runs times "
    "and fail if every measured run keeps more than `tolerance` bytes.",
)


@dataclass
class Settings:
    """The plugin's options, resolved from the command line and ini."""

    summary: bool = False
    limit: int | None = None
    tracer: TracerChoice = "auto"
    json_path: Path | None = None
    top: int = 10
    #: nodeid -> figures of every profiled test.
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def profile_every_test(self) -> bool:
        """True when every test runs in a session (summary, JSON or a default limit)."""
        return self.summary or self.json_path is not None or self.limit is not None


#: Most repetitions ``no_leaks`` accepts (warm-ups, and measured runs).
MAX_REPEAT = 1000
#: Most tests ``--memprofile-top`` shows.
MAX_TOP = 100_000

#: Where the resolved settings live (``config.stash``).
SETTINGS = pytest.StashKey[Settings]()
#: Where the ``memprofile`` fixture keeps its session (``item.stash``).
FIXTURE_SESSION = pytest.StashKey[Any]()


# -- options -----------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cgmem_nb", "memory profiling and memory gates (cgmem_nb)")
    group.addoption(
        "--memprofile",
        action="store_true",
        default=None,
        help="profile every test and print the heaviest at the end (ini: memprofile).",
    )
    group.addoption(
        "--memprofile-limit",
        metavar="SIZE",
        default=None,
        help='limit on every test\'s traced peak, e.g. "200 MB"; a memlimit marker wins; '
        '"none" turns an ini limit off (ini: memprofile_limit).',
    )
    group.addoption(
        "--memprofile-tracer",
        choices=TRACER_CHOICES,
        default=None,
        help="tracer of the plugin's sessions: auto, exact or sampled (ini: memprofile_tracer).",
    )
    group.addoption(
        "--memprofile-json",
        metavar="PATH",
        default=None,
        help="write every test's memory figures to PATH as JSON (ini: memprofile_json).",
    )
    group.addoption(
        "--memprofile-top",
        metavar="N",
        type=int,
        default=None,
        help="tests shown in the --memprofile summary (default 10; ini: memprofile_top).",
    )
    parser.addini("memprofile", type="bool", default=False, help="cgmem_nb: profile every test and print the heaviest.")
    parser.addini("memprofile_limit", default="", help='cgmem_nb: limit on every test\'s traced peak, e.g. "200 MB".')
    parser.addini("memprofile_tracer", default="auto", help="cgmem_nb: auto, exact or sampled.")
    parser.addini("memprofile_json", default="", help="cgmem_nb: write every test's memory figures to this JSON file.")
    parser.addini("memprofile_top", default="10", help="cgmem_nb: tests shown in the summary.")


def _option(config: pytest.Config, name: str) -> Any:
    value = config.getoption(name, default=None)
    return value if value is not None else config.getini(name)


def resolve_settings(config: pytest.Config) -> Settings:
    """Read the options (command line first, then ini); raise ``pytest.UsageError`` on bad values."""
    settings = Settings()
    settings.summary = bool(_option(config, "memprofile"))
    raw_limit = str(_option(config, "memprofile_limit") or "").strip()
    if raw_limit and raw_limit.lower() not in {"none", "off", "0"}:
        try:
            settings.limit = parse_size(raw_limit, what="memprofile limit")
        except SizeError as exc:
            raise pytest.UsageError(f"cgmem_nb: {exc}") from None
    tracer = str(_option(config, "memprofile_tracer") or "auto").strip()
    if tracer not in TRACER_CHOICES:
        raise pytest.UsageError(
            f"cgmem_nb: memprofile tracer {tracer!r} is not accepted: use one of {', '.join(TRACER_CHOICES)}"
        )
    settings.tracer = tracer
    raw_json = str(_option(config, "memprofile_json") or "").strip()
    settings.json_path = _json_path(raw_json, Path(config.invocation_params.dir)) if raw_json else None
    raw_top = _option(config, "memprofile_top")
    try:
        settings.top = int(raw_top)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"cgmem_nb: memprofile top {raw_top!r} is not accepted: give a whole number") from None
    if not 0 <= settings.top <= MAX_TOP:
        raise pytest.UsageError(f"cgmem_nb: memprofile top {settings.top} is not accepted: give 0 to {MAX_TOP}")
    return settings


def _json_path(raw: str, base: Path) -> Path:
    """The ``--memprofile-json`` file, checked before the run: it must be a file that can be
    written, in a folder that exists or can be created."""
    path = Path(raw) if Path(raw).is_absolute() else base / raw
    folder = path.parent
    while not folder.exists() and folder != folder.parent:  # missing folders are created at the end
        folder = folder.parent
    problem = None
    if path.is_dir():
        problem = "it is a folder; give a file name such as memory.json"
    elif not folder.is_dir():
        problem = f"{str(folder)!r} is a file, not a folder"
    elif not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        problem = "it cannot be written (no permission)"
    if problem is not None:
        raise pytest.UsageError(f"cgmem_nb: memprofile json {raw!r} is not accepted: {problem}")
    return path


def configure(config: pytest.Config) -> None:
    """Register the markers and resolve the settings (the plugin's ``pytest_configure``)."""
    for line in _MARKERS:
        config.addinivalue_line("markers", line)
    config.stash[SETTINGS] = resolve_settings(config)


# -- plans: what to do with one test -------------------------------------------------------------


@dataclass(frozen=True)
class LeakSpec:
    """Arguments of ``@pytest.mark.no_leaks``."""

    tolerance: int
    warmup: int
    runs: int


@dataclass(frozen=True)
class Plan:
    """How one test is run: an outer session (with an optional limit) and/or the leak loop."""

    outer: bool
    limit: int | None
    leak: LeakSpec | None
    tracer: TracerChoice


def _size_arg(value: Any, what: str) -> int:
    try:
        return parse_size(value, what=what)
    except SizeError as exc:
        pytest.fail(f"cgmem_nb: {exc}", pytrace=False)


def _leak_spec(marker: pytest.Mark) -> LeakSpec:
    kwargs = dict(marker.kwargs)
    unknown = sorted(set(kwargs) - {"tolerance", "warmup", "runs"})
    if unknown or len(marker.args) > 1:
        pytest.fail(
            f"cgmem_nb: no_leaks{marker.args!r}{kwargs!r} is not accepted: "
            'use no_leaks(tolerance="100 KB", warmup=1, runs=3)',
            pytrace=False,
        )
    if marker.args:
        kwargs["tolerance"] = marker.args[0]
    tolerance = _size_arg(kwargs.get("tolerance", DEFAULT_LEAK_TOLERANCE), "no_leaks tolerance")
    warmup, runs = kwargs.get("warmup", DEFAULT_WARMUP), kwargs.get("runs", DEFAULT_RUNS)
    if isinstance(warmup, bool) or not isinstance(warmup, int) or not 0 <= warmup <= MAX_REPEAT:
        pytest.fail(f"cgmem_nb: no_leaks warmup={warmup!r} is not accepted: give 0 to {MAX_REPEAT} repetitions", pytrace=False)
    if isinstance(runs, bool) or not isinstance(runs, int) or not 2 <= runs <= MAX_REPEAT:
        pytest.fail(f"cgmem_nb: no_leaks runs={runs!r} is not accepted: give 2 to {MAX_REPEAT} measured runs", pytrace=False)
    return LeakSpec(tolerance, warmup, runs)


def plan_for(item: pytest.Item) -> Plan | None:
    """The plan for ``item``, or None when the plugin has nothing to do (the common case)."""
    settings = item.config.stash.get(SETTINGS, None)
    limit_mark = item.get_closest_marker("memlimit")
    leak_mark = item.get_closest_marker("no_leaks")
    if settings is None:
        return None
    if limit_mark is None and leak_mark is None and not settings.profile_every_test:
        if "memprofile" in getattr(item, "fixturenames", ()):
            return Plan(outer=False, limit=None, leak=None, tracer=settings.tracer)
        return None
    limit = settings.limit
    if limit_mark is not None:
        value = limit_mark.args[0] if limit_mark.args else limit_mark.kwargs.get("limit")
        if value is None:
            pytest.fail('cgmem_nb: memlimit needs a size, e.g. @pytest.mark.memlimit("50 MB")', pytrace=False)
        limit = _size_arg(value, "memlimit")
    leak = _leak_spec(leak_mark) if leak_mark is not None else None
    outer = settings.profile_every_test or limit is not None
    return Plan(outer=outer, limit=limit, leak=leak, tracer=settings.tracer)

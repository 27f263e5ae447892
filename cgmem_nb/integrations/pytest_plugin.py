"""The pytest plugin: memory gates for CI, registered through the ``pytest11`` entry point.

Installing cgmem_nb is enough; nothing happens until a marker or an option asks:

- ``@pytest.mark.memlimit("50 MB")`` fails a test whose traced peak goes over the limit;
- ``@pytest.mark.no_leaks`` (``tolerance``, ``warmup``, ``runs``) runs the body several
  times and fails when every measured run keeps more than the tolerance;
- the ``memprofile`` fixture is a running session; ``memprofile.stop()`` returns its
  :class:`~cgmem_nb.ProfileResult`;
- ``--memprofile`` prints the heaviest tests at the end, ``--memprofile-limit SIZE`` puts
  a limit on every test, ``--memprofile-tracer`` picks the tracer and
  ``--memprofile-json PATH`` writes every test's figures. Each option also has an ini
  key (``memprofile``, ``memprofile_limit``, ``memprofile_tracer``, ``memprofile_json``,
  ``memprofile_top``); the command line wins.

Only the test function is profiled, not its fixtures' setup and teardown.
"""

from __future__ import annotations

import functools
import gc
import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Generator, Iterator

import pytest

from ..errors import SizeError
from ..units import format_bytes, parse_size

if TYPE_CHECKING:
    from ..session.profiler import Session, TracerChoice
    from ..session.result import ProfileResult

TRACERS = ("auto", "exact", "sampled")
JSON_FORMAT = "cgmem_nb.pytest"
JSON_VERSION = 1

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
    tracer: str = "auto"
    json_path: Path | None = None
    top: int = 10
    #: nodeid -> figures of every profiled test.
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def profile_every_test(self) -> bool:
        """True when every test runs in a session (summary, JSON or a default limit)."""
        return self.summary or self.json_path is not None or self.limit is not None


_SETTINGS = pytest.StashKey[Settings]()
_FIXTURE_SESSION = pytest.StashKey["Session"]()


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
        choices=TRACERS,
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
    if tracer not in TRACERS:
        raise pytest.UsageError(f"cgmem_nb: memprofile tracer {tracer!r} is not accepted: use auto, exact or sampled")
    settings.tracer = tracer
    raw_json = str(_option(config, "memprofile_json") or "").strip()
    settings.json_path = Path(raw_json) if raw_json else None
    raw_top = _option(config, "memprofile_top")
    try:
        settings.top = int(raw_top)
    except (TypeError, ValueError):
        raise pytest.UsageError(f"cgmem_nb: memprofile top {raw_top!r} is not accepted: give a whole number") from None
    if settings.top < 0:
        raise pytest.UsageError(f"cgmem_nb: memprofile top {settings.top} is not accepted: give 0 or more")
    return settings


def pytest_configure(config: pytest.Config) -> None:
    for line in _MARKERS:
        config.addinivalue_line("markers", line)
    config.stash[_SETTINGS] = resolve_settings(config)


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
    tracer: str


def _size_arg(value: Any, what: str) -> int:
    try:
        return parse_size(value, what=what)
    except SizeError as exc:
        pytest.fail(f"cgmem_nb: {exc}", pytrace=False)


def _leak_spec(marker: pytest.Mark) -> LeakSpec:
    from .memgates import DEFAULT_LEAK_TOLERANCE, DEFAULT_RUNS, DEFAULT_WARMUP

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
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        pytest.fail(f"cgmem_nb: no_leaks warmup={warmup!r} is not accepted: give 0 or more repetitions", pytrace=False)
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 2:
        pytest.fail(f"cgmem_nb: no_leaks runs={runs!r} is not accepted: give 2 or more measured runs", pytrace=False)
    return LeakSpec(tolerance, warmup, runs)


def plan_for(item: pytest.Item) -> Plan | None:
    """The plan for ``item``, or None when the plugin has nothing to do (the common case)."""
    settings = item.config.stash.get(_SETTINGS, None)
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


# -- running a test under the plan ------------------------------------------------------------


def _session(label: str, tracer: str) -> "Session":
    from ..session.profiler import MEMORY_PROFILER

    choice: TracerChoice = tracer  # type: ignore[assignment]
    return MEMORY_PROFILER.session(label, tracer=choice)


def _checkpointed(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` with a checkpoint after each of its lines and at each return from user code."""
    from ..session.profiler import MEMORY_PROFILER
    from ..session.line_checkpoints import line_checkpoints

    top = getattr(inspect.unwrap(func), "__code__", None)

    @functools.wraps(func)
    def checkpointed(*args: Any, **kwargs: Any) -> Any:
        with line_checkpoints(MEMORY_PROFILER.checkpoint, lambda code: code is top):
            return func(*args, **kwargs)

    return checkpointed


def _with_fixture_session(func: Callable[..., Any], item: pytest.Item) -> Callable[..., Any]:
    """Start the ``memprofile`` fixture's session right before the body, end it after."""

    @functools.wraps(func)
    def measured(*args: Any, **kwargs: Any) -> Any:
        session = item.stash.get(_FIXTURE_SESSION, None)
        if session is not None and not session.running and session.result is None:
            session.start()
        try:
            return func(*args, **kwargs)
        except BaseException as exc:
            if session is not None and session.running:
                session.stop(exc)
            raise
        finally:
            if session is not None and session.running:
                session.stop()

    return measured


def _kept(result: "ProfileResult") -> int:
    """Bytes the user's code kept (the profiler's own bookkeeping left out)."""
    lines = result.lines
    return int(lines["retained_bytes"].fillna(0).clip(lower=0).sum()) if not lines.empty else 0


def _fail_with_report(item: pytest.Item, message: str, result: "ProfileResult") -> None:
    from ..outputs.report import render_text

    item.add_report_section("call", "cgmem_nb", render_text(result))
    pytest.fail(message, pytrace=False)


def _leak_loop(func: Callable[..., Any], item: pytest.Item, spec: LeakSpec, tracer: str) -> Callable[..., Any]:
    from .memgates import LeakVerdict, analysis_holders, grown_holders, holder_census, leak_message, module_namespaces

    def repeated(*args: Any, **kwargs: Any) -> Any:
        value = None
        for _ in range(spec.warmup):
            value = func(*args, **kwargs)
        gc.collect()
        namespaces = module_namespaces(func)
        before = holder_census(namespaces)
        kept: list[int] = []
        last: ProfileResult | None = None
        for run in range(1, spec.runs + 1):
            session = _session(f"{item.name} [run {run}/{spec.runs}]", tracer)
            session.start()
            try:
                value = func(*args, **kwargs)
                gc.collect()  # cyclic garbage is not a leak
            except BaseException as exc:
                session.stop(exc)
                raise
            last = session.stop()
            kept.append(_kept(last))
        assert last is not None
        holders = grown_holders(before, holder_census(namespaces)) + analysis_holders(last)
        verdict = LeakVerdict(tuple(kept), spec.tolerance, tuple(holders))
        message = leak_message(item.name, verdict, last)
        if message is not None:
            _fail_with_report(item, message, last)
        return value

    return repeated


def _wrap(func: Callable[..., Any], item: pytest.Item, plan: Plan) -> Callable[..., Any]:
    from .memgates import limit_message, summarize

    body = _checkpointed(func)
    if _FIXTURE_SESSION in item.stash:
        body = _with_fixture_session(body, item)
    if plan.leak is not None:
        body = functools.wraps(func)(_leak_loop(body, item, plan.leak, plan.tracer))
    if not plan.outer:
        return body
    settings = item.config.stash[_SETTINGS]

    @functools.wraps(func)
    def profiled(*args: Any, **kwargs: Any) -> Any:
        session = _session(item.name, plan.tracer)
        session.start()
        try:
            value = body(*args, **kwargs)
        except BaseException as exc:
            result = session.stop(exc)
            settings.figures[item.nodeid] = {**summarize([result]), "limit_bytes": plan.limit}
            raise
        result = session.stop()
        settings.figures[item.nodeid] = {**summarize([result]), "limit_bytes": plan.limit}
        if plan.limit is not None:
            message = limit_message(item.name, plan.limit, result)
            if message is not None:
                _fail_with_report(item, message, result)
        return value

    return profiled


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, Any, Any]:
    plan = plan_for(pyfuncitem)
    if plan is None:
        return (yield)
    original = pyfuncitem.obj
    if inspect.iscoroutinefunction(original) or inspect.isasyncgenfunction(original):
        pyfuncitem.warn(pytest.PytestWarning("cgmem_nb: async tests are not profiled; memory markers are ignored"))
        return (yield)
    pyfuncitem.obj = _wrap(original, pyfuncitem, plan)
    try:
        return (yield)
    finally:
        pyfuncitem.obj = original


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.when == "call":
        settings = item.config.stash.get(_SETTINGS, None)
        figures = settings.figures.get(item.nodeid) if settings is not None else None
        if figures is not None:
            figures["outcome"] = report.outcome
    return report


# -- the fixture -----------------------------------------------------------------------------


@pytest.fixture
def memprofile(request: pytest.FixtureRequest) -> Iterator["Session"]:
    """A profiling session running through the test body; ``memprofile.stop()`` returns
    its :class:`~cgmem_nb.ProfileResult` (so does ``memprofile.result`` once it ended).

    The session starts right before the test function runs (fixture set-up is not
    recorded) and, if the test does not stop it, stops when the function returns.
    """
    settings = request.config.stash.get(_SETTINGS, None)
    session = _session(request.node.name, settings.tracer if settings else "auto")
    request.node.stash[_FIXTURE_SESSION] = session
    if plan_for(request.node) is None or inspect.iscoroutinefunction(getattr(request.node, "obj", None)):
        session.start()  # the body is not wrapped: record from here
    try:
        yield session
    finally:
        if session.running:
            session.stop()


# -- the end of the run ------------------------------------------------------------------------


def summary_lines(figures: dict[str, dict[str, Any]], top: int) -> list[str]:
    """The ``--memprofile`` table: the ``top`` tests by traced peak."""
    rows = sorted(figures.items(), key=lambda kv: kv[1]["peak_bytes"], reverse=True)[:top]
    if not rows:
        return ["no test was profiled"]
    out = [f"{'peak':>10} {'retained':>10} {'RSS peak':>10} {'time':>7}  test"]
    for nodeid, f in rows:
        out.append(
            f"{format_bytes(f['peak_bytes']):>10} {format_bytes(f['retained_bytes'], signed=True):>10} "
            f"{format_bytes(f['rss_peak_bytes']):>10} {f['duration_s']:>6.2f}s  {nodeid}"
        )
    return out


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    settings = config.stash.get(_SETTINGS, None)
    if settings is None or not settings.summary:
        return
    n = min(settings.top, len(settings.figures))
    terminalreporter.write_sep("=", f"cgmem_nb: memory of the {n} heaviest tests (traced peak)")
    for line in summary_lines(settings.figures, settings.top):
        terminalreporter.write_line(line)
    if settings.json_path is not None:
        terminalreporter.write_line(f"figures of every test written to {settings.json_path}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    settings = session.config.stash.get(_SETTINGS, None)
    if settings is None or settings.json_path is None or hasattr(session.config, "workerinput"):
        return
    from ..session.result import write_atomically

    document = {
        "format": JSON_FORMAT,
        "version": JSON_VERSION,
        "tracer": settings.tracer,
        "units": "bytes, seconds",
        "tests": settings.figures,
    }
    path = settings.json_path
    if not path.is_absolute():
        path = Path(session.config.invocation_params.dir) / path
    write_atomically(path, json.dumps(document, indent=2, sort_keys=True))

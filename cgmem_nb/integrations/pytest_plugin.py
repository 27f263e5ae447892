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
  ``memprofile_top``); the command line wins (:mod:`~cgmem_nb.integrations.pytest_plan`).

Only the test function is profiled, not its fixtures' setup and teardown. Every
profiled run goes through the one session runner
(:func:`cgmem_nb.session.runner.run_in_session`), as the magic and the CLI do.
"""

from __future__ import annotations

import functools
import gc
import inspect
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Generator, Iterator

import pytest

from ..config import TracerChoice
from ..units import format_bytes
from .pytest_plan import FIXTURE_SESSION, SETTINGS, LeakSpec, Plan, configure, plan_for, pytest_addoption

if TYPE_CHECKING:
    from ..session.result import ProfileResult
    from ..session.session import Session

__all__ = ["memprofile", "pytest_addoption", "pytest_configure", "summary_lines"]

JSON_FORMAT = "cgmem_nb.pytest"
JSON_VERSION = 1


def pytest_configure(config: pytest.Config) -> None:
    configure(config)


# -- running a test under the plan ------------------------------------------------------------


def _session(label: str, tracer: TracerChoice) -> Session:
    from ..session.profiler import MEMORY_PROFILER

    return MEMORY_PROFILER.session(label, tracer=tracer)


def _run(session: Session, func: Callable[[], Any], deliver: Callable[[ProfileResult, BaseException | None], object] | None = None) -> Any:
    from ..session.runner import run_in_session

    __tracebackhide__ = True  # noqa: F841 - pytest hides this frame in tracebacks
    if deliver is None:
        return run_in_session(session, func)
    return run_in_session(session, func, deliver)


def _checkpointed(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` with a checkpoint after each of its lines and at each return from user code."""
    from ..session.line_checkpoints import line_checkpoints
    from ..session.profiler import MEMORY_PROFILER

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
        session = item.stash.get(FIXTURE_SESSION, None)
        if session is None or session.running or session.result is not None:
            return func(*args, **kwargs)
        return _run(session, lambda: func(*args, **kwargs))  # the test may stop it itself

    return measured


def _kept(result: ProfileResult) -> int:
    """Bytes the user's code kept (the profiler's own bookkeeping left out)."""
    lines = result.lines
    return int(lines["retained_bytes"].fillna(0).clip(lower=0).sum()) if not lines.empty else 0


def _fail_with_report(item: pytest.Item, message: str, result: ProfileResult) -> None:
    from ..outputs.report import render_text

    item.add_report_section("call", "cgmem_nb", render_text(result))
    pytest.fail(message, pytrace=False)


def _leak_loop(func: Callable[..., Any], item: pytest.Item, spec: LeakSpec, tracer: TracerChoice) -> Callable[..., Any]:
    from ..session.holders import observe_profiler
    from ..session.profiler import MEMORY_PROFILER
    from .memgates import LeakVerdict, analysis_holders, grown_holders, holder_census, leak_message, module_namespaces

    def repeated(*args: Any, **kwargs: Any) -> Any:
        value = None
        for _ in range(spec.warmup):
            value = func(*args, **kwargs)
        gc.collect()
        namespaces = module_namespaces(func)
        before = holder_census(namespaces)
        observations = [observe_profiler(MEMORY_PROFILER)]
        kept: list[int] = []
        results: list[ProfileResult] = []

        def run_once() -> Any:
            result = func(*args, **kwargs)
            gc.collect()  # cyclic garbage is not a leak
            return result

        for run in range(1, spec.runs + 1):
            session = _session(f"{item.name} [run {run}/{spec.runs}]", tracer)
            value = _run(session, run_once, lambda result, error: results.append(result))
            kept.append(_kept(results[-1]))
            observations.append(observe_profiler(MEMORY_PROFILER))
        census = grown_holders(before, holder_census(namespaces))
        verdict = LeakVerdict(tuple(kept), spec.tolerance, tuple(census + analysis_holders(observations, census)))
        message = leak_message(item.name, verdict, results[-1])
        if message is not None:
            _fail_with_report(item, message, results[-1])
        return value

    return repeated


def _wrap(func: Callable[..., Any], item: pytest.Item, plan: Plan) -> Callable[..., Any]:
    from .memgates import limit_message, summarize

    body = _checkpointed(func)
    if FIXTURE_SESSION in item.stash:
        body = _with_fixture_session(body, item)
    if plan.leak is not None:
        body = functools.wraps(func)(_leak_loop(body, item, plan.leak, plan.tracer))
    if not plan.outer:
        return body
    settings = item.config.stash[SETTINGS]

    @functools.wraps(func)
    def profiled(*args: Any, **kwargs: Any) -> Any:
        def record(result: ProfileResult, error: BaseException | None) -> None:
            settings.figures[item.nodeid] = {**summarize([result]), "limit_bytes": plan.limit}
            if error is None and plan.limit is not None:
                message = limit_message(item.name, plan.limit, result)
                if message is not None:
                    _fail_with_report(item, message, result)

        return _run(_session(item.name, plan.tracer), lambda: body(*args, **kwargs), record)

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
        settings = item.config.stash.get(SETTINGS, None)
        figures = settings.figures.get(item.nodeid) if settings is not None else None
        if figures is not None:
            figures["outcome"] = report.outcome
    return report


# -- the fixture -----------------------------------------------------------------------------


@pytest.fixture
def memprofile(request: pytest.FixtureRequest) -> Iterator[Session]:
    """A profiling session running through the test body; ``memprofile.stop()`` returns
    its :class:`~cgmem_nb.ProfileResult` (so does ``memprofile.result`` once it ended).

    The session starts right before the test function runs (fixture set-up is not
    recorded) and, if the test does not stop it, stops when the function returns.
    """
    settings = request.config.stash.get(SETTINGS, None)
    session = _session(request.node.name, settings.tracer if settings else "auto")
    request.node.stash[FIXTURE_SESSION] = session
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
    settings = config.stash.get(SETTINGS, None)
    if settings is None or not settings.summary:
        return
    n = min(settings.top, len(settings.figures))
    terminalreporter.write_sep("=", f"cgmem_nb: memory of the {n} heaviest tests (traced peak)")
    for line in summary_lines(settings.figures, settings.top):
        terminalreporter.write_line(line)
    if settings.json_path is not None:
        terminalreporter.write_line(f"figures of every test written to {settings.json_path}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    settings = session.config.stash.get(SETTINGS, None)
    if settings is None or settings.json_path is None or hasattr(session.config, "workerinput"):
        return
    from ..errors import ExportError
    from ..session.serialize import write_atomically

    document = {
        "format": JSON_FORMAT,
        "version": JSON_VERSION,
        "tracer": settings.tracer,
        "units": "bytes, seconds",
        "tests": settings.figures,
    }
    path: Path = settings.json_path
    if not path.is_absolute():
        path = Path(session.config.invocation_params.dir) / path
    try:
        write_atomically(path, json.dumps(document, indent=2, sort_keys=True))
    except ExportError as exc:  # checked before the run; the disk may still fill up
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"cgmem_nb: the memory figures were not written: {exc}", red=True)

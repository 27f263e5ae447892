"""The command line: profile a script outside Jupyter, or render a saved result.

``python -m cgmem_nb run [OPTIONS] script.py [ARGS...]`` runs the script as
``__main__`` (``sys.argv`` is ``[script.py, ARGS...]``) inside a profiling
session of the same engine the magic uses, then prints the text report to
standard error (the script keeps standard output for itself).

``python -m cgmem_nb report result.json`` prints the report of a result saved
with ``--json`` or ``ProfileResult.to_json()``.

Exit codes (also in ``EXIT_CODES``): the script's own exit status when it ends
normally or calls ``sys.exit``; 1 when it raises (the traceback is printed);
2 for a usage error (bad option, missing file, unreadable result); 3 when the
profiler itself fails; 4 when the script succeeded but its peak went over
``--limit``.
"""

from __future__ import annotations

import argparse
import html
import runpy
import sys
import traceback
import warnings
from pathlib import Path
from typing import IO, Sequence

#: Exit codes of ``python -m cgmem_nb`` besides the script's own.
EXIT_CODES: dict[int, str] = {
    0: "the script ended normally (or with sys.exit(0)) and no limit was exceeded",
    1: "the script raised an exception (its traceback is printed)",
    2: "usage error: a bad option, a missing script or an unreadable result file",
    3: "the profiler itself failed (the report could not be made or written)",
    4: "the script succeeded but its traced peak went over --limit",
}
EXIT_EXCEPTION = 1
EXIT_USAGE = 2
EXIT_PROFILER = 3
EXIT_LIMIT = 4


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also the source of the CLI page in the docs)."""
    epilog = "exit codes:\n" + "\n".join(f"  {code}  {text}" for code, text in EXIT_CODES.items())
    epilog += "\n  otherwise the script's own exit status (sys.exit(n))"
    parser = _Parser(
        prog="python -m cgmem_nb",
        description="Profile the memory of a Python script with cgmem_nb, or render a saved result.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    run = sub.add_parser(
        "run",
        help="run a script under the profiler and print its memory report",
        description="Run SCRIPT as __main__ with ARGS under the profiler; the report goes to standard error.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--json", metavar="PATH", help="also save the ProfileResult as JSON (read it back with `report`)")
    run.add_argument("--html", metavar="PATH", help="also write the report as a standalone HTML page")
    tracer = run.add_mutually_exclusive_group()
    tracer.add_argument(
        "--sample", dest="tracer", action="store_const", const="sampled",
        help="use the sampled tracer (fast, estimates; falls back to exact with a note if unavailable)",
    )
    tracer.add_argument(
        "--exact", dest="tracer", action="store_const", const="exact",
        help="use the exact tracer (tracemalloc: every allocation, slower)",
    )
    run.add_argument("--limit", metavar="SIZE", help='memory limit, e.g. "500 MB": exit with 4 if the peak goes over it')
    run.add_argument("--top", type=int, default=10, metavar="N", help="lines shown in the report (default 10)")
    run.add_argument("--depth", type=int, metavar="N", help="frames kept per allocation stack (1-100)")
    run.add_argument("-q", "--quiet", action="store_true", help="print no report (files are still written)")
    run.add_argument("script", help="the Python script to run")
    run.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")
    run.set_defaults(tracer="auto")
    report = sub.add_parser(
        "report",
        help="print the report of a saved result",
        description="Print the text report of a result saved as JSON; optionally write it as HTML.",
    )
    report.add_argument("result", help="a result saved with --json or ProfileResult.to_json()")
    report.add_argument("--html", metavar="PATH", help="also write the report as a standalone HTML page")
    report.add_argument("--top", type=int, default=10, metavar="N", help="lines shown in the report (default 10)")
    return parser


def html_page(body: str, title: str) -> str:
    """A standalone HTML page around a report fragment."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title></head>\n<body>\n{body}\n</body></html>\n"
    )


def _write_outputs(result: object, json_path: str | None, html_path: str | None, top: int, err: IO[str]) -> None:
    from ..outputs.report import render_html
    from ..session.result import ProfileResult
    from ..session.serialize import write_atomically

    assert isinstance(result, ProfileResult)
    if json_path:
        result.to_json(json_path)
        print(f"cgmem_nb: result saved to {json_path}", file=err)
    if html_path:
        label = result.summary.label or "session"
        write_atomically(html_path, html_page(render_html(result, top), f"cgmem_nb memory profile — {label}"))
        print(f"cgmem_nb: HTML report written to {html_path}", file=err)


def _exit_status(code: object) -> int:
    """The process exit status ``sys.exit(code)`` would give."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _print_script_traceback(exc: BaseException, path: str, err: IO[str]) -> None:
    """The traceback from the script's first frame on (the runner's frames left out)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != path:
        tb = tb.tb_next
    traceback.print_exception(type(exc), exc, tb or exc.__traceback__, file=err)


def run_script(args: argparse.Namespace, err: IO[str]) -> int:
    """``run``: profile the script and report. Returns the exit status."""
    from ..errors import CgmemError
    from ..outputs.report import render_text
    from ..session.line_checkpoints import line_checkpoints
    from ..session.profiler import MEMORY_PROFILER
    from ..session.result import ProfileResult
    from ..session.runner import run_in_session
    from ..units import format_bytes

    script = Path(args.script)
    if not script.is_file():
        print(f"cgmem_nb: no script {str(script)!r}: give the path of a Python file", file=err)
        return EXIT_USAGE
    if args.top < 0:
        print(f"cgmem_nb: --top {args.top} is not accepted: give 0 or more lines", file=err)
        return EXIT_USAGE
    try:
        session = MEMORY_PROFILER.session(script.name, tracer=args.tracer, depth=args.depth, limit=args.limit)
    except CgmemError as exc:
        print(f"cgmem_nb: {exc}", file=err)
        return EXIT_USAGE
    path = str(script.resolve())
    saved_argv, saved_path0 = sys.argv, sys.path[0] if sys.path else None
    sys.argv = [str(script), *args.args]
    if sys.path:
        sys.path[0] = str(script.resolve().parent)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            session.start()
    except CgmemError as exc:
        sys.argv = saved_argv
        if saved_path0 is not None:
            sys.path[0] = saved_path0
        print(f"cgmem_nb: the profiler could not start: {exc}", file=err)
        return EXIT_PROFILER
    for warning in caught:
        print(f"note: {warning.message}", file=err)
    status = 0
    delivered: list[ProfileResult] = []

    def body() -> dict[str, object]:
        nonlocal status
        try:
            with line_checkpoints(MEMORY_PROFILER.checkpoint, lambda code: code.co_filename == path and code.co_name == "<module>"):
                # The script's globals are returned, so they stay alive until the session ends: "retained".
                return runpy.run_path(path, run_name="__main__")
        except SystemExit as exc:  # the script's own exit status, not an error of the run
            status = _exit_status(exc.code)
            return {}

    try:
        namespace = run_in_session(session, body, lambda result, error: delivered.append(result))
        namespace.clear()
    except KeyboardInterrupt:
        status = 130
        print("KeyboardInterrupt", file=err)
    except BaseException as exc:
        if not delivered:  # the session itself failed to stop
            print(f"cgmem_nb: the profiler failed: {type(exc).__name__}: {exc}", file=err)
            return EXIT_PROFILER
        status = EXIT_EXCEPTION
        _print_script_traceback(exc, path, err)
    finally:
        sys.argv = saved_argv
        if saved_path0 is not None:
            sys.path[0] = saved_path0
    if not delivered:
        print("cgmem_nb: the profiler failed: the session ended without a result", file=err)
        return EXIT_PROFILER
    result = delivered[0]
    try:
        if not args.quiet:
            err.write("\n" + render_text(result, args.top) + "\n")
        _write_outputs(result, args.json, args.html, args.top, err)
    except Exception as exc:  # the profiler's own failure: a distinct exit status
        print(f"cgmem_nb: the profiler failed: {type(exc).__name__}: {exc}", file=err)
        return EXIT_PROFILER if status == 0 else status
    peak = result.summary.peak_bytes
    if status == 0 and session.limit is not None and peak > session.limit:
        print(
            f"cgmem_nb: {script.name} was limited to {format_bytes(session.limit)} but peaked at {format_bytes(peak)}",
            file=err,
        )
        return EXIT_LIMIT
    return status


def show_report(args: argparse.Namespace, out: IO[str], err: IO[str]) -> int:
    """``report``: print a saved result. Returns the exit status."""
    from ..errors import CgmemError
    from ..outputs.report import render_text
    from ..session.result import ProfileResult

    if args.top < 0:
        print(f"cgmem_nb: --top {args.top} is not accepted: give 0 or more lines", file=err)
        return EXIT_USAGE
    try:
        result = ProfileResult.from_json(Path(args.result))
    except CgmemError as exc:
        print(f"cgmem_nb: {exc}", file=err)
        return EXIT_USAGE
    try:
        out.write(render_text(result, args.top) + "\n")
        _write_outputs(result, None, args.html, args.top, err)
    except Exception as exc:
        print(f"cgmem_nb: the report failed: {type(exc).__name__}: {exc}", file=err)
        return EXIT_PROFILER
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m cgmem_nb``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.command == "run":
        return run_script(args, sys.stderr)
    if args.command == "report":
        return show_report(args, sys.stdout, sys.stderr)
    parser.print_help(sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())

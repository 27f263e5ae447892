"""IPython magics: ``%%memprofile`` (and ``%memprofile STATEMENT``).

Load with ``%load_ext cgmem_nb``. The magic's options come from one argument
parser, which also makes the ``%%memprofile?`` help and the docs' reference.

Nesting: a ``%%memprofile`` (or any session) started while another runs is a
sub-session. Both record; the outer one sees everything the inner one saw.
"""

from __future__ import annotations

import keyword
import re
from typing import Any

from IPython.core import magic_arguments
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.display import display

from ..config import TracerChoice
from ..errors import CgmemError, ClusterError
from ..outputs.report import DEFAULT_TOP, MAX_TOP, Report
from ..session.profiler import MEMORY_PROFILER
from ..session.result import ProfileResult
from ..session.runner import run_in_session
from . import magic_args
from .cell_runner import TopLevelAwaitError, prepare_cell
from .limit_option import check_limit

# Options that take a value, for splitting `%memprofile OPTIONS STATEMENT`.
_VALUE_OPTIONS = {"-o", "--output", "--depth", "--limit", "--top", "--label"}
# `--sample` takes a value only when one follows that reads as a size (`--sample 64KiB y = 1`).
_OPTIONAL_SIZE_OPTIONS = {"--sample"}
_TOKEN = re.compile(r"""\s*("[^"]*"|'[^']*'|\S+)""")
_SIZE_TOKEN = re.compile(r"""^["']?\s*[0-9]*\.?[0-9]+\s*[A-Za-z]*\s*["']?$""")


def split_line_statement(line: str) -> tuple[str, str]:
    """Split ``%memprofile OPTIONS STATEMENT`` into the options and the raw statement."""
    pos = 0
    while True:
        match = _TOKEN.match(line, pos)
        if match is None or not match.group(1).startswith("-"):
            break
        option = match.group(1).split("=", 1)[0]
        pos = match.end()
        if "=" in match.group(1):
            continue
        if option in _VALUE_OPTIONS:
            value = _TOKEN.match(line, pos)
            if value is None:
                break
            pos = value.end()
        elif option in _OPTIONAL_SIZE_OPTIONS:
            value = _TOKEN.match(line, pos)
            if value is not None and _SIZE_TOKEN.match(value.group(1)):
                pos = value.end()
    return line[:pos], line[pos:].strip()


def _usage_error(message: str) -> UsageError:
    return magic_args.usage_error(CgmemMagics.memprofile, message)


@magics_class
class CgmemMagics(Magics):
    """The cgmem_nb magics."""

    @magic_arguments.magic_arguments()
    @magic_arguments.argument("-o", "--output", metavar="NAME", help="Store the ProfileResult in the variable NAME.")
    @magic_arguments.argument("--depth", type=int, metavar="N", help="Frames kept per allocation stack (1-100).")
    @magic_arguments.argument(
        "--limit", metavar="SIZE",
        help='The kernel\'s memory limit while this cell runs: its total RSS, not the cell\'s growth '
        '(e.g. 2GB, "500 MB", "2 GiB"; quote a size with a space).',
    )
    @magic_arguments.argument(
        "--sample", nargs="?", const="default", metavar="INTERVAL",
        help='Use the sampled tracer (the default where it is available), optionally with a mean interval such as "64 KiB".',
    )
    @magic_arguments.argument("--exact", action="store_true", help="Use the exact tracer (tracemalloc): every allocation, 5-50x slower.")
    @magic_arguments.argument("--top", type=int, default=DEFAULT_TOP, metavar="N", help="Lines shown in the report (default 10).")
    @magic_arguments.argument("--label", metavar="TEXT", help="Label of the result (default In[n]).")
    @magic_arguments.argument("-q", "--quiet", action="store_true", help="Show no report (the result is still stored).")
    @magic_arguments.argument("--live", action="store_true", help="Show a live panel (chart, pressure, figures) while the cell runs.")
    @magic_arguments.argument(
        "--dask", nargs="?", const="", metavar="CLIENT",
        help="Also profile every worker of a Dask cluster for the span of the cell: the distributed.Client in "
        "the variable CLIENT (default: the current client). Adds the tasks and workers tables; needs cgmem_nb[dask].",
    )
    @magic_arguments.argument(
        "--guard", action="store_true",
        help="Interrupt the cell (KeyboardInterrupt) when the kernel's RSS reaches guard_fraction (default 95%%) of the limit.",
    )
    @line_cell_magic
    def memprofile(self, line: str, cell: str | None = None) -> Any:
        """Profile the memory of a cell (``%%memprofile``) or one statement (``%memprofile STATEMENT``).

        The cell runs in this kernel, in your namespace, exactly as without the
        magic: its last expression is displayed as Out[n], its variables stay, and
        an exception propagates after the result is stored. A report is shown under
        the cell; ``-o r`` keeps the ProfileResult as ``r`` (its tables are pandas
        DataFrames: r.lines, r.stacks, r.categories, r.threads, r.timeline).
        The latest result is also at ``cgmem_nb.MEMORY_PROFILER.last_result``.
        """
        __tracebackhide__ = True  # noqa: F841 - hides this frame in IPython tracebacks
        if cell is None:
            options, statement = split_line_statement(line)
            hint = magic_args.unit_hint(magic_args.split(options, self.memprofile) + statement.split()[:1])
            if hint:
                raise _usage_error(f"cannot read the options {options.strip()!r}: {hint}")
            if not statement:
                raise _usage_error("%memprofile needs a statement to profile (or use %%memprofile on a cell)")
            code_text, full_source, first_line = statement, statement, 1
            raw = self._current_raw_cell()
            if raw:
                for i, text in enumerate(raw.splitlines(), start=1):
                    if text.lstrip().startswith("%memprofile") and statement in text:
                        full_source, first_line = raw, i
                        code_text = statement
                        break
        else:
            options = line
            code_text = cell
            full_source = f"%%memprofile {line}\n{cell}"
            first_line = 2
            raw = self._current_raw_cell()
            if raw and cell and raw.endswith(cell) and "%%memprofile" in raw[: len(raw) - len(cell)]:
                full_source = raw
                first_line = raw[: len(raw) - len(cell)].count("\n") + 1
        args = magic_args.parse(self.memprofile, options)
        config = magic_args.checked_config()
        check_limit(args.limit, guard=bool(args.guard), fraction=config.guard_fraction, error=_usage_error)
        if args.output is not None and (not args.output.isidentifier() or keyword.iskeyword(args.output)):
            raise _usage_error(f"-o {args.output!r} is not accepted: give a variable name such as r")
        if args.top is not None and not 0 <= args.top <= MAX_TOP:
            raise _usage_error(f"--top {args.top} is not accepted: give 0 to {MAX_TOP} lines")
        try:
            if args.exact and args.sample:
                raise _usage_error("--exact and --sample exclude each other: choose one tracer")
            tracer: TracerChoice = "exact" if args.exact else ("sampled" if args.sample else "auto")
            interval = args.sample if args.sample not in (None, "default") else None
            session = MEMORY_PROFILER.session(
                args.label, depth=args.depth, limit=args.limit, guard=True if args.guard else None, tracer=tracer, interval=interval,
                companions=_cluster(self.shell, args.dask),
            )
        except CgmemError as exc:
            raise _usage_error(str(exc)) from None
        # Transform, parse and compile before the session starts: a syntax error costs nothing,
        # and the compiler's own allocations are not the cell's.
        try:
            prepared = (
                prepare_cell(self.shell, code_text, full_source=full_source, first_line=first_line, instrument=False)
                if code_text.strip() else None
            )
        except TopLevelAwaitError as exc:
            raise UsageError(str(exc)) from None
        # The live panel is shown before the cell body runs, so it sits above the cell's own output.
        try:
            panel = _show_live_panel(session.label) if args.live else None
        except CgmemError as exc:
            raise _usage_error(str(exc)) from None

        def body() -> Any:
            __tracebackhide__ = True  # noqa: F841 - hides this frame in IPython tracebacks
            if prepared is None:
                return None
            if not session.needs_checkpoints:  # the sampled tracer keeps its peak itself
                return prepared.run(self.shell)
            # The exact tracer sees its peak through checkpoints, inside loops and branches too.
            instrumented = prepare_cell(self.shell, code_text, full_source=full_source, first_line=first_line)
            return instrumented.run(self.shell, session.checkpoint)

        def deliver(result: ProfileResult, error: BaseException | None) -> None:
            self._deliver(args, result, panel)

        return run_in_session(session, body, deliver)

    def _current_raw_cell(self) -> str | None:
        history = getattr(self.shell, "history_manager", None)
        raw = getattr(history, "input_hist_raw", None)
        return raw[-1] if raw else None

    def _deliver(self, args: Any, result: ProfileResult, panel: Any = None) -> None:
        if panel is not None:
            panel.finalize(result)
        if args.output:
            assert self.shell is not None
            self.shell.user_ns[args.output] = result
        if not args.quiet:
            display(Report(result, top=args.top))


def _cluster(shell: Any, name: str | None) -> list[Any]:
    """The companion that profiles a Dask cluster for ``--dask [CLIENT]`` (imported lazily), if asked."""
    if name is None:
        return []
    try:
        from .dask.companion import DaskCompanion, client_named
    except ImportError as exc:
        raise ClusterError(f"--dask needs Dask's distributed package ({exc}): pip install 'cgmem_nb[dask]'") from None
    return [DaskCompanion(client_named(shell.user_ns, name))]


def _show_live_panel(label: str | None) -> Any:
    """Show a :class:`~cgmem_nb.outputs.panel.LivePanel` for the cell about to run (imported lazily)."""
    from ..outputs.panel import LivePanel
    from ..session import notebook

    cell = notebook.current_cell()
    return LivePanel(label or (f"In[{cell}]" if cell is not None else "cell")).show()

"""Run a cell's code in the user namespace, exactly as IPython would, with checkpoints.

The cell is first turned into Python by IPython's own input transformers
(``shell.transform_cell``), so everything IPython accepts in a cell works in a
profiled one: ``%time x = f()``, ``files = !ls``, ``obj?``, ``%matplotlib inline``,
a second cell magic (``%%time``) on the first line of the body. Line numbers stay
the ones the cell shows (leading blank lines, which the transformers drop, are
put back).

The code is compiled under the cell's own file name (registered with IPython's
compiler and ``linecache``), so tracebacks, ``In[n]:line`` locations and the
debugger all point at the right line. As IPython does, each top-level statement
is compiled and run on its own (one small code object each: tracemalloc scans a
code object's line table for every allocation it records, so one code object for
a cell of thousands of statements would make every allocation cost the length
of the cell). The last expression is evaluated separately and returned so that
IPython displays it as the cell's ``Out[n]`` (unless the cell ends with ``;``).

Checkpoints: the runner calls the session's checkpoint before every top-level
statement, and a call to a hidden checkpoint is inserted before every statement
in the bodies of top-level loops, ``with``, ``if`` and ``try`` blocks (not in
function or class bodies), carrying the statement's own line number (no line
shifts). The hidden name lives in :mod:`builtins` while the cell runs, never in
the user namespace, so ``%reset`` inside a profiled cell cannot remove it.

Everything that can fail before the code runs (transforming, parsing, compiling,
a top-level ``await``) fails in :func:`prepare_cell`, before any session starts.
"""

from __future__ import annotations

import __future__
import ast
import builtins
import inspect
import io
import tokenize
from dataclasses import dataclass
from types import CodeType
from typing import Any, Callable

from ..session import notebook

#: Name of the hidden checkpoint, bound in :mod:`builtins` while a profiled cell runs.
CHECKPOINT_NAME = "__cgmem_checkpoint__"

_NO_DESCEND = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
_MISSING = object()


class TopLevelAwaitError(ValueError):
    """The cell uses top-level ``await``, which a profiled cell cannot run."""


def ends_with_semicolon(source: str) -> bool:
    """True when the last token of ``source`` (ignoring comments) is ``;``."""
    last = None
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT):
                continue
            last = tok
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return False
    return last is not None and last.type == tokenize.OP and last.string == ";"


def to_python(shell: Any, code_text: str) -> str:
    """``code_text`` as Python, through IPython's input transformers, with the same line numbers.

    IPython drops leading blank lines; they are put back so line ``k`` of the result
    is line ``k`` of the input (except inside a cell magic, which becomes one call).
    """
    lines = code_text.splitlines(keepends=True)
    blank = 0
    while blank < len(lines) and not lines[blank].strip():
        blank += 1
    rest = "".join(lines[blank:])
    transform = getattr(shell, "transform_cell", None)
    if transform is None or not rest:
        return code_text
    try:
        python = str(transform(rest))
    except Exception:  # let the parser report what is wrong, on the user's own text
        return code_text
    return "\n" * blank + python


def _checkpoint_stmt(node: ast.stmt) -> ast.stmt:
    call = ast.Expr(ast.Call(ast.Name(CHECKPOINT_NAME, ast.Load()), [], []))
    for n in ast.walk(call):
        ast.copy_location(n, node)
        n.end_lineno, n.end_col_offset = node.lineno, node.col_offset  # type: ignore[attr-defined]
    return call


def _instrument(body: list[ast.stmt]) -> list[ast.stmt]:
    out: list[ast.stmt] = []
    for stmt in body:
        future = isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__"
        if not future:
            out.append(_checkpoint_stmt(stmt))
        _instrument_inner(stmt)
        out.append(stmt)
    return out


def _instrument_inner(stmt: ast.stmt) -> None:
    """Checkpoints in the bodies of a compound statement (not in function or class bodies)."""
    if isinstance(stmt, _NO_DESCEND):
        return
    for name in ("body", "orelse", "finalbody"):
        inner = getattr(stmt, name, None)
        if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt):
            setattr(stmt, name, _instrument(inner))
    for handler in getattr(stmt, "handlers", []) or []:
        handler.body = _instrument(handler.body)
    for case in getattr(stmt, "cases", []) or []:
        case.body = _instrument(case.body)


def _future_flags(stmt: ast.stmt) -> int:
    if not (isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__"):
        return 0
    flags = 0
    for alias in stmt.names:
        feature = getattr(__future__, alias.name, None)
        flags |= int(getattr(feature, "compiler_flag", 0))
    return flags


def _refuse_await(code: CodeType) -> None:
    if code.co_flags & inspect.CO_COROUTINE:
        raise TopLevelAwaitError(
            "a profiled cell cannot use top-level `await`; move the awaiting code into an "
            "`async def main(): ...` and run it with `asyncio.run(main())` in a script, or profile "
            "it without the magic using `with MEMORY_PROFILER.session():` inside the coroutine"
        )


@dataclass(frozen=True)
class PreparedCell:
    """A cell compiled and ready to run: one code object per top-level statement."""

    #: The top-level statements, in order.
    statements: tuple[CodeType, ...]
    #: The last expression (displayed as ``Out[n]``), or None.
    last_expr: CodeType | None
    #: True when the cell ends with ``;`` (no ``Out[n]``).
    quiet: bool

    def run(self, shell: Any, checkpoint: Callable[[], None] | None = None) -> Any:
        """Run the cell in ``shell``'s user namespace; the value of its last expression (or None)."""
        __tracebackhide__ = True  # noqa: F841 - hides this frame in IPython tracebacks
        table = builtins.__dict__
        previous = table.get(CHECKPOINT_NAME, _MISSING)
        if checkpoint is not None:
            table[CHECKPOINT_NAME] = checkpoint
        try:
            value = None
            for code in self.statements:
                if checkpoint is not None:
                    checkpoint()
                exec(code, shell.user_global_ns, shell.user_ns)
            if self.last_expr is not None:
                if checkpoint is not None:
                    checkpoint()
                value = eval(self.last_expr, shell.user_global_ns, shell.user_ns)
        finally:
            if checkpoint is not None:
                if previous is _MISSING:
                    table.pop(CHECKPOINT_NAME, None)
                else:
                    table[CHECKPOINT_NAME] = previous
        return None if self.quiet else value


def prepare_cell(shell: Any, code_text: str, *, full_source: str, first_line: int, instrument: bool = True) -> PreparedCell:
    """Transform, parse and compile ``code_text`` (which starts at line ``first_line`` of
    ``full_source``) for :meth:`PreparedCell.run`. Raises ``SyntaxError`` or
    :class:`TopLevelAwaitError` before anything runs."""
    number = notebook.current_cell() or 0
    filename = shell.compile.cache(full_source, number, raw_code=full_source)
    notebook.register_cell(filename, number)
    python = to_python(shell, code_text)
    padded = "\n" * (first_line - 1) + python
    flags = int(getattr(shell.compile, "flags", 0)) | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    body = list(ast.parse(padded, filename=filename, mode="exec").body)
    last_expr: ast.Expr | None = None
    interactivity = getattr(shell, "ast_node_interactivity", "last_expr")
    if body and isinstance(body[-1], ast.Expr) and interactivity != "none":
        last_expr = body.pop()  # type: ignore[assignment]
    statements = []
    for stmt in body:
        flags |= _future_flags(stmt)
        if instrument:
            _instrument_inner(stmt)
        code = compile(ast.Module(body=[stmt], type_ignores=[]), filename, "exec", flags=flags, dont_inherit=True)
        _refuse_await(code)
        statements.append(code)
    expr_code = None
    if last_expr is not None:
        expr_code = compile(ast.Expression(last_expr.value), filename, "eval", flags=flags, dont_inherit=True)
        _refuse_await(expr_code)
    return PreparedCell(tuple(statements), expr_code, ends_with_semicolon(python))


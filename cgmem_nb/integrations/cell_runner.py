"""Run a cell's code in the user namespace, exactly as IPython would, with checkpoints.

The code is compiled under the cell's own file name (registered with IPython's
compiler and ``linecache``), with line numbers counted as the cell shows them,
so tracebacks, ``In[n]:line`` locations and the debugger all point at the
right line. The last expression is evaluated separately and returned so that
IPython displays it as the cell's ``Out[n]`` (unless the cell ends with ``;``).

Before every statement outside function and class bodies a call to a hidden
checkpoint is inserted, carrying the statement's own line number (no line
shifts). It lets the session snapshot a new memory high between statements.
"""

from __future__ import annotations

import ast
import inspect
import io
import tokenize
from typing import Any, Callable

from ..session import notebook

#: Name of the hidden checkpoint bound in the user namespace while a cell runs.
CHECKPOINT_NAME = "__cgmem_checkpoint__"

_NO_DESCEND = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


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
        if not isinstance(stmt, _NO_DESCEND):
            for name in ("body", "orelse", "finalbody"):
                inner = getattr(stmt, name, None)
                if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt):
                    setattr(stmt, name, _instrument(inner))
            for handler in getattr(stmt, "handlers", []) or []:
                handler.body = _instrument(handler.body)
            for case in getattr(stmt, "cases", []) or []:
                case.body = _instrument(case.body)
        out.append(stmt)
    return out


def run_cell_code(
    shell: Any,
    code_text: str,
    *,
    full_source: str,
    first_line: int,
    checkpoint: Callable[[], None] | None = None,
) -> Any:
    """Run ``code_text`` (which starts at line ``first_line`` of ``full_source``) in
    ``shell``'s user namespace and return the value of its last expression (None
    when there is none or the cell ends with ``;``)."""
    __tracebackhide__ = True  # noqa: F841 - hides this frame in IPython tracebacks
    number = notebook.current_cell() or 0
    filename = shell.compile.cache(full_source, number, raw_code=full_source)
    notebook.register_cell(filename, number)
    padded = "\n" * (first_line - 1) + code_text
    flags = int(getattr(shell.compile, "flags", 0)) | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    tree = ast.parse(padded, filename=filename, mode="exec")
    body = list(tree.body)
    last_expr: ast.Expr | None = None
    interactivity = getattr(shell, "ast_node_interactivity", "last_expr")
    if body and isinstance(body[-1], ast.Expr) and interactivity != "none":
        last_expr = body.pop()  # type: ignore[assignment]
    if checkpoint is not None:
        body = _instrument(body)
    module = ast.Module(body=body, type_ignores=[])
    compiled = compile(module, filename, "exec", flags=flags, dont_inherit=True)
    expr_code = None
    if last_expr is not None:
        expr_code = compile(ast.Expression(last_expr.value), filename, "eval", flags=flags, dont_inherit=True)
    for c in (compiled, expr_code):
        if c is not None and c.co_flags & inspect.CO_COROUTINE:
            raise TopLevelAwaitError(
                "a profiled cell cannot use top-level `await`; move the awaiting code into an "
                "`async def main(): ...` and run it with `asyncio.run(main())` in a script, or profile "
                "it without the magic using `with MEMORY_PROFILER.session():` inside the coroutine"
            )
    ns = shell.user_ns
    had_previous = CHECKPOINT_NAME in ns
    previous = ns.get(CHECKPOINT_NAME)
    if checkpoint is not None:
        ns[CHECKPOINT_NAME] = checkpoint
    try:
        exec(compiled, shell.user_global_ns, ns)
        if expr_code is None:
            return None
        value = eval(expr_code, shell.user_global_ns, ns)
    finally:
        if checkpoint is not None:
            if had_previous:
                ns[CHECKPOINT_NAME] = previous
            else:
                ns.pop(CHECKPOINT_NAME, None)
    if ends_with_semicolon(code_text):
        return None
    return value

"""Category scopes: ``with MEMORY_PROFILER.category("Cache"):`` blocks and ``@MEMORY_PROFILER.category(...)``.

A scope tags the allocations made inside it with a category in two ways: the
code region (the ``with`` block's lines, or the decorated function's) is added to
the category rules, which classify every recorded stack that runs through it,
and the sampled tracer's per-thread tag is set while the scope runs, so each
sample carries the category it was made under.
"""

from __future__ import annotations

import ast
import functools
import linecache
import sys
from types import CodeType
from typing import Any, Callable, TypeVar

from ..categories import CATEGORY_RULES, AllocationType

__all__ = ["CategoryScope"]

F = TypeVar("F", bound=Callable[..., Any])


class CategoryScope:
    """Tags allocations with a category: ``with profiler.category("Cache"):`` or as a decorator."""

    _with_spans: dict[tuple[str, int], tuple[int, int] | None] = {}

    def __init__(self, category: AllocationType | str) -> None:
        self.category = AllocationType.parse(category)
        self._previous: list[str | None] = []

    @staticmethod
    def _set_tag(name: str | None) -> str | None:
        # Only a loaded sampled tracer records tags: looked up, not imported (that would load
        # the native extension for nothing).
        sampled = sys.modules.get("cgmem_nb.engine.sampled")
        setter = getattr(sampled, "set_tag", None)
        if setter is None:
            return None
        try:
            return setter(name)  # type: ignore[no-any-return]
        except Exception:
            return None

    @classmethod
    def _with_span(cls, filename: str, lineno: int) -> tuple[int, int] | None:
        key = (filename, lineno)
        if key not in cls._with_spans:
            span = None
            source = "".join(linecache.getlines(filename))
            if source:
                try:
                    tree = ast.parse(source)
                except SyntaxError:
                    tree = None
                for node in ast.walk(tree) if tree is not None else ():
                    if isinstance(node, (ast.With, ast.AsyncWith)) and node.lineno <= lineno <= (node.body[0].lineno - 1 if node.body else node.lineno):
                        span = (node.lineno, node.end_lineno or node.lineno)
                        break
            cls._with_spans[key] = span
        return cls._with_spans[key]

    def __enter__(self) -> "CategoryScope":
        frame = sys._getframe(1)
        span = self._with_span(frame.f_code.co_filename, frame.f_lineno)
        if span is not None:
            CATEGORY_RULES.add_region(frame.f_code.co_filename, span[0], span[1], self.category)
        self._previous.append(self._set_tag(self.category.value))
        return self

    def __exit__(self, *exc: object) -> None:
        self._set_tag(self._previous.pop() if self._previous else None)

    def __call__(self, func: F) -> F:
        code: CodeType | None = getattr(func, "__code__", None)
        if code is not None:
            lines = [ln for _, _, ln in code.co_lines() if ln is not None]
            CATEGORY_RULES.add_region(code.co_filename, code.co_firstlineno, max(lines, default=code.co_firstlineno), self.category)
        category = self.category

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            previous = CategoryScope._set_tag(category.value)
            try:
                return func(*args, **kwargs)
            finally:
                CategoryScope._set_tag(previous)

        return wrapper  # type: ignore[return-value]

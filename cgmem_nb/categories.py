"""Allocation categories and the rules that give an allocation its category.

An allocation's category comes, in this order, from

1. an explicit tag recorded with it (the sampled tracer records the tag that
   ``MEMORY_PROFILER.category(...)`` set on the allocating thread);
2. a tagged code region on its stack (a ``with MEMORY_PROFILER.category("Cache"):``
   block or a function decorated with ``@MEMORY_PROFILER.category("Cache")``);
3. user rules (:meth:`CategoryRules.add_rule`), checked innermost frame first;
4. default rules on the stack's files (numpy/pandas internals are ``Vector``,
   ``re``/``json``/``ast``/``tokenize`` are ``Parser``, and so on).

What none of them names is ``Unknown``: a guess would be worse than saying so.
"""

from __future__ import annotations

import enum
import re
import threading
from dataclasses import dataclass
from typing import Iterable, Sequence

from .errors import ConfigError


class AllocationType(str, enum.Enum):
    """The seed's nine allocation categories."""

    Cache = "Cache"
    Vector = "Vector"
    Graph = "Graph"
    Parser = "Parser"
    String = "String"
    Buffer = "Buffer"
    Index = "Index"
    Temp = "Temp"
    Unknown = "Unknown"

    @classmethod
    def parse(cls, value: "AllocationType | str") -> "AllocationType":
        """Accept an ``AllocationType`` or its name (any case); name the choices otherwise."""
        if isinstance(value, AllocationType):
            return value
        if isinstance(value, str):
            for member in cls:
                if member.value.lower() == value.strip().lower():
                    return member
        choices = ", ".join(m.value for m in cls)
        raise ConfigError(f"category {value!r} is not known: use one of {choices}")


#: A frame as the tracers report it, ``(filename, line number)`` (``cgmem_nb.engine.tracers.Frame``;
#: spelled out here because this module sits below the engine).
_FrameKey = tuple[tuple[str, int], ...]

# Path fragments (with "/" separators) of files whose allocations have an obvious category.
_DEFAULT_RULES: tuple[tuple[str, AllocationType], ...] = (
    (r"/cgmem_nb/session/cache\.py$", AllocationType.Cache),  # TrackedCache
    (r"/(functools|cachetools/.*|diskcache/.*)\.py$", AllocationType.Cache),
    (r"/(numpy|pandas|pyarrow|scipy|torch|jax|polars|xarray|dask|numexpr|bottleneck)/", AllocationType.Vector),
    (r"/(networkx|igraph|graph_tool|rustworkx)/", AllocationType.Graph),
    (r"/(re|json|ast|tokenize|tokenizers?|csv|html/parser|xml/.*|email/.*|tomllib/.*|sre_\w+|_markupbase)(\.py|/)", AllocationType.Parser),
    (r"/(yaml|lxml|bs4|lark|parso)/", AllocationType.Parser),
    (r"/(io|_pyio|gzip|bz2|lzma|zipfile|tarfile|pickle|shutil|socket|ssl|codecs|base64|struct)\.py$", AllocationType.Buffer),
    (r"/(requests|urllib3|urllib|http)/", AllocationType.Buffer),
    (r"/(string|textwrap|difflib|unicodedata)\.py$", AllocationType.String),
    (r"/(sqlite3|faiss|annoy|hnswlib|whoosh|sklearn/neighbors)/", AllocationType.Index),
    (r"/(tempfile)\.py$", AllocationType.Temp),
)


@dataclass(frozen=True)
class Region:
    """Lines ``first..last`` of ``filename`` are tagged with ``category``."""

    filename: str
    first: int
    last: int
    category: AllocationType


class CategoryRules:
    """The category rules in force: tagged regions, user rules, default rules."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._regions: dict[str, list[Region]] = {}
        self._user: list[tuple[re.Pattern[str], AllocationType]] = []
        self._default = [(re.compile(p), c) for p, c in _DEFAULT_RULES]
        self._cache: dict[_FrameKey, AllocationType] = {}

    def add_region(self, filename: str, first: int, last: int, category: AllocationType | str) -> None:
        """Tag lines ``first..last`` of ``filename`` (idempotent)."""
        region = Region(filename, int(first), int(last), AllocationType.parse(category))
        with self._lock:
            regions = self._regions.setdefault(filename, [])
            if region not in regions:
                regions.append(region)
                self._cache.clear()

    def add_rule(self, pattern: str, category: AllocationType | str) -> None:
        """Frames whose file path matches the regular expression ``pattern`` get ``category``.

        Paths use ``/`` separators; notebook cells are matched by their ``In[n]`` label too.
        """
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"category rule pattern {pattern!r} is not a regular expression: {exc}") from None
        with self._lock:
            self._user.append((compiled, AllocationType.parse(category)))
            self._cache.clear()

    def clear_user_rules(self) -> None:
        """Forget user rules and tagged regions (default rules stay)."""
        with self._lock:
            self._user.clear()
            self._regions.clear()
            self._cache.clear()

    def classify(
        self,
        frames: Sequence[tuple[str, int]],
        tag: str | None = None,
        labels: Iterable[str] = (),
    ) -> AllocationType:
        """The category of an allocation made on ``frames`` (innermost first)."""
        if tag:
            try:
                return AllocationType.parse(tag)
            except ConfigError:
                pass
        key = tuple(frames)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        result = self._classify(key, list(labels))
        self._cache[key] = result
        return result

    def _classify(self, frames: _FrameKey, labels: list[str]) -> AllocationType:
        with self._lock:
            regions = dict(self._regions)
            user = list(self._user)
        if regions:
            for filename, lineno in frames:
                for region in regions.get(filename, ()):
                    if region.first <= lineno <= region.last:
                        return region.category
        paths = [f.replace("\\", "/") for f, _ in frames]
        for pattern, category in user:
            for path in paths + labels:
                if pattern.search(path):
                    return category
        for path in paths:
            for pattern, category in self._default:
                if pattern.search(path):
                    return category
        return AllocationType.Unknown


#: The process-wide rules.
CATEGORY_RULES = CategoryRules()

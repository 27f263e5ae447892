"""``RecommendationEngine``: an ordered list of small rules, each proposing changes with measured savings.

A rule is a function ``rule(context) -> Iterable[Draft]``. The engine runs the
rules in order, drops drafts below ``min_savings``, ranks the rest by savings
weighted by ease (Easy 1.0, Medium 0.6, Hard 0.3) and numbers them: priority 1
is the first thing to do. Add a rule with :meth:`RecommendationEngine.add_rule`.

Savings are measured on the data wherever it allows: a column's savings from
``category`` count the bytes the column really frees (its pointer array plus
each distinct string object once) minus the codes and categories it would
need; for columns over ``exact_rows`` rows they come from a random sample of
``sample_rows`` rows, with a 95% error bound (``savings_error``). Rules never
modify the user's objects.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from ..schema import Difficulty, Recommendation
from ..units import format_bytes
from .leaks import RESET_OUT
from .buffers import buffer_key, column_array, share_a_buffer
from .drafts import MB, Context, Draft, Rule
from .native import arrow_pool, library_duplicates
from .savings import arrow_text, category_savings, smallest_int_dtype

log = logging.getLogger(__name__)




# -- the rules ------------------------------------------------------------------------------------
def distinct_phrase(share: float, rows: int, sample_rows: int | None = None) -> str:
    """``"7 distinct values in 4,400,000 rows"`` (a count, not ``"0.0%"``); from a sample, says so."""
    seen = sample_rows if sample_rows is not None and sample_rows < rows else rows
    count = max(int(round(share * seen)), 1)
    values = "1 distinct value" if count == 1 else f"{count:,} distinct values"
    if seen < rows:
        return f"{values} in a {seen:,}-row sample of its {rows:,} rows"
    percent = f" ({share:.0%})" if share >= 0.01 else ""
    return f"{values} in {rows:,} rows{percent}"


def _column_holders(ctx: Context) -> dict[Any, list[tuple[str, Any]]]:
    """Every frame column, grouped by the buffer it shows (``name.column`` holders share it)."""
    groups: dict[Any, list[tuple[str, Any]]] = {}
    for name, obj in ctx.namespace.items():
        if not isinstance(obj, pd.DataFrame):
            continue
        for column in obj.columns:
            # Only arrays the frame itself holds (never a converted copy, whose address a later
            # temporary could take): the array behind a text column, Arrow's, or a numpy column's view.
            key = buffer_key(column_array(obj[column]))
            groups.setdefault(key if key is not None else ("own", name, column), []).append((name, column))
    return groups


def category_columns(ctx: Context) -> Iterable[Draft]:
    """Text columns with few distinct values → ``category`` (once per buffer: frames that
    share a column are named together, and its savings counted once)."""
    for holders in _column_holders(ctx).values():
        name, column = holders[0]
        col = ctx.namespace[name][column]
        found = category_savings(col, exact_rows=ctx.exact_rows, sample_rows=ctx.sample_rows)
        if found is None:
            continue
        savings, error, share = found
        if share > ctx.max_unique_share or savings < ctx.min_savings:
            continue
        sampled = f" (±{format_bytes(error)} at 95%)" if error else ""
        rows = len(col)
        from_sample = rows > ctx.exact_rows and not arrow_text(col)
        phrase = distinct_phrase(share, rows, ctx.sample_rows if from_sample else None)
        others = [f"`{n}`" for n, _ in holders[1:]]
        shared = (f" {', '.join(others)} share{'s' if len(others) == 1 else ''} the same column: convert "
                  f"{'it' if len(others) == 1 else 'them'} too, or nothing is freed.") if others else ""
        yield Draft(
            "category_columns", f"{name}.{column}",
            f"Column `{column}` of `{name}` has {phrase}: as a category it frees "
            f"{format_bytes(savings)}{sampled}.{shared}",
            "\n".join(f'{n}["{c}"] = {n}["{c}"].astype("category")' for n, c in holders),
            savings, Difficulty.Easy, error, True,
        )


def downcast_numbers(ctx: Context) -> Iterable[Draft]:
    """Integers that fit a smaller dtype; float64 that could be float32 (changes precision).
    A buffer shared by several frames is counted for the first of them only."""
    counted: set[Any] = set()
    for name, obj in ctx.namespace.items():
        if isinstance(obj, pd.DataFrame):
            casts: dict[str, str] = {}
            saved = 0
            lossy = False
            for column in obj.columns:
                col = obj[column]
                values = col.to_numpy() if col.dtype.kind in "iuf" and not isinstance(col.dtype, pd.api.extensions.ExtensionDtype) else None
                if values is None:
                    continue
                key = buffer_key(values)
                if key in counted:
                    continue
                counted.add(key)
                if values.dtype.kind in "iu":
                    new = smallest_int_dtype(values)
                    if new is not None:
                        casts[str(column)] = new.name
                        saved += values.nbytes - values.size * new.itemsize
                elif values.dtype == np.float64:
                    casts[str(column)] = "float32"
                    saved += values.nbytes // 2
                    lossy = True
            if casts and saved >= ctx.min_savings:
                note = " float64 → float32 keeps about 7 significant digits: check that is enough." if lossy else ""
                yield Draft(
                    "downcast_numbers", name,
                    f"Numeric columns of `{name}` fit smaller dtypes ({', '.join(f'{c}: {t}' for c, t in casts.items())}); "
                    f"frees {format_bytes(saved)}.{note}",
                    f"{name} = {name}.astype({casts!r})", saved, Difficulty.Medium if lossy else Difficulty.Easy, 0, True,
                )
        elif isinstance(obj, np.ndarray) and obj.base is None and obj.dtype.kind in "iu":
            new = smallest_int_dtype(obj)
            if new is not None:
                saved = obj.nbytes - obj.size * new.itemsize
                if saved >= ctx.min_savings:
                    yield Draft("downcast_numbers", name, f"`{name}` ({obj.dtype}) fits {new.name}: frees {format_bytes(saved)}.",
                                f'{name} = {name}.astype("{new.name}")', saved, Difficulty.Easy, 0, True)


def output_history(ctx: Context) -> Iterable[Draft]:
    """``Out[n]`` / ``_`` holding big objects no variable holds."""
    last = ctx.last
    if last is None:
        return
    outputs = [r for r in last.holders.values() if r.kind == "output" and r.size > 0]
    total = sum(r.size for r in outputs)
    if total < ctx.min_savings:
        return
    names = ", ".join(r.name for r in sorted(outputs, key=lambda r: -r.size)[:5])
    yield Draft(
        "output_history", names,
        f"The output history holds {format_bytes(total)} that no variable holds ({names}). Clear it, and end "
        "cells whose value you do not need with `;`.",
        RESET_OUT, total, Difficulty.Easy, 0, True,
    )


def big_temporaries(ctx: Context) -> Iterable[Draft]:
    """A session whose peak is far above what it retained: the line that made the temporary."""
    for result in list(ctx.results)[-5:]:
        s = result.summary
        peak, retained = s.peak_bytes, s.retained_bytes
        gap = peak - max(retained, 0)
        if gap < max(ctx.min_savings, 10 * MB) or peak < 2 * max(retained, 1):
            continue
        lines = result.lines
        if lines.empty:
            continue
        lines = lines.assign(temp=(lines["peak_bytes"] - lines["retained_bytes"]).astype("Int64"))
        top = lines.sort_values("temp", ascending=False).iloc[0]
        held = int(top["temp"])
        where = (
            f"`{top['code']}` at {top['location']} held {format_bytes(held)} of temporaries"
            if held >= ctx.min_savings
            else f"the temporaries came and went inside one statement (the biggest line, `{top['code']}` at "
            f"{top['location']}, allocated {format_bytes(int(top['allocated_bytes']))} in all)"
        )
        yield Draft(
            "big_temporaries", str(top["location"]),
            f"{s.label}: the peak ({format_bytes(peak)}) is far above what stayed ({format_bytes(retained)}); "
            f"{where}. Use in-place "
            "operations (`x *= 2`, `df.eval(..., inplace=True)`), or process in chunks.",
            f"# {top['location']}: {top['code']}\nfor chunk in range(0, n, chunk_size):  # process a slice at a time\n    ...",
            gap, Difficulty.Medium, 0, True,
        )


def unbounded_caches(ctx: Context) -> Iterable[Draft]:
    """An unbounded ``lru_cache``/``cache`` holding a lot: clear it and bound it."""
    last = ctx.last
    if last is None:
        return
    for reading in last.holders.values():
        if reading.kind != "cache" or reading.capacity is not None or reading.size < ctx.min_savings:
            continue
        count = reading.count or 0
        bound = max(count // 4, 1)
        yield Draft(
            "unbounded_caches", reading.name,
            f"`{reading.name}` is an unbounded cache holding {format_bytes(reading.size)} in {count} entries. Clear it "
            f"and bound it (e.g. maxsize={bound}).",
            f"{reading.name}.cache_clear()\n# where it is defined: @functools.lru_cache(maxsize={bound})",
            reading.size, Difficulty.Easy, 0, True,
        )


def leak_holders(ctx: Context) -> Iterable[Draft]:
    """Each leak: its holder and how to free it (outputs and caches have their own rules)."""
    for leak in ctx.leaks:
        if leak.status == "resolved" or leak.holder_kind in ("output", "cache") or leak.size < ctx.min_savings:
            continue
        native = leak.holder_kind == "native"
        yield Draft(
            "leak_holders", leak.holder,
            f"Leak ({leak.estimated_impact.value}): {leak.reason}; {format_bytes(leak.size)} held by {leak.holder}.",
            leak.fix, leak.size, Difficulty.Hard if native else Difficulty.Easy, 0, not native,
        )


def fragmentation(ctx: Context) -> Iterable[Draft]:
    """Free memory malloc keeps inside its heap: ``malloc_trim`` returns it (glibc)."""
    last = ctx.last
    if last is None or last.heap_releasable is None or last.heap_free is None or last.heap_in_use is None:
        return
    releasable = last.heap_releasable
    if releasable < max(ctx.min_savings, 16 * MB):
        return
    rss = last.rss
    yield Draft(
        "fragmentation", "malloc heap",
        f"malloc keeps {format_bytes(last.heap_free)} free inside its heap (in use {format_bytes(last.heap_in_use)}"
        + (f", RSS {format_bytes(rss)}" if rss else "")
        + f"): freed objects left holes it has not returned. `malloc_trim` gives back the whole free pages, about "
        f"{format_bytes(releasable)} (from malloc's own free-chunk histogram).",
        'import ctypes; ctypes.CDLL("libc.so.6").malloc_trim(0)', releasable, Difficulty.Easy, 0, False,
    )


def duplicates(ctx: Context) -> Iterable[Draft]:
    """The same data held twice (a copy kept beside the original)."""
    groups: dict[tuple[Any, ...], list[tuple[str, Any]]] = {}
    for name, obj in ctx.namespace.items():
        if isinstance(obj, pd.DataFrame):
            key: tuple[Any, ...] = ("df", obj.shape, tuple(map(str, obj.dtypes)), tuple(map(str, obj.columns)))
        elif isinstance(obj, np.ndarray) and obj.dtype != object:
            key = ("nd", obj.shape, obj.dtype.str)
        else:
            continue
        groups.setdefault(key, []).append((name, obj))
    for members in groups.values():
        if len(members) < 2:
            continue
        kept: list[tuple[str, Any]] = []
        for name, obj in members:
            twin = None
            for kname, kobj in kept:
                if kobj is obj or share_a_buffer(kobj, obj):
                    continue
                same = kobj.equals(obj) if isinstance(obj, pd.DataFrame) else np.array_equal(kobj, obj)
                if same:
                    twin = kname
                    break
            if twin is None:
                kept.append((name, obj))
                continue
            size = int(obj.memory_usage(deep=True).sum()) if isinstance(obj, pd.DataFrame) else int(obj.nbytes)
            if size >= ctx.min_savings:
                yield Draft("duplicates", name, f"`{name}` holds the same data as `{twin}` ({format_bytes(size)}); keep one.",
                            f"del {name}  # or {name} = {twin}", size, Difficulty.Easy, 0, True)


DEFAULT_RULES: tuple[Rule, ...] = (
    leak_holders,
    output_history,
    unbounded_caches,
    category_columns,
    downcast_numbers,
    duplicates,
    library_duplicates,
    big_temporaries,
    fragmentation,
    arrow_pool,
)


class RecommendationEngine:
    """Runs the rules in order and ranks what they propose."""

    def __init__(self, rules: Sequence[Rule] = DEFAULT_RULES) -> None:
        #: The rules, in order (a list: insert, remove or reorder freely).
        self.rules: list[Rule] = list(rules)

    def add_rule(self, rule: Rule, *, index: int | None = None) -> None:
        """Add ``rule(context) -> Iterable[Draft]`` (at the end, or at ``index``)."""
        self.rules.insert(len(self.rules) if index is None else index, rule)

    def recommend(self, ctx: Context) -> list[Recommendation]:
        """Recommendations, most important first (priority 1)."""
        drafts: list[Draft] = []
        for rule in self.rules:
            try:
                drafts.extend(d for d in rule(ctx) if d.estimated_savings >= ctx.min_savings)
            except Exception:  # a rule failing on odd data must not hide the others, nor fail silently
                log.warning(
                    "cgmem_nb: recommendation rule %s failed and was skipped",
                    getattr(rule, "__name__", repr(rule)),
                    exc_info=True,
                )
        drafts.sort(key=lambda d: d.estimated_savings * d.difficulty.weight, reverse=True)
        return [
            Recommendation(
                priority=i, rule=d.rule, target=d.target, description=d.description, action=d.action,
                estimated_savings=int(d.estimated_savings), savings_error=int(d.savings_error), measured=d.measured,
                difficulty=d.difficulty,
            )
            for i, d in enumerate(drafts, start=1)
        ]


#: The process-wide recommendation engine (add rules with ``RECOMMENDATION_ENGINE.add_rule``).
RECOMMENDATION_ENGINE = RecommendationEngine()

__all__ = [
    "DEFAULT_RULES",
    "MB",
    "RECOMMENDATION_ENGINE",
    "Context",
    "Draft",
    "RecommendationEngine",
    "Rule",
    "arrow_pool",
    "big_temporaries",
    "buffer_key",
    "category_columns",
    "distinct_phrase",
    "category_savings",
    "downcast_numbers",
    "duplicates",
    "fragmentation",
    "leak_holders",
    "library_duplicates",
    "output_history",
    "smallest_int_dtype",
    "unbounded_caches",
]

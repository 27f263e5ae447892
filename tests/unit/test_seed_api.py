"""The seed's API: manual records, metrics, categories and TrackedCache."""

from __future__ import annotations

import gc
import json
import re
import sys

import numpy as np
import pytest

from cgmem_nb import MEMORY_PROFILER, AllocationType, ConfigError, MemoryProfiler, ProfilerConfig, TrackedCache
from cgmem_nb.categories import CATEGORY_RULES, CategoryRules

MB = 1000**2


class Blob:
    def __init__(self, n: int) -> None:
        self.payload = bytes(n)


def test_record_allocation_of_size_and_deallocation() -> None:
    profiler = MemoryProfiler()
    rid = profiler.record_allocation(4096, "Cache")
    metrics = profiler.get_metrics()
    assert metrics.allocation_count == 1 and metrics.tracked_bytes == 4096
    assert metrics.by_category == {"Cache": 4096}
    assert profiler.record_deallocation(rid) is True
    assert profiler.record_deallocation(rid) is False  # already freed
    metrics = profiler.get_metrics()
    assert metrics.deallocation_count == 1 and metrics.tracked_bytes == 0 and metrics.tracked_peak_bytes == 4096


def test_record_allocation_of_object_measures_and_follows_collection() -> None:
    profiler = MemoryProfiler()
    blob = Blob(3 * MB)
    profiler.record_allocation(blob, AllocationType.Buffer)
    tracked = profiler.get_metrics().tracked_bytes
    assert 3 * MB <= tracked <= 3 * MB + 2000
    del blob
    gc.collect()
    metrics = profiler.get_metrics()
    assert metrics.tracked_bytes == 0 and metrics.deallocation_count == 1


def test_record_allocation_sizes_numpy_and_pandas_deeply() -> None:
    import pandas as pd

    profiler = MemoryProfiler()
    arr = np.zeros(1_000_000)
    frame = pd.DataFrame({"s": ["x" * 20] * 10_000})
    a = profiler.record_allocation(arr, "Vector")
    f = profiler.record_allocation(frame, "Vector")
    sizes = {rid: size for rid, size, _, _ in profiler.tracked_allocations()}
    assert abs(sizes[a] - arr.nbytes) < 1000
    assert abs(sizes[f] - frame.memory_usage(deep=True).sum()) < 1000


@pytest.mark.parametrize("bad", [-1, True])
def test_record_allocation_rejects_bad_sizes(bad: int) -> None:
    with pytest.raises(ConfigError):
        MemoryProfiler().record_allocation(bad)


def test_unknown_category_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="Cache, Vector, Graph, Parser, String, Buffer, Index, Temp, Unknown"):
        MemoryProfiler().record_allocation(10, "Gizmo")


def test_metrics_report_rss_and_limit() -> None:
    profiler = MemoryProfiler(ProfilerConfig(memory_limit_bytes=250 * MB))
    metrics = profiler.get_metrics()
    assert metrics.limit == 250 * MB and metrics.limit_source == "config"
    assert metrics.current_usage == pytest.approx(profiler.get_current_usage(), rel=0.2)
    assert metrics.peak_usage >= metrics.current_usage > 0
    assert metrics.usage_ratio == metrics.current_usage / (250 * MB)


def test_category_block_tags_allocations() -> None:
    with MEMORY_PROFILER.session() as s:
        with MEMORY_PROFILER.category("Index"):
            index = {i: str(i) for i in range(100_000)}
        plain = [str(i) for i in range(100_000)]
    cats = s.result.categories.set_index("category")  # type: ignore[union-attr]
    assert cats.loc["Index", "retained_bytes"] > 5 * MB
    # Truth from the objects themselves (a str is 8 bytes smaller from 3.12); sampled, 100k
    # small strings are estimated within 8% (one standard deviation): allow 30%.
    truth = sys.getsizeof(plain) + sum(map(sys.getsizeof, plain))
    assert cats.loc["Unknown", "retained_bytes"] == pytest.approx(truth, rel=0.3)
    del index, plain


@MEMORY_PROFILER.category("Graph")
def build_graph(n: int) -> dict[int, list[int]]:
    return {i: [i + 1, i + 2] for i in range(n)}


def test_category_decorator_tags_the_function() -> None:
    with MEMORY_PROFILER.session() as s:
        graph = build_graph(50_000)
    cats = s.result.categories.set_index("category")  # type: ignore[union-attr]
    assert cats.loc["Graph", "retained_bytes"] > 4 * MB
    del graph


def test_default_rules_and_user_rules() -> None:
    rules = CategoryRules()
    assert rules.classify([("/x/site-packages/numpy/core/numeric.py", 10), ("/home/u/a.py", 3)]).value == "Vector"
    assert rules.classify([("/usr/lib/python3.11/json/decoder.py", 5)]).value == "Parser"
    assert rules.classify([("/home/u/a.py", 3)]).value == "Unknown"
    rules.add_rule(r"/home/u/a\.py$", "Temp")
    assert rules.classify([("/home/u/a.py", 3)]).value == "Temp"
    assert rules.classify([("/home/u/b.py", 3)], tag="String").value == "String"
    with pytest.raises(ConfigError, match="not a regular expression"):
        rules.add_rule("(", "Temp")


def test_the_tracked_cache_module_is_in_the_cache_category() -> None:
    from cgmem_nb.session import cache

    # An allocation made through TrackedCache's code on behalf of user code is Cache.
    assert CATEGORY_RULES.classify(((cache.__file__, 40), ("/home/u/a.py", 3))).value == "Cache"


def test_every_default_rule_on_cgmem_nb_paths_names_a_real_module() -> None:
    import pathlib
    import re as regex

    import cgmem_nb
    from cgmem_nb.categories import _DEFAULT_RULES

    files = [str(p).replace("\\", "/") for p in pathlib.Path(cgmem_nb.__file__).parent.rglob("*.py")]
    for pattern, _category in _DEFAULT_RULES:
        if "cgmem_nb" in pattern:
            assert any(regex.search(pattern, f) for f in files), f"rule {pattern!r} matches no module of cgmem_nb"


def test_json_parsing_is_parser_category() -> None:
    text = json.dumps([{"k": str(i)} for i in range(50_000)])
    with MEMORY_PROFILER.session() as s:
        parsed = json.loads(text)
    cats = s.result.categories.set_index("category")  # type: ignore[union-attr]
    assert cats.loc["Parser", "retained_bytes"] > 5 * MB
    del parsed


def test_tracked_cache_records_inserts_and_evictions() -> None:
    profiler = MemoryProfiler()
    cache: TrackedCache[str, bytes] = TrackedCache(max_bytes="3 MB", profiler=profiler)
    for i in range(5):
        cache[f"k{i}"] = bytes(MB)
    assert len(cache) <= 3 and cache.evictions >= 2
    metrics = profiler.get_metrics()
    assert metrics.by_category["Cache"] == cache.nbytes <= 3 * MB + 1000
    assert metrics.allocation_count == 5 and metrics.deallocation_count == cache.evictions
    assert "k4" in cache and "k0" not in cache  # least recently used went first
    cache.clear()
    assert profiler.get_metrics().tracked_bytes == 0


def test_tracked_cache_rejects_bad_bound() -> None:
    with pytest.raises(Exception, match=re.escape("'lots'")):
        TrackedCache(max_bytes="lots")

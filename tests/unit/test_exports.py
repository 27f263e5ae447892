"""JSON, CSV and Prometheus exports against results and state the tests create."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from cgmem_nb import MEMORY_PROFILER, MemoryProfiler, ProfileResult, ProfilerConfig, export
from cgmem_nb.engine.pressure import level_for
from cgmem_nb.errors import ResultFormatError

MB = 1000**2


@pytest.fixture
def result() -> ProfileResult:
    with MEMORY_PROFILER.session("export-test") as s:
        kept = [bytes(MB) for _ in range(8)]  # noqa: F841 - 8 MB retained
    assert s.result is not None
    return s.result


def test_result_csv_reads_back_with_the_same_frames_and_dtypes(result: ProfileResult, tmp_path: Path) -> None:
    paths = result.to_csv(tmp_path)
    assert sorted(paths) == sorted(result.table_names)
    assert all(p.name == f"{name}.csv" for name, p in paths.items())
    tables = export.read_csv_tables(tmp_path)
    for name in result.table_names:
        pd.testing.assert_frame_equal(tables[name], result.table(name), check_exact=True)
    assert ProfileResult.from_csv(tmp_path) == result


def test_csv_keeps_empty_strings_and_missing_values_apart(tmp_path: Path) -> None:
    frame = pd.DataFrame({"s": ["", None, "a,b\n\"q\""], "n": [1, None, 3], "f": [0.1, float("nan"), 1 / 3]}).astype(
        {"s": "string", "n": "Int64", "f": "float64"}
    )
    export.write_tables_csv(tmp_path, {"t": frame})
    back = export.read_csv_tables(tmp_path)["t"]
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    # pandas alone, with the documented arguments, reads the same frame
    dtypes = json.loads((tmp_path / "manifest.json").read_text())["tables"]["t"]["dtypes"]
    plain = pd.read_csv(tmp_path / "t.csv", dtype=dtypes, **export.read_csv_kwargs())
    pd.testing.assert_frame_equal(plain, frame, check_exact=True)


def test_csv_write_leaves_no_temporary_files(result: ProfileResult, tmp_path: Path) -> None:
    result.to_csv(tmp_path)
    result.to_csv(tmp_path)  # overwrite in place
    assert sorted(os.listdir(tmp_path)) == sorted([f"{n}.csv" for n in result.table_names] + ["manifest.json"])


def test_reading_a_directory_without_an_export_names_it(tmp_path: Path) -> None:
    with pytest.raises(ResultFormatError, match=str(tmp_path)):
        export.read_csv_tables(tmp_path)


def test_json_round_trips_exactly(result: ProfileResult, tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    result.to_json(path)
    assert ProfileResult.from_json(path) == result


def test_profiler_exports_hold_manual_records_and_sessions(tmp_path: Path) -> None:
    prof = MemoryProfiler(ProfilerConfig(memory_limit_bytes=1000 * MB))
    ids = [prof.record_allocation(3 * MB, "Cache"), prof.record_allocation(2 * MB, "Vector")]
    prof.record_deallocation(ids[1])
    with prof.session("one"):
        pass
    tables = export.tables_from_json(prof.export_json())
    assert tables["allocations"]["size_bytes"].tolist() == [3 * MB]
    assert tables["sessions"]["label"].tolist() == ["one"]
    m = tables["metrics"].iloc[0]
    assert (m.allocation_count, m.deallocation_count, m.tracked_bytes, m.limit_bytes) == (2, 1, 3 * MB, 1000 * MB)
    prof.export_csv(tmp_path)
    csv_tables = export.read_csv_tables(tmp_path)
    for name in ("allocations", "sessions", "category_bytes"):
        pd.testing.assert_frame_equal(csv_tables[name], tables[name], check_exact=True)
    assert json.loads(prof.export_json())["results"][0]["summary"]["label"] == "one"


def test_prometheus_text_parses_and_matches_the_profiler() -> None:
    from prometheus_client.parser import text_string_to_metric_families

    prof = MemoryProfiler(ProfilerConfig(memory_limit_bytes=1000 * MB))
    prof.record_allocation(5 * MB, "Cache")
    prof.record_allocation(1 * MB, "Cache")
    with prof.session():
        pass
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(prof.export_prometheus())
        for s in fam.samples
    }
    assert samples[("cgmem_memory_limit_bytes", ())] == 1000 * MB
    assert samples[("cgmem_allocations_total", ())] == 2
    assert samples[("cgmem_sessions_total", ())] == 1
    assert samples[("cgmem_category_bytes", (("category", "Cache"), ("source", "tracked")))] == 6 * MB
    assert samples[("cgmem_memory_current_bytes", ())] > 10 * MB
    assert ("cgmem_pressure_level", ()) in samples and ("cgmem_leaks_detected_total", ()) in samples


@pytest.mark.parametrize(("used", "level"), [(690, "Low"), (700, "Medium"), (850, "High"), (950, "Critical"), (2000, "Critical")])
def test_pressure_level_thresholds(used: int, level: str) -> None:
    assert level_for(used, 1000).value == level

"""The pytest plugin, driven through pytest's own ``pytester`` on tests that allocate known sizes."""

from __future__ import annotations

import json
import re

import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.integration

MB = 1000**2


def _mb(text: str, label: str) -> float:
    match = re.search(rf"{label} ([0-9.]+) MB", text)
    assert match, f"no '{label} N MB' in: {text}"
    return float(match.group(1))


def test_memlimit_passes_a_test_under_its_limit(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.memlimit("50 MB")
        def test_small():
            data = bytes(10_000_000)
            assert len(data) == 10_000_000
        """
    )
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_memlimit_fails_naming_limit_peak_and_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_big="""
        import pytest

        @pytest.mark.memlimit("50 MB")
        def test_big():
            data = bytes(80_000_000)
            assert data[0] == 0
        """
    )
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    line = next(ln for ln in text.splitlines() if "was limited to" in ln)
    assert "test_big was limited to 50.0 MB but peaked at" in line
    assert abs(_mb(line, "peaked at") - 80) <= 4, line
    assert "top lines: test_big.py:5 (80.0 MB) `data = bytes(80_000_000)`" in line
    # The full text report is attached to the failure.
    assert "cgmem_nb memory profile" in text


def test_memlimit_with_a_bad_size_fails_with_the_accepted_forms(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.memlimit("fifty megs")
        def test_x():
            pass
        """
    )
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*memlimit 'fifty megs' is not a size*500 MB*"])


def test_no_leaks_fails_on_growth_naming_line_and_holder(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_leaky="""
        import pytest

        CACHE = []

        @pytest.mark.no_leaks(tolerance="1 MB", warmup=1, runs=3)
        def test_leaky():
            CACHE.append(bytes(5_000_000))
        """
    )
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    line = next(ln for ln in result.stdout.str().splitlines() if "leaks:" in ln)
    assert "test_leaky leaks: each of 3 runs kept more than the tolerance of 1.0 MB" in line
    kept = [float(x) for x in re.findall(r"\+([0-9.]+) MB", line.split("(")[1])][:3]
    assert all(abs(k - 5.0) <= 0.25 for k in kept), line
    assert "lines (last run): test_leaky.py:7 (+5.0 MB) `CACHE.append(bytes(5_000_000))`" in line
    assert "held by: test_leaky.CACHE (+3 items)" in line


def test_no_leaks_names_a_holder_the_test_module_does_not_see(pytester: pytest.Pytester) -> None:
    # The leak is in another module: the census of the test module's globals finds nothing there,
    # the leak detector over the observations taken after each run names the holder.
    pytester.makepyfile(
        registry="""
        REGISTRY = []

        def register(n):
            REGISTRY.append(bytes(n))
        """,
        test_registry="""
        import pytest
        import registry

        @pytest.mark.no_leaks(tolerance="1 MB", warmup=1, runs=3)
        def test_registers():
            registry.register(5_000_000)
        """,
    )
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    line = next(ln for ln in result.stdout.str().splitlines() if "leaks:" in ln)
    assert "test_registers leaks: each of 3 runs kept more than the tolerance of 1.0 MB" in line
    assert line.endswith("held by: registry.REGISTRY (module, 20.0 MB, +15.0 MB)"), line


def test_no_leaks_passes_temporaries_and_warmed_caches(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import functools
        import pytest

        @functools.lru_cache(maxsize=None)
        def table():
            return bytes(3_000_000)

        @pytest.mark.no_leaks
        def test_clean():
            tmp = [bytes(1000) for _ in range(20_000)]  # 20 MB, dropped
            cycle = {}
            cycle["self"] = cycle  # garbage in a cycle is collected, not a leak
            assert len(table()) == 3_000_000  # filled once, during the warm-up
            del tmp
        """
    )
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_no_leaks_rejects_bad_arguments(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.no_leaks(runs=1)
        def test_x():
            pass
        """
    )
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no_leaks runs=1 is not accepted: give 2 to 1000 measured runs*"])


def test_memprofile_fixture_gives_a_result_to_assert_on(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        MB = 1000**2

        def test_measure(memprofile):
            kept = bytes(30 * MB)
            tmp = bytes(20 * MB)
            del tmp
            result = memprofile.stop()
            assert abs(result.summary.peak_bytes - 50 * MB) < 2.5 * MB
            assert abs(result.summary.retained_bytes - 30 * MB) < 1.5 * MB
            assert result.lines.iloc[0].code == "kept = bytes(30 * MB)"

        def test_unstopped_session_ends_at_teardown(memprofile):
            assert memprofile.running
        """
    )
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_summary_lists_heaviest_tests_first(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_sizes="""
        def test_light():
            data = bytes(5_000_000)

        def test_heavy():
            data = bytes(40_000_000)

        def test_middle():
            data = bytes(20_000_000)
        """
    )
    result = pytester.runpytest_inprocess("--memprofile", "--memprofile-top", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    text = result.stdout.str()
    assert "cgmem_nb: memory of the 2 heaviest tests (traced peak)" in text
    rows = [ln for ln in text.splitlines() if "test_sizes.py::" in ln]
    assert [r.split("::")[1] for r in rows] == ["test_heavy", "test_middle"]
    assert abs(float(rows[0].split()[0]) - 40.0) <= 2.0


def test_ini_turns_on_summary_and_default_limit(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        memprofile = true
        memprofile_limit = 30 MB
        """
    )
    pytester.makepyfile(
        """
        import pytest

        def test_over_default():
            data = bytes(40_000_000)

        @pytest.mark.memlimit("60 MB")
        def test_marker_wins():
            data = bytes(40_000_000)
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_over_default was limited to 30.0 MB but peaked at 4*MB*", "*heaviest tests*"])


def test_command_line_limit_wins_over_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nmemprofile_limit = 1 MB\n")
    pytester.makepyfile("def test_x():\n    data = bytes(10_000_000)\n")
    assert pytester.runpytest_inprocess("-p", "no:cacheprovider").ret == 1
    result = pytester.runpytest_inprocess("--memprofile-limit", "50 MB", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result = pytester.runpytest_inprocess("--memprofile-limit", "none", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_json_file_holds_every_tests_figures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_two="""
        KEEP = []

        def test_keeps():
            KEEP.append(bytes(12_000_000))

        def test_fails():
            tmp = bytes(25_000_000)
            assert False
        """
    )
    result = pytester.runpytest_inprocess("--memprofile-json", "out/mem.json", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    doc = json.loads((pytester.path / "out" / "mem.json").read_text())
    assert doc["format"] == "cgmem_nb.pytest" and doc["version"] == 1
    keeps, fails = doc["tests"]["test_two.py::test_keeps"], doc["tests"]["test_two.py::test_fails"]
    assert abs(keeps["retained_bytes"] - 12 * MB) < 0.6 * MB and keeps["outcome"] == "passed"
    assert abs(fails["peak_bytes"] - 25 * MB) < 1.3 * MB and fails["outcome"] == "failed"
    assert fails["tracer"] in {"exact", "sampled"}


def test_bad_option_values_are_usage_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest_inprocess("--memprofile-limit", "lots", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "memprofile limit 'lots' is not a size" in result.stderr.str()
    pytester.makeini("[pytest]\nmemprofile_tracer = fast\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "memprofile tracer 'fast' is not accepted" in result.stderr.str()


def test_without_markers_or_options_nothing_is_traced(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import tracemalloc
        from cgmem_nb import MEMORY_PROFILER

        def test_plain():
            assert not tracemalloc.is_tracing()
            assert MEMORY_PROFILER.active_sessions == []
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "cgmem_nb:" not in result.stdout.str()


def test_plugin_is_registered_by_entry_point_in_a_fresh_process(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.memlimit("5 MB")
        def test_big():
            data = bytes(20_000_000)
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_big was limited to 5.0 MB but peaked at 2*MB*"])


BAD_MARKERS = {
    "memlimit_inf": ('@pytest.mark.memlimit(float("inf"))', "memlimit inf"),
    "memlimit_digits": ('@pytest.mark.memlimit("' + "9" * 400 + '")', "too large"),
    "tolerance_inf": ("@pytest.mark.no_leaks(tolerance=float('inf'))", "no_leaks tolerance inf"),
    "runs_huge": ("@pytest.mark.no_leaks(runs=10**7)", "runs=10000000 is not accepted"),
    "warmup_huge": ("@pytest.mark.no_leaks(warmup=10**7)", "warmup=10000000 is not accepted"),
}


@pytest.mark.parametrize("case", sorted(BAD_MARKERS))
def test_bad_marker_values_fail_the_test_with_a_message(pytester: pytest.Pytester, case: str) -> None:
    marker, needle = BAD_MARKERS[case]
    pytester.makepyfile(f"import pytest\n\n{marker}\ndef test_it():\n    pass\n")
    result = pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert needle in text and "INTERNALERROR" not in text and "OverflowError" not in text


@pytest.mark.parametrize(
    ("option", "needle"),
    [("--memprofile-limit=" + "9" * 400, "too large"), ("--memprofile-limit=inf", "'inf'"),
     ("--memprofile-json=/etc/hostname/m.json", "is a file, not a folder"), ("--memprofile-top=" + "9" * 400, "memprofile top")],
)
def test_bad_options_stop_before_the_run(pytester: pytest.Pytester, option: str, needle: str) -> None:
    pytester.makepyfile("def test_it():\n    pass\n")
    result = pytester.runpytest_subprocess(option, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stderr.str() + result.stdout.str()
    assert needle in text and "INTERNALERROR" not in text and "Traceback" not in text


def test_a_json_path_that_is_a_folder_is_refused(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_it():\n    pass\n")
    result = pytester.runpytest_subprocess(f"--memprofile-json={pytester.path}", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR and "it is a folder" in result.stderr.str()

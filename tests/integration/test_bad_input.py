"""Every bad value an adversarial sweep found (item 11 of issue 14) is a CgmemError subclass or
an IPython UsageError naming the value and the accepted forms; none kills a thread or the kernel."""

from __future__ import annotations

import math
import re

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from cgmem_nb import MEMORY_PROFILER, ProfilerConfig
from cgmem_nb.engine.monitor import MONITOR
from cgmem_nb.errors import CgmemError, ConfigError, SizeError
from cgmem_nb.integrations import cli
from cgmem_nb.session.history import WATCHER
from cgmem_nb.units import parse_size

pytestmark = pytest.mark.integration
DIGITS = "9" * 400


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, 10**400, DIGITS, DIGITS + " MB", "1e300"])
def test_sizes_out_of_range_are_size_errors(value: object) -> None:
    with pytest.raises(SizeError) as info:
        parse_size(value)  # type: ignore[arg-type]
    assert "size" in str(info.value) and len(str(info.value)) < 400


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"limit": math.inf}, "inf"), ({"limit": 0}, "limit=0"), ({"limit": DIGITS}, "too large"),
     ({"interval": 1}, "256 bytes"), ({"interval": "100"}, "256 bytes"), ({"interval": math.nan}, "nan")],
)
def test_session_arguments(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(CgmemError, match=needle):
        MEMORY_PROFILER.session(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("env", "needle"),
    [({"MEMORY_PROFILER_SAMPLING_RATE": "1e-300"}, "1e-06"), ({"MEMORY_PROFILER_SAMPLING_RATE": "nan"}, "'nan'"),
     ({"MEMORY_PROFILER_LIMIT_MB": DIGITS}, "positive number of megabytes"), ({"MEMORY_PROFILER_LIMIT_MB": "inf"}, "'inf'"),
     ({"MEMORY_PROFILER_DASHBOARD_PORT": DIGITS}, "0 to 65535"), ({"MEMORY_PROFILER_ENABLED": "maybe"}, "'maybe'")],
)
def test_bad_environment_values(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        ProfilerConfig.from_env(env)


@pytest.mark.parametrize(
    "changes",
    [{"sampling_rate": 1e-300}, {"leak_detection_interval": 1e300}, {"leak_detection_interval": math.inf},
     {"history_retention": math.nan}, {"sample_interval": 1e-9}],
)
def test_bad_config_values(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=next(iter(changes))):
        ProfilerConfig(**changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("interval", [math.inf, math.nan, 1e300, 1e-9, 0, -1])
def test_the_monitor_refuses_intervals_that_would_stall_it(interval: float) -> None:
    with pytest.raises(ConfigError, match="monitor interval"):
        MONITOR.subscribe(lambda tick: None, interval)
    assert not MONITOR.running


@pytest.mark.parametrize("interval", ["inf", "1e300", "1e-9", "nan", "-1"])
def test_memwatch_intervals(shell: InteractiveShell, interval: str) -> None:
    with pytest.raises(UsageError, match=re.escape(f"--interval {float(interval)!r} is not accepted: give 0 (off) or seconds")):
        shell.run_line_magic("memwatch", f"on --interval {interval}")
    assert not WATCHER.on and not MONITOR.running
    with pytest.raises(ConfigError, match="interval"):
        WATCHER.start(shell, MEMORY_PROFILER, interval=math.inf)


def test_memwatch_with_a_valid_interval_keeps_the_monitor_alive(shell: InteractiveShell) -> None:
    shell.run_line_magic("memwatch", "on --interval 0.05")
    try:
        shell.run_cell("x = 1", store_history=True)
        assert WATCHER.on and MONITOR.running
    finally:
        shell.run_line_magic("memwatch", "off")


@pytest.mark.parametrize(
    ("magic", "line", "needle"),
    [("mempanel", "--rate inf", "--rate"), ("memvars", f"--top {DIGITS}", "--top"), ("memrecs", "--top -1", "--top"),
     ("memwatch", "on --interval 'x", "No closing quotation"), ("memdash", "--token ''", "token")],
)
def test_other_magics(shell: InteractiveShell, magic: str, line: str, needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        shell.run_line_magic(magic, line)


def test_a_bad_environment_is_a_one_line_usage_error_in_every_magic(shell: InteractiveShell, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEMORY_PROFILER_SAMPLING_RATE", "lots")
    saved = MEMORY_PROFILER._config  # noqa: SLF001 - the config is read from the environment once
    MEMORY_PROFILER._config = None
    try:
        for magic, line in (("memprofile", "-q x = 1"), ("memwatch", "on"), ("memleaks", ""), ("mempanel", ""), ("memdash", "--port 0")):
            with pytest.raises(UsageError, match="MEMORY_PROFILER_SAMPLING_RATE='lots'"):
                shell.run_line_magic(magic, line)
        with pytest.raises(UsageError, match="MEMORY_PROFILER_SAMPLING_RATE"):
            shell.run_cell_magic("memprofile", "-q", "x = 1\n")
        assert shell.run_cell("y = 2", store_history=True).success  # cells still run
    finally:
        MEMORY_PROFILER._config = saved


@pytest.mark.parametrize(
    "argv",
    [["run", "--limit", DIGITS, "x.py"], ["run", "--limit", "inf", "x.py"], ["run", "--top", "-1", "x.py"],
     ["run", "--depth", DIGITS, "x.py"], ["run", "--limit", "0", "x.py"]],
)
def test_cli_options(argv: list[str], tmp_path: object, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    (__import__("pathlib").Path("x.py")).write_text("x = 1\n")
    assert cli.main(argv) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("cgmem_nb: ") and "Traceback" not in err

from __future__ import annotations

from datetime import timedelta

import pytest

from cgmem_nb import ConfigError, ProfilerConfig, SizeError, format_bytes, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [("500 MB", 500_000_000), ("2 GiB", 2 * 1024**3), ("750MiB", 750 * 1024**2), ("1048576", 1048576), (" 1.5 kb ", 1500), (42, 42)],
)
def test_parse_size_accepts_decimal_and_binary_units(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["", "MB", "12 parsecs", "-5 MB", "1e3", True, -1, [1]])
def test_parse_size_names_the_bad_value(bad: object) -> None:
    with pytest.raises(SizeError) as info:
        parse_size(bad)  # type: ignore[arg-type]
    assert repr(bad) in str(info.value)


def test_format_bytes_uses_decimal_units() -> None:
    assert format_bytes(200_000_000) == "200.0 MB"
    assert format_bytes(512) == "512 B"
    assert format_bytes(-1_500_000) == "-1.5 MB"
    assert format_bytes(1_500_000, signed=True) == "+1.5 MB"
    assert format_bytes(None) == "–"


def test_config_defaults_are_valid_and_frozen() -> None:
    config = ProfilerConfig()
    assert config.sampling_rate is None and config.enabled  # None: sampled where available
    with pytest.raises(AttributeError):
        config.enabled = False  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stack_trace_depth", 0),
        ("stack_trace_depth", 101),
        ("sampling_rate", 0.0),
        ("sampling_rate", 1.5),
        ("memory_limit_bytes", -1),
        ("memory_limit_bytes", "lots"),
        ("leak_detection_interval", -3),
        ("enabled", "yes"),
        ("dashboard_port", 70000),
        ("sample_interval", 0.0001),
    ],
)
def test_config_rejects_bad_values_naming_field_and_value(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as info:
        ProfilerConfig(**{field: value})  # type: ignore[arg-type]
    assert field in str(info.value) and repr(value) in str(info.value)


def test_config_accepts_timedelta_and_size_strings() -> None:
    config = ProfilerConfig(leak_detection_interval=timedelta(minutes=1), memory_limit_bytes="2 GiB")  # type: ignore[arg-type]
    assert config.leak_detection_interval == 60.0
    assert config.memory_limit_bytes == 2 * 1024**3


def test_from_env_reads_every_variable() -> None:
    env = {
        "MEMORY_PROFILER_ENABLED": "false",
        "MEMORY_PROFILER_LIMIT_MB": "250",
        "MEMORY_PROFILER_SAMPLING_RATE": "0.5",
        "MEMORY_PROFILER_DASHBOARD_PORT": "9000",
    }
    config = ProfilerConfig.from_env(env)
    assert (config.enabled, config.memory_limit_bytes, config.sampling_rate, config.dashboard_port) == (False, 250_000_000, 0.5, 9000)


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("MEMORY_PROFILER_ENABLED", "maybe"),
        ("MEMORY_PROFILER_LIMIT_MB", "-4"),
        ("MEMORY_PROFILER_LIMIT_MB", "abc"),
        ("MEMORY_PROFILER_SAMPLING_RATE", "2"),
        ("MEMORY_PROFILER_DASHBOARD_PORT", "http"),
    ],
)
def test_from_env_errors_name_the_variable_and_value(var: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        ProfilerConfig.from_env({var: value})
    assert var in str(info.value) and repr(value) in str(info.value)


def test_replace_rejects_unknown_fields() -> None:
    with pytest.raises(ConfigError, match="colour"):
        ProfilerConfig().replace(colour="red")

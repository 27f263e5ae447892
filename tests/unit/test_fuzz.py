"""Fuzzing the loaders (result JSON, CSV folders) and the magic's option parser with hypothesis.

Whatever the input, a loader returns a result or raises ``ResultFormatError``, and the
parser returns options or raises ``UsageError``: never another exception.

In the suite the examples are derandomized (the same ones every run: the suite cannot
flake) and few (a few seconds). ``make fuzz`` runs the same properties with
``HYPOTHESIS_PROFILE=fuzz``: random, 2,000 examples each (1,000 for the whole magic in a shell).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cgmem_nb import ProfileResult
from cgmem_nb.errors import ResultFormatError
from cgmem_nb.schema import Summary

settings.register_profile(
    "suite", max_examples=60, derandomize=True, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "fuzz", max_examples=2000, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "suite")
settings.load_profile(PROFILE)


def _valid() -> dict[str, Any]:
    lines = pd.DataFrame(
        {"location": ["In[1]:2", "In[1]:3"], "cell": [1, 1], "peak_bytes": [1000, 20], "code": ["x = 1", None]}
    ).astype({"location": "string", "cell": "Int64", "peak_bytes": "Int64", "code": "string"})
    return ProfileResult(Summary(label="In[1]", peak_bytes=1020, duration_s=0.5), {"lines": lines}).to_dict()


VALID = _valid()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, prefix + (i,))
    return out


@st.composite
def mutated(draw: Any, base: dict[str, Any] = VALID) -> Any:
    """``base`` with a few values somewhere inside replaced, removed or added."""
    data = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(data) if p]
        if not paths:
            return draw(json_values)
        path = draw(st.sampled_from(paths))
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "delete":
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(json_values)
        else:
            parent[path[-1]] = draw(json_values)
    return data


def _loads_or_refuses(text: str | bytes) -> str:
    """``"refused"`` (a ResultFormatError) or ``"loaded"`` (a result that can be written again);
    any other exception fails the test."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.json"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
        try:
            result = ProfileResult.from_json(path)
        except ResultFormatError:
            return "refused"
        assert isinstance(result, ProfileResult)
        assert isinstance(result.to_dict(), dict)  # what loads can be written again
        return "loaded"


@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    assert _loads_or_refuses(data) in ("loaded", "refused")


@given(mutated())
def test_mutated_results(data: Any) -> None:
    try:
        text = json.dumps(data)
    except ValueError:
        return
    assert _loads_or_refuses(text) in ("loaded", "refused")


@given(json_values)
def test_arbitrary_json(data: Any) -> None:
    assert _loads_or_refuses(json.dumps(data)) in ("loaded", "refused")


def _csv_export(folder: Path) -> dict[str, Any]:
    ProfileResult.from_dict(VALID).to_csv(folder)
    return json.loads((folder / "manifest.json").read_text())  # type: ignore[no-any-return]


@given(st.data())
def test_mutated_csv_exports(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "export"
        manifest = _csv_export(folder)
        if data.draw(st.booleans()):
            manifest = data.draw(mutated(manifest))
            try:
                (folder / "manifest.json").write_text(json.dumps(manifest))
            except ValueError:
                return
        if data.draw(st.booleans()):
            table = folder / "lines.csv"
            raw = bytearray(table.read_bytes())
            for _ in range(data.draw(st.integers(1, 4))):
                at = data.draw(st.integers(0, max(len(raw) - 1, 0)))
                raw[at:at + 1] = data.draw(st.binary(max_size=3))
            table.write_bytes(bytes(raw))
        try:
            result = ProfileResult.from_csv(folder)
        except ResultFormatError:
            return
        assert isinstance(result, ProfileResult)


# -- the magic's option parser ---------------------------------------------------------------------

option_words = st.sampled_from(
    ["-o", "r", "--depth", "3", "--limit", "500MB", "--sample", "64KiB", "--exact", "--top", "-1", "--label", "'a b",
     '"x"', "-q", "--live", "--guard", "--bogus", "=", "--limit=1e300", "inf", "nan", "9" * 50, "class", "''", "\\"]
)
lines = st.lists(option_words | st.text(max_size=8), max_size=8).map(" ".join)


@given(lines)
def test_the_option_parser_returns_options_or_a_usage_error(line: str) -> None:
    from IPython.core.error import UsageError

    from cgmem_nb.integrations import magic_args
    from cgmem_nb.integrations.magics import CgmemMagics, split_line_statement

    options, statement = split_line_statement(line)
    assert line.startswith(options) or line.strip().startswith(options.strip())
    assert statement == line[len(options):].strip()
    try:
        args = magic_args.parse(CgmemMagics.memprofile, options)
    except UsageError:
        return
    assert hasattr(args, "limit") and hasattr(args, "sample")


@pytest.fixture(scope="module")
def fuzz_shell() -> Iterator[Any]:
    """A fresh IPython shell with cgmem_nb loaded, cleared afterwards (no other test sees it)."""
    from IPython.core.interactiveshell import InteractiveShell

    InteractiveShell.clear_instance()
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "cgmem_nb")
    try:
        yield shell
    finally:
        shell.reset(new_session=False)
        InteractiveShell.clear_instance()


@pytest.mark.integration
@pytest.mark.filterwarnings("ignore:`make_tokens_by_line`:UserWarning")
@settings(max_examples=30 if PROFILE == "suite" else 1000)
@given(line=lines)
def test_the_magic_runs_or_refuses(fuzz_shell: Any, line: str) -> None:
    """The whole ``%memprofile OPTIONS STATEMENT`` in a real shell: a UsageError, a result, or
    the statement's own error (random text is user code), and nothing left running either way."""
    import tracemalloc

    from IPython.core.error import UsageError

    from cgmem_nb import MEMORY_PROFILER

    try:
        fuzz_shell.run_line_magic("memprofile", f"-q {line} pass".replace("--live", ""))
    except (UsageError, SyntaxError):
        pass
    except Exception as exc:  # the statement's own error (random text is user code) is the user's
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = tb.tb_frame.f_code.co_filename if tb is not None else ""
        assert "/cgmem_nb/" not in where, f"{type(exc).__name__} raised inside cgmem_nb ({where}): {exc}"
    assert not MEMORY_PROFILER.active_sessions and not tracemalloc.is_tracing()

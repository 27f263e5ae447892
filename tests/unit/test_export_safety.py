"""Exports that an adversarial sweep broke: paths leaving the folder, CSV sets left mixed by a
crash, temporary files left behind, 0600 modes, raw OS errors, and hostile files to load."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from cgmem_nb import MEMORY_PROFILER, ProfileResult, export
from cgmem_nb.errors import ExportError, ResultFormatError
from cgmem_nb.integrations import cli
from cgmem_nb.schema import Summary
from cgmem_nb.session import serialize

ROOT = Path(__file__).resolve().parents[2]


def _result(rows: int = 50, label: str = "A") -> ProfileResult:
    frame = pd.DataFrame({"location": [f"In[1]:{i}" for i in range(rows)], "peak_bytes": list(range(rows))})
    return ProfileResult(Summary(label=label, peak_bytes=rows), {"lines": frame.astype({"location": "string", "peak_bytes": "Int64"})})


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# -- paths stay in the folder ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["/abs/path", "../../x", "a/b", "..", "", "x" * 100, "lines.csv"])
def test_table_names_that_leave_the_folder_are_refused_on_load_and_on_write(tmp_path: Path, name: str) -> None:
    good = _result().to_dict()
    good["tables"][name] = good["tables"].pop("lines")
    with pytest.raises(ResultFormatError, match="table name"):
        ProfileResult.from_dict(good)
    with pytest.raises(ResultFormatError, match="table name"):
        ProfileResult.from_json(json.dumps(good))
    frame = pd.DataFrame({"a": [1]})
    with pytest.raises(ExportError, match="table name"):
        ProfileResult(Summary(), {name: frame}).to_csv(tmp_path / "out")
    assert not (tmp_path / "out").exists() and sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("file", ["../../secret.txt", "/etc/passwd", "..", "sub/lines.csv", "link.csv"])
def test_a_manifest_file_entry_cannot_leave_the_folder(tmp_path: Path, file: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("location,peak_bytes\nsecret,1\n")
    folder = tmp_path / "a" / "b"
    _result().to_csv(folder)
    (folder / "link.csv").symlink_to(secret)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["tables"]["lines"]["file"] = file
    manifest["version"] = 1  # no digest to trip over first
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ResultFormatError, match="plain file name|out of the export folder"):
        ProfileResult.from_csv(folder)


# -- a CSV set is replaced as a whole ---------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    import pandas as pd
    from cgmem_nb import ProfileResult
    from cgmem_nb.schema import Summary
    folder, rows = sys.argv[1], int(sys.argv[2])
    tables = {
        f"t{i}": pd.DataFrame({"x": list(range(rows)), "s": ["B" * 20] * rows}).astype({"x": "Int64", "s": "string"})
        for i in range(11)
    }
    print("ready", flush=True)
    while True:
        ProfileResult(Summary(label="B", peak_bytes=rows), tables).to_csv(folder)
    """
)


def test_kill_9_during_an_export_never_leaves_a_mixed_set_that_loads(tmp_path: Path) -> None:
    """12 writers killed at random moments over an existing export (bounded: ~12 x 0.3 s)."""
    folder = tmp_path / "export"
    tables = {f"t{i}": pd.DataFrame({"x": [i], "s": ["A"]}).astype({"x": "Int64", "s": "string"}) for i in range(11)}
    old = ProfileResult(Summary(label="A", peak_bytes=1), tables)
    rng = random.Random(14)
    outcomes = []
    for _ in range(12):
        old.to_csv(folder)
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(folder), "20000"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        proc.stdout.close()
        import time

        time.sleep(rng.uniform(0.02, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        try:
            loaded = ProfileResult.from_csv(folder)
        except ResultFormatError as exc:
            assert "interrupted" in str(exc) or "mixed" in str(exc)
            outcomes.append("refused")
            continue
        label = loaded.summary.label
        assert label in ("A", "B")
        for i in range(11):
            assert loaded.table(f"t{i}")["s"].eq(label).all() or loaded.table(f"t{i}")["s"].eq(label * 20).all()
        if label == "A":
            assert loaded == old
        outcomes.append(label)
    old.to_csv(folder)  # the next export removes what the killed writers left
    assert _temporaries(folder) == []
    assert ProfileResult.from_csv(folder) == old
    print(f"\nkill -9 outcomes: {outcomes}")


def test_a_changed_table_is_refused(tmp_path: Path) -> None:
    _result().to_csv(tmp_path)
    with (tmp_path / "lines.csv").open("a") as fh:
        fh.write("In[9]:9,9\n")
    with pytest.raises(ResultFormatError, match="does not match its manifest"):
        ProfileResult.from_csv(tmp_path)


def test_version_1_exports_still_load(tmp_path: Path) -> None:
    r = _result()
    r.to_csv(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["version"] = 1
    for spec in manifest["tables"].values():
        spec.pop("sha256"), spec.pop("bytes")
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert ProfileResult.from_csv(tmp_path) == r


# -- errors, temporary files and modes -------------------------------------------------------------


def test_a_full_disk_keeps_the_old_export_and_names_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = _result(10)
    old.to_csv(tmp_path)
    written = [0]
    real_write = os.write

    def write(fd: int, data: bytes | memoryview) -> int:  # the disk fills after 1,000 bytes
        if written[0] + len(data) > 1000:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written[0] += len(data)
        return real_write(fd, data)

    monkeypatch.setattr(serialize.os, "write", write)
    new = ProfileResult(Summary(label="new"), {f"t{i}": pd.DataFrame({"x": list(range(100))}) for i in range(11)})
    with pytest.raises(ExportError) as info:
        new.to_csv(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message and "No space left" in message and "free some space" in message
    assert ".tmp" not in message
    monkeypatch.undo()
    assert _temporaries(tmp_path) == []
    assert ProfileResult.from_csv(tmp_path) == old


FSIZE = textwrap.dedent(
    """
    import resource, signal, sys
    import pandas as pd
    from cgmem_nb import ProfileResult
    from cgmem_nb.errors import ExportError
    from cgmem_nb.schema import Summary
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    big = ProfileResult(Summary(label="big"), {"t": pd.DataFrame({"x": list(range(5000))})})
    try:
        big.to_csv(sys.argv[1])
    except ExportError as exc:
        print("ExportError:", exc)
    try:
        big.to_json(sys.argv[1] + "/result.json")
    except ExportError as exc:
        print("ExportError:", exc)
    """
)


def test_a_file_size_limit_is_a_clean_error_from_the_kernel(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes the kernel refuse the write (EFBIG), as a full disk would."""
    old = _result(10)
    old.to_csv(tmp_path)
    done = subprocess.run([sys.executable, "-c", FSIZE, str(tmp_path)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("ExportError:") and "File too large" in line for line in lines)
    assert str(tmp_path) in lines[0] and str(tmp_path / "result.json") in lines[1]
    assert _temporaries(tmp_path) == [] and not (tmp_path / "result.json").exists()
    assert ProfileResult.from_csv(tmp_path) == old


def test_files_get_the_usual_modes(tmp_path: Path) -> None:
    old_mask = os.umask(0o022)
    try:
        paths = _result().to_csv(tmp_path / "a")
        _result().to_json(tmp_path / "r.json")
        os.umask(0o077)
        _result().to_csv(tmp_path / "b")
    finally:
        os.umask(old_mask)
    assert {(p.stat().st_mode & 0o777) for p in [*paths.values(), tmp_path / "a" / "manifest.json", tmp_path / "r.json"]} == {0o644}
    assert {(p.stat().st_mode & 0o777) for p in (tmp_path / "b").iterdir()} == {0o600}


def test_os_errors_name_the_users_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(ExportError, match=r"file\.txt.*(Not a directory|File exists)"):
        _result().to_json(blocker / "r.json")
    with pytest.raises(ExportError, match="it is a file"):
        _result().to_csv(blocker)
    with pytest.raises(ExportError, match="file.txt"):
        MEMORY_PROFILER.export_csv(blocker / "sub")


# -- hostile files -----------------------------------------------------------------------------------

_GOOD = _result(3).to_dict()


def _with(**changes: object) -> str:
    data = json.loads(json.dumps(_GOOD))
    data.update(changes)
    return json.dumps(data)


HOSTILE_JSON: dict[str, bytes] = {
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
    "deep object": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "bad utf-8": b'{"format": "\xff\xfe"}',
    "a list": b"[1, 2, 3]",
    "a number": b"42",
    "empty": b"",
    "tables a list": _with(tables=[1, 2]).encode(),
    "table a string": _with(tables={"lines": "x"}).encode(),
    "rows too short": _with(tables={"lines": {"columns": ["a", "b"], "dtypes": {}, "data": [[1]]}}).encode(),
    "columns not names": _with(tables={"lines": {"columns": [1, {}], "dtypes": {}, "data": []}}).encode(),
    "unknown dtype": _with(tables={"lines": {"columns": ["a"], "dtypes": {"a": "U1000000000"}, "data": [["x"]]}}).encode(),
    "values vs dtype": _with(tables={"lines": {"columns": ["a"], "dtypes": {"a": "Int64"}, "data": [["x"]]}}).encode(),
    "nested cell": _with(tables={"lines": {"columns": ["a"], "dtypes": {}, "data": [[{"b": [1]}]]}}).encode(),
    "summary a list": _with(summary=[1]).encode(),
    "summary bad figure": _with(summary={"peak_bytes": "lots"}).encode(),
    "summary infinite": _with(summary={"duration_s": 1e999}).encode(),
    "summary huge int": _with(summary={"peak_bytes": 10**30}).encode(),
    "guard a string": _with(summary={"guard": "x"}).encode(),
    "guard lines bad": _with(summary={"guard": {"top_lines": [1, 2]}}).encode(),
    "version": _with(version="1").encode(),
    "huge int digits": b'{"format": ' + b"1" * 5000 + b"}",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_JSON))
def test_hostile_result_files_are_result_format_errors(tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(HOSTILE_JSON[name])
    with pytest.raises(ResultFormatError) as info:
        ProfileResult.from_json(path)
    assert str(path) in str(info.value) or "saved result" in str(info.value) or "r.json" in str(info.value)
    assert cli.main(["report", str(path)]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("cgmem_nb: ") and "Traceback" not in err
    with pytest.raises(ResultFormatError):
        export.tables_from_json(HOSTILE_JSON[name].decode("utf-8", "replace"))


def test_odd_paths_are_result_format_errors(tmp_path: Path) -> None:
    for source in ("no\0such", "x" * 5000, str(tmp_path), str(tmp_path / "missing.json")):
        with pytest.raises(ResultFormatError, match="could not read"):
            ProfileResult.from_json(source)


HOSTILE_CSV: dict[str, dict[str, object]] = {
    "tables a list": {"tables": []},
    "entry a string": {"tables": {"lines": "lines.csv"}},
    "no file": {"tables": {"lines": {"dtypes": {}}}},
    "unknown dtype": {"tables": {"lines": {"file": "lines.csv", "dtypes": {"location": "datetime64[ns]"}}}},
    "dtype for a missing column": {"tables": {"lines": {"file": "lines.csv", "dtypes": {"nope": "Int64"}}}},
    "values vs dtype": {"tables": {"lines": {"file": "lines.csv", "dtypes": {"location": "Int64"}}}},
    "summary bad": {"summary": {"label": 5}},
    "version": {"version": 99},
    "format": {"format": "other"},
}


@pytest.mark.parametrize("name", sorted(HOSTILE_CSV))
def test_hostile_csv_manifests_are_result_format_errors(tmp_path: Path, name: str) -> None:
    _result(3).to_csv(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["version"] = 1
    manifest.update(HOSTILE_CSV[name])
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ResultFormatError):
        ProfileResult.from_csv(tmp_path)


@pytest.mark.parametrize("content", [b"\xff\xfe\x00garbage", b'"unclosed\n1,2\n', b"", b"a,b\n1\n1,2,3,4\n"])
def test_hostile_csv_tables_are_result_format_errors(tmp_path: Path, content: bytes) -> None:
    _result(3).to_csv(tmp_path)
    (tmp_path / "lines.csv").write_bytes(content)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["version"] = 1
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ResultFormatError):
        ProfileResult.from_csv(tmp_path)
    (tmp_path / "manifest.json").write_bytes(b"\xff" + b"[" * 100_000)
    with pytest.raises(ResultFormatError):
        ProfileResult.from_csv(tmp_path)

"""The Python / native split everywhere it shows: exports, Prometheus, the dashboard's HTTP API and
page header, the live panel's figures, the report; unchanged where the native hooks did not run.

The native part runs in a fresh process (the hooks are turned on explicitly there;
Arrow's pool is the process's): a session keeps a 200 MB Arrow result, and every figure is
read back over real HTTP from a dashboard on 127.0.0.1 and from the files the exports write.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pandas as pd
import pytest

from cgmem_nb import MemoryProfiler, ProfilerConfig, export
from cgmem_nb.outputs.dashboard.page import header_html
from cgmem_nb.outputs.feed import LiveFeed
from cgmem_nb.outputs.panel import LivePanel
from cgmem_nb.outputs.report import render_text

pytestmark = pytest.mark.integration
MB = 1000**2
TRUTH = 200 * MB  # 25,000,000 int64 made by the session, in Arrow's pool
TOLERANCE = 0.15

NATIVE = r"""
import json, sys, tempfile, urllib.request
import numpy as np, pandas as pd, pyarrow as pa, pyarrow.compute as pc
from prometheus_client.parser import text_string_to_metric_families
from cgmem_nb import MemoryDashboard, MemoryProfiler, ProfileResult, ProfilerConfig, export
from cgmem_nb.outputs.feed import LiveFeed
from cgmem_nb.outputs.panel import LivePanel

prof = MemoryProfiler(ProfilerConfig(native_memory=True))  # on explicitly (whatever the default)
base = pa.array(np.arange(25_000_000, dtype=np.int64))
with prof.session("arrow-result") as s:
    big = pc.multiply(base, 2)
result = s.result
out = {"summary": result.summary.to_dict(), "nbytes": big.nbytes}

folder = tempfile.mkdtemp()
result.to_csv(folder)
stacks = export.read_csv_tables(folder)["stacks"]
out["csv_pool_retained"] = int(stacks.loc[stacks["domain"] == "library pool", "retained_bytes"].sum())
out["csv_columns"] = list(stacks.columns)
out["json_native_retained"] = json.loads(result.to_json())["summary"]["native_retained_bytes"]

dash = MemoryDashboard(prof)
dash.start_server(port=0, quiet=True)
try:
    base_url = f"http://127.0.0.1:{dash.port}"
    get = lambda path: urllib.request.urlopen(base_url + path, timeout=30).read().decode()
    out["prometheus"] = [
        [sample.name, sample.labels, sample.value]
        for family in text_string_to_metric_families(get("/metrics")) for sample in family.samples
    ]
    out["metrics_json"] = json.loads(get("/api/metrics.json"))["last_session"]
    sessions = export.tables_from_json(get("/api/export.json"))["sessions"]
    out["export_sessions"] = json.loads(sessions.to_json(orient="records"))
    out["csv_sessions"] = get("/api/export.csv?table=sessions")
finally:
    dash.stop()
panel = LivePanel("In[1]", profiler=prof, build_widgets=False)
panel.finalize(result)
out["panel"] = panel.status_text()
print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def native() -> dict[str, Any]:
    pytest.importorskip("pyarrow")
    env = dict(os.environ, MEMORY_PROFILER_NATIVE="1")
    proc = subprocess.run([sys.executable, "-c", NATIVE], capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in reversed(proc.stdout.splitlines()) if x.startswith("RESULT "))
    found: dict[str, Any] = json.loads(line[len("RESULT ") :])
    assert found["nbytes"] == TRUTH
    return found


def close(value: float) -> bool:
    return abs(value - TRUTH) <= TOLERANCE * TRUTH


def test_the_session_summary_and_the_result_files_hold_the_native_figures(native: dict[str, Any]) -> None:
    s = native["summary"]
    assert s["native"] is True
    assert close(s["native_peak_bytes"]) and close(s["native_retained_bytes"]), s
    assert s["python_peak_bytes"] < 0.1 * TRUTH, s  # the result is Arrow's, not Python's
    assert {"domain", "via"} <= set(native["csv_columns"])
    assert close(native["csv_pool_retained"]), native["csv_pool_retained"]  # stacks.csv, domain "library pool"
    assert close(native["json_native_retained"])


def test_prometheus_over_http_splits_the_session_by_domain_and_reads_arrows_pool(native: dict[str, Any]) -> None:
    samples = {(name, tuple(sorted(labels.items()))): value for name, labels, value in native["prometheus"]}
    native_peak = samples[("cgmem_session_peak_bytes", (("domain", "native"),))]
    python_peak = samples[("cgmem_session_peak_bytes", (("domain", "python"),))]
    assert close(native_peak) and python_peak < 0.1 * TRUTH
    assert close(samples[("cgmem_session_retained_bytes", (("domain", "native"),))])
    assert ("cgmem_session_unknown_bytes", ()) in samples and ("cgmem_session_worker_bytes", ()) in samples
    pool = {labels: value for (name, labels), value in samples.items() if name == "cgmem_arrow_pool_bytes"}
    in_use = next(v for labels, v in pool.items() if ("state", "in_use") in labels)
    assert close(in_use), pool  # Arrow's own bytes_allocated(): the 200 MB result is alive


def test_the_dashboard_api_carries_the_split_in_metrics_and_the_sessions_table(native: dict[str, Any]) -> None:
    last = native["metrics_json"]
    assert last["label"] == "arrow-result" and last["native"] is True and close(last["native_peak_bytes"])
    (row,) = native["export_sessions"]
    assert row["native"] is True and close(row["native_retained_bytes"])
    header, values = native["csv_sessions"].splitlines()[:2]
    record = dict(zip(header.split(","), values.split(",")))
    assert record["native"] == "True" and close(int(record["native_peak_bytes"]))


def test_the_live_panel_shows_the_split_as_the_report_words_it(native: dict[str, Any]) -> None:
    text = native["panel"]
    assert "arrow-result: Python / native: " in text and " at the peak" in text
    shown = float(text.split("Python / native: ")[1].split(" / ")[1].split(" MB")[0]) * MB
    assert close(shown), text


def _python_only() -> tuple[MemoryProfiler, Any]:
    prof = MemoryProfiler(ProfilerConfig(native_memory=False))
    with prof.session("python-only") as s:
        kept = [bytes(MB) for _ in range(5)]  # noqa: F841
    assert s.result is not None and not s.result.summary.native
    return prof, s.result


def test_views_are_unchanged_when_the_hooks_did_not_run() -> None:
    prof, result = _python_only()
    assert "Python / native" not in render_text(result)
    panel = LivePanel("In[2]", profiler=prof, build_widgets=False)
    panel.finalize(result)
    assert "native" not in panel.status_text()
    feed = LiveFeed(prof)
    feed.close(result.summary)
    assert "cgmem-native" not in header_html(feed.figures, export.metrics_dict(prof), 1)
    assert "cgmem_session_" not in export.prometheus(prof)
    row = export.profiler_tables(prof, analysis=False)["sessions"].iloc[0]
    assert not row["native"]
    assert all(pd.isna(row[c]) for c in ("native_peak_bytes", "worker_bytes", "rss_explained"))  # missing, not 0

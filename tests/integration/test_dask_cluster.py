"""``%%memprofile --dask`` and ``cgmem_nb.dask`` on a real ``distributed.LocalCluster``.

One cluster for the module (two worker processes, one thread each, loopback, no
dashboard), with Dask's own memory limit of 700 MB per worker and spilling off
(so managed memory stays in memory). Tasks with known allocations come from
``dask_tasks.py``. The worker kill runs last: its nanny restarts the worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import pytest

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

import dask_tasks  # noqa: E402  (tests/integration is on the path, for the workers too)
from dask_tasks import MB, line_of  # noqa: E402

import cgmem_nb.dask  # noqa: E402
from cgmem_nb import EVENT_BUS, LeakDetected, MemoryPressure, PressureLevel, TasksFinished, WorkerLost, WorkerSample  # noqa: E402
from cgmem_nb.integrations.dask.protocol import SessionSpec  # noqa: E402
from cgmem_nb.integrations.dask.worker import worker_status  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

HERE = Path(__file__).resolve().parent
LIMIT = 700 * MB


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


#: No dashboard; the scheduler's plain HTTP routes on a free loopback port (not 8787, which tests running
#: side by side would fight over).
CLUSTER = {
    "threads_per_worker": 1, "processes": True, "dashboard_address": None, "host": "127.0.0.1",
    "scheduler_kwargs": {"dashboard_address": "127.0.0.1:0"},
}
CONFIG = {
    "distributed.worker.memory.target": False,
    "distributed.worker.memory.spill": False,
    "distributed.worker.memory.pause": False,
    "distributed.worker.memory.terminate": 0.95,
    "distributed.scheduler.allowed-failures": 0,  # a task that kills its worker fails at once
}


@pytest.fixture(scope="module", autouse=True)
def spawnable_main() -> Iterator[ModuleType]:
    """A ``__main__`` the nannies can spawn worker processes under (a new cluster, a worker restart).

    An IPython shell (this module's tests, or earlier modules') installs its own ``__main__``,
    without the ``__spec__`` that multiprocessing's spawning reads.
    """
    before = sys.modules["__main__"]
    main = before if hasattr(before, "__spec__") else ModuleType("__main__")
    sys.modules["__main__"] = main
    yield main
    sys.modules["__main__"] = before


@pytest.fixture(autouse=True)
def main_restored(spawnable_main: ModuleType) -> Iterator[None]:
    yield
    sys.modules["__main__"] = spawnable_main


@pytest.fixture(scope="module")
def cluster(spawnable_main: ModuleType) -> Iterator[tuple[Any, Any]]:
    with dask.config.set(CONFIG):
        cluster = distributed.LocalCluster(n_workers=2, memory_limit=LIMIT, **CLUSTER)
        client = distributed.Client(cluster)
        try:
            yield cluster, client
        finally:
            client.close()
            cluster.close()


@pytest.fixture(autouse=True)
def main_restored() -> Iterator[None]:
    """Put the process's ``__main__`` back after each test (autouse: set up before the shell):
    an IPython shell installs its own, which the nannies' process spawning (a worker restart,
    a new cluster) cannot read."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture
def client(cluster: tuple[Any, Any]) -> Iterator[Any]:
    _, client = cluster
    client.wait_for_workers(2, timeout=30)
    yield client
    client.run(dask_tasks.forget)


def _within(value: Any, expected: float, tolerance: float = 0.10) -> bool:
    return abs(int(value) - expected) <= tolerance * expected


def test_planted_tasks_are_found_with_their_prefix_worker_and_line(shell: Any, client: Any) -> None:
    shell.user_ns["client"] = client
    shell.run_cell("from dask_tasks import hold, temporary, MB\nimport distributed")
    shell.user_ns["one"], shell.user_ns["other"] = sorted(client.scheduler_info()["workers"])
    shell.run_cell(
        "%%memprofile --dask client -o r -q\n"
        "kept = client.submit(hold, 50 * MB, pure=False, workers=[one])\n"
        "temp = client.submit(temporary, 200 * MB, pure=False, workers=[other])\n"
        "distributed.wait([kept, temp])\n"
    ).raise_error()
    r = shell.user_ns["r"]
    tasks = r.tasks.set_index("prefix")
    assert set(tasks.index) == {"hold", "temporary"} and r.summary.tasks == 2 and r.summary.workers == 2
    kept = shell.user_ns["kept"]
    held = tasks.loc["hold"]
    assert held["worker"] == shell.user_ns["one"] and held["worker"] in client.who_has([kept])[kept.key]
    assert _within(held["peak_bytes"], 50 * MB) and _within(held["retained_bytes"], 50 * MB)
    assert _within(held["result_bytes"], 50 * MB)
    tmp = tasks.loc["temporary"]
    assert tmp["worker"] == shell.user_ns["other"]
    assert _within(tmp["peak_bytes"], 200 * MB), tmp
    assert int(tmp["retained_bytes"]) < 5 * MB and int(tmp["result_bytes"]) < 1000
    for prefix, marker, peak in (("hold", "hold", 50 * MB), ("temporary", "temporary", 200 * MB)):
        worker = tasks.loc[prefix, "worker"]
        line = r.lines[(r.lines["where"] == worker) & (r.lines["lineno"] == line_of(marker))]
        line = line[line["filename"].str.endswith("dask_tasks.py")]
        assert len(line) == 1, r.lines.head(10)
        # what `hold` keeps is alive at the end; what `temporary` made was allocated (held at its worker's peak)
        assert _within(line["retained_bytes"].iloc[0] if prefix == "hold" else line["allocated_bytes"].iloc[0], peak)
        assert "np.ones(nbytes // 8)" in str(line["code"].iloc[0])
    workers = r.workers.set_index("worker")
    assert set(workers["status"]) == {"profiled"} and not workers["died"].any()
    assert (workers["memory_limit_bytes"] == LIMIT).all()
    assert _within(workers.loc[tmp["worker"], "traced_peak_bytes"], 200 * MB, 0.15)
    assert set(r.cluster_timeline["worker"]) == set(workers.index)
    assert type(r).from_json(r.to_json()) == r  # the cluster's tables round-trip like the others


def test_a_function_defined_in_a_cell_is_named_in_n_on_the_worker(shell: Any, client: Any) -> None:
    shell.user_ns["client"] = client
    shell.run_cell("import numpy as np, distributed")
    defined_in = shell.run_cell("def build(n):\n    block = np.ones(n // 8)\n    return float(block[0])\n", store_history=True).execution_count
    res = shell.run_cell(
        "%%memprofile --dask -o r -q\n"
        "def twice(n):\n"
        "    both = np.ones(n // 4)\n"
        "    return float(both[0])\n"
        "distributed.wait([client.submit(build, 40_000_000, pure=False), client.submit(twice, 30_000_000, pure=False)])\n",
        store_history=True,
    )
    res.raise_error()
    profiled_in = res.execution_count
    r = shell.user_ns["r"]
    workers = r.lines[r.lines["where"] != "kernel"].set_index("location")
    assert f"In[{defined_in}]:2" in workers.index, workers.index.tolist()
    assert f"In[{profiled_in}]:3" in workers.index, workers.index.tolist()
    assert workers.loc[f"In[{defined_in}]:2", "code"] == "block = np.ones(n // 8)"
    assert workers.loc[f"In[{profiled_in}]:3", "code"] == "both = np.ones(n // 4)"
    assert _within(workers.loc[f"In[{defined_in}]:2", "allocated_bytes"], 40 * MB)
    assert _within(workers.loc[f"In[{profiled_in}]:3", "allocated_bytes"], 60 * MB)
    assert int(workers.loc[f"In[{defined_in}]:2", "cell"]) == defined_in


def test_two_sessions_in_a_row_do_not_mix_tasks(client: Any) -> None:
    with cgmem_nb.dask.session(client) as first:
        distributed.wait(client.map(dask_tasks.sleepy, [0.01] * 6, pure=False))
    with cgmem_nb.dask.session(client) as second:
        distributed.wait(client.map(dask_tasks.hold, [MB] * 4, pure=False))
    assert first.result is not None and second.result is not None
    a, b = first.result.tasks, second.result.tasks
    assert list(a["prefix"].unique()) == ["sleepy"] and len(a) == 6
    assert list(b["prefix"].unique()) == ["hold"] and len(b) == 4
    assert not set(a["key"]) & set(b["key"])
    assert (a["duration_s"] >= 0.009).all()


def test_worker_pressure_and_leaks_reach_the_event_stream(client: Any) -> None:
    events: list[Any] = []
    wanted = (WorkerSample, TasksFinished, MemoryPressure, LeakDetected)
    subscription = EVENT_BUS.subscribe(lambda e: events.append(e) if isinstance(e, wanted) else None)
    try:
        with cgmem_nb.dask.session(client, tick_s=0.1) as s:
            target = sorted(client.scheduler_info()["workers"])[0]
            for i in range(12):
                client.submit(dask_tasks.leaky, 8 * MB, pure=False, workers=[target], key=f"leaky-{i}").result()
            # about 85% of the limit for half a second: Medium pressure at least. Sized from the
            # worker's own RSS: what a worker holds at rest depends on what is installed (pyarrow, ...)
            rss = client.run(_rss, workers=[target])[target]
            squeeze = max(int(0.85 * LIMIT) - rss, 50 * MB)
            client.submit(dask_tasks.squeeze, squeeze, 0.6, pure=False, workers=[target]).result()
            time.sleep(0.3)
    finally:
        subscription.close()
    assert s.result is not None
    samples = [e for e in events if isinstance(e, WorkerSample)]
    assert {e.worker for e in samples} == set(client.scheduler_info()["workers"])
    finished = [t for e in events if isinstance(e, TasksFinished) for t in e.tasks]
    assert sum(t.prefix == "leaky" for t in finished) == 12
    pressure = [e for e in events if isinstance(e, MemoryPressure) and e.where == target]
    assert pressure and pressure[0].level >= PressureLevel.MEDIUM and pressure[0].limit == LIMIT
    leaks = [e for e in events if isinstance(e, LeakDetected) and e.where == target]
    assert leaks, s.result.tasks[["prefix", "unmanaged_after_bytes", "result_bytes", "start_s", "duration_s"]].to_string()
    assert leaks[-1].leak.holder == f"leaky tasks on worker {target}" and leaks[-1].leak.holder_kind == "worker"
    assert 60 * MB <= leaks[-1].leak.growth <= 130 * MB
    in_result = s.result.leaks
    assert (in_result["holder"] == f"leaky tasks on worker {target}").any()


def test_a_plugin_already_registered_is_a_clear_message_and_the_kernel_result_stays(client: Any) -> None:
    other = SessionSpec("someone-elses-session", "Client-elsewhere", time.time() - 30)
    client.register_plugin(cgmem_nb.dask.CgmemWorkerPlugin(other))
    try:
        with cgmem_nb.dask.session(client) as s:
            kept = bytearray(30 * MB)  # noqa: F841 - allocated in the kernel
            distributed.wait(client.map(dask_tasks.sleepy, [0.01] * 3, pure=False))
    finally:
        assert cgmem_nb.dask.reset(client) is True
    r = s.result
    assert r is not None
    assert "already registered" in (r.summary.cluster_notes or "") and "someone-elses-session" in r.summary.cluster_notes
    assert "cgmem_nb.dask.reset(client)" in r.summary.cluster_notes
    assert set(r.workers["status"]) == {"not profiled"} and r.tasks.empty
    assert _within(r.summary.peak_bytes, 30 * MB)
    assert cgmem_nb.dask.reset(client) is False


def test_a_worker_without_the_native_sampler_joins_mid_cell_and_uses_the_exact_tracer(cluster: Any, client: Any) -> None:
    address = cluster[0].scheduler_address
    command = [
        str(Path(sys.executable).with_name("dask")), "worker", address, "--nworkers", "1", "--nthreads", "1",
        "--memory-limit", str(LIMIT), "--no-dashboard", "--host", "127.0.0.1", "--name", "no-native",
        "--preload", str(HERE / "no_native_preload.py"),
    ]
    proc = None
    try:
        with cgmem_nb.dask.session(client) as s:
            env = {**os.environ, "PYTHONPATH": str(HERE)}  # the worker imports dask_tasks, as the others do
            proc = subprocess.Popen(command, cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            client.wait_for_workers(3, timeout=60)
            joined = next(a for a, w in client.scheduler_info()["workers"].items() if w["name"] == "no-native")
            time.sleep(0.3)  # the plugin is set up on the new worker as it registers
            kept = client.submit(dask_tasks.hold, 20 * MB, pure=False, workers=[joined])
            kept.result()  # held in the worker's memory until the session ends
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
    r = s.result
    assert r is not None
    row = r.workers.set_index("worker").loc[joined]
    assert row["status"] == "joined" and row["tracer"] == "exact"
    assert "exact tracer" in str(row["note"]) and "exact tracer" in (r.summary.cluster_notes or "")
    task = r.tasks.set_index("worker").loc[joined]
    assert task["prefix"] == "hold" and _within(task["retained_bytes"], 20 * MB) and _within(task["peak_bytes"], 20 * MB)
    line = r.lines[(r.lines["where"] == joined) & (r.lines["lineno"] == line_of("hold"))]
    line = line[line["filename"].str.endswith("dask_tasks.py")]
    assert len(line) == 1 and _within(line["retained_bytes"].iloc[0], 20 * MB)
    client.wait_for_workers(2)


def test_a_client_that_disconnects_mid_cell_leaves_a_clear_message(cluster: Any, client: Any) -> None:
    other = distributed.Client(cluster[0].scheduler_address, set_as_default=False)
    with cgmem_nb.dask.session(other, tick_s=0.1) as s:
        kept = bytearray(20 * MB)  # noqa: F841
        distributed.wait(other.map(dask_tasks.sleepy, [0.01] * 4, pure=False))
        time.sleep(0.5)  # the workers' readings carry the finished tasks
        other.close()
    r = s.result
    assert r is not None and _within(r.summary.peak_bytes, 20 * MB)
    assert "disconnected" in (r.summary.cluster_notes or "")
    assert len(r.tasks) == 4 and set(r.tasks["prefix"]) == {"sleepy"}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the scheduler plugin ends the orphaned session
        if all(st["plugin"] is None for st in client.run(worker_status).values()):
            break
        time.sleep(0.2)
    else:
        pytest.fail("the workers kept profiling for a client that left")


def test_a_cluster_shut_down_mid_cell_leaves_the_kernel_result_whole() -> None:
    with dask.config.set(CONFIG):
        small = distributed.LocalCluster(n_workers=1, **CLUSTER)
    own = distributed.Client(small, set_as_default=False)
    try:
        started = time.monotonic()
        with cgmem_nb.dask.session(own, tick_s=0.1, timeout_s=5) as s:
            kept = bytearray(25 * MB)  # noqa: F841
            own.submit(dask_tasks.sleepy, 0.05, pure=False).result()
            time.sleep(0.4)
            small.close()
        assert time.monotonic() - started < 20
    finally:
        own.close()
    r = s.result
    assert r is not None and _within(r.summary.peak_bytes, 25 * MB)
    notes = r.summary.cluster_notes or ""
    assert "disconnected" in notes or "did not answer" in notes, notes
    assert list(r.tasks["prefix"]) == ["sleepy"]


def test_a_worker_killed_for_memory_is_reported_with_its_last_readings_and_task(cluster: Any, client: Any) -> None:
    events: list[Any] = []
    subscription = EVENT_BUS.subscribe(lambda e: events.append(e) if isinstance(e, WorkerLost) else None)
    victim = sorted(client.scheduler_info()["workers"])[0]
    try:
        with cgmem_nb.dask.session(client, tick_s=0.1) as s:
            future = client.submit(dask_tasks.grow_until_killed, 40 * MB, 0.05, 3000 * MB, pure=False, workers=[victim])
            with pytest.raises(distributed.KilledWorker):
                future.result(timeout=60)
            time.sleep(0.3)
    finally:
        subscription.close()
    r = s.result
    assert r is not None
    row = r.workers.set_index("worker").loc[victim]
    assert row["status"] == "died" and bool(row["died"]) and bool(row["restarted"])
    assert row["last_task"] == future.key
    assert "killed by its nanny for memory" in str(row["note"])
    readings = r.cluster_timeline[r.cluster_timeline["worker"] == victim]
    assert len(readings) >= 3 and int(readings["rss_bytes"].max()) > 0.6 * LIMIT
    task = r.tasks.set_index("key").loc[future.key]
    assert task["state"] == "running" and task["worker"] == victim
    assert f"worker {victim} was lost while running {future.key}" in (r.summary.cluster_notes or "")
    lost = [e for e in events if e.worker == victim]  # the kill and the removal may reach the kernel in either order
    assert any(e.reason == "killed by its nanny for memory" and future.key in e.tasks for e in lost), lost
    client.wait_for_workers(2, timeout=60)


@pytest.mark.parametrize(
    ("line", "namespace", "message"),
    [
        ("--dask nosuch", {}, "there is no variable 'nosuch'"),
        ("--dask number", {"number": 3}, "int 3 is not a distributed.Client"),
        ("--dask 'a b'", {}, "is not a variable name"),
    ],
)
def test_a_bad_dask_option_is_a_usage_error_naming_it(shell: Any, line: str, namespace: dict[str, Any], message: str) -> None:
    from IPython.core.error import UsageError

    shell.user_ns.update(namespace)
    with pytest.raises(UsageError, match=message):
        shell.run_cell_magic("memprofile", line, "x = 1\n")
    assert "x" not in shell.user_ns


def test_the_report_the_panel_charts_and_the_dashboard_show_the_cluster(client: Any) -> None:
    from bokeh.document import Document

    from cgmem_nb import MEMORY_PROFILER
    from cgmem_nb.outputs.charts import PANEL, ChartContext, charts_for
    from cgmem_nb.outputs.dashboard.page import build_page
    from cgmem_nb.outputs.feed import LiveFeed
    from cgmem_nb.outputs.report import render_bundle

    feed = LiveFeed(MEMORY_PROFILER).start()
    try:
        with cgmem_nb.dask.session(client, tick_s=0.1) as s:
            held = client.map(dask_tasks.hold, [30 * MB, 30 * MB], pure=False)
            distributed.wait(held + client.map(dask_tasks.sleepy, [0.01] * 5, pure=False))
            time.sleep(0.3)
    finally:
        feed.stop()
    r = s.result
    assert r is not None
    workers = set(r.workers["worker"])
    # the feed: both workers' readings, the prefixes by peak, the top lines of the finished session
    assert {reading.worker for reading in feed.cluster.readings} == workers
    prefixes = {p.prefix: p for p in feed.cluster.prefixes()}
    assert prefixes["hold"].tasks == 2 and _within(prefixes["hold"].peak_bytes, 30 * MB)
    assert prefixes["sleepy"].tasks == 5 and list(prefixes)[0] == "hold"
    update = feed.read()
    assert update.cluster.lines and any(line["where"] in workers for line in update.cluster.lines)
    # the charts of both views, from the one registry
    names = [spec.name for spec in charts_for(PANEL)]
    assert {"cluster_memory", "task_prefixes", "cluster_lines"} <= set(names)
    ctx = ChartContext(PANEL, t0=time.time() - 10)
    charts = {spec.name: spec.make(ctx) for spec in charts_for(PANEL)}
    for chart in charts.values():
        chart.update(update)
    memory = charts["cluster_memory"]
    assert memory.model.visible and sorted(memory.slots) == sorted(workers)
    assert all(len(memory.sources[i].data["mb"]) >= 2 for i in memory.slots.values())
    assert len(memory.legend.items) == 2
    assert charts["task_prefixes"].source.data["prefix"][0] == "hold"
    assert any(w in workers for w in charts["cluster_lines"].rows.data["where"])
    # the dashboard page (the same charts, laid out for the web)
    doc = Document()
    build_page(doc, feed, rollover=1000, update_ms=500, pages=lambda: 1)
    worker_source = doc.select_one({"name": "cgmem_worker_memory_0"})
    assert worker_source is not None and len(worker_source.data["mb"]) >= 2
    assert doc.select_one({"name": "cgmem_task_prefixes"}).data["prefix"][0] == "hold"
    # the static report
    bundle = render_bundle(r)
    text, page = bundle["text/plain"], bundle["text/html"]
    assert "Dask cluster: 2 worker(s) profiled, 7 task(s)" in text and "Task prefixes by peak:" in text
    assert text.index("hold") < text.index("sleepy", text.index("Task prefixes by peak:"))
    assert all(w in text and w in page for w in workers)
    assert page.count("<svg") == 2 and "Top lines on the workers" in page


def test_without_distributed_the_module_and_the_magic_say_what_to_install() -> None:
    script = (
        "import sys\n"
        "sys.modules['distributed'] = None  # as if it were not installed\n"
        "try:\n"
        "    import cgmem_nb.dask\n"
        "except ImportError as exc:\n"
        "    print('import:', exc)\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "from IPython.core.error import UsageError\n"
        "ip = InteractiveShell.instance()\n"
        "ip.run_line_magic('load_ext', 'cgmem_nb')\n"
        "try:\n"
        "    ip.run_cell_magic('memprofile', '--dask', 'x = 1')\n"
        "except UsageError as exc:\n"
        "    print('magic:', exc)\n"
        "print('x' in ip.user_ns)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60).stdout
    assert "import: cgmem_nb.dask needs Dask's distributed package" in out and "pip install 'cgmem_nb[dask]'" in out
    assert "magic: --dask needs Dask's distributed package" in out, out
    assert out.strip().endswith("False")

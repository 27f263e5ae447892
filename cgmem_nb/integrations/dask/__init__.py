"""Profile a Dask cluster's memory with the kernel: per task, per worker, per line.

Built on Dask's own extension points: a ``WorkerPlugin`` that runs cgmem_nb's
engine and session in every worker (:mod:`.worker`), an optional
``SchedulerPlugin`` that reports lost workers (:mod:`.scheduler`), both
registered with ``client.register_plugin``; results travel with ``client.run``
and the workers' readings with Dask's event topics (``log_event`` /
``subscribe_topic``). The kernel side (:mod:`.companion`) is a companion of the
kernel's session, so ``%%memprofile --dask``, :func:`session` and the result are
the same as for one kernel, with the ``tasks``, ``workers`` and
``cluster_timeline`` tables and a ``where`` column in ``lines`` and ``stacks``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from ...config import TracerChoice
from ...session.profiler import MEMORY_PROFILER, MemoryProfiler
from ...session.session import Session
from .companion import DaskCompanion, resolve_client
from .protocol import PLUGIN_NAME, SessionSpec, cgmem_version
from .scheduler import CgmemSchedulerPlugin
from .worker import CgmemWorkerPlugin, worker_status

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "CgmemSchedulerPlugin",
    "CgmemWorkerPlugin",
    "DaskCompanion",
    "SessionSpec",
    "check_workers",
    "reset",
    "session",
]


def session(
    client: Client | None = None,
    label: str | None = None,
    *,
    tracer: TracerChoice = "auto",
    depth: int | None = None,
    interval: int | str | None = None,
    profiler: MemoryProfiler = MEMORY_PROFILER,
    tick_s: float = 0.25,
    timeout_s: float = 30.0,
) -> Session:
    """A session that profiles this process and, for the same span, every worker of ``client``'s cluster.

    ``with cgmem_nb.dask.session(client) as s: df.compute()``; then ``s.result.tasks``,
    ``s.result.workers``, ``s.result.lines`` (with ``where``). ``client`` None is the
    current client. The other arguments are those of ``MEMORY_PROFILER.session`` and
    of :class:`DaskCompanion`.
    """
    companion = DaskCompanion(client, tick_s=tick_s, timeout_s=timeout_s)
    return profiler.session(label, tracer=tracer, depth=depth, interval=interval, companions=[companion])


def check_workers(client: Client | None = None) -> pd.DataFrame:
    """What each worker of ``client``'s cluster says about profiling: one row per worker.

    Columns: ``worker``, ``ok`` (cgmem_nb loads there), ``version``, ``python``,
    ``tracer`` (``sampled``, or ``exact`` where the native sampler cannot run),
    ``note`` (why not, or who holds the plugin now), ``memory_limit_bytes``.
    """
    version = cgmem_version()
    client = resolve_client(client)
    rows = []
    for address, status in client.run(worker_status, on_error="return").items():
        if isinstance(status, BaseException):
            rows.append({"worker": address, "ok": False, "note": f"{type(status).__name__}: {status}"})
            continue
        notes = []
        if status["native"]:
            notes.append(status["native"])
        if status["version"] != version:
            notes.append(f"cgmem_nb {status['version']} here, {version} in this kernel")
        if status["plugin"]:
            notes.append(f"plugin registered: {status['plugin']}")
        rows.append(
            {
                "worker": address, "ok": True, "version": status["version"], "python": status["python"],
                "tracer": "exact" if status["native"] else "sampled", "note": "; ".join(notes) or None,
                "memory_limit_bytes": status["limit"],
            }
        )
    return pd.DataFrame(rows, columns=["worker", "ok", "version", "python", "tracer", "note", "memory_limit_bytes"])


def reset(client: Client | None = None) -> bool:
    """Unregister the cgmem_nb worker plugin from ``client``'s cluster (a stale session's);
    True when there was one."""
    client = resolve_client(client)
    try:
        client.unregister_worker_plugin(PLUGIN_NAME)
    except ValueError:
        return False
    return True



"""The worker side: a Dask ``WorkerPlugin`` that profiles the worker for one kernel session.

Registered by the kernel with ``client.register_plugin`` when a profiled session
starts (Dask installs it on every worker, and on workers that join later) and
unregistered when it ends. On each worker it records with a
:class:`~.recorder.WorkerRecorder`; the kernel reads what it saw with
:func:`collect` and checks a worker first with :func:`worker_status`, both
called through ``client.run``.
"""

from __future__ import annotations

import logging
import os
import platform
from typing import TYPE_CHECKING, Any

from distributed.diagnostics.plugin import WorkerPlugin

from ...engine import probes
from .protocol import PLUGIN_NAME, SessionSpec, cgmem_version
from .recorder import WorkerRecorder, native_reason

if TYPE_CHECKING:
    from distributed import Worker

__all__ = ["CgmemWorkerPlugin", "collect", "worker_status"]

log = logging.getLogger(__name__)


class CgmemWorkerPlugin(WorkerPlugin):
    """Profiles each worker's memory for one kernel session (see the module's docs).

    The kernel registers it (``%%memprofile --dask``, :func:`cgmem_nb.dask.session`);
    it is not meant to be registered by hand. Its pickled state is its
    :class:`~cgmem_nb.integrations.dask.protocol.SessionSpec` only.
    """

    name = PLUGIN_NAME
    idempotent = False

    def __init__(self, spec: SessionSpec) -> None:
        self.spec = spec
        self.recorder: WorkerRecorder | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"spec": self.spec.to_dict()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.spec = SessionSpec(**state["spec"])
        self.recorder = None

    def setup(self, worker: Worker) -> None:
        """Start profiling this worker (Dask calls it on registration and when a worker joins)."""
        try:
            self.recorder = WorkerRecorder(worker, self.spec)
            self.recorder.start()
        except Exception:
            log.exception("cgmem_nb: the worker plugin could not start")

    def teardown(self, worker: Worker) -> None:
        """Stop profiling (unregistration, or the worker closing)."""
        if self.recorder is not None:
            self.recorder.close()

    def transition(self, key: Any, start: Any, finish: Any, **kwargs: Any) -> None:
        """Follow a task (Dask calls it for every transition, on the worker's event loop)."""
        if self.recorder is not None:
            self.recorder.transition(key, str(start), str(finish))


def collect(session_id: str, cells: dict[str, int], dask_worker: Worker) -> dict[str, Any]:
    """End session ``session_id`` on this worker and return what it saw (``client.run`` calls it).

    ``cells`` maps the kernel's cell files to their execution counts, so code shipped
    from a notebook cell is named ``In[n]:line`` here as in the kernel.
    """
    plugin = dask_worker.plugins.get(PLUGIN_NAME)
    if not isinstance(plugin, CgmemWorkerPlugin) or plugin.recorder is None:
        return {"worker": str(dask_worker.address), "status": "missing", "error": "the cgmem_nb plugin is not installed here"}
    if plugin.spec.session_id != session_id:
        return {
            "worker": str(dask_worker.address),
            "status": "other",
            "error": f"the cgmem_nb plugin here belongs to session {plugin.spec.session_id}",
        }
    return plugin.recorder.finish(cells)


def worker_status(dask_worker: Worker) -> dict[str, Any]:
    """What the kernel checks before it profiles a worker (``client.run`` calls it)."""
    plugin = dask_worker.plugins.get(PLUGIN_NAME)
    if plugin is None:
        owner = None
    elif isinstance(plugin, CgmemWorkerPlugin):
        owner = {"session": plugin.spec.session_id, "owner": plugin.spec.owner, "started_wall": plugin.spec.started_wall}
    else:
        owner = {"foreign": f"{type(plugin).__module__}.{type(plugin).__qualname__}"}
    return {
        "version": cgmem_version(),
        "python": platform.python_version(),
        "native": native_reason(),
        "plugin": owner,
        "pid": os.getpid(),
        "name": str(dask_worker.name),
        "limit": int(getattr(dask_worker.memory_manager, "memory_limit", None) or 0),
        "rss": probes.rss(),
    }

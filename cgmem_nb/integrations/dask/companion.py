"""The kernel side: ``DaskCompanion`` profiles a Dask cluster's workers for the span of a session.

A :class:`~cgmem_nb.session.companion.Companion` of the kernel's session
(``%%memprofile --dask``, :func:`cgmem_nb.dask.session`). With Dask's own means only:

* start: ask every worker whether it can be profiled (``client.run``), register the
  scheduler plugin once (optional), listen to the event topic
  (``client.subscribe_topic``), announce the session, and register the worker plugin
  (``client.register_plugin``) carrying the session's specification: every worker,
  and any that joins during the session, starts profiling;
* finish: collect each worker's part (``client.run``), unregister the plugin, stop
  listening, and merge everything into the kernel's result.

Nothing that goes wrong on the cluster side fails the cell: each trouble becomes
a clear message in the result's ``cluster_notes`` (and the ``workers`` table), and
the kernel's own result stays whole.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

from ...errors import ClusterError
from ...session import notebook
from ...session.result import ProfileResult
from .cells import keep_cell_filenames, release_cell_filenames
from .merge import ClusterRecord, merge
from .protocol import CONTROL_TOPIC, PLUGIN_NAME, TOPIC, SessionSpec, cgmem_version
from .scheduler import CgmemSchedulerPlugin
from .stream import ClusterStream
from .worker import CgmemWorkerPlugin, collect, worker_status

if TYPE_CHECKING:
    from distributed import Client

    from ...session.session import Session

__all__ = ["DaskCompanion", "client_named", "resolve_client"]

log = logging.getLogger(__name__)

_STALE_HINT = "if that session is stale (its kernel is gone), end it with cgmem_nb.dask.reset(client)"


def resolve_client(client: Any = None, *, name: str | None = None) -> Client:
    """``client``, or the current ``distributed.Client`` when None; a clear error otherwise."""
    try:
        import distributed
    except ImportError:
        raise ClusterError(
            "profiling a Dask cluster needs the distributed package: pip install 'cgmem_nb[dask]'"
        ) from None
    what = f"--dask {name}" if name else "client"
    if client is None:
        try:
            client = distributed.default_client()
        except ValueError:
            raise ClusterError(
                "there is no Dask client in this kernel: make one first (client = distributed.Client(...)) "
                "or name it (%%memprofile --dask client)"
            ) from None
    if not isinstance(client, distributed.Client):
        raise ClusterError(f"{what}: {type(client).__name__} {client!r:.60} is not a distributed.Client")
    if client.asynchronous:
        raise ClusterError(
            f"{what} is an asynchronous client, which a profiled cell cannot drive: "
            "use a synchronous one (distributed.Client(address))"
        )
    if client.status != "running":
        raise ClusterError(f"{what} is not connected (its status is {client.status!r}): reconnect it or make a new one")
    return client


def client_named(namespace: dict[str, Any], name: str) -> Client:
    """The client in ``namespace[name]`` (``--dask CLIENT``), or the current one when ``name`` is empty."""
    if not name:
        return resolve_client(None)
    if not name.isidentifier():
        raise ClusterError(f"--dask {name!r} is not a variable name: give the name of a distributed.Client, e.g. --dask client")
    if name not in namespace:
        raise ClusterError(f"--dask {name}: there is no variable {name!r}; make the client first (client = distributed.Client(...))")
    return resolve_client(namespace[name], name=name)


class DaskCompanion:
    """Profiles the workers of ``client``'s cluster beside a kernel session.

    Args:
        client: the cluster's client (None: the current one, ``distributed.default_client()``).
        tick_s: seconds between the workers' readings on the event stream.
        timeout_s: the longest any call to the cluster may take before the session
            gives up on it (with a message) and carries on.
    """

    def __init__(self, client: Client | None = None, *, tick_s: float = 0.25, timeout_s: float = 30.0) -> None:
        self.client = resolve_client(client)
        self.tick_s = tick_s
        self.timeout_s = timeout_s
        self.record: ClusterRecord | None = None
        self.active = False
        self._scheduler_plugin = False
        self._cells = False
        self._session_id = ""

    # -- start ------------------------------------------------------------------------------
    def start(self, session: Session) -> None:
        """Start profiling the workers for ``session`` (never raises for cluster trouble)."""
        version = cgmem_version()
        self._session_id = f"{session.session_id}-{secrets.token_hex(4)}"
        started = time.time()
        stream = ClusterStream(self._session_id, lambda: session.profiler.publishing)
        self.record = record = ClusterRecord(started, stream)
        client = self.client
        if client.status != "running":
            record.notes.append(f"the Dask client is not connected (status {client.status!r}); only the kernel was profiled")
            return
        spec = SessionSpec(
            self._session_id, str(client.id), started, session.tracer_choice, session.interval, session.depth,
            self.tick_s, version,
        )
        try:
            statuses = client.run(worker_status, on_error="return", callback_timeout=self.timeout_s)
        except Exception as exc:
            record.notes.append(f"the cluster could not be reached ({type(exc).__name__}: {exc}); only the kernel was profiled")
            return
        busy = self._read_statuses(statuses, spec)
        if busy is not None:
            for address in list(record.at_start):
                record.not_profiled[address] = busy
            record.notes.append(f"the workers were not profiled: {busy}; the cell ran and the kernel was profiled; {_STALE_HINT}")
            return
        if not record.at_start:
            record.notes.append("no worker can be profiled (see the workers table); only the kernel was profiled")
            return
        self._scheduler_plugin = self._register_scheduler_plugin()
        self._cells = keep_cell_filenames()
        try:
            client.subscribe_topic(TOPIC, stream.handle)
            if self._scheduler_plugin:
                client.log_event(CONTROL_TOPIC, {"op": "start", "session": self._session_id, "owner": str(client.id)})
            client.register_plugin(CgmemWorkerPlugin(spec), name=PLUGIN_NAME)
        except Exception as exc:  # a worker that cannot load the plugin: the others still run it
            record.notes.append(f"the worker plugin could not be installed everywhere ({type(exc).__name__}: {exc})")
        self.active = True

    def _read_statuses(self, statuses: dict[str, Any], spec: SessionSpec) -> str | None:
        """Fill ``at_start`` / ``not_profiled``; return why no worker may be profiled, if so."""
        version = cgmem_version()
        assert self.record is not None
        busy = None
        for address, status in statuses.items():
            if isinstance(status, BaseException):
                self.record.not_profiled[address] = (
                    f"cgmem_nb cannot run there ({type(status).__name__}: {status}); "
                    "install cgmem_nb[dask] on the workers (see the docs: Profiling a Dask cluster)"
                )
                continue
            exact = spec.tracer == "exact" or status.get("native") is not None
            status["tracer"] = "exact" if exact else "sampled"
            self.record.at_start[address] = status
            if status.get("version") != version:
                self.record.notes.append(
                    f"worker {address} runs cgmem_nb {status.get('version')}, the kernel {version}: "
                    "install the same version on both"
                )
            owner = status.get("plugin")
            if owner and busy is None:
                if "foreign" in owner:
                    busy = f"another plugin is registered under the name {PLUGIN_NAME!r} ({owner['foreign']})"
                else:
                    age = time.time() - float(owner.get("started_wall") or time.time())
                    busy = (
                        f"a cgmem_nb plugin is already registered: session {owner['session']} of client "
                        f"{owner['owner']} has been profiling them for {age:.0f} s"
                    )
        return busy

    def _register_scheduler_plugin(self) -> bool:
        assert self.record is not None
        try:
            self.client.register_plugin(CgmemSchedulerPlugin())
            return True
        except Exception as exc:
            self.record.notes.append(
                f"the scheduler cannot run cgmem_nb's scheduler plugin ({type(exc).__name__}: {exc}): lost workers "
                "are found at the end of the session only; install cgmem_nb on the scheduler too"
            )
            return False

    # -- finish -----------------------------------------------------------------------------
    def finish(self, result: ProfileResult, error: BaseException | None) -> ProfileResult:
        """Collect the workers' parts and merge them into ``result`` (never raises for cluster trouble)."""
        record = self.record
        if record is None:  # never started
            return result
        if self.active:
            self.active = False
            try:
                self._collect(record)
            finally:
                if self._cells:
                    self._cells = False
                    release_cell_filenames()
        try:
            return merge(result, record)
        except Exception:
            log.exception("cgmem_nb: merging the cluster's results failed")
            return result.with_summary(cluster_notes="\n".join([*record.notes, "the cluster's results could not be merged (see the log)"]))

    def _collect(self, record: ClusterRecord) -> None:
        client = self.client
        if client.status != "running":
            record.notes.append(
                f"the Dask client disconnected during the session (status {client.status!r}): the workers' lines "
                "are missing; their tasks and readings up to the disconnection are kept"
            )
            return
        try:
            answers = client.run(collect, self._session_id, notebook.cell_files(), on_error="return", callback_timeout=self.timeout_s)
        except Exception as exc:
            record.notes.append(
                f"the cluster did not answer at the end of the session ({type(exc).__name__}: {exc}); was it shut down? "
                "The workers' tasks and readings up to then are kept"
            )
            return
        for address, answer in answers.items():
            if isinstance(answer, BaseException):
                record.failures[address] = f"it failed to hand back its results ({type(answer).__name__}: {answer})"
            elif answer.get("status") == "ok":
                record.payloads[address] = answer
            elif address in record.at_start or address in record.stream.workers:
                record.failures[address] = str(answer.get("error"))
        self._quietly(client.unregister_worker_plugin, PLUGIN_NAME)
        if self._scheduler_plugin:
            self._quietly(client.log_event, CONTROL_TOPIC, {"op": "stop", "session": self._session_id})
        self._quietly(client.unsubscribe_topic, TOPIC)

    def _quietly(self, call: Any, *args: Any) -> None:
        if self.client.status != "running":
            return
        try:
            call(*args)
        except Exception as exc:  # the cluster may be closing; the result does not depend on it
            log.info("cgmem_nb: %s failed: %s", getattr(call, "__name__", call), exc)

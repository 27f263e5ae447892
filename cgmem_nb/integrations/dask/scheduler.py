"""The scheduler side: a Dask ``SchedulerPlugin`` that tells the kernel about workers it loses.

A worker that dies cannot say so, and the nanny that kills a worker for memory
reports to the scheduler only. While a kernel profiles the cluster, this plugin
forwards what the scheduler hears to the kernel's event topic: a worker added or
removed (with the tasks it was processing) and a nanny's restart for memory. It
also ends a session whose kernel's client left the cluster mid-session (a kernel
that died or disconnected), by unregistering the worker plugin, so no worker
keeps sampling for nobody.

The kernel announces its sessions on :data:`~.protocol.CONTROL_TOPIC`
(``client.log_event``); the plugin is registered once per cluster
(``idempotent``), and is optional: without it the kernel still finds lost workers
when the session ends.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from distributed.diagnostics.plugin import SchedulerPlugin

from .protocol import CONTROL_TOPIC, PLUGIN_NAME, SCHEDULER_PLUGIN_NAME, TOPIC

if TYPE_CHECKING:
    from distributed import Scheduler

__all__ = ["CgmemSchedulerPlugin"]

log = logging.getLogger(__name__)


class CgmemSchedulerPlugin(SchedulerPlugin):
    """Forwards worker losses to profiling kernels and ends the sessions of clients that left."""

    name = SCHEDULER_PLUGIN_NAME
    idempotent = True

    def __init__(self) -> None:
        #: Sessions running now: session id -> the owning client's id.
        self.sessions: dict[str, str] = {}
        self.scheduler: Scheduler | None = None

    async def start(self, scheduler: Scheduler) -> None:
        """Keep the scheduler (Dask calls this on registration)."""
        self.scheduler = scheduler

    def log_event(self, topic: str, msg: Any) -> None:
        """Follow the kernels' announcements and forward worker losses (for every event logged)."""
        if topic == TOPIC or not isinstance(msg, dict):
            return
        if topic == CONTROL_TOPIC:
            session, owner = msg.get("session"), msg.get("owner")
            if msg.get("op") == "start" and isinstance(session, str) and isinstance(owner, str):
                self.sessions[session] = owner
            elif msg.get("op") == "stop":
                self.sessions.pop(str(session), None)
            return
        if not self.sessions:
            return
        if topic == "worker-restart-memory":
            self._forward({"type": "worker-memory-kill", "worker": msg.get("worker"), "rss": msg.get("rss"), "pid": msg.get("pid")})
        elif topic == "all" and msg.get("action") == "remove-worker":
            processing = [str(k) if not isinstance(k, str) else k for k in msg.get("processing-tasks", ()) or ()]
            self._forward({"type": "worker-removed", "worker": msg.get("worker"), "processing": processing, "expected": bool(msg.get("expected"))})
        elif topic == "all" and msg.get("action") == "add-worker":
            self._forward({"type": "worker-added", "worker": msg.get("worker")})

    def remove_client(self, scheduler: Scheduler, client: str) -> None:
        """End the sessions of a client that left (its kernel died or disconnected)."""
        gone = [session for session, owner in self.sessions.items() if owner == client]
        if not gone:
            return
        for session in gone:
            del self.sessions[session]
            scheduler.log_event(TOPIC, {"type": "session-abandoned", "session": session, "owner": client})
        if PLUGIN_NAME in scheduler.worker_plugins:
            log.warning("cgmem_nb: client %s left while profiling the workers; ending its session", client)
            asyncio.ensure_future(self._unregister(scheduler))

    @staticmethod
    async def _unregister(scheduler: Scheduler) -> None:
        try:
            if PLUGIN_NAME in scheduler.worker_plugins:
                await scheduler.unregister_worker_plugin(None, PLUGIN_NAME)
        except Exception:  # pragma: no cover - the cluster may be closing
            log.info("cgmem_nb: could not unregister the worker plugin", exc_info=True)

    def _forward(self, message: dict[str, Any]) -> None:
        if self.scheduler is None:
            return
        message["sessions"] = list(self.sessions)
        self.scheduler.log_event(TOPIC, message)

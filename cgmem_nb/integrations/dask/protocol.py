"""What the kernel and the workers agree on: names, the session's specification, the messages.

Everything here crosses a process boundary through Dask's own communication
(a plugin's pickled state, ``Client.run`` results, ``log_event`` messages), so it
holds only plain data: strings, numbers, lists and dicts that msgpack and pickle
both carry.

Messages on :data:`TOPIC` (``worker.log_event(TOPIC, msg)`` on a worker,
``scheduler.log_event`` for what the scheduler plugin forwards), each a dict with
``"type"`` and ``"session"``:

``tick``
    a worker's reading every ``tick_s``: ``worker``, ``wall``, ``rss``, ``traced``,
    ``managed``, ``limit``, ``executing`` (task keys), ``tasks`` (rows finished since
    the last tick, as in the ``tasks`` table with ``start`` a Unix time).
``pressure``
    a worker's memory crossed a pressure level: ``worker``, ``level``, ``rss``, ``limit``.
``worker-added`` / ``worker-removed`` / ``worker-memory-kill``
    forwarded by the scheduler plugin: ``worker``, and for a removal the
    ``processing`` keys; for a kill by the nanny the ``rss`` it saw.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "CONTROL_TOPIC",
    "PLUGIN_NAME",
    "SCHEDULER_PLUGIN_NAME",
    "TOPIC",
    "SessionSpec",
    "cgmem_version",
    "key_group",
    "key_prefix",
    "key_text",
]

#: Name of the worker plugin (one per cluster: one profiled session at a time).
PLUGIN_NAME = "cgmem_nb"
#: Name of the scheduler plugin (forwards worker losses, ends sessions of clients that left).
SCHEDULER_PLUGIN_NAME = "cgmem_nb-scheduler"
#: The event topic the workers and the scheduler plugin publish on.
TOPIC = "cgmem_nb"
#: The topic a kernel announces its sessions on (read by the scheduler plugin).
CONTROL_TOPIC = "cgmem_nb-control"


@dataclass(frozen=True)
class SessionSpec:
    """How the workers profile one session (sent inside the worker plugin)."""

    #: Unique across kernels: the kernel session's id and a random suffix.
    session_id: str
    #: ``Client.id`` of the kernel's client (the scheduler plugin ends the session if it leaves).
    owner: str
    #: Unix time the kernel's session started.
    started_wall: float
    #: ``"auto"``, ``"sampled"`` or ``"exact"`` (as the kernel's session).
    tracer: str = "auto"
    #: Mean sampling interval in bytes, or None for the worker's default.
    interval: int | None = None
    #: Frames kept per stack, or None for the worker's default.
    depth: int | None = None
    #: Seconds between the workers' readings on the event stream.
    tick_s: float = 0.25
    #: cgmem_nb's version in the kernel.
    version: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The plain-data form."""
        return asdict(self)


def key_text(key: object) -> str:
    """A task key as text: ``"x-1a2b"`` or ``"('read_csv-1a2b', 3)"``."""
    return key if isinstance(key, str) else str(key)


def key_prefix(key: object) -> str:
    """The key's prefix, as Dask's dashboard names it (``read_csv``, ``groupby-agg``)."""
    from dask.utils import key_split

    return str(key_split(key))


def key_group(key: object) -> str:
    """The key's group: its prefix with the graph layer's token."""
    from distributed.utils import key_split_group

    return str(key_split_group(key))


def cgmem_version() -> str:
    """The version of cgmem_nb installed in this process (kernel and workers must match)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cgmem_nb")
    except PackageNotFoundError:  # run from a source tree without installing
        return "unknown"

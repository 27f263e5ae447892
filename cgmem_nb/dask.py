"""``cgmem_nb.dask``: profile a Dask cluster's memory from the notebook, per task and per line.

Install with ``pip install 'cgmem_nb[dask]'`` (on the kernel, the workers and the
scheduler). In a notebook: ``%%memprofile --dask`` (the current client) or
``%%memprofile --dask client``. In code::

    import cgmem_nb.dask

    with cgmem_nb.dask.session(client) as s:
        result = df.groupby("key").sum().compute()
    s.result.tasks      # one row per task: key, prefix, worker, peak, retained, result size
    s.result.workers    # one row per worker: memory before/after/peak, tracer, fate
    s.result.lines      # per line of code, with `where`: "kernel" or a worker's address

See ``docs/dask.md`` for running it on a real cluster. The implementation lives
in :mod:`cgmem_nb.integrations.dask`.
"""

from __future__ import annotations

try:
    from .integrations.dask import (
        CgmemSchedulerPlugin,
        CgmemWorkerPlugin,
        DaskCompanion,
        SessionSpec,
        check_workers,
        reset,
        session,
    )
except ImportError as exc:  # pragma: no cover - exercised where distributed is not installed
    raise ImportError(f"cgmem_nb.dask needs Dask's distributed package ({exc}): pip install 'cgmem_nb[dask]'") from exc

__all__ = [
    "CgmemSchedulerPlugin",
    "CgmemWorkerPlugin",
    "DaskCompanion",
    "SessionSpec",
    "check_workers",
    "reset",
    "session",
]

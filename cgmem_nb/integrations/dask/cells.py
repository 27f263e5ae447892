"""Code from notebook cells keeps its file name on the way to the workers, so it is named ``In[n]:line`` there.

Dask ships a function defined in a notebook cell by value, with cloudpickle, and
cloudpickle (3.1 and later) replaces every such code object's ``co_filename`` by
``"<dynamic-code>"``: on a worker, an allocation in that function would be
charged to ``<dynamic-code>:3`` of no cell in particular. While a kernel session
profiles the cluster, :func:`keep_cell_filenames` puts a reducer for code objects
in front of cloudpickle's own (through the pickler's public ``dispatch_table``, a
``ChainMap``): it calls cloudpickle's and puts the real file name back for user
code (a cell, or the user's own script), and only for that. The kernel then sends the cells' file
names with their ``In[n]`` when it collects (see :func:`~.worker.collect`).

Only the file name changes: line numbers were kept anyway. A side effect: while
the session runs, Dask's tokens of such functions (and so the keys of tasks
named after them) differ from those of an unprofiled run.
"""

from __future__ import annotations

import logging
import threading
import types
from typing import Any, Callable

from ...session import notebook

__all__ = ["keep_cell_filenames", "release_cell_filenames"]

log = logging.getLogger(__name__)

_DYNAMIC = "<dynamic-code>"
_lock = threading.Lock()
_users = 0
_installed: dict[type, Callable[[Any], Any]] | None = None


def _table() -> Any:
    try:
        import cloudpickle
    except ImportError:  # pragma: no cover - distributed depends on it
        return None
    table = getattr(getattr(cloudpickle, "CloudPickler", None), "dispatch_table", None)
    return table if hasattr(table, "maps") else None


def keep_cell_filenames() -> bool:
    """Start keeping cell file names in pickled code (counted; pair with :func:`release_cell_filenames`).
    False when this cloudpickle offers no place to do it (cells are then named ``<dynamic-code>``)."""
    global _users, _installed
    with _lock:
        table = _table()
        if table is None:
            return False
        if _users == 0:
            original = table[types.CodeType]

            def reduce_code(code: types.CodeType) -> Any:
                reduced = original(code)
                if not notebook.is_user_code(code.co_filename):
                    return reduced
                maker, args = reduced[0], list(reduced[1])
                if _DYNAMIC in args:
                    args[args.index(_DYNAMIC)] = code.co_filename
                return (maker, tuple(args), *reduced[2:])

            _installed = {types.CodeType: reduce_code}
            table.maps.insert(0, _installed)
        _users += 1
        return True


def release_cell_filenames() -> None:
    """Undo one :func:`keep_cell_filenames`; the last one puts cloudpickle back as it was."""
    global _users, _installed
    with _lock:
        if _users == 0:
            return
        _users -= 1
        table = _table()
        if _users == 0 and table is not None and _installed is not None:
            try:
                table.maps.remove(_installed)
            except ValueError:  # pragma: no cover - someone rebuilt the table
                log.info("cgmem_nb: cloudpickle's dispatch table changed while a session ran")
            _installed = None

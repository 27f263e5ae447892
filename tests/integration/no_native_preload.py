"""A Dask worker preload that hides cgmem_nb's native sampler, as on a platform it was not built for.

``dask worker --preload tests/integration/no_native_preload.py``: the worker then
imports cgmem_nb without ``cgmem_nb.engine._sampler*`` and profiles with the exact tracer.
"""

from __future__ import annotations

import importlib.abc
import sys


class _NoNativeSampler(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):  # type: ignore[no-untyped-def]
        if fullname.startswith("cgmem_nb.engine._sampler"):
            raise ImportError(f"{fullname} is hidden on this worker (tests/integration/no_native_preload.py)")
        return None


sys.meta_path.insert(0, _NoNativeSampler())

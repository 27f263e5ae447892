"""numpy for the sampled tracer, without ever importing numpy.

:func:`numpy_array_api` hands over numpy's C-API capsule when numpy is already
imported; :class:`NumpyImportWatcher` calls back right after ``import numpy`` has
finished, so the tracer can hook numpy's data-memory handler then. Importing numpy
at tracer start would cost every pure-Python session ~13% (OpenBLAS threads).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

__all__ = ["NumpyImportWatcher", "numpy_array_api"]


def numpy_array_api() -> object | None:
    """numpy's C-API capsule if numpy >= 1.22 is already imported, else None."""
    numpy = sys.modules.get("numpy")
    if numpy is None or not hasattr(numpy, "__version__"):
        return None
    major, minor = (int(p) for p in numpy.__version__.split(".")[:2])
    if (major, minor) < (1, 22):
        return None
    for name in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):
        try:
            capsule: object = importlib.import_module(name)._ARRAY_API
            return capsule
        except (ImportError, AttributeError):
            continue
    return None


class NumpyImportWatcher(importlib.abc.MetaPathFinder):
    """Calls back once ``import numpy`` has finished, so numpy is never imported for us.

    It finds numpy's spec with the other finders and wraps that spec's loader so the
    callback runs right after numpy's ``__init__`` has executed.
    """

    def __init__(self, on_import: Callable[[], None]) -> None:
        self._on_import = on_import

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "numpy":
            return None
        self.uninstall()
        spec = importlib.util.find_spec(fullname)
        loader = spec.loader if spec is not None else None
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        original = loader.exec_module
        on_import = self._on_import

        def exec_module(module: ModuleType) -> None:
            original(module)
            on_import()

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec

    def install(self) -> None:
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)

    def uninstall(self) -> None:
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass

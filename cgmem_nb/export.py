"""``cgmem_nb.export``: JSON, CSV and Prometheus exports (see :mod:`cgmem_nb.outputs.export`).

>>> from cgmem_nb import export
>>> text = export.prometheus()             # the process-wide profiler, Prometheus text
>>> tables = export.read_csv_tables(path)  # a CSV export read back with its dtypes
"""

from __future__ import annotations

from .outputs.export import *  # noqa: F401,F403
from .outputs.export import __all__ as __all__  # noqa: F401

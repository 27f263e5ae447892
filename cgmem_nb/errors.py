"""Exceptions raised by cgmem_nb.

Every message names the value that was wrong and says how to fix it.
"""

from __future__ import annotations


class CgmemError(Exception):
    """Base class of every error cgmem_nb raises on purpose."""


class ConfigError(CgmemError, ValueError):
    """A configuration value (from code or the environment) is not accepted."""


class SizeError(CgmemError, ValueError):
    """A size string such as ``"500 MB"`` could not be parsed."""


class TracerError(CgmemError, RuntimeError):
    """A tracer could not be started or stopped as asked."""


class SessionError(CgmemError, RuntimeError):
    """A profiling session was used in a way it does not support."""


class ResultFormatError(CgmemError, ValueError):
    """A saved result could not be read back."""


class ExportError(CgmemError, ValueError):
    """An export was asked for something that does not exist (a table name, a directory)."""


class ClusterError(CgmemError, ValueError):
    """A Dask cluster cannot be profiled as asked (no client, not a client, an asynchronous one)."""

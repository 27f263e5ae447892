"""Sessions: the profiler, its private recordings, the finished results and the session runner.

This package's ``__init__`` stays empty: the package root reaches :mod:`cgmem_nb.session.hooks`
cheaply (no pandas) to install the facade.
"""

"""Build script for the optional native sampler; metadata lives in pyproject.toml.

``cgmem_nb.engine._sampler`` is optional: if it cannot be compiled (no compiler,
another Python version), ``pip install .`` still succeeds and cgmem_nb falls back
to the exact tracer (tracemalloc).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "cgmem_nb.engine._sampler",
            sources=["cgmem_nb/engine/_sampler.c"],
            extra_compile_args=["-O2", "-fvisibility=hidden", "-Wall", "-Wno-unused-parameter"],
            libraries=["m"],
            optional=True,
        )
    ]
)

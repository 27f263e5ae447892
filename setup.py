"""Build script for the optional native sampler; metadata lives in pyproject.toml.

``cgmem_nb.engine._sampler`` is optional: it is built only on the CPython versions
that ``cgmem_nb/engine/versions.py`` (the one table of supported versions) lists
for the sampled tracer, and if it cannot be compiled (no compiler) ``pip install .``
still succeeds. Without it cgmem_nb says why once and uses the exact tracer.
"""

from __future__ import annotations

import runpy
from pathlib import Path

from setuptools import Extension, setup

HERE = Path(__file__).resolve().parent
CSRC = Path("cgmem_nb") / "engine" / "csrc"
# Loaded by path: cgmem_nb is not importable before it is installed.
versions = runpy.run_path(str(HERE / "cgmem_nb" / "engine" / "versions.py"))

ext_modules = []
if versions["sampler_builds"]():
    low, high = versions["sampler_hex_range"]()
    ext_modules.append(
        Extension(
            "cgmem_nb.engine._sampler",
            sources=sorted(str(p) for p in CSRC.glob("*.c")),
            depends=sorted(str(p) for p in CSRC.glob("*.h")),
            define_macros=[("CG_MIN_HEX", hex(low)), ("CG_MAX_HEX", hex(high))],
            extra_compile_args=["-O2", "-fvisibility=hidden", "-Wall", "-Wno-unused-parameter"],
            libraries=["m"],
            optional=True,
        )
    )

setup(ext_modules=ext_modules)

"""Build script for the optional native sampler; metadata lives in pyproject.toml.

``cgmem_nb.engine._sampler`` is optional: it is built only on the CPython versions
that ``cgmem_nb/engine/versions.py`` (the one table of supported versions) lists
for the sampled tracer, and if it cannot be compiled (no compiler) ``pip install .``
still succeeds. Without it cgmem_nb says why once and uses the exact tracer.
"""

from __future__ import annotations

import platform
import runpy
import sys
from pathlib import Path

from setuptools import Extension, setup

HERE = Path(__file__).resolve().parent
CSRC = Path("cgmem_nb") / "engine" / "csrc"
# Loaded by path: cgmem_nb is not importable before it is installed.
versions = runpy.run_path(str(HERE / "cgmem_nb" / "engine" / "versions.py"))

_FLAGS = ["-O2", "-fvisibility=hidden", "-Wall", "-Wno-unused-parameter"]
_LINUX = sys.platform.startswith("linux")
# TLS descriptors: the native hooks' thread-local countdown costs a few instructions
# instead of a call to __tls_get_addr on every malloc (aarch64 uses descriptors already).
_TLS = ["-mtls-dialect=gnu2"] if _LINUX and platform.machine() in ("x86_64", "AMD64") else []
# Relocation patching (elf_patch.c) is ELF-only; elsewhere hooks_native.c compiles to
# a stub that says why native allocations are not followed.
_SOURCES = sorted(str(p) for p in CSRC.glob("*.c") if _LINUX or p.name != "elf_patch.c")

ext_modules = []
if versions["sampler_builds"]():
    low, high = versions["sampler_hex_range"]()
    ext_modules.append(
        Extension(
            "cgmem_nb.engine._sampler",
            sources=_SOURCES,
            depends=sorted(str(p) for p in CSRC.glob("*.h")),
            define_macros=[("CG_MIN_HEX", hex(low)), ("CG_MAX_HEX", hex(high))],
            extra_compile_args=_FLAGS + _TLS,
            libraries=["m", "dl"] if _LINUX else ["m"],
            optional=True,
        )
    )

setup(ext_modules=ext_modules)

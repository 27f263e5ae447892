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
_NATIVE = ["cgmem_nb/engine/_native_hooks.c", "cgmem_nb/engine/_elf_patch.c"]
# TLS descriptors: the hooks' thread-local countdown costs a few instructions instead
# of a call to __tls_get_addr on every malloc (aarch64 uses descriptors already).
_NATIVE_FLAGS = _FLAGS + (["-mtls-dialect=gnu2"] if platform.machine() in ("x86_64", "AMD64") else [])

ext_modules = []
if versions["sampler_builds"]():
    low, high = versions["sampler_hex_range"]()
    ext_modules.append(
        Extension(
            "cgmem_nb.engine._sampler",
            sources=sorted(str(p) for p in CSRC.glob("*.c")),
            depends=sorted(str(p) for p in CSRC.glob("*.h")),
            define_macros=[("CG_MIN_HEX", hex(low)), ("CG_MAX_HEX", hex(high))],
            extra_compile_args=_FLAGS,
            libraries=["m"],
            optional=True,
        )
    )
    if sys.platform.startswith("linux"):
        # The native hooks on their own (relocation patching is ELF-only).
        ext_modules.append(
            Extension(
                "cgmem_nb.engine._native_probe",
                sources=["cgmem_nb/engine/_native_probe.c", *_NATIVE],
                depends=["cgmem_nb/engine/_native_hooks.h", "cgmem_nb/engine/_elf_patch.h"],
                extra_compile_args=_NATIVE_FLAGS,
                libraries=["m", "dl"],
                optional=True,
            )
        )

setup(ext_modules=ext_modules)

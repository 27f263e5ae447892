"""Build script for the optional native sampler; metadata lives in pyproject.toml.

``cgmem_nb.engine._sampler`` is optional: if it cannot be compiled (no compiler,
another Python version), ``pip install .`` still succeeds and cgmem_nb falls back
to the exact tracer (tracemalloc).
"""

import platform
import sys

from setuptools import Extension, setup

_FLAGS = ["-O2", "-fvisibility=hidden", "-Wall", "-Wno-unused-parameter"]
_NATIVE = ["cgmem_nb/engine/_native_hooks.c", "cgmem_nb/engine/_elf_patch.c"]
# TLS descriptors: the hooks' thread-local countdown costs a few instructions instead
# of a call to __tls_get_addr on every malloc (aarch64 uses descriptors already).
_NATIVE_FLAGS = _FLAGS + (["-mtls-dialect=gnu2"] if platform.machine() in ("x86_64", "AMD64") else [])

extensions = [
    Extension(
        "cgmem_nb.engine._sampler",
        sources=["cgmem_nb/engine/_sampler.c"],
        extra_compile_args=_FLAGS,
        libraries=["m"],
        optional=True,
    )
]
if sys.platform.startswith("linux"):
    # The native hooks on their own (relocation patching is ELF-only).
    extensions.append(
        Extension(
            "cgmem_nb.engine._native_probe",
            sources=["cgmem_nb/engine/_native_probe.c", *_NATIVE],
            depends=["cgmem_nb/engine/_native_hooks.h", "cgmem_nb/engine/_elf_patch.h"],
            extra_compile_args=_NATIVE_FLAGS,
            libraries=["m", "dl"],
            optional=True,
        )
    )

setup(ext_modules=extensions)

"""Notebook awareness: which cell a frame belongs to, and how to name a location.

IPython compiles each cell under a file name of its own (``<ipython-input-3-…>``
in a terminal, ``/tmp/ipykernel_…/….py`` in a kernel) and remembers which
execution count it belongs to. Frames in cell code are reported as ``In[7]:3``
with the source line, never as that temporary file name.
"""

from __future__ import annotations

import linecache
import os
import re
import sys
import sysconfig
from functools import lru_cache

_INPUT_RE = re.compile(r"^<ipython-input-(\d+)-[0-9a-f]+>$")

# Files registered by cgmem_nb itself (cells run under %%memprofile): filename -> cell number.
_REGISTERED: dict[str, int] = {}


def register_cell(filename: str, number: int) -> None:
    """Remember that code compiled as ``filename`` is cell ``In[number]``."""
    _REGISTERED[filename] = number


def _shell_map() -> dict[str, int]:
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return {}
    try:
        shell = ipython.get_ipython()
    except Exception:
        return {}
    if shell is None:
        return {}
    compiler = getattr(shell, "compile", None)
    mapping = getattr(compiler, "_filename_map", None)
    return mapping if isinstance(mapping, dict) else {}


def cell_files() -> dict[str, int]:
    """Every file name known to hold a notebook cell's code, with its execution count."""
    shell = {name: n for name, n in _shell_map().items() if isinstance(name, str) and isinstance(n, int)}
    return {**shell, **_REGISTERED}


def cell_number(filename: str) -> int | None:
    """The execution count of the cell compiled as ``filename``, or None for a file."""
    number = _REGISTERED.get(filename)
    if number is not None:
        return number
    number = _shell_map().get(filename)
    if isinstance(number, int):
        return number
    match = _INPUT_RE.match(filename)
    return int(match.group(1)) if match else None


@lru_cache(maxsize=1)
def _library_roots() -> tuple[str, ...]:
    roots = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        try:
            roots.add(os.path.realpath(sysconfig.get_paths()[key]))
        except KeyError:
            pass
    for path in sys.path:
        if path.endswith(("site-packages", "dist-packages")):
            roots.add(os.path.realpath(path))
    roots.add(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))  # cgmem_nb itself
    return tuple(sorted(roots, key=len, reverse=True))


@lru_cache(maxsize=1)
def _raw_library_prefixes() -> tuple[str, ...]:
    """The library roots as written in ``sys.path`` and ``sysconfig`` (no symlinks resolved)."""
    raw = {os.path.abspath(p) for p in sys.path if p.endswith(("site-packages", "dist-packages"))}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            raw.add(os.path.abspath(path))
    return tuple(root + os.sep for root in raw | set(_library_roots()))


@lru_cache(maxsize=4096)
def is_library(filename: str) -> bool:
    """True for the standard library, installed packages, cgmem_nb and synthetic files."""
    if filename.startswith("<"):
        return cell_number(filename) is None
    if filename.startswith(_raw_library_prefixes()):
        return True  # the common case, without resolving symlinks (realpath costs ~0.2 ms a file)
    real = os.path.realpath(filename)
    return any(real.startswith(root + os.sep) for root in _library_roots())


def is_user_code(filename: str) -> bool:
    """True for notebook cells and the user's own files."""
    return cell_number(filename) is not None or not is_library(filename)


@lru_cache(maxsize=4096)
def short_path(filename: str) -> str:
    """``pandas/core/frame.py`` for an installed file, a path relative to the working
    directory for the user's own, the name itself otherwise."""
    if filename.startswith("<"):
        return filename
    real = os.path.realpath(filename)
    for root in _library_roots():
        if real.startswith(root + os.sep):
            return os.path.relpath(real, root)
    try:
        rel = os.path.relpath(real)
    except ValueError:
        return filename
    return filename if rel.startswith("..") else rel


def location(filename: str, lineno: int) -> str:
    """``In[7]:3`` for cell code, ``pandas/core/frame.py:123`` otherwise."""
    number = cell_number(filename)
    if number is not None:
        return f"In[{number}]:{lineno}"
    return f"{short_path(filename)}:{lineno}"


def source_line(filename: str, lineno: int) -> str:
    """The stripped source line, or ``""`` when it is not known."""
    return linecache.getline(filename, lineno).strip()


_OWN_ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__))) + os.sep


@lru_cache(maxsize=4096)
def is_own(filename: str) -> bool:
    """True for cgmem_nb's own files."""
    if filename.startswith(_OWN_ROOT):
        return True
    if filename.startswith(_raw_library_prefixes()):
        return False  # an installed package or the standard library, not under cgmem_nb/
    return os.path.realpath(filename).startswith(_OWN_ROOT)


#: Packages of the notebook front end and the kernel's messaging: an allocation whose stack
#: holds one of them and no frame of the user's code is the front end's (comm messages,
#: widget and Bokeh model updates, the kernel's sockets), not the user's.
FRONT_END = (
    "ipykernel", "jupyter_client", "comm", "ipywidgets", "jupyter_bokeh", "bokeh", "zmq",
    "tornado", "traitlets", "jupyter_core", "debugpy", "prometheus_client",
)


@lru_cache(maxsize=4096)
def is_front_end(filename: str) -> bool:
    """True for a file of the front end's packages (:data:`FRONT_END`)."""
    if filename.startswith("<") or not is_library(filename):
        return False
    return short_path(filename).split(os.sep, 1)[0] in FRONT_END


def attribute(frames: tuple[tuple[str, int], ...]) -> tuple[str, int] | None:
    """The frame an allocation is charged to: the innermost frame in user code
    (a cell or the user's own file), else the innermost frame. None when the
    profiler itself made the allocation (a cgmem_nb frame comes before any user frame)
    or the front end did (a :data:`FRONT_END` frame and no user frame)."""
    front_end = False
    for filename, lineno in frames:
        if is_user_code(filename):
            return filename, lineno
        if is_own(filename):
            return None
        front_end = front_end or is_front_end(filename)
    if front_end:
        return None
    return frames[0] if frames else ("<unknown>", 0)


def via(frames: tuple[tuple[str, int], ...], charged: tuple[str, int], most: int = 2) -> str:
    """The library calls between the charged frame and the allocation, outermost first:
    ``pandas/core/frame.py:16192 -> pandas/core/reshape/merge.py:405`` (``most`` frames at most)."""
    try:
        at = frames.index(charged)
    except ValueError:
        return ""
    inner = [location(fn, ln) for fn, ln in reversed(frames[:at])]
    return " -> ".join(inner[:most]) + (" -> …" if len(inner) > most else "")


def trim_stack(frames: tuple[tuple[str, int], ...]) -> tuple[tuple[str, int], ...]:
    """``frames`` without the profiler's own wrapper and what runs it: cut at the first
    cgmem_nb frame that follows a frame of user code."""
    seen_user = False
    for i, (filename, _) in enumerate(frames):
        if is_user_code(filename):
            seen_user = True
        elif seen_user and is_own(filename):
            return frames[:i]
    return frames


def current_cell() -> int | None:
    """The execution count of the cell running now, when inside IPython."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    shell = ipython.get_ipython()
    if shell is None:
        return None
    # IPython 9 counts the running cell before running it, IPython 8 after;
    # the display hook's prompt_count is the running cell's number in both.
    count = getattr(getattr(shell, "displayhook", None), "prompt_count", None)
    if not isinstance(count, int):
        count = getattr(shell, "execution_count", None)
    return int(count) if isinstance(count, int) else None

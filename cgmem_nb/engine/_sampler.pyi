"""Types of the native sampler, ``cgmem_nb.engine._sampler`` (C sources in ``csrc/``).

Only :mod:`cgmem_nb.engine.sampled` uses it; everything here is process-wide state.
"""

from typing import Any, Final, Literal, final

from _typeshed import structseq

_Domain = Literal["pymem", "pyobj", "numpy", "malloc", "mmap", "pool"]
_Via = Literal["GIL released", "worker thread"]

#: Domain names, indexed like the C enum ``CG_DOMAIN_*``.
DOMAINS: Final[tuple[_Domain, ...]]
#: How stacks are captured (``"public frame API"``).
STACK_WALK: Final[str]
#: Largest accepted stack depth.
MAX_DEPTH: Final[int]

@final
class Sample(structseq[Any], tuple[int | None, int, str | None, float, bool, int, int, int, _Domain, _Via | None]):
    """One sampled allocation, as :func:`samples` returns it."""

    __match_args__: Final = ("stack", "thread_id", "tag", "weight", "live", "size", "ts_ns", "seq", "domain", "via")

    @property
    def stack(self) -> int | None:
        """Stack id for :func:`stack`, or None when no Python frame was available."""
    @property
    def thread_id(self) -> int:
        """``threading.get_ident()`` of the allocating thread."""
    @property
    def tag(self) -> str | None:
        """The thread's category tag (:func:`set_tag`) at the allocation."""
    @property
    def weight(self) -> float:
        """Bytes this sample stands for: ``size / (1 - exp(-size / interval))``."""
    @property
    def live(self) -> bool:
        """True while the block has not been freed."""
    @property
    def size(self) -> int:
        """Bytes of the sampled allocation."""
    @property
    def ts_ns(self) -> int:
        """``time.monotonic_ns()`` of the allocation."""
    @property
    def seq(self) -> int:
        """Sequence number, increasing (see :func:`next_seq`)."""
    @property
    def domain(self) -> _Domain:
        """Which allocator family the block came from."""
    @property
    def via(self) -> _Via | None:
        """None when ``stack`` is the allocating thread's own; else how it was charged
        to the announced statement (:func:`announce`)."""

def start(interval: float, depth: int, /) -> None:
    """Install the hooks and start sampling with a mean ``interval`` in bytes."""

def stop() -> None:
    """Stop sampling, unhook where still on top, drop every sample and stack."""

def is_running() -> bool: ...
def hooks() -> dict[Literal["mem", "obj", "numpy", "native"], bool]:
    """Whether allocations of each family pass through the sampler now."""

def set_interval(interval: float, /) -> None: ...
def seed(seed: int, /) -> None:
    """Seed the sampling random generators (reproducible tests)."""

def set_tag(name: str | None, /) -> str | None:
    """Set the calling thread's category tag; return the previous one."""

def get_tag() -> str | None: ...
def quiet(flag: bool, /) -> bool:
    """Suppress sampling on the calling thread; return the previous setting."""

def next_seq() -> int: ...
def live() -> tuple[float, float]:
    """``(estimated live bytes, estimated peak bytes)``."""

def reset_peak() -> None: ...
def samples(since_seq: int, /) -> list[Sample]:
    """Samples with ``seq >= since_seq``, in sequence order (freed ones up to the cap)."""

def peak_samples(since_seq: int, /) -> tuple[float, list[Sample]]:
    """The estimated peak bytes since the last reset, and the samples with ``seq >= since_seq``
    that were live at that high-water mark (each with ``live`` True), in sequence order."""

def groups(
    since_seq: int, at_peak: bool, /
) -> list[tuple[int | None, int, str | None, str, str | None, float, float, float, float]]:
    """Samples with ``seq >= since_seq`` (``at_peak``: those live at the high-water mark)
    summed by (stack, thread id, tag, domain, via): ``(stack, thread_id, tag, domain, via,
    live_bytes, live_blocks, allocated_bytes, allocated_blocks)``; ``domain`` is one of
    :data:`DOMAINS`, ``via`` how the stack was found (None: the thread's own); blocks are
    estimated (weight / size)."""

def stack(stack_id: int, /) -> tuple[tuple[str, int], ...]:
    """``((filename, lineno), ...)`` of a stack id, innermost first."""

def stats() -> dict[str, Any]:
    """Internal counters: samples, freed samples, stacks, memory, drops, the free-path filter."""

def set_freed_cap(cap: int, /) -> None: ...
def hook_numpy(array_api: object, /) -> bool:
    """Chain onto numpy's default data-memory handler (call inside an empty Context)."""

def unhook_numpy() -> bool: ...
def after_fork_child() -> None: ...
def native_start() -> int:
    """Sample native allocations too (sampler running); returns relocation slots written.

    Raises RuntimeError when the process's libraries cannot be patched (not ELF)."""

def native_stop(keep: bool, /) -> None:
    """Stop sampling native allocations; ``keep`` leaves the slots patched (pass-through)."""

def native_poll() -> None:
    """Patch libraries whose ``dlopen`` could not be followed at once."""

def native_objects() -> list[tuple[str, int, int, int, int]]:
    """``(path, groups, slots, foreign, failed)`` of every loaded object seen."""

def native_pools() -> list[tuple[str, str, str]]:
    """``(path, kind, state)`` of allocators found inside libraries."""

def native_counters() -> dict[str, int]:
    """Samples per native domain, dlopens followed, deferred patches, slots patched."""

def announce(frame: Any, /) -> None:
    """The statement running now (a frame object), or None."""

"""Types of the native sampler, ``cgmem_nb.engine._sampler`` (C sources in ``csrc/``).

Only :mod:`cgmem_nb.engine.sampled` uses it; everything here is process-wide state.
"""

from typing import Any, Final, Literal, final

from _typeshed import structseq

_Domain = Literal["pymem", "pyobj", "numpy"]

#: Domain names, indexed like the C enum ``CG_DOMAIN_*``.
DOMAINS: Final[tuple[_Domain, ...]]
#: How stacks are captured (``"public frame API"``).
STACK_WALK: Final[str]
#: Largest accepted stack depth.
MAX_DEPTH: Final[int]

@final
class Sample(structseq[Any], tuple[int | None, int, str | None, float, bool, int, int, int, _Domain]):
    """One sampled allocation, as :func:`samples` returns it."""

    __match_args__: Final = ("stack", "thread_id", "tag", "weight", "live", "size", "ts_ns", "seq", "domain")

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

def start(interval: float, depth: int, /) -> None:
    """Install the hooks and start sampling with a mean ``interval`` in bytes."""

def stop() -> None:
    """Stop sampling, unhook where still on top, drop every sample and stack."""

def is_running() -> bool: ...
def hooks() -> dict[Literal["mem", "obj", "numpy"], bool]:
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

def stack(stack_id: int, /) -> tuple[tuple[str, int], ...]:
    """``((filename, lineno), ...)`` of a stack id, innermost first."""

def stats() -> dict[str, Any]:
    """Internal counters: samples, freed samples, stacks, memory, drops, the free-path filter."""

def set_freed_cap(cap: int, /) -> None: ...
def hook_numpy(array_api: object, /) -> bool:
    """Chain onto numpy's default data-memory handler (call inside an empty Context)."""

def unhook_numpy() -> bool: ...
def after_fork_child() -> None: ...

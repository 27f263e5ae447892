"""What recommendation rules read and return: :class:`Context` in, :class:`Draft` out.

Kept apart from :mod:`~cgmem_nb.analysis.recommend` (the engine and its default rules) so
that rules in other modules (:mod:`~cgmem_nb.analysis.native`) take the same types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..schema import Difficulty, MemoryLeak
from ..session.holders import Observation
from ..session.result import ProfileResult

__all__ = ["MB", "Context", "Draft", "Rule"]

MB = 1000**2


@dataclass(frozen=True)
class Draft:
    """A recommendation before ranking (no priority yet)."""

    rule: str
    target: str
    description: str
    action: str
    estimated_savings: int
    difficulty: Difficulty
    savings_error: int = 0
    measured: bool = True


@dataclass
class Context:
    """What the rules read. Objects in ``namespace`` are measured, never changed."""

    #: User variables (name -> object).
    namespace: Mapping[str, Any] = field(default_factory=dict)
    observations: Sequence[Observation] = ()
    leaks: Sequence[MemoryLeak] = ()
    results: Sequence[ProfileResult] = ()
    #: Smallest savings worth a recommendation.
    min_savings: int = 1 * MB
    #: Columns up to this many rows are measured exactly; longer ones from a sample.
    exact_rows: int = 100_000
    sample_rows: int = 50_000
    #: Share of distinct values under which a text column should be a category.
    max_unique_share: float = 0.5

    @property
    def last(self) -> Observation | None:
        """The latest observation."""
        return self.observations[-1] if self.observations else None


Rule = Callable[[Context], Iterable[Draft]]

"""The graded scales of the contract: one Low..Critical scale, and the ease of a recommendation.

:class:`PressureLevel` is the one Low / Medium / High / Critical scale: memory
pressure (the monitor's levels, the ``pressure_level`` column) and a leak's impact
(``MemoryLeak.estimated_impact``, the ``estimated_impact`` column) are graded on it.
``LeakImpact`` is the same class under the name the analysis uses. Members are
spelled ``LOW`` .. ``CRITICAL``; their values are the seed's display names
(``"Low"`` .. ``"Critical"``), so ``PressureLevel("High") is PressureLevel.HIGH``.

The spellings of cgmem_nb 0.1's ``LeakImpact`` (``LeakImpact.Low`` ..
``LeakImpact.Critical``) still resolve, with a ``DeprecationWarning``, until 0.3.
"""

from __future__ import annotations

import enum
import warnings
from typing import Any

__all__ = ["Difficulty", "LeakImpact", "PressureLevel"]

_OLD_SPELLINGS = {"Low": "LOW", "Medium": "MEDIUM", "High": "HIGH", "Critical": "CRITICAL"}


class _ScaleType(enum.EnumType):
    """Resolves the 0.1 spellings (``LeakImpact.Low``) with a ``DeprecationWarning``."""

    def __getattr__(cls, name: str) -> Any:
        canonical = _OLD_SPELLINGS.get(name)
        if canonical is None:
            raise AttributeError(f"type object {cls.__name__!r} has no attribute {name!r}")
        warnings.warn(
            f"{cls.__name__}.{name} is deprecated: write {cls.__name__}.{canonical} "
            "(the 0.1 spellings stop working in cgmem_nb 0.3)",
            DeprecationWarning,
            stacklevel=2,
        )
        return cls[canonical]


class PressureLevel(str, enum.Enum, metaclass=_ScaleType):
    """How close memory is to the limit, or how much a leak matters: ``LOW`` to ``CRITICAL``.

    Levels are ordered by :attr:`rank` (``PressureLevel.HIGH > PressureLevel.MEDIUM``).
    The thresholds that place a reading on this scale are the monitor's pressure
    policy (:mod:`cgmem_nb.engine.pressure`) and the leak detector's impact rules.
    """

    LOW = "Low"
    MEDIUM = "Medium"
    HIGH = "High"
    CRITICAL = "Critical"

    @property
    def rank(self) -> int:
        """0 for ``LOW`` up to 3 for ``CRITICAL``."""
        return _RANK[self.value]

    @classmethod
    def from_rank(cls, rank: int) -> PressureLevel:
        """The level of ``rank`` (0 to 3; clamped)."""
        return list(cls)[min(max(rank, 0), 3)]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, PressureLevel):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, PressureLevel):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, PressureLevel):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, PressureLevel):
            return NotImplemented
        return self.rank >= other.rank


_RANK = {"Low": 0, "Medium": 1, "High": 2, "Critical": 3}

#: A leak's impact is graded on the pressure scale (same class, the analysis's name for it).
LeakImpact = PressureLevel


class Difficulty(str, enum.Enum):
    """How hard a recommendation is to apply."""

    Easy = "Easy"
    Medium = "Medium"
    Hard = "Hard"

    @property
    def weight(self) -> float:
        """Weight of the savings when ranking: Easy 1.0, Medium 0.6, Hard 0.3."""
        return {"Easy": 1.0, "Medium": 0.6, "Hard": 0.3}[self.value]

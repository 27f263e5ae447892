"""The graded scales of the contract: pressure levels, leak impact and the ease of a recommendation.

:class:`PressureLevel` grades memory pressure (the monitor's levels, the
``pressure_level`` column); :class:`LeakImpact` grades a leak
(``MemoryLeak.estimated_impact``, the ``estimated_impact`` column). Their values
are the seed's display names (``"Low"`` .. ``"Critical"``).
"""

from __future__ import annotations

import enum

__all__ = ["Difficulty", "LeakImpact", "PressureLevel"]


class PressureLevel(enum.Enum):
    """How close memory use is to the limit, from ``LOW`` to ``CRITICAL``.

    Levels are ordered (``PressureLevel.HIGH > PressureLevel.MEDIUM``). The value is
    the display name in the seed's spelling, so ``PressureLevel("High")`` is
    ``PressureLevel.HIGH``. The thresholds are the pressure policy's
    (:mod:`cgmem_nb.engine.pressure`).
    """

    LOW = "Low"
    MEDIUM = "Medium"
    HIGH = "High"
    CRITICAL = "Critical"

    @property
    def rank(self) -> int:
        """0 for ``LOW`` up to 3 for ``CRITICAL``."""
        return _RANK[self.value]

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


class LeakImpact(str, enum.Enum):
    """How much a leak matters: from its size against the limit and its time to the limit."""

    Low = "Low"
    Medium = "Medium"
    High = "High"
    Critical = "Critical"

    @property
    def rank(self) -> int:
        """0 for Low up to 3 for Critical."""
        return list(LeakImpact).index(self)


class Difficulty(str, enum.Enum):
    """How hard a recommendation is to apply."""

    Easy = "Easy"
    Medium = "Medium"
    Hard = "Hard"

    @property
    def weight(self) -> float:
        """Weight of the savings when ranking: Easy 1.0, Medium 0.6, Hard 0.3."""
        return {"Easy": 1.0, "Medium": 0.6, "Hard": 0.3}[self.value]

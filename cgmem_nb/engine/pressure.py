"""The pressure policy: where memory use sits on the Low..Critical scale, with hysteresis.

One policy for the whole house. The monitor thread runs a :class:`PressureTracker`
against the process-wide limit and publishes a ``MemoryPressure`` event per level
crossing; its level in force travels on every ``Sample``, and the live feed, the
panel, the dashboard and the exports read it from there (or, with no monitor
running, ask :func:`level_for`, the same thresholds without history).

Default thresholds, as fractions of the memory limit (:data:`DEFAULT_PRESSURE_THRESHOLDS`):

============  ===========================
level         entered at usage / limit ≥
============  ===========================
``LOW``       (below ``MEDIUM``)
``MEDIUM``    0.70
``HIGH``      0.85
``CRITICAL``  0.95
============  ===========================

A level is *entered* when usage reaches its threshold and *left* (downwards) only
when usage falls below ``threshold - hysteresis`` (0.02 of the limit by default),
so a reading that hovers around a threshold emits once, not on every sample.
"""

from __future__ import annotations

from typing import Mapping

from ..schema.levels import PressureLevel
from .events.kinds import MemoryPressure

__all__ = [
    "DEFAULT_HYSTERESIS",
    "DEFAULT_PRESSURE_THRESHOLDS",
    "PressureLevel",
    "PressureTracker",
    "critical_bytes",
    "level_for",
]

#: Fraction of the memory limit at which each level above ``LOW`` is entered.
DEFAULT_PRESSURE_THRESHOLDS: Mapping[PressureLevel, float] = {
    PressureLevel.MEDIUM: 0.70,
    PressureLevel.HIGH: 0.85,
    PressureLevel.CRITICAL: 0.95,
}
#: Fraction of the limit usage must fall below a threshold to leave its level.
DEFAULT_HYSTERESIS = 0.02


def level_for(current: int, limit: int, thresholds: Mapping[PressureLevel, float] = DEFAULT_PRESSURE_THRESHOLDS) -> PressureLevel:
    """The level ``current`` bytes enter from ``LOW`` against ``limit`` (no history, no hysteresis)."""
    if limit <= 0:
        return PressureLevel.LOW
    fraction = current / limit
    level = PressureLevel.LOW
    for candidate, threshold in thresholds.items():
        if fraction >= threshold and candidate > level:
            level = candidate
    return level


def critical_bytes(limit: int) -> int:
    """Bytes at which the ``CRITICAL`` level is entered against ``limit`` (the default policy)."""
    return int(DEFAULT_PRESSURE_THRESHOLDS[PressureLevel.CRITICAL] * limit)


class PressureTracker:
    """Turn usage readings into one :class:`MemoryPressure` event per level crossing.

    An update that jumps several levels at once emits one event with the final
    level. The tracker starts at ``LOW`` and has no clock, thread or I/O: feed it
    readings with :meth:`update`.

    Args:
        limit: memory limit in bytes (positive).
        thresholds: fraction of ``limit`` at which ``MEDIUM``, ``HIGH`` and
            ``CRITICAL`` are entered; missing levels take
            :data:`DEFAULT_PRESSURE_THRESHOLDS`. They must rise with the level and
            lie in (0, 1].
        hysteresis: fraction of ``limit`` that usage must fall below a threshold
            before its level is left; 0 disables hysteresis.

    Raises:
        ValueError: a limit, threshold or hysteresis that is not accepted.
    """

    def __init__(
        self,
        limit: int,
        thresholds: Mapping[PressureLevel, float] | None = None,
        hysteresis: float = DEFAULT_HYSTERESIS,
    ) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
            raise ValueError(f"limit={limit!r} is not accepted: give a positive number of bytes")
        merged = dict(DEFAULT_PRESSURE_THRESHOLDS)
        if thresholds is not None:
            for level, value in thresholds.items():
                if not isinstance(level, PressureLevel) or level is PressureLevel.LOW:
                    raise ValueError(
                        f"threshold key {level!r} is not accepted: use PressureLevel.MEDIUM, HIGH or CRITICAL"
                    )
                merged[level] = value
        previous = 0.0
        for level in (PressureLevel.MEDIUM, PressureLevel.HIGH, PressureLevel.CRITICAL):
            value = merged[level]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
                raise ValueError(f"threshold {level.name}={value!r} is not accepted: give a fraction in (0, 1]")
            if value <= previous:
                raise ValueError(
                    f"threshold {level.name}={value!r} is not accepted: thresholds must rise "
                    f"from MEDIUM to CRITICAL (got {merged})"
                )
            previous = float(value)
        if isinstance(hysteresis, bool) or not isinstance(hysteresis, (int, float)) or not 0.0 <= hysteresis < 1.0:
            raise ValueError(f"hysteresis={hysteresis!r} is not accepted: give a fraction from 0 up to 1")
        self._limit = limit
        self._thresholds: dict[PressureLevel, float] = {k: float(v) for k, v in merged.items()}
        self._hysteresis = float(hysteresis)
        self._level = PressureLevel.LOW

    @property
    def limit(self) -> int:
        """The memory limit in bytes."""
        return self._limit

    @property
    def level(self) -> PressureLevel:
        """The level in force after the last :meth:`update`."""
        return self._level

    @property
    def thresholds(self) -> Mapping[PressureLevel, float]:
        """Entry fraction of each level above ``LOW``."""
        return dict(self._thresholds)

    @property
    def hysteresis(self) -> float:
        """Fraction of the limit that usage must fall below a threshold to leave its level."""
        return self._hysteresis

    def level_for(self, current: int) -> PressureLevel:
        """The level ``current`` bytes would enter from ``LOW`` (no hysteresis, no state change)."""
        return level_for(current, self._limit, self._thresholds)

    def update(self, current: int) -> MemoryPressure | None:
        """Feed one reading; return a :class:`MemoryPressure` if the level changed, else None."""
        fraction = current / self._limit
        entered = self.level_for(current)
        if entered > self._level:
            new = entered
        else:
            # Going down (or staying): keep the highest level, at or below the
            # current one, whose threshold minus hysteresis the reading still meets.
            new = PressureLevel.LOW
            for candidate in (PressureLevel.CRITICAL, PressureLevel.HIGH, PressureLevel.MEDIUM):
                if candidate <= self._level and fraction >= self._thresholds[candidate] - self._hysteresis:
                    new = candidate
                    break
        if new is self._level:
            return None
        self._level = new
        return MemoryPressure(level=new, current_usage=current, limit=self._limit)

    def reset(self) -> None:
        """Go back to ``LOW`` without emitting anything."""
        self._level = PressureLevel.LOW

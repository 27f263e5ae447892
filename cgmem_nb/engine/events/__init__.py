"""Profiler events and the bus that carries them.

Everything that happens in the profiler that someone may want to react to is an
*event*: a small frozen dataclass derived from :class:`ProfilerEvent`, with a
``kind`` string and the ``timestamp`` (``time.time()``) at which it was made
(:mod:`~cgmem_nb.engine.events.kinds`). Events travel on an :class:`EventBus`
(:mod:`~cgmem_nb.engine.events.bus`); the process-wide bus is :data:`EVENT_BUS`.
Listen with a callback (``EVENT_BUS.subscribe``) or an asyncio-friendly
:class:`EventReceiver` (``EVENT_BUS.receiver()``,
:mod:`~cgmem_nb.engine.events.receiver`).

Example::

    from cgmem_nb.engine.events import EVENT_BUS, MemoryPressure, PressureLevel

    async def watch() -> None:
        with EVENT_BUS.receiver(types=(MemoryPressure,)) as receiver:
            async for event in receiver:
                if isinstance(event, MemoryPressure) and event.level >= PressureLevel.HIGH:
                    print("memory pressure:", event.level.value)

The levels come from one pressure policy, :mod:`cgmem_nb.engine.pressure`.
"""

from __future__ import annotations

from ...schema.levels import PressureLevel
from ..subscription import Subscription
from .bus import EVENT_BUS, EventBus, EventCallback
from .kinds import (
    CellFinished,
    CellStarted,
    FinishedTask,
    LeakDetected,
    MemoryPressure,
    ProfilerEvent,
    RecommendationGenerated,
    Sample,
    SessionFinished,
    SessionStarted,
    TasksFinished,
    ThresholdBreached,
    WorkerLost,
    WorkerSample,
)
from .receiver import EventReceiver

__all__ = [
    "EVENT_BUS",
    "CellFinished",
    "CellStarted",
    "EventBus",
    "EventCallback",
    "EventReceiver",
    "FinishedTask",
    "LeakDetected",
    "MemoryPressure",
    "PressureLevel",
    "ProfilerEvent",
    "RecommendationGenerated",
    "Sample",
    "SessionFinished",
    "SessionStarted",
    "Subscription",
    "TasksFinished",
    "ThresholdBreached",
    "WorkerLost",
    "WorkerSample",
]

"""Stack keys of a recording's snapshots: :func:`by_key` groups a snapshot's stats by
(frames, thread, tag, domain, via), merging stats whose frames read the same."""

from __future__ import annotations

from ..engine.tracers import Frame, StackStat

__all__ = ["StackKey", "by_key", "stack_key"]

StackKey = tuple[tuple[Frame, ...], "int | None", "str | None", "str | None", "str | None"]


def stack_key(stat: StackStat) -> StackKey:
    return (stat.frames, stat.thread_id, stat.tag, stat.domain, stat.via)


def by_key(stats: tuple[StackStat, ...]) -> dict[StackKey, StackStat]:
    """Stats by key, merging stats whose frames read the same (a tracer may group by
    code object and offset, and two offsets can resolve to the same file and line)."""
    out: dict[StackKey, StackStat] = {}
    for stat in stats:
        key = stack_key(stat)
        old = out.get(key)
        out[key] = stat if old is None else StackStat(
            stat.frames,
            old.live_bytes + stat.live_bytes,
            old.live_count + stat.live_count,
            old.allocated_bytes + stat.allocated_bytes,
            old.allocated_count + stat.allocated_count,
            stat.thread_id,
            stat.tag,
            stat.domain,
            stat.via,
        )
    return out

"""Shard groups: which Discord shards one bot process runs.

A large bot splits its guilds over `shard_count` gateway connections (shards). A
Kubernetes StatefulSet runs them in groups: pod N (its ordinal) runs shards
N*per_group … N*per_group+per_group-1. With no shard_count set the bot runs unsharded.
"""

from __future__ import annotations

from typing import Any


def shard_ids_for(group: int, per_group: int, count: int) -> list[int]:
    """The shard ids of group `group` when `count` shards are split `per_group` at a time."""
    if per_group < 1 or count < 1 or group < 0:
        raise ValueError("shard groups need per_group >= 1, shard_count >= 1 and group >= 0")
    ids = list(range(group * per_group, min((group + 1) * per_group, count)))
    if not ids:
        raise ValueError(f"group {group} has no shards: {count} shards, {per_group} per group")
    return ids


def group_number(value: str | int) -> int:
    """A group from a number or a StatefulSet pod name (`atelier-bot-3` -> 3)."""
    text = str(value).strip()
    number = text.rpartition("-")[2]
    if not number.isdigit():
        raise ValueError(f"{text!r}: expected a number or a pod name ending in -N")
    return int(number)


def shard_options(
    shard_count: int | None, shards_per_group: int | None, shard_group: int | None
) -> dict[str, Any]:
    """discord.py's `shard_count`/`shard_ids` options; empty when the bot runs unsharded.

    A shard_count alone runs every shard in this process."""
    if shard_count is None:
        if shards_per_group is not None or shard_group is not None:
            raise ValueError("ATELIER_SHARD_GROUP and _SHARDS_PER_GROUP need ATELIER_SHARD_COUNT")
        return {}
    if shard_group is None:
        return {"shard_count": shard_count}
    ids = shard_ids_for(shard_group, shards_per_group or 1, shard_count)
    return {"shard_count": shard_count, "shard_ids": ids}

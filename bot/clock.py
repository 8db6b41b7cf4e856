"""Clocks for things that happen at a set time: the real one, and one that tests move by hand."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Protocol

LONGEST_SLEEP = timedelta(minutes=5)  # wake up now and then, so a changed wall clock is noticed


class Clock(Protocol):
    """What the challenge scheduler needs from a clock."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    async def sleep_until(self, when: datetime | None) -> None:
        """Return at `when` (or a little earlier, never later); None: some minutes from now."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime | None) -> None:
        limit = self.now() + LONGEST_SLEEP
        target = limit if when is None else min(when, limit)
        await asyncio.sleep(max(0.0, (target - self.now()).total_seconds()))


class ManualClock:
    """A clock that stands still until `advance()` moves it; sleepers wake when their time comes."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, 12, tzinfo=UTC)
        self._moved = asyncio.Condition()

    def now(self) -> datetime:
        return self._now

    async def advance(self, delta: timedelta) -> None:
        """Move the clock forward by `delta` and wake every sleeper whose time has come."""
        self._now += delta
        async with self._moved:
            self._moved.notify_all()

    async def sleep_until(self, when: datetime | None) -> None:
        async with self._moved:
            await self._moved.wait_for(lambda: when is not None and self._now >= when)

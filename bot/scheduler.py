"""The challenge scheduler: phases change by themselves when their windows end.

Everything it needs is in the database, so a bot that was down through a deadline catches up
as soon as it starts. Each phase change is claimed with a conditional UPDATE (`advance`),
so even two bots on one database announce every change exactly once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from bot.clock import Clock
from bot.store.challenge_tables import CLOSED, SUBMISSIONS, VOTING, Challenge
from bot.store.challenges import ChallengeStore

log = logging.getLogger(__name__)

NEXT_PHASE = {SUBMISSIONS: VOTING, VOTING: CLOSED}


@dataclass(frozen=True)
class PhaseChange:
    """A challenge that just entered `phase`."""

    challenge: Challenge
    phase: str


Announce = Callable[[PhaseChange], Awaitable[None]]


class ChallengeScheduler:
    """Advances due challenges, then sleeps until the next deadline (or until woken)."""

    def __init__(self, store: ChallengeStore, clock: Clock, announce: Announce) -> None:
        self.store = store
        self.clock = clock
        self.announce = announce
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look at the deadlines again now (e.g. a challenge was just started)."""
        self._wake.set()

    async def run(self) -> None:
        """Forever: catch up, then wait for the next deadline or a wake-up."""
        while True:
            self._wake.clear()
            try:
                await self.catch_up()
                deadline = await self.store.next_deadline()
            except Exception:
                log.exception("challenge scheduler: a round failed; retrying after a pause")
                deadline = None
            await self._sleep(deadline)

    async def catch_up(self) -> list[PhaseChange]:
        """Advance every challenge whose window has ended, and announce each change once."""
        changes: list[PhaseChange] = []
        while due := await self.store.due(self.clock.now()):
            progressed = False
            for challenge in due:
                change = await self._advance(challenge)
                if change is not None:
                    changes.append(change)
                    progressed = True
            if not progressed:
                break  # another scheduler claimed them; it announces them
        return changes

    async def _advance(self, challenge: Challenge) -> PhaseChange | None:
        new = NEXT_PHASE[challenge.phase]
        if not await self.store.advance(challenge.id, challenge.phase, new, self.clock.now()):
            return None
        challenge.phase = new
        change = PhaseChange(challenge, new)
        log.info("challenge %d (%s) is now %s", challenge.id, challenge.theme, new)
        try:
            await self.announce(change)
        except Exception:
            log.exception("challenge %d: announcing %s failed", challenge.id, new)
        return change

    async def _sleep(self, deadline: datetime | None) -> None:
        sleeper = asyncio.ensure_future(self.clock.sleep_until(deadline))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()

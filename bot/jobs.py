"""Jobs: every command run is stored (who, what, model version, seed, params) before answering."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import discord

from bot.store.db import Database
from bot.store.models import Job, utcnow


def new_job_id() -> str:
    """A short random id that users can quote and logs can be searched for."""
    return secrets.token_hex(6)


class Jobs:
    """Creates and completes job rows; announces `job_finished` / `job_failed` events."""

    def __init__(self, db: Database, dispatch: Callable[..., None]) -> None:
        self.db = db
        self.dispatch = dispatch

    async def start(
        self,
        interaction: discord.Interaction,
        *,
        model: str | None = None,
        seed: int | None = None,
        params: dict[str, Any] | None = None,
        command: str | None = None,
        parent_id: str | None = None,
    ) -> str:
        """Store the job of `interaction` (its id comes from the command tree) and return its id."""
        job_id = interaction.extras["job_id"]
        if command is None:
            command = interaction.command.qualified_name if interaction.command else "component"
        row = Job(
            id=job_id,
            parent_id=parent_id,
            command=command,
            user_id=interaction.user.id,
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            model=model,
            seed=seed,
            params=params or {},
        )
        async with self.db.session.begin() as session:
            session.add(row)
        return job_id

    async def finish(
        self, job_id: str, *, model_version: str | None = None, message_id: int | None
    ) -> None:
        await self._update(
            job_id,
            status="done",
            model_version=model_version,
            message_id=message_id,
            finished_at=utcnow(),
        )
        self.dispatch("job_finished", job_id)

    async def fail(self, job_id: str, error: str) -> None:
        await self._update(job_id, status="failed", error=error[:2000], finished_at=utcnow())
        self.dispatch("job_failed", job_id)

    async def share(self, job_id: str, shared: bool) -> None:
        await self._update(job_id, shared=shared)

    async def get(self, job_id: str) -> Job | None:
        async with self.db.session() as session:
            return await session.get(Job, job_id)

    async def _update(self, job_id: str, **values: Any) -> None:
        async with self.db.session.begin() as session:
            row = await session.get(Job, job_id)
            if row is None:  # the command failed before it stored its job
                return
            for key, value in values.items():
                setattr(row, key, value)

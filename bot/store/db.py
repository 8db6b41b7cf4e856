"""The database connection: an async SQLAlchemy engine and sessions."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from bot.store.migrate import migrate
from bot.store.models import BotState


class Database:
    """Opens the engine, migrates the schema (Alembic), hands out sessions."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_async_engine(url)
        self.session = async_sessionmaker(self.engine, expire_on_commit=False)

    async def open(self) -> None:
        """Create the SQLite folder if needed, and bring the schema up to date."""
        parsed = make_url(self.url)
        if parsed.get_backend_name() == "sqlite" and parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        await migrate(self.engine)

    async def close(self) -> None:
        await self.engine.dispose()

    async def get_state(self, key: str) -> str | None:
        async with self.session() as session:
            row = await session.get(BotState, key)
            return row.value if row else None

    async def set_state(self, key: str, value: str) -> None:
        async with self.session.begin() as session:
            await session.merge(BotState(key=key, value=value))


__all__ = ["AsyncSession", "Database"]

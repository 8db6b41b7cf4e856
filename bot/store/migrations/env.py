"""Alembic's environment: runs on the connection the bot hands over, or on DATABASE_URL.

From the shell: `.venv/bin/alembic -c bot/store/alembic.ini upgrade head` (or `revision
--autogenerate -m "..."` after changing the models).
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import bot.store.challenge_tables  # noqa: F401  (registers the challenge tables)
from bot.store.models import Base

target_metadata = Base.metadata


def run_on(connection: Connection) -> None:
    """Run the pending migrations on one sync connection."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite changes columns by copying the table
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_from_url() -> None:
    """Used from the shell: connect to sqlalchemy.url, or the bot's own DATABASE_URL."""
    from bot.settings import Settings

    url = context.config.get_main_option("sqlalchemy.url") or Settings().db_url
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(run_on)
    await engine.dispose()


given = context.config.attributes.get("connection")
if given is not None:
    run_on(given)
else:
    asyncio.run(run_from_url())

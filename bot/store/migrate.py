"""Bring the database schema up to date with Alembic when the bot starts.

A database made before migrations existed (tables from `create_all`, no `alembic_version`)
is stamped with the baseline revision first, then upgraded like any other.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001"


def alembic_config(url: str | None = None) -> Config:
    """Alembic's configuration for Atelier's migrations (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str | None:
    """The newest migration's revision id."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Upgrade the database behind `connection` (a sync connection) to `revision`."""
    config = alembic_config()
    config.attributes["connection"] = connection
    tables = set(inspect(connection).get_table_names())
    if "jobs" in tables and "alembic_version" not in tables:
        command.stamp(config, BASELINE)
    current = MigrationContext.configure(connection).get_current_revision()
    if revision == "head" and current == head_revision():
        return  # the common case at start-up: nothing to do
    command.upgrade(config, revision)


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Run the migrations up to `revision` in one transaction."""
    async with engine.begin() as connection:
        await connection.run_sync(upgrade, revision)

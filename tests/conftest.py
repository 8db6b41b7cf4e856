"""Shared fixtures: a real Triton over the committed model repository, the Discord
stand-in, and the real bot on a real SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from bot.app import AtelierBot
from bot.stack import running_bot, start_triton
from bot.standin import DiscordStandIn
from deploy.triton import LocalTriton
from tests.gan_repository import gan_triton, repo_dir  # noqa: F401  (deploy tests: own copy)
from tests.helpers import make_settings
from tests.postgres import postgres_server  # noqa: F401  (a fixture for the PostgreSQL tests)


@pytest.fixture(scope="session")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("atelier")


@pytest_asyncio.fixture(scope="session")
async def triton(session_dir: Path) -> AsyncIterator[LocalTriton]:
    """One real tritonserver for the session, serving model_repository/."""
    server = await start_triton(make_settings(session_dir))
    yield server
    await server.stop()


@pytest_asyncio.fixture(scope="session")
async def standin() -> AsyncIterator[DiscordStandIn]:
    server = DiscordStandIn()
    await server.start()
    server.point_discord_py_here()
    yield server
    await server.stop()


@pytest_asyncio.fixture(scope="session")
async def bot(
    session_dir: Path, triton: LocalTriton, standin: DiscordStandIn
) -> AsyncIterator[AtelierBot]:
    """The real Atelier bot, logged in to the stand-in, talking to the session's Triton."""
    settings = make_settings(session_dir, triton_url=triton.grpc_url)
    async with running_bot(settings, standin.token, guild_ready_timeout=0.1) as running:
        yield running

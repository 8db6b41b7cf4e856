"""Triton goes down and comes back: users get a clear ephemeral message, the bot lives on."""

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from bot.app import AtelierBot
from bot.stack import running_bot, start_triton
from bot.standin import DiscordStandIn
from deploy.triton import LocalTriton
from tests.helpers import make_settings


@pytest_asyncio.fixture
async def own_triton(tmp_path: Path) -> AsyncIterator[LocalTriton]:
    """A Triton of this test's own, so that stopping it disturbs no other test."""
    server = await start_triton(make_settings(tmp_path))
    yield server
    await server.stop()


@pytest_asyncio.fixture
async def outage_bot(
    tmp_path: Path, own_triton: LocalTriton, standin: DiscordStandIn
) -> AsyncIterator[AtelierBot]:
    settings = make_settings(tmp_path, triton_url=own_triton.grpc_url)
    async with running_bot(settings, standin.token, guild_ready_timeout=0.1) as bot:
        yield bot


async def test_triton_down_then_back(
    outage_bot: AtelierBot, own_triton: LocalTriton, standin: DiscordStandIn
) -> None:
    await own_triton.stop()

    handle = await standin.invoke("imagine", {"seed": 7})
    error = await handle.wait_for(lambda m: m.ephemeral, timeout=3)
    assert time.monotonic() - handle.created_at < 3.0  # Discord's acknowledgement window
    assert "model server is busy or down" in error.content and "job `" in error.content
    assert not any(m.attachments for m in handle.messages)
    assert handle.deleted  # the public "thinking…" placeholder was removed
    job = await outage_bot.jobs.get(error.content.split("job `")[1].split("`")[0])
    assert job is not None and job.status == "failed" and job.seed == 7  # nothing is lost

    status = await handle_answer(standin, "status")
    assert "down" in status.embeds[0]["title"]
    assert outage_bot.is_ready() and not outage_bot.is_closed()

    await own_triton.start()  # same ports: the bot's client reconnects by itself
    message = await handle_answer(standin, "imagine", seed=7)
    assert not message.ephemeral and len(message.attachments) == 1


async def handle_answer(standin: DiscordStandIn, command: str, **options: object):
    handle = await standin.invoke(command, options)
    return await handle.wait_for(lambda m: not m.deferred, timeout=30)

"""End to end: /admin models and /admin rollback through the stand-in, with a real bot and a
Triton over a temporary copy of the repository (gan v1 and v2)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from bot.app import AtelierBot
from bot.stack import running_bot
from bot.standin import DiscordStandIn
from deploy.triton import LocalTriton
from tests.gan_repository import served
from tests.helpers import make_settings


@pytest_asyncio.fixture
async def admin_bot(
    standin: DiscordStandIn, gan_triton: LocalTriton, repo_dir: Path, tmp_path: Path
) -> AsyncIterator[AtelierBot]:
    """The bot on the temporary repository; alice is on the owner allowlist, bob is not."""
    settings = make_settings(tmp_path, triton_url=gan_triton.grpc_url).model_copy(
        update={
            "model_repository": repo_dir,
            "admin_user_ids": [int(standin.users["alice"]["id"])],
        }
    )
    async with running_bot(settings, standin.token, guild_ready_timeout=0.1) as bot:
        yield bot


async def reply(standin: DiscordStandIn, command: str, user: str, **options: object) -> str:
    handle = await standin.invoke(command, options, user=user)
    message = await handle.wait_for(lambda m: m.ephemeral and not m.deferred, timeout=60)
    return message.content


async def test_admin_is_refused_without_manage_server(
    admin_bot: AtelierBot, standin: DiscordStandIn, gan_triton: LocalTriton, repo_dir: Path
) -> None:
    _, before = await served(gan_triton.grpc_url)
    for command, options in (("admin models", {}), ("admin rollback", {"model": "gan"})):
        answer = await reply(standin, command, "bob", **options)
        assert "Only members with the Manage Server permission" in answer, answer
    _, after = await served(gan_triton.grpc_url)
    assert after == before
    assert not (repo_dir / "gan" / "retired").exists()


async def test_admin_models_and_rollback(
    admin_bot: AtelierBot, standin: DiscordStandIn, gan_triton: LocalTriton
) -> None:
    _, live = await served(gan_triton.grpc_url)
    models = await reply(standin, "admin models", "admin")
    assert f"gan: live v{live}" in models and "ready" in models, models
    assert "ms per request" in models  # Triton's statistics for the served version
    assert "gan: live" in await reply(standin, "admin models", "alice")  # on the allowlist

    answer = await reply(standin, "admin rollback", "admin", model="gan")
    previous = int(live) - 1
    assert f"serving v{previous} (was v{live})" in answer, answer
    assert (await served(gan_triton.grpc_url))[1] == str(previous)

    answer = await reply(standin, "admin rollback", "alice", model="gan", version=int(live))
    assert f"serving v{live} (was v{previous})" in answer, answer
    assert (await served(gan_triton.grpc_url))[1] == live
    assert "no model called" in await reply(standin, "admin rollback", "admin", model="nope")

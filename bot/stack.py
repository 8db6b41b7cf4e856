"""Start Atelier's pieces together: local Triton (unless TRITON_URL), the stand-in (unless
DISCORD_TOKEN) and the bot. Used by `atelier up`, `atelier selftest`, tests and benchmarks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from bot.app import AtelierBot, create_bot
from bot.settings import Settings
from bot.standin import DiscordStandIn
from deploy.triton import LocalTriton, TritonPorts

log = logging.getLogger(__name__)


@dataclass
class Stack:
    settings: Settings
    bot: AtelierBot
    triton: LocalTriton | None
    standin: DiscordStandIn | None


async def start_triton(settings: Settings, ports: TritonPorts | None = None) -> LocalTriton:
    """A local Triton over the settings' model repository, started and ready."""
    triton = LocalTriton(
        settings.model_repository, settings.state_dir / "triton", ports=ports or TritonPorts()
    )
    await triton.start()
    return triton


@asynccontextmanager
async def running_bot(settings: Settings, token: str, **options: Any) -> AsyncIterator[AtelierBot]:
    """Run the bot until the block ends; returns once it is logged in and READY."""
    bot = create_bot(settings, **options)
    task = asyncio.create_task(bot.start(token), name="atelier-bot")
    ready = asyncio.create_task(bot.wait_until_ready())
    try:
        await asyncio.wait({task, ready}, timeout=60, return_when="FIRST_COMPLETED")
        if task.done():
            task.result()  # raises the reason the bot stopped
            raise RuntimeError("the bot stopped before it was ready")
        if not ready.done():
            raise TimeoutError("the bot did not become ready within 60 s")
        yield bot
    finally:
        ready.cancel()
        await bot.close()
        await asyncio.gather(task, return_exceptions=True)


@asynccontextmanager
async def running_stack(
    settings: Settings, *, standin_port: int = 0, **bot_options: Any
) -> AsyncIterator[Stack]:
    """Triton, the Discord side (real or stand-in) and the bot, all running."""
    async with AsyncExitStack() as stack:
        triton = None
        if not settings.triton_url:
            triton = await start_triton(settings)
            stack.push_async_callback(triton.stop)
            settings = settings.model_copy(update={"triton_url": triton.grpc_url})
        standin = None
        if settings.discord_token is None:
            standin = DiscordStandIn(port=standin_port)
            await standin.start()
            stack.push_async_callback(standin.stop)
            standin.point_discord_py_here()
            token = standin.token
        else:
            token = settings.discord_token.get_secret_value()
        bot = await stack.enter_async_context(running_bot(settings, token, **bot_options))
        yield Stack(settings, bot, triton, standin)

"""`/status`: Triton's health and each model's loaded version."""

from __future__ import annotations

import math

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import AtelierBot
from bot.inference import ServerStatus

STATE_ICONS = {"READY": "🟢", "LOADING": "🟡", "UNLOADING": "🟡", "UNAVAILABLE": "🔴"}


def describe(status: ServerStatus) -> discord.Embed:
    """An embed with the server's liveness and one line per model version."""
    if not status.live:
        return discord.Embed(
            title="Model server: down 🔴",
            description=f"Triton did not answer: {status.error or 'no reply'}",
            colour=discord.Colour.red(),
        )
    lines = [
        f"{STATE_ICONS.get(m.state, '⚪')} `{m.name}` v{m.version or '-'} {m.state.lower()}"
        + (f" ({m.reason})" if m.reason else "")
        for m in sorted(status.models, key=lambda m: (m.name, m.version))
    ]
    return discord.Embed(
        title="Model server: live 🟢",
        description="\n".join(lines) or "No models in the repository.",
        colour=discord.Colour.green(),
    )


class Status(commands.Cog):
    def __init__(self, bot: AtelierBot) -> None:
        self.bot = bot

    @app_commands.command(name="status", description="Show the model server and model versions.")
    async def status(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True, ephemeral=True)
        embed = describe(await self.bot.inference.status())
        if math.isfinite(self.bot.latency):
            embed.set_footer(text=f"gateway latency {self.bot.latency * 1000:.0f} ms")
        await interaction.followup.send(embed=embed, ephemeral=True)


async def setup(bot: AtelierBot) -> None:
    await bot.add_cog(Status(bot))

"""`/admin`: model versions and rollbacks for the people who run the community.

`/admin models` lists every model's versions with readiness, request counts and latency
from each Triton; `/admin rollback` serves an earlier version. Both need Manage Server or
an id in the `ADMIN_USER_IDS` setting, checked here on the bot's side from what Discord
sends with the interaction (a client can hide a command, not protect it).
The work is done by deploy/repository.py, which imports no torch.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import AtelierBot
from bot.errors import UserFacingError
from deploy.repository import DeployError, ModelRepository, TritonFleet, rollback, status

log = logging.getLogger(__name__)
MESSAGE_LIMIT = 1900  # Discord allows 2,000 characters; leave room for the code fence


class AdminError(UserFacingError):
    """An /admin request refused; the message says why."""


def require_admin(interaction: discord.Interaction, allowed_ids: list[int]) -> None:
    """Refuse anyone without Manage Server who is not on the owner allowlist."""
    if interaction.permissions.manage_guild or interaction.user.id in allowed_ids:
        return
    raise AdminError("Only members with the Manage Server permission can use /admin.")


def code_block(lines: list[str]) -> str:
    text = "\n".join(lines)
    if len(text) > MESSAGE_LIMIT:
        text = text[: MESSAGE_LIMIT - 1] + "…"
    return f"```\n{text}\n```"


class Admin(commands.GroupCog, group_name="admin", group_description="Models (Manage Server)."):
    def __init__(self, bot: AtelierBot) -> None:
        self.bot = bot
        self.repository = ModelRepository(bot.settings.model_repository)

    def fleet(self) -> TritonFleet:
        try:
            return TritonFleet(self.bot.settings.deploy_urls)
        except DeployError as error:
            raise AdminError(str(error)) from error

    def check(self, interaction: discord.Interaction) -> None:
        require_admin(interaction, self.bot.settings.admin_user_ids)

    @app_commands.command(name="models", description="Versions, readiness, requests, latency.")
    async def models(self, interaction: discord.Interaction) -> None:
        self.check(interaction)
        await interaction.response.defer(thinking=True, ephemeral=True)
        fleet = self.fleet()
        lines: list[str] = []
        for model in self.repository.models():
            lines += (await status(self.repository, fleet, model)).lines()
        await interaction.followup.send(code_block(lines or ["no models"]), ephemeral=True)

    @app_commands.command(name="rollback", description="Serve an earlier version of a model.")
    @app_commands.describe(model="the model", version="the version to serve (default: previous)")
    async def rollback(
        self, interaction: discord.Interaction, model: str, version: int | None = None
    ) -> None:
        self.check(interaction)
        if model not in self.repository.models():
            raise AdminError(f"There is no model called `{model}`.")
        await interaction.response.defer(thinking=True, ephemeral=True)
        try:
            before, now = await rollback(self.repository, self.fleet(), model, version)
        except DeployError as error:
            raise AdminError(f"Rollback refused: {error}") from error
        log.info("%s rolled %s back from v%s to v%s", interaction.user.id, model, before, now)
        await interaction.followup.send(
            f"`{model}`: serving v{now} (was v{before}).", ephemeral=True
        )

    @rollback.autocomplete("model")
    async def model_names(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        names = [m for m in self.repository.models() if current.lower() in m.lower()]
        return [app_commands.Choice(name=name, value=name) for name in names[:25]]


async def setup(bot: AtelierBot) -> None:
    await bot.add_cog(Admin(bot))

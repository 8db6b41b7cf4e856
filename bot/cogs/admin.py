"""`/admin`: model versions, rollbacks and retraining for the people who run the community.

`/admin models` lists every model's versions with readiness, request counts and latency
from each Triton; `/admin rollback` serves an earlier version; `/admin retrain` fine-tunes
the served image generator in a separate process, edits its progress (step, losses, the
newest sample grid) into a channel message and publishes the result through the same
validation as `atelier deploy publish`; `/admin cancel` stops it. One run at a time.

Every subcommand needs Manage Server or an id in the `ADMIN_USER_IDS` setting, checked
here on the bot's side from what Discord sends with the interaction (a client can hide a
command, not protect it). Versions and rollbacks go through deploy/repository.py and
training through bot/retrain.py's processes: the bot imports no torch.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
from pathlib import Path

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import AtelierBot
from bot.datasets import NoTrainingData, dataset_dir, export_challenge
from bot.errors import UserFacingError
from bot.retrain import Outcome, Progress, RetrainPlan, RetrainRun
from deploy.repository import (
    DeployError,
    ModelRepository,
    TritonFleet,
    repository_headers,
    rollback,
    status,
)

log = logging.getLogger(__name__)
MESSAGE_LIMIT = 1900  # Discord allows 2,000 characters; leave room for the code fence
RETRAIN_MODEL = "gan"  # the model that `atelier deploy publish` can validate so far
EDIT_INTERVAL_S = 2.0  # at most one progress edit per interval (Discord's rate limits)


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
        self.run: RetrainRun | None = None
        self.watcher: asyncio.Task | None = None

    async def cog_unload(self) -> None:
        if self.run:
            self.run.cancel()
        if self.watcher:
            self.watcher.cancel()

    @property
    def datasets(self) -> Path:
        """Where data sets for /admin retrain live: one folder of images each."""
        return self.bot.settings.state_dir / "datasets"

    def dataset_names(self) -> list[str]:
        found = sorted(p.name for p in self.datasets.iterdir() if p.is_dir()) if (
            self.datasets.is_dir()) else []  # fmt: skip
        return ["emoji", *found]

    def fleet(self) -> TritonFleet:
        settings = self.bot.settings
        key = settings.triton_repository_key
        try:
            headers = repository_headers(key.get_secret_value() if key else None)
            return TritonFleet(settings.deploy_urls, headers=headers)
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

    @app_commands.command(name="retrain", description="Fine-tune the image model and publish it.")
    @app_commands.describe(
        data="emoji, or a data set folder in the bot's datasets/",
        steps="training steps",
        challenge="or train on a challenge's entries (only those whose authors allowed it)",
    )
    async def retrain(
        self,
        interaction: discord.Interaction,
        data: str = "emoji",
        steps: app_commands.Range[int, 1, 100_000] = 2000,
        challenge: app_commands.Range[int, 1] | None = None,
    ) -> None:
        self.check(interaction)
        if self.run and self.run.phase != "done":
            raise AdminError(
                f"A training run started by <@{self.run.started_by}> is already going "
                f"({self.run.phase}); /admin cancel stops it."
            )
        if challenge is not None:
            data = await self.export_entries(interaction, challenge)
        if data not in self.dataset_names():
            raise AdminError(f"No data set called `{data}`: {', '.join(self.dataset_names())}.")
        live = self.repository.live(RETRAIN_MODEL)
        if live is None:
            raise AdminError(f"`{RETRAIN_MODEL}` has no version to start from.")
        settings = self.bot.settings
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
        plan = RetrainPlan(
            model=RETRAIN_MODEL,
            live_dir=live.path.resolve(),
            data="emoji" if data == "emoji" else str((self.datasets / data).resolve()),
            steps=steps,
            run_dir=(settings.state_dir / "runs" / f"retrain-{stamp}").resolve(),
            model_repository=settings.model_repository.resolve(),
            triton_urls=self.fleet().configured,  # dns+grpc:// resolved again at publish
            quality_images=settings.retrain_quality_images,
            repository_key=(
                settings.triton_repository_key.get_secret_value()
                if settings.triton_repository_key
                else None
            ),
        )
        self.run = RetrainRun(plan, interaction.user.id)
        title = f"Retraining `{RETRAIN_MODEL}` from v{live.number} on `{data}`, {steps} steps"
        await interaction.response.send_message(f"{title}: started.", ephemeral=True)
        assert interaction.channel is not None
        message = await interaction.channel.send(f"{title}: starting…")
        log.info("%s started %s (run %s)", interaction.user.id, title, plan.run_dir)
        self.watcher = asyncio.create_task(self.watch(self.run, message, title))

    async def export_entries(self, interaction: discord.Interaction, challenge_id: int) -> str:
        """Export this server's challenge's consenting entries; the data set's name."""
        found = await self.bot.challenges.get(challenge_id)
        if found is None or found.guild_id != interaction.guild_id:
            raise AdminError(f"This server has no challenge #{challenge_id}.")
        folder = dataset_dir(self.bot.settings.state_dir, challenge_id)
        try:
            await export_challenge(self.bot.challenges, challenge_id, folder)
        except NoTrainingData as error:
            raise AdminError(f"Can't train on it: {error}.") from error
        return folder.name

    async def watch(self, run: RetrainRun, message: discord.Message, title: str) -> None:
        """Edit the run's progress into `message` until it ends (never raises)."""
        last_edit = 0.0
        try:
            async for event in run.events():
                final = isinstance(event, Outcome)
                if not final and time.monotonic() - last_edit < EDIT_INTERVAL_S:
                    continue
                last_edit = time.monotonic()
                if isinstance(event, Progress):
                    text = (f"{title}\nstep {event.step}/{event.total} · loss D {event.loss_d:.3f}"
                            f" · G {event.loss_g:.3f}")  # fmt: skip
                    sample = discord.File(event.sample, filename="samples.png")
                    await message.edit(content=text, attachments=[sample])
                elif isinstance(event, Outcome):
                    mark = "✅" if event.published else "❌"
                    await message.edit(content=f"{title}\n{mark} {event.text[:1500]}")
                else:
                    await message.edit(content=f"{title}\npublishing: {event[:1500]}")
        except Exception:
            log.exception(
                "retraining run %s failed; output: %s", run.plan.run_dir, run.output[-20:]
            )
            await message.edit(content=f"{title}\n❌ the run failed; the log has the details")

    @app_commands.command(name="cancel", description="Stop the running training run.")
    async def cancel(self, interaction: discord.Interaction) -> None:
        self.check(interaction)
        if not self.run or self.run.phase == "done":
            raise AdminError("No training run is going.")
        if not self.run.cancel():
            raise AdminError(f"The run is {self.run.phase} and can't be stopped now.")
        log.info("%s cancelled the training run %s", interaction.user.id, self.run.plan.run_dir)
        await interaction.response.send_message("Cancelling the training run.", ephemeral=True)

    @retrain.autocomplete("data")
    async def data_names(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        names = [n for n in self.dataset_names() if current.lower() in n.lower()]
        return [app_commands.Choice(name=name, value=name) for name in names[:25]]

    @rollback.autocomplete("model")
    async def model_names(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        names = [m for m in self.repository.models() if current.lower() in m.lower()]
        return [app_commands.Choice(name=name, value=name) for name in names[:25]]


async def setup(bot: AtelierBot) -> None:
    await bot.add_cog(Admin(bot))

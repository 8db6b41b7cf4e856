"""The bot: `create_bot(settings)`; `setup_hook` opens Triton's client and the DB, loads cogs."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.clock import Clock, SystemClock
from bot.errors import report_error
from bot.inference import InferenceClient
from bot.jobs import Jobs, new_job_id
from bot.metrics import Metrics, MetricsServer
from bot.settings import Settings
from bot.store.challenges import ChallengeStore
from bot.store.db import Database

log = logging.getLogger(__name__)

COGS = (
    "bot.cogs.imagine",
    "bot.cogs.style",
    "bot.cogs.compose",
    "bot.cogs.challenge",
    "bot.cogs.status",
    "bot.cogs.admin",
)

# Atelier sends audio as attachments and never joins voice: skip discord.py's voice warnings.
discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False


class AtelierTree(app_commands.CommandTree):
    """Gives every interaction a job id, and reports every error in one place."""

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        interaction.extras["job_id"] = new_job_id()
        if interaction.type is discord.InteractionType.application_command:
            assert isinstance(interaction.client, AtelierBot)
            interaction.client.metrics.command_started(interaction)
        return True

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        assert isinstance(interaction.client, AtelierBot)
        await interaction.client.report_failure(interaction, error)


class AtelierBot(commands.Bot):
    """Atelier's discord.py client."""

    def __init__(self, settings: Settings, clock: Clock | None = None, **options: Any) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.default(),
            tree_cls=AtelierTree,
            **options,
        )
        self.settings = settings
        self.metrics = Metrics()  # a registry per bot; served by metrics_server
        self.metrics_server = MetricsServer(
            self.metrics, settings.metrics_host, settings.metrics_port
        )
        self.inference = InferenceClient(
            settings.triton_url or "",
            timeout_s=settings.inference_timeout_s,
            status_timeout_s=settings.status_timeout_s,
            metrics=self.metrics,
        )
        self.db = Database(settings.db_url)
        self.jobs = Jobs(self.db, self.dispatch)
        self.challenges = ChallengeStore(self.db)
        self.clock = clock or SystemClock()  # challenge deadlines; tests pass a ManualClock

    async def setup_hook(self) -> None:
        if self.settings.metrics_port:
            await self.metrics_server.start()
        await self.inference.open()
        await self.db.open()
        for extension in COGS:
            await self.load_extension(extension)
        await self.sync_commands()
        await self.log_triton_readiness()

    async def log_triton_readiness(self) -> None:
        """Say at start-up whether Triton answers and which model versions are ready."""
        status = await self.inference.status()
        if not status.live:
            log.warning(
                "Triton at %s does not answer (%s); model commands will reply with an error "
                "until it does",
                self.inference.url,
                status.error,
            )
            return
        models = ", ".join(f"{m.name} v{m.version} {m.state}" for m in status.models)
        log.info("Triton at %s is live: %s", self.inference.url, models or "no models")

    async def sync_commands(self) -> None:
        """Sync the slash commands, but only when they changed (Discord limits creations)."""
        guild = discord.Object(self.settings.sync_guild_id) if self.settings.sync_guild_id else None
        if guild:
            self.tree.copy_global_to(guild=guild)
        payload = [command.to_dict(self.tree) for command in self.tree.get_commands(guild=guild)]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        key = f"commands:{self.application_id}:{guild.id if guild else 'global'}"
        if await self.db.get_state(key) == digest:
            log.info("slash commands unchanged; not syncing")
            return
        synced = await self.tree.sync(guild=guild)
        await self.db.set_state(key, digest)
        log.info("synced %d slash commands (%s)", len(synced), "guild" if guild else "global")

    def dispatch(self, event_name: str, /, *args: Any, **kwargs: Any) -> None:
        """discord.py's dispatch; a finished slash command is counted first, synchronously
        (a listener would be a task, which a closing bot can no longer start)."""
        if event_name == "app_command_completion":
            self.command_done(args[0])
        super().dispatch(event_name, *args, **kwargs)

    def command_done(
        self, interaction: discord.Interaction, error: Exception | None = None
    ) -> None:
        """Count the end of a command or button press; then dispatch `command_done`."""
        outcome = self.metrics.command_finished(interaction, error)
        if outcome is not None:
            self.dispatch("command_done", interaction, outcome)

    async def report_failure(self, interaction: discord.Interaction, error: Exception) -> None:
        """Mark the interaction's job failed, log it and tell the user (ephemerally)."""
        try:
            if "job_id" in interaction.extras:
                await self.jobs.fail(interaction.extras["job_id"], repr(error))
            await report_error(interaction, error)
        finally:
            self.command_done(interaction, error)

    async def run_component(
        self, interaction: discord.Interaction, work: Callable[[], Awaitable[None]]
    ) -> None:
        """Run a button's work with a job id and the same error reporting as slash commands."""
        interaction.extras.setdefault("job_id", new_job_id())
        self.metrics.command_started(interaction)
        try:
            await work()
        except Exception as error:
            await self.report_failure(interaction, error)
        else:
            self.command_done(interaction)

    async def close(self) -> None:
        await super().close()
        await self.metrics_server.stop()
        await self.inference.close()
        await self.db.close()


class ShardedAtelierBot(AtelierBot, commands.AutoShardedBot):
    """Atelier on several gateway shards (SHARD_COUNT, and a shard group per process)."""


def create_bot(settings: Settings, **options: Any) -> AtelierBot:
    """The bot for `settings`; `clock` for challenge deadlines (a ManualClock in tests);
    other `options` go to discord.py's Client (e.g. guild_ready_timeout). Sharded (an
    AutoShardedBot running settings.sharding's shard_ids) when SHARD_COUNT is set."""
    sharding = settings.sharding
    if sharding:
        return ShardedAtelierBot(settings, **sharding, **options)
    return AtelierBot(settings, **options)

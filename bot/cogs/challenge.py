"""`/challenge`: community art challenges with submissions, anonymous votes and winners.

start · submit · info · leaderboard · withdraw · theme for everyone; start, remove and cancel
need Manage Server, checked here on the bot's side from the permissions Discord sends.
The phases change by themselves (bot/scheduler.py); this cog announces each change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from datetime import timedelta

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import AtelierBot
from bot.media.submissions import SubmittedImage, check_image, check_size
from bot.media.uploads import download
from bot.scheduler import ChallengeScheduler, PhaseChange
from bot.store.challenge_tables import CANCELLED, CLOSED, SUBMISSIONS, VOTING, Challenge
from bot.store.challenges import ChallengeError, stamp
from bot.views.challenge import (
    VoteButton,
    channel_of,
    close_entries,
    delete_post,
    leaderboard_text,
    post_entry,
    post_results,
    reveal_entries,
    start_text,
    tell_author,
    voting_text,
    when,
)

log = logging.getLogger(__name__)

THEMES = (
    "moonlit gardens", "a city under the sea", "tiny worlds in a teacup", "forgotten machines",
    "the colour of silence", "a festival of lanterns", "creatures made of weather",
    "the last library", "portraits of houseplants", "a train between dreams",
    "reflections", "glitch and bloom", "maps of imaginary islands", "midnight snacks",
    "a museum of lost things", "clockwork animals",
)  # fmt: skip
PHASE_NAMES = {
    SUBMISSIONS: "submissions open",
    VOTING: "voting open",
    CLOSED: "closed",
    CANCELLED: "cancelled",
}
WEEK = timedelta(days=7)


def require_manage_server(interaction: discord.Interaction, action: str) -> None:
    """Refuse members without Manage Server (from the permissions in the interaction)."""
    if not interaction.permissions.manage_guild:
        raise ChallengeError(f"Only members with the Manage Server permission can {action}.")


def guild_id(interaction: discord.Interaction) -> int:
    if interaction.guild_id is None:
        raise ChallengeError("Challenges live in servers; use this command in one.")
    return interaction.guild_id


@app_commands.guild_only()
class Challenges(commands.GroupCog, group_name="challenge", group_description="Art challenges."):
    def __init__(self, bot: AtelierBot) -> None:
        self.bot = bot
        self.store = bot.challenges
        self.scheduler = ChallengeScheduler(self.store, bot.clock, self.announce)
        self._task: asyncio.Task[None] | None = None

    async def cog_load(self) -> None:
        self._task = asyncio.create_task(self.run_scheduler(), name="challenge-scheduler")

    async def cog_unload(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run_scheduler(self) -> None:
        """Once connected, catch up on deadlines missed while down, then keep to the schedule."""
        await self.bot.wait_until_ready()
        await self.scheduler.run()

    async def announce(self, change: PhaseChange) -> None:
        """Tell the challenge's channel that voting opened, or who won."""
        challenge = change.challenge
        if change.phase == VOTING:
            entries = await self.store.entries(challenge.id)
            channel = await channel_of(self.bot, challenge.channel_id)
            await channel.send(voting_text(challenge, len(entries)))
        elif change.phase == CLOSED:
            board = await self.store.leaderboard(challenge.id)
            await reveal_entries(self.bot, challenge, board)
            await post_results(self.bot, challenge, board)
        self.bot.dispatch("challenge_phase", change)

    # moderators

    @app_commands.command(name="start", description="Start an art challenge (Manage Server).")
    @app_commands.describe(
        theme="What to make.",
        submission_hours="How long submissions stay open.",
        voting_hours="How long voting lasts after that.",
        channel="Where entries and results go (default: here).",
        max_entries="Entries per member.",
    )
    async def start(
        self,
        interaction: discord.Interaction,
        theme: app_commands.Range[str, 3, 200],
        submission_hours: app_commands.Range[float, 0.05, 720.0] = 48.0,
        voting_hours: app_commands.Range[float, 0.05, 720.0] = 24.0,
        channel: discord.TextChannel | None = None,
        max_entries: app_commands.Range[int, 1, 10] = 1,
    ) -> None:
        require_manage_server(interaction, "start a challenge")
        await interaction.response.defer(ephemeral=True, thinking=True)
        now = self.bot.clock.now()
        target = channel.id if channel else interaction.channel_id
        assert target is not None
        job_id = await self.bot.jobs.start(interaction, params={"theme": theme})
        challenge = await self.store.start(
            guild_id=guild_id(interaction),
            channel_id=target,
            theme=theme.strip(),
            created_by=interaction.user.id,
            max_entries=max_entries,
            submissions_close_at=now + timedelta(hours=submission_hours),
            voting_close_at=now + timedelta(hours=submission_hours + voting_hours),
        )
        self.scheduler.wake()
        message = await (await channel_of(self.bot, target)).send(start_text(challenge))
        await self.bot.jobs.finish(job_id, message_id=message.id)
        await interaction.followup.send(
            f"Challenge #{challenge.id} “{challenge.theme}” started in <#{target}>.",
            ephemeral=True,
        )

    @app_commands.command(name="remove", description="Remove an entry (Manage Server).")
    @app_commands.describe(entry="The entry's number.", reason="Sent to the entry's author.")
    async def remove(
        self,
        interaction: discord.Interaction,
        entry: app_commands.Range[int, 1],
        reason: app_commands.Range[str, 3, 300],
    ) -> None:
        require_manage_server(interaction, "remove entries")
        await interaction.response.defer(ephemeral=True, thinking=True)
        record = await self.bot.jobs.start(interaction, params={"entry": entry, "reason": reason})
        removed = await self.store.remove(entry, guild_id(interaction), reason)
        challenge = await self.store.get(removed.challenge_id)
        assert challenge is not None
        await delete_post(self.bot, challenge, removed.message_id)
        how = await tell_author(self.bot, challenge, removed, reason)
        await self.bot.jobs.finish(record, message_id=None)
        await interaction.followup.send(
            f"Entry #{entry} was removed; its author was told {how}.", ephemeral=True
        )

    @app_commands.command(
        name="cancel", description="Cancel the running challenge (Manage Server)."
    )
    async def cancel(self, interaction: discord.Interaction) -> None:
        require_manage_server(interaction, "cancel a challenge")
        await interaction.response.defer(ephemeral=True, thinking=True)
        record = await self.bot.jobs.start(interaction)
        challenge = await self.store.cancel(guild_id(interaction), self.bot.clock.now())
        await close_entries(self.bot, challenge, await self.store.entries(challenge.id))
        channel = await channel_of(self.bot, challenge.channel_id)
        message = await channel.send(f"🚫 The challenge “{challenge.theme}” was cancelled.")
        await self.bot.jobs.finish(record, message_id=message.id)
        await interaction.followup.send(f"Challenge #{challenge.id} cancelled.", ephemeral=True)

    # everyone

    @app_commands.command(name="submit", description="Enter the running challenge.")
    @app_commands.describe(
        image="A PNG, JPEG, WebP or GIF.",
        job="Or the job id of one of your Atelier images (shown under it).",
        allow_training="Let this server's admins fine-tune Atelier's image model on it (no by "
        "default).",
    )
    async def submit(
        self,
        interaction: discord.Interaction,
        image: discord.Attachment | None = None,
        job: app_commands.Range[str, 1, 40] | None = None,
        allow_training: bool = False,
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        challenge = await self.store.require_open(guild_id(interaction))
        self.check_submissions_open(challenge)
        if (image is None) == (job is None):
            raise ChallengeError("Give either an `image` or the `job` id of one of your images.")
        limit = min(self.bot.settings.max_upload_bytes, interaction.filesize_limit)
        if image is not None:
            picture = await self.read_attachment(image, limit)
            job_id = None
        else:
            job_id = (job or "").strip().strip("`").lower()
            picture = await self.read_job_image(interaction, job_id, limit)
        record = await self.bot.jobs.start(
            interaction, params={"challenge": challenge.id, "from_job": job_id}
        )
        now = self.bot.clock.now()
        entry = await self.store.submit(
            challenge.id, interaction.user.id, picture, now, job_id, training_consent=allow_training
        )
        message = await post_entry(self.bot, challenge, entry)
        await self.store.set_entry_message(entry.id, message.id)
        await self.bot.jobs.finish(record, message_id=message.id)
        await interaction.followup.send(
            f"✅ Entry #{entry.id} is in: {message.jump_url}\nIt shows without your name until "
            f"voting closes {stamp(challenge.voting_close_at)}. "
            "`/challenge withdraw` takes it out.",
            ephemeral=True,
        )

    def check_submissions_open(self, challenge: Challenge) -> None:
        """A clear answer before downloading anything."""
        if challenge.phase != SUBMISSIONS or self.bot.clock.now() >= challenge.submissions_close_at:
            raise ChallengeError(
                f"Submissions for “{challenge.theme}” are closed; voting ends "
                f"{stamp(challenge.voting_close_at)}."
            )

    async def read_attachment(self, attachment: discord.Attachment, limit: int) -> SubmittedImage:
        check_size(attachment.filename, attachment.size, limit)
        data = await download(attachment, ChallengeError)
        return await asyncio.to_thread(check_image, data, attachment.filename, limit=limit)

    async def read_job_image(
        self, interaction: discord.Interaction, job_id: str, limit: int
    ) -> SubmittedImage:
        """The first image of a finished job of this user, read back from its message."""
        row = await self.bot.jobs.get(job_id)
        if row is None or row.user_id != interaction.user.id:
            raise ChallengeError(f"You have no Atelier job `{job_id}`.")
        if row.message_id is None or row.channel_id is None:
            raise ChallengeError(f"Job `{job_id}` has no finished image.")
        try:
            channel = await channel_of(self.bot, row.channel_id)
            message = await channel.fetch_message(row.message_id)  # type: ignore[attr-defined]
        except discord.HTTPException as error:
            raise ChallengeError(f"Job `{job_id}`'s message is gone, so I can't use it.") from error
        images = [a for a in message.attachments if (a.content_type or "").startswith("image/")]
        if not images:
            raise ChallengeError(f"Job `{job_id}` made no image.")
        return await self.read_attachment(images[0], limit)

    @app_commands.command(name="withdraw", description="Take one of your entries out.")
    @app_commands.describe(entry="The entry's number (not needed if you have one).")
    async def withdraw(
        self, interaction: discord.Interaction, entry: app_commands.Range[int, 1] | None = None
    ) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        if entry is None:
            entry = await self.only_entry(interaction)
        withdrawn = await self.store.withdraw(entry, interaction.user.id)
        challenge = await self.store.get(withdrawn.challenge_id)
        assert challenge is not None
        await delete_post(self.bot, challenge, withdrawn.message_id)
        await interaction.followup.send(f"Entry #{entry} was withdrawn.", ephemeral=True)

    async def only_entry(self, interaction: discord.Interaction) -> int:
        challenge = await self.store.require_open(guild_id(interaction))
        mine = await self.store.entries(challenge.id, interaction.user.id)
        if len(mine) != 1:
            numbers = ", ".join(f"#{e.id}" for e in mine) or "none"
            raise ChallengeError(f"Say which entry to withdraw (yours: {numbers}).")
        return mine[0].id

    @app_commands.command(name="leaderboard", description="The results of the latest challenge.")
    async def leaderboard(self, interaction: discord.Interaction) -> None:
        challenge = await self.store.latest(guild_id(interaction))
        if challenge is None:
            raise ChallengeError("This server has had no challenges yet.")
        if challenge.phase == CANCELLED:
            raise ChallengeError(f"“{challenge.theme}” was cancelled, so it has no results.")
        if challenge.phase != CLOSED:
            entries = await self.store.entries(challenge.id)
            await interaction.response.send_message(
                f"Votes on “{challenge.theme}” stay secret until voting closes "
                f"{stamp(challenge.voting_close_at)}; {len(entries)} entries so far.",
                ephemeral=True,
            )
            return
        board = await self.store.leaderboard(challenge.id)
        await interaction.response.send_message(
            leaderboard_text(challenge, board), allowed_mentions=discord.AllowedMentions.none()
        )

    @app_commands.command(name="info", description="The current challenge and your entries.")
    async def info(self, interaction: discord.Interaction) -> None:
        challenge = await self.store.latest(guild_id(interaction))
        if challenge is None:
            raise ChallengeError("This server has had no challenges yet.")
        entries = await self.store.entries(challenge.id)
        mine = [f"#{e.id}" for e in entries if e.user_id == interaction.user.id]
        lines = [
            f"**“{challenge.theme}”** · {PHASE_NAMES[challenge.phase]} · "
            f"in <#{challenge.channel_id}>",
            f"Submissions until {when(challenge.submissions_close_at)}, voting until "
            f"{when(challenge.voting_close_at)}.",
            f"{len(entries)} entries · up to {challenge.max_entries} per member · "
            f"yours: {', '.join(mine) or 'none'}",
        ]
        await interaction.response.send_message("\n".join(lines), ephemeral=True)

    @app_commands.command(name="theme", description="Suggest a theme for the next challenge.")
    @app_commands.describe(source="A curated theme, or this week's most generated GAN seeds.")
    @app_commands.choices(
        source=[
            app_commands.Choice(name="curated list", value="curated"),
            app_commands.Choice(name="seeds of the week", value="seeds"),
        ]
    )
    async def theme(self, interaction: discord.Interaction, source: str = "curated") -> None:
        if source == "seeds":
            since = self.bot.clock.now() - WEEK
            seeds = await self.store.seeds_of_the_week(guild_id(interaction), since)
            if seeds:
                listed = ", ".join(f"`{seed}`" for seed in seeds)
                text = (
                    f"💡 Theme: **Remix the seeds of the week** ({listed}): start from "
                    f"`/imagine seed:{seeds[0]}`, vary it, restyle it, make it yours."
                )
                await interaction.response.send_message(text, ephemeral=True)
                return
        choice = random.choice(THEMES)
        await interaction.response.send_message(
            f"💡 Theme: **{choice}**. `/challenge start theme:{choice}` to run it.", ephemeral=True
        )


async def setup(bot: AtelierBot) -> None:
    await bot.add_cog(Challenges(bot))
    bot.add_dynamic_items(VoteButton)

"""What challenges look like in Discord: gallery entries with vote buttons, and the messages
for a start, the opening of the vote, the results, a cancellation and a removal.

Each vote button's custom_id holds its entry id, so the buttons keep working after a restart.
"""

from __future__ import annotations

import contextlib
import io
import re
from datetime import datetime
from typing import TYPE_CHECKING

import discord

from bot.store.challenge_tables import Challenge, Entry
from bot.store.challenges import Standing, stamp

if TYPE_CHECKING:
    from bot.app import AtelierBot

MEDALS = ("🥇", "🥈", "🥉")
WINNER_IMAGES = 3
LEADERBOARD_LINES = 20
NO_PINGS = discord.AllowedMentions.none()


def when(moment: datetime) -> str:
    """A Discord timestamp shown as a date and time in each reader's time zone."""
    return f"<t:{int(moment.timestamp())}:f>"


# messages


def start_text(challenge: Challenge) -> str:
    limit = challenge.max_entries
    return (
        f"🎨 **New art challenge: “{challenge.theme}”**\n"
        f"Submit with `/challenge submit` (an image, or `job:` one of your Atelier images) "
        f"until {when(challenge.submissions_close_at)} ({stamp(challenge.submissions_close_at)}); "
        f"up to {limit} entr{'y' if limit == 1 else 'ies'} each.\n"
        f"Voting follows until {when(challenge.voting_close_at)}. Entries are anonymous and "
        f"vote counts secret until then."
    )


def entry_text(challenge: Challenge, entry: Entry) -> str:
    return (
        f"**Entry #{entry.id}** · “{challenge.theme}”\n"
        f"🗳️ votes from {when(challenge.submissions_close_at)} until "
        f"{when(challenge.voting_close_at)}; ↩️ takes your vote back. "
        f"The artist and the counts are revealed when voting closes."
    )


def revealed_entry_text(challenge: Challenge, standing: Standing) -> str:
    votes = f"{standing.votes} vote{'' if standing.votes == 1 else 's'}"
    return (
        f"**Entry #{standing.entry_id}** · “{challenge.theme}” · by <@{standing.user_id}> · "
        f"**{votes}** · rank {standing.rank}"
    )


def voting_text(challenge: Challenge, entries: int) -> str:
    return (
        f"🗳️ **Voting is open for “{challenge.theme}”**: {entries} "
        f"entr{'y' if entries == 1 else 'ies'} in this channel. Press 🗳️ under the ones you "
        f"like (any number, not your own) until {when(challenge.voting_close_at)} "
        f"({stamp(challenge.voting_close_at)})."
    )


def results_text(challenge: Challenge, board: list[Standing]) -> str:
    if not board:
        return f"🏁 **“{challenge.theme}” has closed** with no entries."
    lines = [f"🏆 **“{challenge.theme}”: the winners**"]
    for standing in winners(board):
        medal = MEDALS[standing.rank - 1] if standing.rank <= len(MEDALS) else "🏅"
        votes = f"{standing.votes} vote{'' if standing.votes == 1 else 's'}"
        lines.append(f"{medal} Entry #{standing.entry_id} by <@{standing.user_id}> · {votes}")
    total = sum(s.votes for s in board)
    lines.append(f"{len(board)} entries · {total} votes · `/challenge leaderboard` for all.")
    return "\n".join(lines)


def leaderboard_text(challenge: Challenge, board: list[Standing]) -> str:
    lines = [f"📊 **Leaderboard · “{challenge.theme}”** (closed)"]
    for standing in board[:LEADERBOARD_LINES]:
        votes = f"{standing.votes} vote{'' if standing.votes == 1 else 's'}"
        lines.append(
            f"{standing.rank}. Entry #{standing.entry_id} · <@{standing.user_id}> · {votes}"
        )
    if len(board) > LEADERBOARD_LINES:
        lines.append(f"… and {len(board) - LEADERBOARD_LINES} more.")
    if not board:
        lines.append("No entries.")
    return "\n".join(lines)


def winners(board: list[Standing]) -> list[Standing]:
    """The entries ranked 1 to 3 (ties included), if they got any votes."""
    return [s for s in board if s.rank <= len(MEDALS) and s.votes > 0]


# buttons


def entry_view(entry_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(VoteButton("vote", entry_id))
    view.add_item(VoteButton("unvote", entry_id))
    return view


class VoteButton(
    discord.ui.DynamicItem[discord.ui.Button],
    template=r"atelier:challenge:(?P<action>vote|unvote):(?P<entry>[0-9]+)",
):
    """🗳️ (vote) or ↩️ (take the vote back) under a gallery entry."""

    def __init__(self, action: str, entry_id: int) -> None:
        vote = action == "vote"
        super().__init__(
            discord.ui.Button(
                label="Vote" if vote else "Take back",
                emoji="🗳️" if vote else "↩️",
                style=discord.ButtonStyle.primary if vote else discord.ButtonStyle.secondary,
                custom_id=f"atelier:challenge:{action}:{entry_id}",
            )
        )
        self.action, self.entry_id = action, entry_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str]
    ) -> VoteButton:
        return cls(match["action"], int(match["entry"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        bot: AtelierBot = interaction.client  # type: ignore[assignment]
        await bot.run_component(interaction, lambda: self.run(bot, interaction))

    async def run(self, bot: AtelierBot, interaction: discord.Interaction) -> None:
        store, now = bot.challenges, bot.clock.now()
        if self.action == "vote":
            await store.vote(self.entry_id, interaction.user.id, now)
            text = f"🗳️ Your vote for entry #{self.entry_id} counts. Counts stay secret until "
            text += "voting closes."
        else:
            await store.unvote(self.entry_id, interaction.user.id, now)
            text = f"↩️ Your vote for entry #{self.entry_id} was taken back."
        await interaction.response.send_message(text, ephemeral=True)


# posting


async def channel_of(bot: AtelierBot, channel_id: int) -> discord.abc.Messageable:
    """A text channel by id, from the cache or the API."""
    channel = bot.get_channel(channel_id) or await bot.fetch_channel(channel_id)
    assert isinstance(channel, discord.abc.Messageable)
    return channel


def entry_file(entry: Entry) -> discord.File:
    return discord.File(io.BytesIO(entry.image), filename=f"entry-{entry.id}-{entry.filename}")


async def post_entry(bot: AtelierBot, challenge: Challenge, entry: Entry) -> discord.Message:
    """The anonymous gallery post of an entry, with its vote buttons."""
    channel = await channel_of(bot, challenge.channel_id)
    return await channel.send(
        entry_text(challenge, entry), file=entry_file(entry), view=entry_view(entry.id)
    )


async def delete_post(bot: AtelierBot, challenge: Challenge, message_id: int | None) -> None:
    """Delete a gallery post (already gone is fine)."""
    if message_id is None:
        return
    channel = await channel_of(bot, challenge.channel_id)
    with contextlib.suppress(discord.NotFound):
        await channel.get_partial_message(message_id).delete()  # type: ignore[attr-defined]


async def reveal_entries(bot: AtelierBot, challenge: Challenge, board: list[Standing]) -> None:
    """Show each entry's artist, votes and rank, and take its buttons away."""
    channel = await channel_of(bot, challenge.channel_id)
    for standing in board:
        if standing.message_id is None:
            continue
        message = channel.get_partial_message(standing.message_id)  # type: ignore[attr-defined]
        try:
            await message.edit(
                content=revealed_entry_text(challenge, standing),
                view=None,
                allowed_mentions=NO_PINGS,
            )
        except discord.NotFound:
            continue


async def close_entries(bot: AtelierBot, challenge: Challenge, entries: list[Entry]) -> None:
    """Take the buttons off every entry of a cancelled challenge."""
    channel = await channel_of(bot, challenge.channel_id)
    for entry in entries:
        if entry.message_id is not None:
            message = channel.get_partial_message(entry.message_id)  # type: ignore[attr-defined]
            try:
                await message.edit(view=None)
            except discord.NotFound:
                continue


async def post_results(bot: AtelierBot, challenge: Challenge, board: list[Standing]) -> None:
    """The winners, with their images, in the challenge's channel."""
    channel = await channel_of(bot, challenge.channel_id)
    files = []
    for standing in winners(board)[:WINNER_IMAGES]:
        entry = await bot.challenges.entry(standing.entry_id)
        if entry is not None:
            files.append(entry_file(entry))
    await channel.send(
        results_text(challenge, board),
        files=files,
        allowed_mentions=discord.AllowedMentions(users=True),
    )


async def tell_author(bot: AtelierBot, challenge: Challenge, entry: Entry, reason: str) -> str:
    """Send the removal reason to the entry's author: by DM, else in the challenge channel."""
    text = f"Your entry #{entry.id} in “{challenge.theme}” was removed by a moderator: {reason}"
    try:
        user = bot.get_user(entry.user_id) or await bot.fetch_user(entry.user_id)
        await user.send(text)
        return "by direct message"
    except discord.HTTPException:
        channel = await channel_of(bot, challenge.channel_id)
        await channel.send(
            f"<@{entry.user_id}> {text}", allowed_mentions=discord.AllowedMentions(users=True)
        )
        return "in the challenge channel (their DMs are closed)"

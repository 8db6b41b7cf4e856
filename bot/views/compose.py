"""The buttons under a `/compose` or `/harmonize` result, and the function that posts one.

🎲 another piece with the same options and a new seed, ➕ the piece continued for
CONTINUE_BARS more bars, 🎼 its sheet music (shown only when it was not sent). Each
button's custom_id holds its job id; the options come from the job's row, so the
buttons keep working after a restart. 🎲 and ➕ are the requester's; 🎼 is anyone's.
"""

from __future__ import annotations

import dataclasses
import io
import re
from typing import TYPE_CHECKING

import discord

from bot.errors import UserFacingError
from bot.media.melody import MAX_BARS
from bot.media.score import lilypond_path
from bot.pipelines.compose import (
    CONTINUE_BARS,
    MODEL,
    SHEET_TIMEOUT_S,
    MusicRequest,
    RenderCache,
    Rendered,
    cache_for,
    compose,
    continuation,
    random_seed,
    render_files,
)
from bot.store.models import Job

if TYPE_CHECKING:
    from bot.app import AtelierBot

ACTIONS = {"r": "another", "c": "continue", "s": "sheet"}
ORDER = ("ogg", "mid", "roll", "score")  # audio first: Discord shows its player on top


def custom_id(action: str, job_id: str) -> str:
    return f"atelier:compose:{action}:{job_id}"


def result_view(job_id: str, *, sheet_sent: bool, can_continue: bool) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(ComposeButton("r", job_id))
    if can_continue:
        view.add_item(ComposeButton("c", job_id))
    if not sheet_sent:
        view.add_item(ComposeButton("s", job_id))
    return view


def button(action: str, job_id: str) -> discord.ui.Button:
    labels = {"r": "Another", "c": f"Continue +{CONTINUE_BARS} bars", "s": "Sheet music"}
    emoji = {"r": "🎲", "c": "➕", "s": "🎼"}[action]
    return discord.ui.Button(
        label=labels[action],
        emoji=emoji,
        style=discord.ButtonStyle.secondary,
        custom_id=custom_id(action, job_id),
    )


class ComposeButton(
    discord.ui.DynamicItem[discord.ui.Button],
    template=r"atelier:compose:(?P<action>[rcs]):(?P<job>[0-9a-f]+)",
):
    """One button of a `/compose` or `/harmonize` result."""

    def __init__(self, action: str, job_id: str) -> None:
        super().__init__(button(action, job_id))
        self.action, self.job_id = action, job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str]
    ) -> ComposeButton:
        return cls(match["action"], match["job"])

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        bot: AtelierBot = interaction.client  # type: ignore[assignment]
        job = await bot.jobs.get(self.job_id)
        if job is None:
            await interaction.response.send_message(
                "This piece's job is no longer stored, so its buttons don't work.", ephemeral=True
            )
            return False
        if self.action != "s" and interaction.user.id != job.user_id:
            await interaction.response.send_message(
                f"Only <@{job.user_id}> can use 🎲 and ➕ here; compose your own with /compose.",
                ephemeral=True,
            )
            return False
        return True

    async def callback(self, interaction: discord.Interaction) -> None:
        bot: AtelierBot = interaction.client  # type: ignore[assignment]
        await bot.run_component(interaction, lambda: self.run(bot, interaction))

    async def run(self, bot: AtelierBot, interaction: discord.Interaction) -> None:
        job = await bot.jobs.get(self.job_id)
        assert job is not None  # checked in interaction_check
        await interaction.response.defer(thinking=True)
        request = MusicRequest.from_params(job.params, int(job.seed or 0))
        if self.action == "r":
            another = dataclasses.replace(request, seed=random_seed())
            await create_piece(bot, interaction, another, parent=job, command="compose.another")
        elif self.action == "c":
            (piece,) = await compose(
                bot.inference, [request], version=job.model_version or "", cache=cache(bot)
            )
            longer = continuation(piece, random_seed())
            await create_piece(bot, interaction, longer, parent=job, command="compose.continue")
        elif self.action == "s":
            await send_sheet(bot, interaction, request, job)


def cache(bot: AtelierBot) -> RenderCache:
    return cache_for(bot.settings.state_dir)


async def create_piece(
    bot: AtelierBot,
    interaction: discord.Interaction,
    request: MusicRequest,
    *,
    parent: Job | None = None,
    command: str | None = None,
    header: str = "",
) -> None:
    """Store the job, compose, render and post the piece's files with the buttons."""
    job_id = await bot.jobs.start(
        interaction,
        model=MODEL,
        seed=request.seed,
        params=request.params(),
        command=command,
        parent_id=parent.id if parent else None,
    )
    (piece,) = await compose(bot.inference, [request], cache=cache(bot))
    rendered = await render_files(piece, cache(bot))
    kinds = fitting([k for k in ORDER if k in rendered.files], rendered, interaction.filesize_limit)
    files = [
        discord.File(io.BytesIO(rendered.files[kind]), filename=rendered.filename(kind))
        for kind in kinds
    ]
    view = result_view(
        job_id,
        sheet_sent="score" in kinds,
        can_continue=request.bars + CONTINUE_BARS <= MAX_BARS,
    )
    text = f"{header} · " if header else ""
    message = await interaction.followup.send(
        f"{text}{piece.describe()} · job `{job_id}`", files=files, view=view, wait=True
    )
    await bot.jobs.finish(job_id, model_version=piece.model_version, message_id=message.id)


def fitting(kinds: list[str], rendered: Rendered, limit: int) -> list[str]:
    """The kinds, in order, whose files fit under the upload limit together."""
    kept, total = [], 0
    for kind in kinds:
        size = len(rendered.files[kind])
        if total + size <= limit:
            kept.append(kind)
            total += size
    if not kept:
        raise UserFacingError("This piece's audio is larger than this server's upload limit.")
    return kept


async def send_sheet(
    bot: AtelierBot, interaction: discord.Interaction, request: MusicRequest, parent: Job
) -> None:
    """The sheet music of the parent job's piece, as a message of its own."""
    job_id = await bot.jobs.start(
        interaction, model=MODEL, seed=request.seed, params=request.params(),
        command="compose.sheet", parent_id=parent.id,
    )  # fmt: skip
    if lilypond_path() is None:
        raise UserFacingError("Sheet music needs LilyPond, which this server doesn't have.")
    (piece,) = await compose(
        bot.inference, [request], version=parent.model_version or "", cache=cache(bot)
    )
    rendered = await render_files(
        piece, cache(bot), kinds=("score",), sheet_timeout_s=SHEET_TIMEOUT_S
    )
    if "score" not in rendered.files:
        raise UserFacingError("LilyPond couldn't engrave this piece; the error was logged.")
    message = await interaction.followup.send(
        f"sheet music · {piece.describe()} · job `{job_id}`",
        file=discord.File(io.BytesIO(rendered.files["score"]), filename=rendered.filename("score")),
        wait=True,
    )
    await bot.jobs.finish(job_id, model_version=piece.model_version, message_id=message.id)

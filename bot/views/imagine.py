"""The buttons under an `/imagine` result, and the one function that posts such a result.

V1–V4 variations, U1–U4 upscales, 🎲 new seeds, 🎞 a latent-walk animation, 🔗 share.
Each button's custom_id holds its job id; the job's latents and parameters come from
the database, so the buttons keep working after a restart. Only the requester may press
them until they share.
"""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING

import discord

from bot.pipelines.imagine import (
    MODEL,
    GeneratedImage,
    Latent,
    grid_png,
    imagine,
    latent_walk,
    random_seed,
)
from bot.store.models import Job
from deploy.contracts import SEED_MAX

if TYPE_CHECKING:
    from bot.app import AtelierBot

VARIATIONS = 4
ACTIONS = {"v": "variations", "u": "upscale", "r": "reroll", "a": "animate", "s": "share"}


def custom_id(action: str, job_id: str, index: int = 0) -> str:
    return f"atelier:imagine:{action}:{job_id}:{index}"


def result_view(job_id: str, count: int) -> discord.ui.View:
    """V and 🎲 on the first row, U and 🎞 on the second, 🔗 on the third."""
    view = discord.ui.View(timeout=None)
    for i in range(1, count + 1):
        view.add_item(ImagineButton("v", job_id, i, row=0))
    view.add_item(ImagineButton("r", job_id, row=0))
    for i in range(1, count + 1):
        view.add_item(ImagineButton("u", job_id, i, row=1))
    view.add_item(ImagineButton("a", job_id, row=1))
    view.add_item(ImagineButton("s", job_id, row=2))
    return view


def button(action: str, job_id: str, index: int, row: int | None) -> discord.ui.Button:
    labels = {"v": f"V{index}", "u": f"U{index}", "r": None, "a": None, "s": "Share"}
    emoji = {"r": "🎲", "a": "🎞️", "s": "🔗"}.get(action)
    style = discord.ButtonStyle.primary if action == "v" else discord.ButtonStyle.secondary
    return discord.ui.Button(
        label=labels[action], emoji=emoji, style=style, custom_id=custom_id(action, job_id, index),
        row=row,
    )  # fmt: skip


class ImagineButton(
    discord.ui.DynamicItem[discord.ui.Button],
    template=r"atelier:imagine:(?P<action>[vuras]):(?P<job>[0-9a-f]+):(?P<index>[0-4])",
):
    """One button of an `/imagine` result."""

    def __init__(self, action: str, job_id: str, index: int = 0, row: int | None = None) -> None:
        super().__init__(button(action, job_id, index, row))
        self.action, self.job_id, self.index = action, job_id, index

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str]
    ) -> ImagineButton:
        return cls(match["action"], match["job"], int(match["index"]))

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Only the requester, unless they shared; 🔗 only ever the requester."""
        bot: AtelierBot = interaction.client  # type: ignore[assignment]
        job = await bot.jobs.get(self.job_id)
        if job is None:
            await interaction.response.send_message(
                "This image's job is no longer stored, so its buttons don't work.", ephemeral=True
            )
            return False
        if interaction.user.id != job.user_id and (self.action == "s" or not job.shared):
            await interaction.response.send_message(
                f"Only <@{job.user_id}> can use these buttons"
                + ("." if self.action == "s" else ", unless they press 🔗 Share."),
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
        if self.action == "s":
            await bot.jobs.share(job.id, not job.shared)
            state = "shared: anyone here can use them" if not job.shared else "yours alone again"
            await interaction.response.send_message(f"These buttons are {state}.", ephemeral=True)
            return
        await interaction.response.defer(thinking=True)
        latents = [Latent.from_record(r) for r in job.params["latents"]]
        truncation = float(job.params["truncation"])
        strength = float(job.params.get("variation_strength", 0.35))
        if self.action == "v":
            base = latents[self.index - 1]
            children = [base.vary(strength) for _ in range(VARIATIONS)]
            await create_images(bot, interaction, children, truncation, strength, parent=job)
        elif self.action == "r":
            seeds = consecutive_seeds(len(latents))
            await create_images(bot, interaction, seeds, truncation, strength, parent=job)
        elif self.action == "u":
            await upscale_image(bot, interaction, latents[self.index - 1], truncation, job)
        elif self.action == "a":
            await animate(bot, interaction, latents[0], truncation, job)


def consecutive_seeds(count: int, first: int | None = None) -> list[Latent]:
    """`count` seeds from `first` (random if None) onwards."""
    start = random_seed() % (SEED_MAX - count + 2) if first is None else first
    return [Latent(start + i) for i in range(count)]


def describe(images: list[GeneratedImage], truncation: float, job_id: str) -> str:
    labels = " ".join(f"`{image.latent.label()}`" for image in images)
    noun = "seed" if len(images) == 1 else "seeds"
    return (
        f"{noun} {labels} · truncation {truncation:g} · {MODEL} v{images[0].model_version}"
        f" · job `{job_id}`"
    )


async def create_images(
    bot: AtelierBot,
    interaction: discord.Interaction,
    latents: list[Latent],
    truncation: float,
    strength: float,
    parent: Job | None = None,
) -> None:
    """Store the job, generate, and post one image or a grid with its buttons."""
    params = {
        "truncation": truncation,
        "variation_strength": strength,
        "latents": [latent.record() for latent in latents],
    }
    command = f"imagine.{ACTIONS['v' if latents[0].variations else 'r']}" if parent else None
    job_id = await bot.jobs.start(
        interaction,
        model=MODEL,
        seed=latents[0].seed,
        params=params,
        command=command,
        parent_id=parent.id if parent else None,
    )
    images = await imagine(bot.inference, latents, truncation=truncation)
    data = images[0].png() if len(images) == 1 else grid_png(images)
    name = images[0].filename if len(images) == 1 else f"atelier-{MODEL}-grid-{job_id}.png"
    message = await interaction.followup.send(
        describe(images, truncation, job_id),
        file=discord.File(io.BytesIO(data), filename=name),
        view=result_view(job_id, len(images)),
        wait=True,
    )
    await bot.jobs.finish(job_id, model_version=images[0].model_version, message_id=message.id)


async def upscale_image(
    bot: AtelierBot,
    interaction: discord.Interaction,
    latent: Latent,
    truncation: float,
    parent: Job,
) -> None:
    params = {"truncation": truncation, "latents": [latent.record()], "upscale": 4}
    job_id = await bot.jobs.start(
        interaction, model=MODEL, seed=latent.seed, params=params,
        command="imagine.upscale", parent_id=parent.id,
    )  # fmt: skip
    (image,) = await imagine(bot.inference, [latent], truncation=truncation)
    message = await interaction.followup.send(
        f"{describe([image], truncation, job_id)} · upscaled ×4 (Lanczos)",
        file=discord.File(io.BytesIO(image.upscaled_png()), filename=image.filename),
        wait=True,
    )
    await bot.jobs.finish(job_id, model_version=image.model_version, message_id=message.id)


async def animate(
    bot: AtelierBot, interaction: discord.Interaction, start: Latent, truncation: float, parent: Job
) -> None:
    end = Latent(random_seed())
    params = {"truncation": truncation, "walk": {"from": start.record(), "to": end.record()}}
    job_id = await bot.jobs.start(
        interaction, model=MODEL, seed=start.seed, params=params,
        command="imagine.animate", parent_id=parent.id,
    )  # fmt: skip
    walk = await latent_walk(bot.inference, start, end, truncation=truncation)
    stem = f"atelier-{MODEL}-walk-{start.label()}-{end.label()}"
    message = await interaction.followup.send(
        f"latent walk `{start.label()}` ⇄ `{end.label()}` · {walk.frames} frames · "
        f"{MODEL} v{walk.record['model_version']} · job `{job_id}`",
        files=[
            discord.File(io.BytesIO(walk.webp), filename=f"{stem}.webp"),
            discord.File(io.BytesIO(walk.mp4), filename=f"{stem}.mp4"),
        ],
        wait=True,
    )
    await bot.jobs.finish(job_id, model_version=walk.record["model_version"], message_id=message.id)

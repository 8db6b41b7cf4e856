"""`/style` (a picture in a named style, a blend, or any picture's style) and `/styles`."""

from __future__ import annotations

import asyncio
import io

import discord
import numpy as np
from discord import app_commands
from discord.ext import commands

from bot.app import AtelierBot
from bot.assets import SAMPLE_PHOTO
from bot.errors import UserFacingError
from bot.media.images import decode_upload, encode_under_limit
from bot.media.uploads import read_image
from bot.pipelines.style import (
    StyledImage,
    style_names,
    style_sheet,
    stylize,
    stylize_arbitrary,
)
from bot.settings import Settings

SAMPLE_SIDE = 256


class Style(commands.Cog):
    def __init__(self, bot: AtelierBot) -> None:
        self.bot = bot

    @property
    def settings(self) -> Settings:
        return self.bot.settings

    async def pixels(self, attachment: discord.Attachment, side: int | None = None) -> np.ndarray:
        return await read_image(
            attachment,
            max_bytes=self.settings.max_upload_bytes,
            max_side=side or self.settings.style_max_side,
        )

    @app_commands.command(name="style", description="Restyle a picture.")
    @app_commands.describe(
        image="The picture to restyle.",
        style="A named style (see /styles).",
        style_image="Or: any picture whose style to use.",
        strength="0 keeps the picture, 1 is the full style.",
        blend_with="A second named style to mix in.",
        blend="How much of the second style (0–1).",
    )
    async def style(
        self,
        interaction: discord.Interaction,
        image: discord.Attachment,
        style: str | None = None,
        style_image: discord.Attachment | None = None,
        strength: app_commands.Range[float, 0.0, 1.0] = 1.0,
        blend_with: str | None = None,
        blend: app_commands.Range[float, 0.0, 1.0] = 0.5,
    ) -> None:
        if (style is None) == (style_image is None):
            raise UserFacingError("Give either a `style` name or a `style_image`, not both.")
        await interaction.response.defer(thinking=True)
        params = {"style": style or "image", "strength": strength}
        if blend_with:
            params |= {"blend_with": blend_with, "blend": blend}
        job = await self.bot.jobs.start(interaction, model="style", params=params)
        content = await self.pixels(image)
        if style_image is not None:
            style_pixels = await self.pixels(style_image, SAMPLE_SIDE)
            result = await stylize_arbitrary(
                self.bot.inference, content, style_pixels, strength=strength
            )
        else:
            result = await stylize(
                self.bot.inference,
                content,
                style=style,
                strength=strength,
                blend_with=blend_with,
                blend=blend,
            )
        await self.send(interaction, job, result, f"styled · {describe(result)}")

    @style.autocomplete("style")
    @style.autocomplete("blend_with")
    async def complete_style(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        try:
            names = await style_names(self.bot.inference)
        except UserFacingError:  # model server down: offer nothing rather than fail
            return []
        matches = [name for name in names if current.lower() in name.lower()]
        return [app_commands.Choice(name=name, value=name) for name in matches[:25]]

    @app_commands.command(name="styles", description="Every style applied to one picture.")
    @app_commands.describe(image="The picture to show the styles on (optional).")
    async def styles(
        self, interaction: discord.Interaction, image: discord.Attachment | None = None
    ) -> None:
        await interaction.response.defer(thinking=True)
        job = await self.bot.jobs.start(interaction, model="style", params={"sheet": True})
        pixels = await self.pixels(image, SAMPLE_SIDE) if image else sample_picture()
        result = await style_sheet(self.bot.inference, pixels)
        names = ", ".join(f"`{name}`" for name in result.record["params"]["sheet"])
        await self.send(interaction, job, result, f"styles, left to right: {names}")

    async def send(
        self, interaction: discord.Interaction, job: str, result: StyledImage, text: str
    ) -> None:
        limit = interaction.filesize_limit
        data, suffix = await asyncio.to_thread(
            encode_under_limit, result.pixels, result.record, limit
        )
        message = await interaction.followup.send(
            f"{text} · job `{job}`",
            file=discord.File(io.BytesIO(data), filename=f"atelier-style-{job}.{suffix}"),
            wait=True,
        )
        version = result.record["model_version"]
        await self.bot.jobs.finish(job, model_version=version, message_id=message.id)


def describe(result: StyledImage) -> str:
    params = result.record["params"]
    text = f"style `{params['style']}` · strength {params['strength']:g}"
    if "blend_with" in params:
        text += f" · blended with `{params['blend_with']}` at {params['blend']:g}"
    return f"{text} · {result.record['model']} v{result.record['model_version']}"


def sample_picture() -> np.ndarray:
    """The built-in sample photo for /styles."""
    return decode_upload(SAMPLE_PHOTO.read_bytes(), max_side=SAMPLE_SIDE)


async def setup(bot: AtelierBot) -> None:
    await bot.add_cog(Style(bot))

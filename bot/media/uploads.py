"""Reading a user's uploads: size limit first, then safe decoding off the event loop."""

from __future__ import annotations

import asyncio

import discord
import numpy as np

from bot.errors import UserFacingError
from bot.media.images import BadImage, decode_upload


async def download(attachment: discord.Attachment, error: type[UserFacingError]) -> bytes:
    """The attachment's bytes, or `error` with a message for the user if Discord fails us."""
    try:
        return await attachment.read()
    except discord.HTTPException as failure:
        raise error(f"I couldn't download `{attachment.filename}`; try again.") from failure


async def read_image(
    attachment: discord.Attachment, *, max_bytes: int, max_side: int
) -> np.ndarray:
    """The attachment as HWC uint8 RGB, or BadImage with a message for the user."""
    if attachment.size > max_bytes:
        raise BadImage(
            f"`{attachment.filename}` is {attachment.size / 2**20:.1f} MiB; "
            f"the limit is {max_bytes / 2**20:.0f} MiB."
        )
    data = await download(attachment, BadImage)
    return await asyncio.to_thread(decode_upload, data, max_side=max_side)

"""Reading a user's uploaded image: size limit first, then safe decoding off the event loop."""

from __future__ import annotations

import asyncio

import discord
import numpy as np

from bot.media.images import BadImage, decode_upload


async def read_image(
    attachment: discord.Attachment, *, max_bytes: int, max_side: int
) -> np.ndarray:
    """The attachment as HWC uint8 RGB, or BadImage with a message for the user."""
    if attachment.size > max_bytes:
        raise BadImage(
            f"`{attachment.filename}` is {attachment.size / 2**20:.1f} MiB; "
            f"the limit is {max_bytes / 2**20:.0f} MiB."
        )
    try:
        data = await attachment.read()
    except discord.HTTPException as error:
        raise BadImage(f"I couldn't download `{attachment.filename}`; try again.") from error
    return await asyncio.to_thread(decode_upload, data, max_side=max_side)

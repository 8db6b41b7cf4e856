"""Checking an image submitted to a challenge: size, type and dimensions, safely with Pillow.

The bytes are kept as they came (no re-encoding), so an entry looks exactly as its author made it.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image

from bot.media.images import MAX_PIXELS, BadImage

FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}
MIN_SIDE = 32
MAX_SIDE = 8192


@dataclass(frozen=True)
class SubmittedImage:
    """An image that passed the checks, with what the gallery needs to show it."""

    data: bytes
    filename: str
    content_type: str
    width: int
    height: int


def check_size(filename: str, size: int, limit: int) -> None:
    """BadImage if `size` bytes is over `limit` (checked before downloading)."""
    if size > limit:
        raise BadImage(
            f"`{filename}` is {size / 2**20:.1f} MiB; entries can be at most "
            f"{limit / 2**20:.1f} MiB here."
        )


def check_image(data: bytes, filename: str, *, limit: int) -> SubmittedImage:
    """The image if it is a PNG, JPEG, WebP or GIF of sensible size; BadImage otherwise."""
    check_size(filename, len(data), limit)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as image:
                kind, (width, height) = image.format, image.size
                _check_dimensions(width, height)
                image.load()  # decode fully: a damaged file fails here, not in the gallery
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise BadImage("That image is too large to open safely.") from error
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            raise BadImage(
                f"`{filename}` isn't an image I can use (PNG, JPEG, WebP or GIF)."
            ) from error
    if kind not in FORMATS:
        raise BadImage(f"`{filename}` is {kind}; entries must be PNG, JPEG, WebP or GIF.")
    stem = filename.rsplit(".", 1)[0] or "entry"
    name = f"{stem}.{'jpg' if kind == 'JPEG' else kind.lower()}"
    return SubmittedImage(data, name, FORMATS[kind], width, height)


def _check_dimensions(width: int, height: int) -> None:
    if min(width, height) < MIN_SIDE:
        raise BadImage(
            f"That image is {width}×{height}; entries need at least {MIN_SIDE} px a side."
        )
    if max(width, height) > MAX_SIDE or width * height > MAX_PIXELS:
        raise BadImage(
            f"That image is {width}×{height}; entries can be at most {MAX_SIDE} px a side "
            f"and {MAX_PIXELS // 1_000_000} megapixels."
        )

"""Images from numpy arrays: PNG and animated WebP with the artifact's record embedded,
grids, and upscaling."""

from __future__ import annotations

import io
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin

from bot.errors import UserFacingError

RECORD_KEY = "atelier"
EXIF_DESCRIPTION = 0x010E  # ImageDescription: holds the record in WebP files


def record_json(record: Mapping[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def _rgb(pixels: np.ndarray) -> Image.Image:
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected HxWx3 uint8 pixels, got {pixels.dtype} {pixels.shape}")
    return Image.fromarray(pixels, "RGB")


def encode_png(pixels: np.ndarray, record: Mapping[str, Any]) -> bytes:
    """Encode HWC uint8 RGB pixels as PNG, with `record` as JSON in an `atelier` text chunk.

    The same pixels and record always give the same bytes.
    """
    info = PngImagePlugin.PngInfo()
    info.add_text(RECORD_KEY, record_json(record))
    buffer = io.BytesIO()
    _rgb(pixels).save(buffer, format="PNG", pnginfo=info, optimize=False)
    return buffer.getvalue()


def read_png_record(data: bytes) -> dict[str, Any]:
    """The record that `encode_png` embedded."""
    with Image.open(io.BytesIO(data)) as image:
        return json.loads(image.text[RECORD_KEY])


def grid(images: Sequence[np.ndarray], columns: int = 2) -> np.ndarray:
    """Tile equally sized images, row by row; a lone image stays as it is."""
    if len(images) == 1:
        return images[0]
    columns = min(columns, len(images))
    rows = math.ceil(len(images) / columns)
    height, width, channels = images[0].shape
    canvas = np.zeros((rows * height, columns * width, channels), np.uint8)
    for i, image in enumerate(images):
        row, column = divmod(i, columns)
        canvas[row * height : (row + 1) * height, column * width : (column + 1) * width] = image
    return canvas


def upscale(pixels: np.ndarray, factor: int) -> np.ndarray:
    """Enlarge by an integer factor with Lanczos resampling."""
    image = _rgb(pixels)
    size = (image.width * factor, image.height * factor)
    return np.asarray(image.resize(size, Image.Resampling.LANCZOS))


def encode_webp_animation(
    frames: Sequence[np.ndarray], *, fps: int, record: Mapping[str, Any]
) -> bytes:
    """A looping lossless animated WebP whose EXIF description holds the record.

    libwebp stores identical neighbouring frames once, with their durations added.
    """
    images = [_rgb(frame) for frame in frames]
    exif = Image.Exif()
    exif[EXIF_DESCRIPTION] = record_json(record)
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format="WEBP",
        save_all=True,
        append_images=images[1:],
        duration=round(1000 / fps),
        loop=0,
        lossless=True,
        quality=80,
        method=4,
        exif=exif.tobytes(),
    )
    return buffer.getvalue()


def read_webp_record(data: bytes) -> dict[str, Any]:
    with Image.open(io.BytesIO(data)) as image:
        return json.loads(image.getexif()[EXIF_DESCRIPTION])


MAX_PIXELS = 40_000_000  # decoded pixels we accept at all (Pillow's own bomb limit is ~89 M)
READABLE = "PNG, JPEG, WebP or GIF"


class BadImage(UserFacingError):
    """An upload that can't be used as an image; the message says why."""


def decode_upload(data: bytes, *, max_side: int, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode an uploaded image safely into HWC uint8 RGB.

    Size is checked from the header before decoding (no decompression bombs), EXIF
    orientation is applied, animations give their first frame, CMYK/16-bit/palette are
    converted, alpha is composited on white, and the longest side is capped at `max_side`.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise BadImage("That image is too large to open safely.") from error
        except (OSError, SyntaxError, ValueError) as error:  # what Pillow raises
            raise BadImage(f"That file isn't an image I can read ({READABLE}).") from error
        with image:
            width, height = image.size
            if width * height > max_pixels:
                raise BadImage(
                    f"That image is {width}×{height}: over {max_pixels // 1_000_000} "
                    "megapixels is too large."
                )
            try:
                image.seek(0)
                image.load()
                return _to_rgb_array(ImageOps.exif_transpose(image), max_side)
            except (OSError, SyntaxError, ValueError, EOFError) as error:
                raise BadImage("That image file is damaged or cut short.") from error


def _to_rgb_array(image: Image.Image, max_side: int) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = Image.fromarray((np.asarray(image, np.float64) / 257).clip(0, 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    image = image.convert("RGB")
    if max(image.size) > max_side:
        scale = max_side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return np.asarray(image)


def encode_under_limit(
    pixels: np.ndarray, record: Mapping[str, Any], limit: int
) -> tuple[bytes, str]:
    """PNG if it fits in `limit` bytes, else the best JPEG quality that fits; (bytes, suffix)."""
    data = encode_png(pixels, record)
    if len(data) <= limit:
        return data, "png"
    exif = Image.Exif()
    exif[EXIF_DESCRIPTION] = record_json(record)
    for quality in (95, 90, 85, 75, 60, 45):
        buffer = io.BytesIO()
        _rgb(pixels).save(buffer, format="JPEG", quality=quality, exif=exif.tobytes())
        if buffer.tell() <= limit:
            return buffer.getvalue(), "jpg"
    raise BadImage("The result is too large to send here, even as a JPEG.")

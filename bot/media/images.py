"""Images from numpy arrays: PNG and animated WebP with the artifact's record embedded,
grids, and upscaling."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin

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

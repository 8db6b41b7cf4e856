"""Images from numpy arrays: PNG encoding with the artifact's record embedded."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image, PngImagePlugin

RECORD_KEY = "atelier"


def encode_png(pixels: np.ndarray, record: Mapping[str, Any]) -> bytes:
    """Encode HWC uint8 RGB pixels as PNG, with `record` as JSON in an `atelier` text chunk.

    The same pixels and record always give the same bytes.
    """
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected HxWx3 uint8 pixels, got {pixels.dtype} {pixels.shape}")
    info = PngImagePlugin.PngInfo()
    info.add_text(RECORD_KEY, json.dumps(record, sort_keys=True, separators=(",", ":")))
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG", pnginfo=info, optimize=False)
    return buffer.getvalue()


def read_png_record(data: bytes) -> dict[str, Any]:
    """The record that `encode_png` embedded."""
    with Image.open(io.BytesIO(data)) as image:
        return json.loads(image.text[RECORD_KEY])

"""Safe decoding of uploads (hostile input) and encoding under Discord's size limit."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from bot.media.images import BadImage, decode_upload, encode_under_limit, read_png_record


def save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with almost no pixel data behind it."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def photo(width: int = 40, height: int = 30) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"%PDF-1.7 not an image at all", "isn't an image"),
        (save(photo(), "PNG")[:300], "damaged or cut short"),
        (png_header_only(20000, 20000), "too large"),
        (save(Image.new("1", (12000, 12000)), "PNG"), "too large"),
        (b"", "isn't an image"),
    ],
    ids=["not-image", "truncated", "20000x20000-header", "bomb", "empty"],
)
def test_hostile_uploads_are_refused_clearly(data: bytes, message: str) -> None:
    with pytest.raises(BadImage, match=message):
        decode_upload(data, max_side=1024)


def test_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (8, 8), colour) for colour in ("red", "blue", "green")]
    data = save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    pixels = decode_upload(data, max_side=64)
    assert pixels.shape == (8, 8, 3) and tuple(pixels[0, 0]) == (255, 0, 0)


@pytest.mark.parametrize(
    ("image", "fmt"),
    [
        (Image.new("CMYK", (10, 6), (0, 255, 255, 0)), "JPEG"),
        (Image.fromarray(np.full((6, 10), 65535, np.uint16)), "PNG"),
        (Image.new("RGBA", (10, 6), (0, 0, 0, 0)), "PNG"),
        (Image.new("P", (10, 6)), "GIF"),
    ],
    ids=["cmyk", "16-bit", "alpha", "palette"],
)
def test_unusual_modes_become_rgb(image: Image.Image, fmt: str) -> None:
    pixels = decode_upload(save(image, fmt), max_side=64)
    assert pixels.dtype == np.uint8 and pixels.shape == (6, 10, 3)


def test_alpha_is_composited_on_white_and_16_bit_scaled() -> None:
    transparent = decode_upload(save(Image.new("RGBA", (2, 2), (0, 0, 0, 0)), "PNG"), max_side=8)
    assert (transparent == 255).all()
    white16 = Image.fromarray(np.full((2, 2), 65535, np.uint16))
    assert (decode_upload(save(white16, "PNG"), max_side=8) == 255).all()


def test_one_pixel_image() -> None:
    assert decode_upload(save(Image.new("RGB", (1, 1), "red"), "PNG"), max_side=8).shape == (
        1,
        1,
        3,
    )


def test_exif_orientation_is_honoured() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    data = save(photo(40, 30), "JPEG", exif=exif.tobytes())
    assert decode_upload(data, max_side=1024).shape == (40, 30, 3)


def test_longest_side_is_capped() -> None:
    assert decode_upload(save(photo(3000, 1000), "PNG"), max_side=1024).shape == (341, 1024, 3)


def test_encode_under_limit_falls_back_to_jpeg() -> None:
    pixels = np.asarray(photo(300, 200))
    png, suffix = encode_under_limit(pixels, {"seed": 1}, limit=10_000_000)
    assert suffix == "png" and read_png_record(png) == {"seed": 1}
    jpeg, suffix = encode_under_limit(pixels, {"seed": 1}, limit=len(png) // 2)
    assert suffix == "jpg" and len(jpeg) <= len(png) // 2
    with pytest.raises(BadImage, match="too large"):
        encode_under_limit(pixels, {}, limit=100)

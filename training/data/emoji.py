"""Noto Color Emoji rendered as an image set (about 3,900 glyphs).

Candidates are every code point in the font's character map and every ligature in its
GSUB table (ZWJ sequences, skin tones, flags, keycaps, subdivision flags), mapped back to
code points. A candidate is kept when Pillow (with raqm shaping) renders it as a single,
non-empty colour glyph that differs from every glyph kept before it. The order is the
code point order of the sequences, so it is stable across runs.
"""

from __future__ import annotations

import struct
import unicodedata
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from training.data.images import DEFAULT_CACHE, ImageSet, cached

FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
FONT_SIZE = 109  # the one bitmap strike of the font: glyphs are 136 x 128
NOT_EMOJI = {"Cc", "Cf", "Mn", "Me", "Zs", "Nd"}  # controls, joiners, marks, space, digits


def load_emoji(
    resolution: int = 64, cache_dir: Path = DEFAULT_CACHE, font: Path = FONT, limit: int = 0
) -> ImageSet:
    """The rendered emoji set at `resolution`, cached (the first `limit` only, if given)."""
    stat = font.stat()
    key = {"kind": "emoji", "font": str(font), "mtime": stat.st_mtime_ns, "size": stat.st_size}
    key.update(resolution=resolution, limit=limit, version=1)
    return cached(key, lambda: render_all(font, resolution, limit), cache_dir)


def render_all(font_path: Path, resolution: int, limit: int = 0) -> ImageSet:
    """Render every candidate; keep single, non-empty, distinct glyphs."""
    font = ImageFont.truetype(str(font_path), FONT_SIZE)
    single_width = font.getbbox("\U0001f600")[2]
    images, seen, skipped = [], set(), 0
    for text in candidates(font_path):
        glyph = render(font, text, single_width)
        if glyph is None or glyph.tobytes() in seen:
            skipped += 1
            continue
        seen.add(glyph.tobytes())
        images.append(np.asarray(glyph.resize((resolution,) * 2, Image.Resampling.LANCZOS)))
        if limit and len(images) == limit:
            break
    return ImageSet(np.stack(images), skipped)


def render(font: ImageFont.FreeTypeFont, text: str, single_width: int) -> Image.Image | None:
    """`text` as one square RGB glyph on white, or None if it is not one visible glyph."""
    try:
        left, _, right, bottom = font.getbbox(text)
    except RuntimeError:  # raqm refuses some control characters
        return None
    if right - left > single_width:  # shaped into more than one glyph
        return None
    glyph = Image.new("RGBA", (single_width, bottom), (255, 255, 255, 0))
    ImageDraw.Draw(glyph).text((0, 0), text, font=font, embedded_color=True)
    if glyph.getchannel("A").getbbox() is None:
        return None
    side = max(glyph.size)
    canvas = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    canvas.alpha_composite(glyph, ((side - glyph.width) // 2, (side - glyph.height) // 2))
    return canvas.convert("RGB")


def candidates(font_path: Path) -> list[str]:
    """Code points and ligature sequences of the font, sorted by code points."""
    glyph_to_char = read_cmap(font_path)
    singles = [chr(c) for c in glyph_to_char.values() if is_emoji_char(c)]
    sequences = [
        "".join(chr(glyph_to_char[g]) for g in glyphs)
        for glyphs in read_ligatures(font_path)
        if all(g in glyph_to_char for g in glyphs)
    ]
    return sorted(set(singles + sequences), key=lambda text: [ord(c) for c in text])


def is_emoji_char(code: int) -> bool:
    """Leave out ASCII, joiners, marks and tags: they are parts of sequences, not emoji."""
    return code >= 0x80 and unicodedata.category(chr(code)) not in NOT_EMOJI


# A minimal OpenType reader: the cmap (format 12) and GSUB ligatures (lookup type 4).


def read_tables(data: bytes) -> dict[str, int]:
    """Table tag -> offset."""
    count = struct.unpack_from(">H", data, 4)[0]
    entries = (struct.unpack_from(">4sIII", data, 12 + 16 * i) for i in range(count))
    return {tag.decode(): offset for tag, _, offset, _ in entries}


def read_cmap(font_path: Path) -> dict[int, int]:
    """Glyph id -> code point, from the font's format-12 (full Unicode) character map."""
    data = font_path.read_bytes()
    cmap = read_tables(data)["cmap"]
    glyph_to_char: dict[int, int] = {}
    for i in range(struct.unpack_from(">H", data, cmap + 2)[0]):
        offset = cmap + struct.unpack_from(">I", data, cmap + 8 + 8 * i)[0]
        if struct.unpack_from(">H", data, offset)[0] != 12:
            continue
        for j in range(struct.unpack_from(">I", data, offset + 12)[0]):
            start, end, glyph = struct.unpack_from(">III", data, offset + 16 + 12 * j)
            for k in range(end - start + 1):
                glyph_to_char.setdefault(glyph + k, start + k)
    return glyph_to_char


def read_ligatures(font_path: Path) -> list[list[int]]:
    """Every ligature's component glyph ids, from the GSUB ligature substitutions."""
    data = font_path.read_bytes()

    def u16(offset: int) -> int:
        return struct.unpack_from(">H", data, offset)[0]

    gsub = read_tables(data)["GSUB"]
    lookups = gsub + u16(gsub + 8)
    ligatures = []
    for i in range(u16(lookups)):
        lookup = lookups + u16(lookups + 2 + 2 * i)
        for j in range(u16(lookup + 4)):
            table, kind = lookup + u16(lookup + 6 + 2 * j), u16(lookup)
            if kind == 7:  # extension: the real subtable is further on
                kind = u16(table + 2)
                table += struct.unpack_from(">I", data, table + 4)[0]
            if kind != 4:
                continue
            for k, first in enumerate(read_coverage(data, table + u16(table + 2))):
                ligature_set = table + u16(table + 6 + 2 * k)
                for m in range(u16(ligature_set)):
                    ligature = ligature_set + u16(ligature_set + 2 + 2 * m)
                    rest = [u16(ligature + 4 + 2 * c) for c in range(u16(ligature + 2) - 1)]
                    ligatures.append([first, *rest])
    return ligatures


def read_coverage(data: bytes, offset: int) -> list[int]:
    """The glyph ids of an OpenType coverage table, in coverage order."""
    form, count = struct.unpack_from(">HH", data, offset)
    if form == 1:
        return list(struct.unpack_from(f">{count}H", data, offset + 4))
    glyphs: list[int] = []
    for i in range(count):
        start, end, _ = struct.unpack_from(">HHH", data, offset + 4 + 6 * i)
        glyphs += range(start, end + 1)
    return glyphs

"""Image data sets: folders (safe decoding, squaring, caching) and the Noto emoji set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFont

from training.data import emoji, images
from training.data.images import holdout_split, load_folder


def write_images(folder: Path) -> None:
    """Four good files (PNG with alpha, JPEG, WebP, wide PNG) and two bad ones."""
    folder.mkdir(parents=True, exist_ok=True)
    transparent = Image.new("RGBA", (80, 80), (255, 0, 0, 0))
    transparent.paste((0, 0, 255, 255), (30, 30, 50, 50))
    transparent.save(folder / "a_alpha.png")
    Image.new("RGB", (100, 70), (0, 200, 0)).save(folder / "b.jpg", quality=95)
    Image.new("RGB", (64, 64), (10, 20, 30)).save(folder / "c.webp", lossless=True)
    wide = Image.new("RGB", (300, 100), (255, 0, 0))
    wide.paste((0, 0, 0), (100, 0, 200, 100))  # black middle third
    wide.save(folder / "d_wide.png")
    (folder / "e_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    (folder / "f_text.jpg").write_text("not an image")
    (folder / "notes.txt").write_text("ignored: not an image extension")


def test_folder_skips_bad_files_and_squares(tmp_path: Path) -> None:
    write_images(tmp_path / "imgs")
    data = load_folder(tmp_path / "imgs", 64, tmp_path / "cache")
    assert data.images.shape == (4, 64, 64, 3) and data.images.dtype == np.uint8
    assert data.skipped == 2
    alpha, jpeg, webp, wide = data.images
    assert (alpha[2, 2] == 255).all()  # transparent -> white
    assert alpha[32, 32].tolist() == [0, 0, 255]
    assert abs(int(jpeg[32, 32, 1]) - 200) < 4
    assert webp[10, 10].tolist() == [10, 20, 30]
    assert wide[32, 32].tolist() == [0, 0, 0]  # the center crop keeps the middle third


def test_folder_cache_hits_and_invalidates(tmp_path: Path, monkeypatch) -> None:
    write_images(tmp_path / "imgs")
    first = load_folder(tmp_path / "imgs", 64, tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1

    def no_build(*args):
        raise AssertionError("should have come from the cache")

    monkeypatch.setattr(images, "build_folder", no_build)
    again = load_folder(tmp_path / "imgs", 64, tmp_path / "cache")
    assert again.sha256 == first.sha256 and again.skipped == 2
    monkeypatch.undo()
    Image.new("RGB", (64, 64), "white").save(tmp_path / "imgs" / "g.png")
    assert len(load_folder(tmp_path / "imgs", 64, tmp_path / "cache").images) == 5
    assert load_folder(tmp_path / "imgs", 128, tmp_path / "cache").images.shape[1:] == (128, 128, 3)


def test_decompression_bombs_are_skipped(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(images, "MAX_PIXELS", 1_000)
    Image.new("RGB", (40, 40)).save(tmp_path / "big.png")  # 1,600 px: over the limit
    Image.new("RGB", (100, 100)).save(tmp_path / "bigger.png")
    Image.new("RGB", (20, 20)).save(tmp_path / "ok.png")
    data = load_folder(tmp_path, 64, tmp_path / "cache")
    assert len(data.images) == 1 and data.skipped == 2


def test_holdout_split_is_fixed_and_disjoint() -> None:
    train, held = holdout_split(1000, 0.1, seed=0)
    assert len(held) == 100 and len(train) == 900
    assert not set(train) & set(held)
    np.testing.assert_array_equal(held, holdout_split(1000, 0.1, seed=0)[1])


needs_font = pytest.mark.skipif(not emoji.FONT.exists(), reason="fonts-noto-color-emoji")


@needs_font
def test_emoji_candidates_cover_sequences() -> None:
    found = set(emoji.candidates(emoji.FONT))
    assert len(found) > 3_000
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    thumbs = "\U0001f44d\U0001f3fd"
    for sequence in (family, thumbs, "\U0001f1eb\U0001f1f7", "1\u20e3", "\U0001f600"):
        assert sequence in found


@needs_font
def test_emoji_render_keeps_single_glyphs_only() -> None:
    font = ImageFont.truetype(str(emoji.FONT), emoji.FONT_SIZE)
    width = font.getbbox("\U0001f600")[2]
    glyph = emoji.render(font, "\U0001f44d\U0001f3fd", width)
    assert glyph is not None and glyph.size[0] == glyph.size[1]
    assert emoji.render(font, "\U0001f600\U0001f600", width) is None  # two glyphs
    assert emoji.render(font, "\u200d", width) is None  # nothing visible


@needs_font
def test_emoji_renders_over_3000_glyphs() -> None:
    """Every eighth candidate is rendered (the whole set takes ~10 s): over 3,000 / 8 kept."""
    font = ImageFont.truetype(str(emoji.FONT), emoji.FONT_SIZE)
    width = font.getbbox("\U0001f600")[2]
    glyphs = [emoji.render(font, text, width) for text in emoji.candidates(emoji.FONT)[::8]]
    distinct = {glyph.tobytes() for glyph in glyphs if glyph is not None}
    assert len(distinct) > 3_000 / 8


def test_emoji_set_is_built_and_cached(tmp_path: Path, monkeypatch) -> None:
    """load_emoji's caching and layout, on a tiny stand-in for the renderer."""
    calls = []

    def fake_render(font: Path, resolution: int, limit: int = 0) -> images.ImageSet:
        calls.append(resolution)
        return images.ImageSet(np.full((3, resolution, resolution, 3), 255, np.uint8), 7)

    monkeypatch.setattr(emoji, "render_all", fake_render)
    font = tmp_path / "font.ttf"
    font.write_bytes(b"not really a font")
    first = emoji.load_emoji(64, tmp_path / "cache", font)
    again = emoji.load_emoji(64, tmp_path / "cache", font)
    assert calls == [64] and again.skipped == 7 and again.sha256 == first.sha256

"""Content photos from a user's folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training.data.photos import folder_photos, held_out_files, load_photos, wallpaper_photos


def test_a_users_folder_keeps_images_of_the_same_name_in_subfolders(tmp_path: Path) -> None:
    for i, name in enumerate(["a/x.png", "b/x.jpg", "x.png", "notes.txt"]):
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        if name.endswith(".txt"):
            path.write_text("not an image")
        else:
            Image.new("RGB", (32, 24), (40 * i, 0, 0)).save(path)
    photos = folder_photos(tmp_path)
    assert [p.name for p in photos] == ["user/a/x", "user/b/x", "user/x"]
    loaded = load_photos(photos, cache_dir=tmp_path / "cache")
    assert len(loaded) == 3 and all(isinstance(a, np.ndarray) for a in loaded.values())


def test_no_size_of_a_held_out_photo_can_be_a_style_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--style-dir over the wallpaper folders skips every file of the held-out photos: each
    size (and link) of a held-out Plasma wallpaper, and MATE's NAME_WxH beside NAME."""
    from training.style.arbitrary import folder_styles

    monkeypatch.chdir(tmp_path)  # the image cache (.atelier/cache) goes here
    plasma, mate = tmp_path / "wallpapers", tmp_path / "mate"
    for wallpaper in ("Path", "Other"):
        images = plasma / wallpaper / "contents" / "images"
        images.mkdir(parents=True)
        Image.new("RGB", (320, 256)).save(images / "320x256.png")
        Image.new("RGB", (640, 512)).save(images / "640x512.png")
        (images / "1280x1024.png").symlink_to(images / "640x512.png")
    (mate / "nature").mkdir(parents=True)
    for name in ("Garden", "Garden_640x512", "Gardenia"):
        Image.new("RGB", (640, 512)).save(mate / "nature" / f"{name}.png")
    photos = wallpaper_photos((plasma, mate))
    assert {"plasma/Path", "mate/nature/Garden"} <= {p.name for p in photos}
    held_out = held_out_files(photos)
    assert len(held_out) == 4  # Path's two files (the link is one of them) and two Gardens
    styles = folder_styles(str(plasma), held_out=held_out) | folder_styles(
        str(mate), held_out=held_out
    )
    assert sorted(Path(name).relative_to(tmp_path).as_posix() for name in styles) == [
        "mate/nature/Gardenia.png",
        "wallpapers/Other/contents/images/1280x1024.png",
        "wallpapers/Other/contents/images/320x256.png",
        "wallpapers/Other/contents/images/640x512.png",
    ]
    assert not folder_styles(str(plasma / "Path"), held_out=held_out)
    assert len(folder_styles(str(plasma / "Path"))) == 3  # without the guard: all three

"""Content photos from a user's folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from training.data.photos import folder_photos, load_photos


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

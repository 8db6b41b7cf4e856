"""Content photos for style training, all available offline.

Sources: the photos inside the scikit-image and scikit-learn wheels (read from the
installed files, never through pooch), Debian's `plasma-workspace-wallpapers` and
`mate-backgrounds`, and any folder given. Each photo is scaled so that its short side is
at most `max_side` and cached as one `.npz`. A fixed list is held out for evaluation.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

DEFAULT_CACHE = Path(".atelier/cache")
EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp"}
SKIMAGE_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png")
SKLEARN_PHOTOS = ("china.jpg", "flower.jpg")
WALLPAPERS = (Path("/usr/share/wallpapers"), Path("/usr/share/backgrounds/mate"))
# Held out from training: the evaluation and benchmark photos.
HELD_OUT = (
    "skimage/astronaut",
    "skimage/coffee",
    "sklearn/china",
    "mate/nature/Garden",
    "plasma/Path",
)


@dataclass
class Photo:
    name: str  # source/stem, e.g. "skimage/astronaut"
    path: Path


def wheel_photos() -> list[Photo]:
    """The colour photos shipped inside the scikit-image and scikit-learn wheels."""
    import skimage
    import sklearn

    photos = []
    for package, folder, names in (
        ("skimage", Path(skimage.__file__).parent / "data", SKIMAGE_PHOTOS),
        ("sklearn", Path(sklearn.__file__).parent / "datasets" / "images", SKLEARN_PHOTOS),
    ):
        photos += [Photo(f"{package}/{Path(n).stem}", folder / n) for n in names]
    return [photo for photo in photos if photo.path.is_file()]


def wallpaper_photos(roots: tuple[Path, ...] = WALLPAPERS) -> list[Photo]:
    """Debian wallpapers: Plasma's (one file per wallpaper, the smallest) and MATE's."""
    photos = []
    plasma, mate = roots
    if plasma.is_dir():
        for folder in sorted(p for p in plasma.iterdir() if (p / "contents" / "images").is_dir()):
            files = [f for f in (folder / "contents" / "images").iterdir() if is_image(f)]
            if files:
                smallest = min(files, key=lambda f: f.stat().st_size)
                photos.append(Photo(f"plasma/{folder.name}", smallest))
    if mate.is_dir():
        for path in sorted(mate.rglob("*")):
            if is_image(path) and "_" not in path.stem:  # skip the same picture's larger sizes
                photos.append(Photo(f"mate/{path.relative_to(mate).with_suffix('')}", path))
    return photos


def folder_photos(folder: Path) -> list[Photo]:
    """A folder's images (recursively), each named `user/` + its path in the folder without
    the suffix, so that `a/x.jpg` and `b/x.jpg` stay two photos."""
    paths = [p for p in sorted(Path(folder).rglob("*")) if is_image(p)]
    return [Photo(f"user/{p.relative_to(folder).with_suffix('').as_posix()}", p) for p in paths]


def is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in EXTENSIONS


def all_photos(folders: tuple[Path, ...] = ()) -> list[Photo]:
    photos = wheel_photos() + wallpaper_photos()
    for folder in folders:
        photos += folder_photos(folder)
    return photos


def held_out_files(photos: list[Photo]) -> frozenset[Path]:
    """Every file of the held-out photos among `photos`, at each size the package ships:
    all of a held-out Plasma wallpaper's folder, and MATE's `NAME_WxH` files beside
    `NAME`. Nothing here may be trained on, as a --style-dir picture either."""
    files = set()
    for photo in photos:
        if photo.name not in HELD_OUT:
            continue
        path = Path(photo.path).resolve()
        if photo.name.startswith("plasma/"):  # <wallpaper>/contents/images*/<size>.<ext>
            files |= {f.resolve() for f in path.parents[2].rglob("*") if is_image(f)}
        else:
            stem = path.stem.split("_")[0]
            files |= {f.resolve() for f in path.parent.iterdir() if f.stem.split("_")[0] == stem}
    return frozenset(files)


def load_rgb(path: Path, max_side: int) -> np.ndarray:
    """An image file as uint8 RGB, alpha on white, short side scaled down to max_side."""
    with Image.open(path) as image:
        image.draft("RGB", (max_side, max_side))  # JPEG: decode at a reduced size
        image = image.convert("RGBA")
        canvas = Image.new("RGBA", image.size, (255, 255, 255, 255))
        canvas.alpha_composite(image)
        rgb = canvas.convert("RGB")
    scale = max_side / min(rgb.size)
    if scale < 1:
        size = (round(rgb.width * scale), round(rgb.height * scale))
        rgb = rgb.resize(size, Image.Resampling.LANCZOS)
    return np.asarray(rgb)


def load_photos(
    photos: list[Photo], max_side: int = 512, cache_dir: Path = DEFAULT_CACHE
) -> dict[str, np.ndarray]:
    """name -> uint8 [H, W, 3], cached under a key of the files, their sizes and mtimes."""
    key = [(p.name, str(p.path), p.path.stat().st_size, p.path.stat().st_mtime_ns) for p in photos]
    digest = hashlib.sha256(json.dumps([key, max_side]).encode()).hexdigest()[:20]
    path = Path(cache_dir) / f"photos-{digest}.npz"
    if path.exists():
        with np.load(path) as cached:
            return {p.name: cached[str(i)] for i, p in enumerate(photos)}
    arrays = {p.name: load_rgb(p.path, max_side) for p in photos}
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **{str(i): arrays[p.name] for i, p in enumerate(photos)})
    return arrays


def split(photos: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """(training photos, held-out photos)."""
    train = {k: v for k, v in photos.items() if k not in HELD_OUT}
    held = {k: v for k, v in photos.items() if k in HELD_OUT}
    return train, held

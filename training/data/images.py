"""Image data sets as one cached uint8 array [N, H, W, 3].

`load_folder` reads any folder of PNG, JPEG or WebP files: RGBA is composited on white,
each image is resized so that its short side fits and then center-cropped to a square.
Files that cannot be decoded are skipped and counted, never fatal. The array is cached
as `.npy` under a key hashed from the file list, modification times, sizes and resolution.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from training.data.hashing import array_hash

DEFAULT_CACHE = Path(".atelier/cache")
EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp"}
MAX_PIXELS = 50_000_000  # larger images are refused from their header, before decoding
RESOLUTIONS = (64, 128)


@dataclass
class ImageSet:
    """Images [N, H, W, 3] uint8 and how many files were skipped while building them."""

    images: np.ndarray
    skipped: int = 0

    @property
    def sha256(self) -> str:
        return array_hash(self.images)


def cached(key: dict, build: Callable[[], ImageSet], cache_dir: Path = DEFAULT_CACHE) -> ImageSet:
    """Return the cached ImageSet for `key`, building and saving it on a miss."""
    name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    path = Path(cache_dir) / f"{key['kind']}-{name}.npy"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        return ImageSet(np.load(path), json.loads(meta.read_text())["skipped"])
    data = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, data.images)
    tmp.replace(path)
    meta.write_text(json.dumps({**key, "skipped": data.skipped, "count": len(data.images)}))
    return data


def load_folder(folder: Path, resolution: int = 64, cache_dir: Path = DEFAULT_CACHE) -> ImageSet:
    """All images under `folder` (recursively, sorted by path), square at `resolution`."""
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in EXTENSIONS)
    stats = [(str(p.relative_to(folder)), p.stat().st_mtime_ns, p.stat().st_size) for p in files]
    key = {"kind": "folder", "root": str(Path(folder).resolve()), "files": stats}
    key["resolution"] = resolution
    return cached(key, lambda: build_folder(files, resolution), cache_dir)


def build_folder(files: list[Path], resolution: int) -> ImageSet:
    """Decode and square every file; count the ones that fail."""
    images, skipped = [], 0
    for path in files:
        try:
            images.append(square(open_image(path), resolution))
        except Exception:  # corrupt, truncated, a bomb, not an image at all
            skipped += 1
    array = np.stack(images) if images else np.zeros((0, resolution, resolution, 3), np.uint8)
    return ImageSet(array, skipped)


def open_image(path: Path) -> Image.Image:
    """Open a file safely: the size from the header first, then a full decode, then RGB."""
    with Image.open(path) as image:
        if image.width * image.height > MAX_PIXELS:
            raise Image.DecompressionBombError(f"{path}: {image.size} is too large")
        image.load()
        return on_white(image)


def on_white(image: Image.Image) -> Image.Image:
    """RGB with any transparency composited on a white background."""
    if image.mode in ("RGBA", "LA", "P", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def square(image: Image.Image, resolution: int) -> np.ndarray:
    """Resize so the short side is `resolution`, center-crop, return uint8 [H, W, 3]."""
    scale = resolution / min(image.size)
    size = (
        max(resolution, round(image.width * scale)),
        max(resolution, round(image.height * scale)),
    )
    image = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    left, top = (size[0] - resolution) // 2, (size[1] - resolution) // 2
    image = image.crop((left, top, left + resolution, top + resolution))
    return np.asarray(image, dtype=np.uint8)


def holdout_split(n: int, fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fixed (train, held-out) index arrays: a seeded shuffle, the last `fraction` held out."""
    order = np.random.default_rng(seed).permutation(n)
    held = max(1, round(n * fraction)) if n > 1 else 0
    return np.sort(order[: n - held]), np.sort(order[n - held :])

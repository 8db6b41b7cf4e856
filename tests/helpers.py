"""Helpers shared by the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bot.settings import Settings
from deploy.contracts import latent_for_seed

ROOT = Path(__file__).resolve().parent.parent
MODEL_REPOSITORY = ROOT / "model_repository"
MODEL_PT = MODEL_REPOSITORY / "gan" / "1" / "model.pt"


def local_images(seeds: list[int], truncation: float = 1.0) -> np.ndarray:
    """The committed TorchScript generator, run in this process."""
    model = torch.jit.load(str(MODEL_PT))
    z = torch.from_numpy(np.stack([latent_for_seed(s) for s in seeds]))
    with torch.inference_mode():
        return model(z, torch.full((len(seeds), 1), truncation)).numpy()


def make_settings(state_dir: Path, **values: object) -> Settings:
    """Settings for a test: its own state folder (SQLite file, Triton log), no token."""
    return Settings(
        state_dir=state_dir,
        model_repository=MODEL_REPOSITORY,
        discord_token=None,
        database_url=None,
        **values,
    )

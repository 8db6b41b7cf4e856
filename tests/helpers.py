"""Helpers shared by the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bot.settings import Settings
from deploy.contracts import latent_for_seed

ROOT = Path(__file__).resolve().parent.parent
MODEL_REPOSITORY = ROOT / "model_repository"


def latest_version(model: str) -> Path:
    """The newest version folder of a model: the one Triton serves."""
    versions = [p for p in (MODEL_REPOSITORY / model).iterdir() if p.name.isdigit()]
    return max(versions, key=lambda p: int(p.name))


GAN_VERSION = latest_version("gan").name
MODEL_PT = latest_version("gan") / "model.pt"


def local_generate(z: np.ndarray, truncation: float = 1.0) -> np.ndarray:
    """The served TorchScript generator, run in this process on latent vectors."""
    model = torch.jit.load(str(MODEL_PT))
    with torch.inference_mode():
        return model(torch.from_numpy(z), torch.full((len(z), 1), truncation)).numpy()


def local_images(seeds: list[int], truncation: float = 1.0) -> np.ndarray:
    """The served TorchScript generator, run in this process on seeds."""
    return local_generate(np.stack([latent_for_seed(s) for s in seeds]), truncation)


def make_settings(state_dir: Path, **values: object) -> Settings:
    """Settings for a test: its own state folder (SQLite file, Triton log), no token, and no
    /metrics server unless `metrics_port` is given."""
    values.setdefault("metrics_port", 0)
    return Settings(
        state_dir=state_dir,
        model_repository=MODEL_REPOSITORY,
        discord_token=None,
        database_url=None,
        **values,
    )

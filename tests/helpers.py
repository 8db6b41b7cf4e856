"""Helpers shared by the tests."""

from __future__ import annotations

import shutil
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


def copy_model(model: str, root: Path, versions: tuple[str, ...] | None = None) -> Path:
    """Copy one model of model_repository/ into `root` (a temporary repository): its
    config.pbtxt, configs/ and version folders (all, or `versions`). Returns `root`."""
    source, target = MODEL_REPOSITORY / model, root / model
    target.mkdir(parents=True)
    for path in source.iterdir():
        wanted = path.name.isdigit() and (versions is None or path.name in versions)
        if wanted or path.name in ("config.pbtxt", "configs"):
            (shutil.copytree if path.is_dir() else shutil.copy2)(path, target / path.name)
    return root


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

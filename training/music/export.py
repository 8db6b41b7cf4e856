"""Export the music sampler to a model version folder (`model_repository/music/<N>/`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deploy.contracts import FREE, HOLD, MUSIC, STEPS_PER_BAR
from training.export import export_model
from training.music.model import Composer, MusicConfig, MusicModel


def music_inputs(bars: int = 2) -> dict[str, np.ndarray]:
    """Two requests: compose from nothing (chorale, C major) and harmonise a melody (folk
    style, A minor) with a different seed, temperature and top-k."""
    steps = bars * STEPS_PER_BAR
    given = np.full((2, steps, 4), FREE, np.int64)
    melody = [60, 62, 64, 65, 67, 65, 64, 62][: steps // 4]
    for beat, pitch in enumerate(melody):
        given[1, 4 * beat, 0] = pitch
        given[1, 4 * beat + 1 : 4 * beat + 4, 0] = HOLD
    return {
        "given": given,
        "style": np.array([[0], [1]], np.int64),
        "key": np.array([[0], [21]], np.int64),
        "seed": np.array([[7], [8]], np.int64),
        "temperature": np.array([[1.0], [0.7]], np.float32),
        "top_k": np.array([[0], [5]], np.int64),
    }


def export_music(composer: Composer, version_dir: Path, metadata: dict[str, Any]) -> Path:
    """Export a `music` model (parity and contract checked by export_model)."""
    return export_model(composer, MUSIC, music_inputs(), version_dir, metadata)


def build_composer(metadata: dict[str, Any]) -> Composer:
    """The eager `music` module a version's metadata describes (untrained weights)."""
    model = MusicModel(MusicConfig(**metadata["config"]))
    return Composer(
        model,
        iterations=metadata["iterations"],
        rules=metadata.get("voice_leading_rules", True),
        unison_penalty=metadata.get("unison_penalty", 0.0),
    )


def export_untrained(version_dir: Path, seed: int = 0, iterations: int = 48) -> Path:
    """An untrained model of the served architecture (tests and first deployments)."""
    import torch

    torch.manual_seed(seed)
    composer = Composer(MusicModel(MusicConfig()), iterations=iterations)
    metadata = {
        "untrained": True,
        "seed": seed,
        "config": composer.model.config.to_dict(),
        "iterations": iterations,
        "voice_leading_rules": composer.rules,
    }
    return export_music(composer, version_dir, metadata)

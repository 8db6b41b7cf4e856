"""Publishing `style`, `style_arbitrary` and `music` versions (deploy/validation.py profiles).

Validation runs on copies of the committed live versions (accepted) and on broken ones
(refused) without any Triton; one end-to-end publish of `music` goes into a temporary copy
of the repository holding only `music`, served by a tritonserver of this module's own, so
model_repository/ is never written.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
import torch

from deploy.contracts import MUSIC, STYLE_ARBITRARY
from deploy.publish import infer, publish
from deploy.repository import ModelRepository, TritonFleet
from deploy.triton import LocalTriton
from deploy.validation import ValidationError, ValidationOptions, profile_for, validate
from tests.helpers import MODEL_REPOSITORY, copy_model
from training.export import run_module, save_checkpoint

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


def live_checkpoint(model: str, path: Path) -> Path:
    """The live version kept as a training run keeps it: eager weights and metadata."""
    live = ModelRepository(MODEL_REPOSITORY).live(model)
    assert live is not None
    profile = profile_for(model)
    metadata = json.loads((live.path / "metadata.json").read_text())
    return save_checkpoint(profile.eager(live.path), profile.contract, metadata, path)


def check(model: str, source: Path, staging: Path, settings: dict | None = None) -> dict:
    """Stage (with `settings`) and validate `source` as a candidate of `model` against the
    live version."""
    profile = profile_for(model)
    staging.mkdir()
    profile.stage(source, staging, settings)
    live = ModelRepository(MODEL_REPOSITORY).live(model)
    return validate(profile, staging, live, OPTIONS, progress=lambda line: None)


@pytest.mark.parametrize("model", MODELS)
def test_a_copy_of_the_live_version_passes(model: str, tmp_path: Path) -> None:
    report = check(model, live_copy(model, tmp_path / "candidate"), tmp_path / "staging")
    quality = report["quality"]
    assert quality["candidate"]["value"] <= quality["live"]["value"] * (1 + OPTIONS.margin)
    assert {"eager", "quality"} <= set(report["checks"])


@pytest.mark.parametrize("model", MODELS)
def test_a_training_checkpoint_is_exported_then_validated(model: str, tmp_path: Path) -> None:
    checkpoint = live_checkpoint(model, tmp_path / "run" / "checkpoint.pt")
    report = check(model, checkpoint, tmp_path / "staging")
    assert {"eager", "quality"} <= set(report["checks"])
    metadata = json.loads((tmp_path / "staging" / "metadata.json").read_text())
    assert metadata["checkpoint"] == str(checkpoint) and metadata["git_commit"]
    live = ModelRepository(MODEL_REPOSITORY).live(model)
    assert live is not None
    profile = profile_for(model)
    inputs = profile.example_inputs(metadata)
    staged = run_module(
        torch.jit.load(str(tmp_path / "staging" / "model.pt")), profile.contract, inputs
    )
    expected = run_module(torch.jit.load(str(live.path / "model.pt")), profile.contract, inputs)
    for name, value in expected.items():
        np.testing.assert_array_equal(staged[name], value)


@pytest.mark.parametrize("source", ["checkpoint", "version folder"])
@pytest.mark.parametrize("model", ["style", "style_arbitrary"])
def test_a_new_work_side_exports_the_same_weights_again(
    model: str, source: str, tmp_path: Path
) -> None:
    """A checkpoint or a published version folder is exported with another work side: the
    setting changes, the weights do not (same output below the side, another above it)."""
    if source == "checkpoint":
        path = live_checkpoint(model, tmp_path / "run" / "checkpoint.pt")
    else:
        path = live_copy(model, tmp_path / "candidate")
    (tmp_path / "staging").mkdir()
    profile = profile_for(model)
    profile.stage(path, tmp_path / "staging", {"work_side": 24})
    metadata = json.loads((tmp_path / "staging" / "metadata.json").read_text())
    assert metadata["work_side"] == 24
    staged = torch.jit.load(str(tmp_path / "staging" / "model.pt"))
    assert staged.work_side == 24
    live = torch.jit.load(str(ModelRepository(MODEL_REPOSITORY).live(model).path / "model.pt"))
    inputs = profile.example_inputs(metadata)
    for side, same in ((24, True), (40, False)):
        sized = {**inputs, "image": inputs["image"][:, :side, :side]}
        outputs = [run_module(m, profile.contract, sized)["image"] for m in (staged, live)]
        assert np.array_equal(*outputs) is same


def test_a_style_arbitrary_checkpoint_is_exported_with_mirror(tmp_path: Path) -> None:
    """--mirror changes the style vector (and so the output), and the export validates."""
    checkpoint = live_checkpoint("style_arbitrary", tmp_path / "run" / "checkpoint.pt")
    outputs = {}
    for mirror in (False, True):
        staging = tmp_path / f"staging-{mirror}"
        report = check("style_arbitrary", checkpoint, staging, {"mirror": mirror})
        assert "eager" in report["checks"]
        assert json.loads((staging / "metadata.json").read_text())["mirror"] is mirror
        model = torch.jit.load(str(staging / "model.pt"))
        assert model.mirror is mirror
        inputs = profile_for("style_arbitrary").example_inputs()
        outputs[mirror] = run_module(model, STYLE_ARBITRARY, inputs)["image"]
    assert not np.array_equal(outputs[False], outputs[True])


def test_a_style_arbitrary_version_is_exported_with_a_palette(tmp_path: Path) -> None:
    """--palette is recorded and served; outside 0-1 it is refused at export."""
    profile, source = profile_for("style_arbitrary"), live_copy("style_arbitrary", tmp_path / "v")
    inputs = profile.example_inputs()
    outputs = []
    for palette in (0.0, 0.7):
        staging = tmp_path / f"staging-{palette}"
        staging.mkdir()
        profile.stage(source, staging, {"palette": palette})
        assert json.loads((staging / "metadata.json").read_text())["palette"] == palette
        model = torch.jit.load(str(staging / "model.pt"))
        assert model.palette == palette
        outputs.append(run_module(model, STYLE_ARBITRARY, inputs)["image"])
    assert not np.array_equal(*outputs)
    (tmp_path / "refused").mkdir()
    with pytest.raises(ValidationError, match="export.*palette must be between 0 and 1"):
        profile.stage(source, tmp_path / "refused", {"palette": 2.0})


@pytest.mark.parametrize("model", ["style", "style_arbitrary"])
def test_validation_measures_quality_in_the_served_precision(model: str, tmp_path: Path) -> None:
    """Under a served bfloat16, the candidate's and the live version's quality are measured
    in bfloat16 (the live record, kept in float32, is not reused) and say so."""
    profile = profile_for(model)
    staging = tmp_path / "staging"
    staging.mkdir()
    profile.stage(live_copy(model, tmp_path / "candidate"), staging)
    live = ModelRepository(MODEL_REPOSITORY).live(model)
    served = ValidationOptions(autocast=torch.bfloat16)
    report = validate(profile, staging, live, served, progress=lambda line: None)
    candidate, baseline = report["quality"]["candidate"], report["quality"]["live"]
    assert report["precision"] == "bfloat16"
    assert candidate["precision"] == baseline["precision"] == "bfloat16"
    assert candidate["value"] == baseline["value"]  # the same file, measured the same way
    scripted = torch.jit.load(str(staging / "model.pt")).eval()
    metadata = json.loads((staging / "metadata.json").read_text())
    float32 = profile.quality(scripted, metadata, OPTIONS)
    assert float32.precision == "float32" and float32.value != candidate["value"]


@pytest.mark.parametrize("folder", [True, False])
def test_settings_are_refused_where_they_do_not_apply(folder: bool, tmp_path: Path) -> None:
    if folder:
        source = live_copy("music", tmp_path / "candidate")
    else:
        source = live_checkpoint("music", tmp_path / "run" / "checkpoint.pt")
    with pytest.raises(ValidationError, match="music has no setting work_side") as refused:
        profile_for("music").stage(source, tmp_path / "staging", {"work_side": 24})
    assert refused.value.step == "export"


def test_another_models_checkpoint_is_refused(tmp_path: Path) -> None:
    checkpoint = live_checkpoint("style", tmp_path / "checkpoint.pt")
    with pytest.raises(
        ValidationError, match="is a style checkpoint, not style_arbitrary"
    ) as refused:
        check("style_arbitrary", checkpoint, tmp_path / "staging")
    assert refused.value.step == "export"


def test_weights_that_do_not_fit_the_metadata_are_refused(tmp_path: Path) -> None:
    """The TorchScript file runs, but its metadata describes another network."""
    candidate = live_copy("style", tmp_path / "candidate")
    metadata = json.loads((candidate / "metadata.json").read_text())
    metadata["config"]["quarter"] = 16
    (candidate / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ValidationError, match="do not fit") as refused:
        check("style", candidate, tmp_path / "staging")
    assert refused.value.step == "eager"


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
    """Committed music v1 is untrained: far from Bach's statistics next to the live version.
    Its sampler as v1's metadata describes it, with the records publish asks for."""
    candidate = live_copy("music", tmp_path / "candidate")
    v1 = MODEL_REPOSITORY / "music" / "1"
    shutil.copy2(v1 / "model.pt", candidate / "model.pt")
    untrained = json.loads((v1 / "metadata.json").read_text())
    metadata = json.loads((candidate / "metadata.json").read_text())
    metadata.update({k: untrained[k] for k in ("config", "iterations", "voice_leading_rules")})
    metadata["unison_penalty"] = untrained.get("unison_penalty", 0.0)
    (candidate / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ValidationError, match="--allow-worse") as refused:
        check("music", candidate, tmp_path / "staging")
    assert refused.value.step == "quality"


def test_a_bare_file_is_refused_for_music(tmp_path: Path) -> None:
    candidate = live_copy("music", tmp_path / "candidate")
    with pytest.raises(ValidationError, match="bare TorchScript file"):
        check("music", candidate / "model.pt", tmp_path / "staging")


@pytest.fixture(scope="module")
def music_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of model_repository/ with only music's config and versions."""
    return copy_model("music", tmp_path_factory.mktemp("repository"))


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

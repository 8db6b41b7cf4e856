"""Publishing and rolling back model versions on a real tritonserver.

Every test works on a temporary copy of the repository holding only `gan` (versions 1
and 2), served by a Triton of this module's own, so model_repository/ is never written.
Candidates are made from the committed v2: its weights nudged (a new, valid version) or
broken on purpose.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import tritonclient.grpc.aio as grpcclient

from deploy.contracts import GAN, latent_for_seed
from deploy.publish import publish
from deploy.repository import (
    DeployError,
    ModelRepository,
    TritonFleet,
    repository_headers,
    rollback,
    status,
)
from deploy.triton import LocalTriton
from deploy.validation import ValidationError, ValidationOptions
from tests.gan_repository import SEEDS, infer_once, served
from tests.helpers import MODEL_REPOSITORY, ROOT
from training.export import export_model
from training.gan.export import example_inputs
from training.gan.model import Generator, GeneratorConfig, ServedGenerator, load_eager_generator

V2 = MODEL_REPOSITORY / "gan" / "2"
FAST = ValidationOptions(quality_images=32)  # SWD on 32 held-out images keeps tests quick


@pytest.fixture
def repository(repo_dir: Path) -> ModelRepository:
    return ModelRepository(repo_dir)


@pytest.fixture
def fleet(gan_triton: LocalTriton) -> TritonFleet:
    return TritonFleet([gan_triton.grpc_url])


def write_candidate(folder: Path, module: torch.nn.Module, note: str, **metadata: object) -> Path:
    """Script `module` without export checks (broken ones must reach publish's checks)."""
    folder.mkdir(parents=True)
    torch.jit.script(module.eval()).save(str(folder / "model.pt"))
    record = json.loads((V2 / "metadata.json").read_text())
    record.update(training_command=f"test: {note}", **metadata)
    (folder / "metadata.json").write_text(json.dumps(record))
    return folder


def nudged_v2(folder: Path, seed: int) -> Path:
    """v2 with every weight scaled by 1 + N(0, 0.01²): a valid new version."""
    served = load_eager_generator(V2)
    noise = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in served.parameters():
            parameter.mul_(1 + 0.01 * torch.randn(parameter.shape, generator=noise))
    metadata = json.loads((V2 / "metadata.json").read_text())
    metadata["training_command"] = f"test: v2 weights nudged, seed {seed}"
    export_model(served, GAN, example_inputs(), folder, metadata)
    return folder


def wrong_shape(folder: Path) -> Path:
    torch.manual_seed(0)
    module = ServedGenerator(Generator(GeneratorConfig(width=8, image_size=32)))
    return write_candidate(folder, module, "32px", config={"width": 8, "image_size": 32})


def nan_output(folder: Path) -> Path:
    """Finite weights, but a negative batch-norm variance makes every image NaN (which
    the uint8 conversion would hide)."""
    served = load_eager_generator(V2)
    batch_norm = next(m for m in served.modules() if isinstance(m, torch.nn.BatchNorm2d))
    batch_norm.running_var.fill_(-1.0)
    return write_candidate(folder, served, "NaN output")


def not_torchscript(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.pt").write_bytes(b"PK\x03\x04 this is not a TorchScript archive")
    shutil.copy2(V2 / "metadata.json", folder / "metadata.json")
    return folder


def folders(repo_dir: Path) -> list[str]:
    return sorted(p.name for p in (repo_dir / "gan").iterdir() if p.is_dir())


def local(folder: Path, seeds: list[int] = SEEDS) -> np.ndarray:
    model = torch.jit.load(str(folder / "model.pt"))
    z = torch.from_numpy(np.stack([latent_for_seed(s) for s in seeds]))
    with torch.inference_mode():
        return model(z, torch.ones(len(seeds), 1)).numpy()


async def test_publish_under_load_loses_no_request(
    gan_triton: LocalTriton, repository: ModelRepository, repo_dir: Path, tmp_path: Path
) -> None:
    """4 clients call gan nonstop while `atelier deploy publish` runs as its own process."""
    candidate = nudged_v2(tmp_path / "candidate", seed=1)
    before = repository.live("gan").number
    new = str(max(v.number for v in repository.versions("gan")) + 1)
    stop, seen_new = asyncio.Event(), asyncio.Event()
    answered: list[str] = []
    failures: list[BaseException] = []

    async def caller(index: int) -> None:
        client = grpcclient.InferenceServerClient(gan_triton.grpc_url)
        try:
            while not stop.is_set():
                try:
                    _, version = await infer_once(client, [index])
                except Exception as error:  # every failure counts against the swap
                    failures.append(error)
                    continue
                answered.append(version)
                if version == new:
                    seen_new.set()
        finally:
            await client.close()

    callers = [asyncio.create_task(caller(i)) for i in range(4)]
    command = [sys.executable, "-m", "bot.cli", "deploy", "publish", "gan", str(candidate)]
    command += ["--model-repository", str(repo_dir), "--triton-url", gan_triton.grpc_url]
    command += ["--quality-images", "32"]
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output = (await asyncio.wait_for(process.communicate(), 240))[0].decode()
    wall = time.perf_counter() - started
    try:
        assert process.returncode == 0, output
        await asyncio.wait_for(seen_new.wait(), 30)  # unversioned traffic reaches the new one
    finally:
        stop.set()
        await asyncio.gather(*callers)

    assert failures == [], failures[:3]
    assert str(before) in answered and new in answered
    assert answered.index(new) > answered.index(str(before))
    images, version = await served(gan_triton.grpc_url)
    assert version == new
    np.testing.assert_array_equal(images, local(repo_dir / "gan" / new))
    metadata = json.loads((repo_dir / "gan" / new / "metadata.json").read_text())
    assert metadata["training_command"] == "test: v2 weights nudged, seed 1"
    assert metadata["data_sha256"] and metadata["git_commit"]
    assert metadata["publish"]["validation"]["quality"]["live"]["version"] == before
    assert not [name for name in folders(repo_dir) if name.startswith(".staging")]
    swap = re.search(r"load_to_serving ([\d.]+) s", output)
    print(
        f"\npublish wall {wall:.1f} s; {output.strip().splitlines()[-1]}; "
        f"{len(answered)} requests, 0 failed"
    )
    assert swap is not None


@pytest.mark.parametrize(
    ("make", "step", "reason"),
    [
        (wrong_shape, "contract", "shape (32, 32, 3), expected (64, 64, 3)"),
        (nan_output, "finite", "NaN or Inf"),
        (not_torchscript, "load", "does not load"),
    ],
)
async def test_broken_candidates_are_refused(
    make,
    step: str,
    reason: str,
    gan_triton: LocalTriton,
    repository: ModelRepository,
    fleet: TritonFleet,
    repo_dir: Path,
    tmp_path: Path,
) -> None:
    live = repository.live("gan").number
    before_images, _ = await served(gan_triton.grpc_url)
    before_folders = folders(repo_dir)
    with pytest.raises(ValidationError, match=re.escape(reason)) as refused:
        await publish(repository, fleet, "gan", make(tmp_path / "candidate"), FAST)
    assert refused.value.step == step
    assert folders(repo_dir) == before_folders  # no version folder, no staging folder left
    images, version = await served(gan_triton.grpc_url)
    assert version == str(live)
    np.testing.assert_array_equal(images, before_images)


async def test_worse_and_slower_candidates_are_refused(
    repository: ModelRepository, fleet: TritonFleet, repo_dir: Path, tmp_path: Path
) -> None:
    """The untrained generator is far worse than the live one (SWD); a 1 ms budget is too
    tight for any generator on this machine."""
    before_folders = folders(repo_dir)
    torch.manual_seed(0)
    untrained = write_candidate(
        tmp_path / "untrained", ServedGenerator(Generator(GeneratorConfig(width=16))), "untrained"
    )
    with pytest.raises(ValidationError, match="--allow-worse") as refused:
        await publish(repository, fleet, "gan", untrained, FAST)
    assert refused.value.step == "quality"
    slow = ValidationOptions(quality_images=32, latency_budget_ms=1)
    with pytest.raises(ValidationError, match="over the budget of 1 ms"):
        await publish(repository, fleet, "gan", nudged_v2(tmp_path / "nudged", 2), slow)
    assert folders(repo_dir) == before_folders


async def test_rollback_restores_the_previous_outputs(
    gan_triton: LocalTriton,
    repository: ModelRepository,
    fleet: TritonFleet,
    repo_dir: Path,
    tmp_path: Path,
) -> None:
    before_images, before = await served(gan_triton.grpc_url)
    result = await publish(repository, fleet, "gan", nudged_v2(tmp_path / "c", 3), FAST, keep=3)
    assert result.previous == int(before)
    assert len(repository.versions("gan")) == 3  # keep the newest 3
    new_images, version = await served(gan_triton.grpc_url)
    assert version == str(result.version) and not np.array_equal(new_images, before_images)

    previous, now = await rollback(repository, fleet, "gan")
    assert (previous, now) == (result.version, int(before))
    images, version = await served(gan_triton.grpc_url)
    assert version == before
    np.testing.assert_array_equal(images, before_images)
    assert (repo_dir / "gan" / "retired" / str(result.version) / "model.pt").exists()

    report = await status(repository, fleet, "gan")
    assert report.live == int(before)
    (server,) = report.servers
    assert server.ready[before] and not server.ready[str(result.version)]
    assert any(s.version == before and s.success > 0 for s in server.stats)
    text = "\n".join(report.lines())
    assert f"v{result.version} (retired)" in text and "ms per request" in text

    await rollback(repository, fleet, "gan", result.version)  # and forward again
    images, version = await served(gan_triton.grpc_url)
    assert version == str(result.version)
    np.testing.assert_array_equal(images, new_images)


async def test_a_locked_repository_api_needs_its_key(repo_dir: Path, tmp_path: Path) -> None:
    """With the repository API locked (as in production), loads need the key's header."""
    lock = "--grpc-restricted-protocol=model-repository:atelier-key=s3cret"
    async with LocalTriton(repo_dir, tmp_path, models=["gan"], extra_args=[lock]) as locked:
        with pytest.raises(DeployError, match="loading gan failed"):
            await TritonFleet([locked.grpc_url]).load("gan")
        headers = repository_headers("atelier-key=s3cret")
        await TritonFleet([locked.grpc_url], headers=headers).load("gan")


async def test_publish_loads_on_every_triton(
    gan_triton: LocalTriton, repository: ModelRepository, repo_dir: Path, tmp_path: Path
) -> None:
    """Two Tritons over one repository: both serve the new version, then both roll back."""
    async with LocalTriton(repo_dir, tmp_path / "second", models=["gan"]) as second:
        urls = [gan_triton.grpc_url, second.grpc_url]
        before = [await served(url) for url in urls]
        assert before[0][1] == before[1][1]
        fleet = TritonFleet(urls)
        result = await publish(repository, fleet, "gan", nudged_v2(tmp_path / "c", 4), FAST)
        expected = local(repo_dir / "gan" / str(result.version))
        for url in urls:
            images, version = await served(url)
            assert version == str(result.version)
            np.testing.assert_array_equal(images, expected)
        await rollback(repository, fleet, "gan")
        for url, (images_before, version_before) in zip(urls, before, strict=True):
            images, version = await served(url)
            assert version == version_before
            np.testing.assert_array_equal(images, images_before)


async def test_a_version_a_triton_refuses_is_removed_and_the_old_one_keeps_serving(
    gan_triton: LocalTriton, repository: ModelRepository, repo_dir: Path, tmp_path: Path
) -> None:
    """A valid candidate, but the second Triton's repository API refuses the load (it is
    locked and the fleet has no key): the new folder goes and every answer stays v-live."""
    lock = "--grpc-restricted-protocol=model-repository:atelier-key=s3cret"
    before_images, before = await served(gan_triton.grpc_url)
    before_folders = folders(repo_dir)
    async with LocalTriton(
        repo_dir, tmp_path / "locked", models=["gan"], extra_args=[lock]
    ) as locked:
        fleet = TritonFleet([gan_triton.grpc_url, locked.grpc_url])
        with pytest.raises(DeployError, match="loading gan failed"):
            await publish(repository, fleet, "gan", nudged_v2(tmp_path / "c", 5), FAST)
        assert folders(repo_dir) == before_folders
        for url in (gan_triton.grpc_url, locked.grpc_url):
            images, version = await served(url)
            assert version == before
            np.testing.assert_array_equal(images, before_images)

"""`atelier deploy publish MODEL SOURCE`: validate → write the version → load → smoke → keep K.

Runs as a process of its own (it imports torch); `/admin` starts and watches it.

1. Stage: export SOURCE (a training checkpoint, or an exported version folder) into a
   hidden folder beside the versions, and validate it there (deploy/validation.py).
   Triton never sees a folder that did not pass.
2. Write: rename the folder to `<N+1>/` (atomic on one file system) after adding a
   `publish` record (when, the command, the source, every measurement, the git commit) to
   its metadata, which already holds the training command, data hash and metrics.
3. Load: ask every configured Triton to load the model; the old version serves until the
   new one is ready, so no request is lost. Wait until `<N+1>` is ready everywhere and run
   a smoke inference against it and against unversioned traffic.
4. Keep the newest K versions.

If loading or the smoke test fails, the folder is removed and the previous version is
loaded again. The publish lock keeps publishes and rollbacks of one model in turn.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import tritonclient.grpc.aio as grpcclient
from tritonclient.utils import InferenceServerException

from deploy.repository import METADATA_FILE, DeployError, ModelRepository, TritonFleet
from deploy.validation import (
    Profile,
    Progress,
    ValidationOptions,
    profile_for,
    served_autocast,
    validate,
)
from training.export import MODEL_FILE, git_commit, run_module


@dataclass
class PublishResult:
    model: str
    version: int
    previous: int | None
    seconds: dict[str, float] = field(default_factory=dict)  # per phase
    pruned: list[int] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)


async def publish(
    repository: ModelRepository,
    fleet: TritonFleet,
    model: str,
    source: Path,
    options: ValidationOptions,
    *,
    keep: int = 5,
    command: str = "",
    progress: Progress = print,
) -> PublishResult:
    """Publish `source` as the next version of `model` on every Triton, or raise DeployError."""
    profile = profile_for(model)
    options = replace(options, autocast=served_autocast(repository, model))
    seconds: dict[str, float] = {}
    with repository.lock(model):
        live = repository.live(model)
        started = time.perf_counter()
        staging = repository.staging_dir(model)
        try:
            progress(f"staging {source}")
            await asyncio.to_thread(profile.stage, source, staging, options.settings)
            report = await asyncio.to_thread(validate, profile, staging, live, options, progress)
            add_publish_record(staging, report, source, command, live.number if live else None)
            number = repository.install(model, staging)
        finally:
            if staging.exists():
                shutil.rmtree(staging)
        seconds["validate"] = time.perf_counter() - started
        progress(f"wrote {model}/{number}/; loading it on {len(fleet.urls)} Triton(s)")

        started = time.perf_counter()
        try:
            await fleet.load(model)
            await fleet.wait_ready(model, number)
            seconds["load_to_ready"] = time.perf_counter() - started
            await smoke(fleet, profile, model, number, repository, options.autocast)
        except DeployError as error:
            repository.remove(model, number)
            progress(f"refused: {error}; removing {model}/{number}/ and reloading the previous")
            await reload_previous(fleet, model, progress)
            raise
        seconds["load_to_serving"] = time.perf_counter() - started
        progress(f"ok   serving {model} v{number} (was v{live.number if live else '-'})")
        pruned = repository.prune(model, keep)
        if pruned:
            progress(f"kept the newest {keep} versions; removed {pruned}")
    return PublishResult(model, number, live.number if live else None, seconds, pruned, report)


async def reload_previous(fleet: TritonFleet, model: str, progress: Progress) -> None:
    """Load the model again after a refused version's folder is gone (best effort: the
    refusal is what gets reported)."""
    try:
        await fleet.load(model)
    except DeployError as error:
        progress(f"reloading the previous version failed too: {error}")


def add_publish_record(
    staging: Path, report: dict, source: Path, command: str, previous: int | None
) -> None:
    """Add `publish` (time, command, source, measurements, commit) to the staged metadata."""
    path = staging / METADATA_FILE
    metadata = json.loads(path.read_text())
    metadata["publish"] = {
        "published_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": command,
        "source": str(source),
        "previous_version": previous,
        "git_commit": git_commit(),
        "validation": report,
    }
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    temporary.replace(path)


async def smoke(
    fleet: TritonFleet,
    profile: Profile,
    model: str,
    number: int,
    repository: ModelRepository,
    autocast: torch.dtype | None,
) -> None:
    """On every Triton: version `number` answers example inputs as the file does locally
    (in the served precision, `autocast`), and unversioned requests now reach it."""
    contract = profile.contract
    version_dir = repository.version(model, number).path
    inputs = profile.example_inputs(json.loads((version_dir / METADATA_FILE).read_text()))
    local_model = torch.jit.load(str(version_dir / MODEL_FILE))
    expected = run_module(local_model.eval(), contract, inputs, autocast)
    for url in fleet.urls:
        for version in (str(number), ""):
            got, served = await infer(url, model, contract, inputs, version)
            if served != str(number):
                raise DeployError(f"{url}: unversioned requests reach v{served}, not v{number}")
            for spec in contract.outputs:
                spec.check(got[spec.name])
                difference = np.abs(got[spec.name].astype(np.float64) - expected[spec.name])
                if difference.mean() > 1.0:  # exact on CPU; a GPU may round differently
                    raise DeployError(f"{url}: v{number} answers differently from its file")


async def infer(
    url: str, model: str, contract: Any, inputs: dict[str, np.ndarray], version: str
) -> tuple[dict[str, np.ndarray], str]:
    """One inference on one Triton: (outputs by name, the version that answered)."""
    client = grpcclient.InferenceServerClient(url)
    try:
        request = []
        for spec in contract.inputs:
            tensor = grpcclient.InferInput(spec.name, list(inputs[spec.name].shape), spec.dtype)
            tensor.set_data_from_numpy(inputs[spec.name])
            request.append(tensor)
        result = await client.infer(model, request, model_version=version, client_timeout=60)
    except InferenceServerException as error:
        raise DeployError(f"{url}: smoke inference failed: {error.message()}") from error
    finally:
        await client.close()
    outputs = {spec.name: result.as_numpy(spec.name) for spec in contract.outputs}
    return outputs, result.get_response().model_version

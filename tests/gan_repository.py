"""Fixtures: a temporary copy of the model repository holding only `gan` (versions 1 and 2),
and a tritonserver of its own over it, so deploy tests never write into model_repository/.
Import both names into a test module (each module gets its own copy and server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
import tritonclient.grpc.aio as grpcclient

from deploy.contracts import latent_for_seed
from deploy.triton import LocalTriton
from tests.helpers import copy_model

SEEDS = [3, 14, 15]


@pytest.fixture(scope="module")
def repo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of model_repository/ with only gan v1 and v2."""
    return copy_model("gan", tmp_path_factory.mktemp("repository"), versions=("1", "2"))


@pytest_asyncio.fixture(scope="module")
async def gan_triton(
    repo_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalTriton]:
    """A tritonserver serving the temporary copy."""
    server = LocalTriton(repo_dir, tmp_path_factory.mktemp("triton"), models=["gan"])
    await server.start()
    yield server
    await server.stop()


async def served(url: str, seeds: list[int] = SEEDS, version: str = "") -> tuple[np.ndarray, str]:
    """Images for `seeds` from Triton, and the version that answered."""
    client = grpcclient.InferenceServerClient(url)
    try:
        return await infer_once(client, seeds, version)
    finally:
        await client.close()


async def infer_once(client, seeds: list[int], version: str = "") -> tuple[np.ndarray, str]:
    z = np.stack([latent_for_seed(s) for s in seeds])
    t = np.ones((len(seeds), 1), np.float32)
    inputs = [grpcclient.InferInput("z", list(z.shape), "FP32")]
    inputs.append(grpcclient.InferInput("truncation", list(t.shape), "FP32"))
    inputs[0].set_data_from_numpy(z)
    inputs[1].set_data_from_numpy(t)
    result = await client.infer("gan", inputs, model_version=version, client_timeout=60)
    return result.as_numpy("image"), result.get_response().model_version

"""A real tritonserver: the shared runner, batching, per-request errors, the client's errors."""

import asyncio

import numpy as np
import pytest
import torch
import tritonclient.grpc.aio as grpcclient
from tritonclient.utils import InferenceServerException

from bot.inference import InferenceClient, InferenceError
from bot.pipelines.imagine import imagine
from deploy import triton as triton_module
from deploy.backend.model import autocast_dtype, precision_name
from deploy.contracts import latent_for_seed
from deploy.repository import ModelRepository
from deploy.triton import LocalTriton, TritonPorts
from deploy.validation import served_autocast
from tests.helpers import GAN_VERSION, MODEL_REPOSITORY, local_images


@pytest.fixture
async def client(triton: LocalTriton):
    client = InferenceClient(triton.grpc_url, timeout_s=30)
    await client.open()
    yield client
    await client.close()


def raw_inputs(seeds: list[int], truncation: float) -> list[grpcclient.InferInput]:
    z = np.stack([latent_for_seed(s) for s in seeds])
    t = np.full((len(seeds), 1), truncation, dtype=np.float32)
    inputs = [grpcclient.InferInput("z", list(z.shape), "FP32")]
    inputs.append(grpcclient.InferInput("truncation", list(t.shape), "FP32"))
    inputs[0].set_data_from_numpy(z)
    inputs[1].set_data_from_numpy(t)
    return inputs


async def test_served_equals_local_torchscript(client: InferenceClient) -> None:
    images = await imagine(client, [7, 8, 9], truncation=0.8)
    np.testing.assert_array_equal(
        np.stack([i.pixels for i in images]), local_images([7, 8, 9], 0.8)
    )
    assert {i.model_version for i in images} == {GAN_VERSION}


async def test_concurrent_requests_batch_and_match(client: InferenceClient) -> None:
    """Requests that Triton batches together give the same bytes as requests served alone."""
    seeds = list(range(100, 124))
    results = await asyncio.gather(*(imagine(client, [s]) for s in seeds))
    together = np.stack([r[0].pixels for r in results])
    np.testing.assert_array_equal(together, local_images(seeds))


async def test_bad_request_fails_alone(triton: LocalTriton) -> None:
    """One request the model rejects fails; the requests batched with it still succeed."""
    raw = grpcclient.InferenceServerClient(triton.grpc_url)
    try:
        calls = [raw.infer("gan", raw_inputs([s], 1.0)) for s in range(5)]
        calls.insert(2, raw.infer("gan", raw_inputs([99], 5.0)))
        results = await asyncio.gather(*calls, return_exceptions=True)
    finally:
        await raw.close()
    failed = [r for r in results if isinstance(r, Exception)]
    assert len(failed) == 1 and isinstance(failed[0], InferenceServerException)
    assert "truncation must be between 0 and 2" in failed[0].message()
    assert isinstance(results[2], Exception)


async def test_client_checks_the_contract_before_sending(client: InferenceClient) -> None:
    z = np.zeros((1, 128), np.float32)
    with pytest.raises(InferenceError, match="truncation: values above 2"):
        await client.infer("gan", {"z": z, "truncation": np.full((1, 1), 3, np.float32)})
    with pytest.raises(InferenceError, match="shape"):
        await client.infer("gan", {"z": z[:, :5], "truncation": np.ones((1, 1), np.float32)})


async def test_client_explains_a_missing_version(client: InferenceClient) -> None:
    z = np.zeros((1, 128), np.float32)
    with pytest.raises(InferenceError, match="isn't loaded right now"):
        await client.infer("gan", {"z": z, "truncation": np.ones((1, 1), np.float32)}, version="99")


async def test_client_status_lists_loaded_versions(client: InferenceClient) -> None:
    status = await client.status()
    assert status.live
    ready = {(m.name, m.version) for m in status.models if m.state == "READY"}
    assert ("gan", GAN_VERSION) in ready
    assert {name for name, _ in ready} == {"gan", "music", "style", "style_arbitrary"}


async def test_client_explains_a_server_that_is_down() -> None:
    client = InferenceClient("127.0.0.1:1", timeout_s=5)
    await client.open()
    try:
        with pytest.raises(InferenceError, match="busy or down"):
            await imagine(client, [1])
        assert not (await client.status()).live
    finally:
        await client.close()


async def test_client_explains_a_slow_backend(triton: LocalTriton) -> None:
    """A call over its time limit becomes a clear message, not a hang or a traceback."""
    client = InferenceClient(triton.grpc_url, timeout_s=0.001)
    await client.open()
    try:
        with pytest.raises(InferenceError, match="took longer than 0.001 s"):
            await imagine(client, list(range(16)))
    finally:
        await client.close()


def test_autocast_only_where_the_device_computes_bfloat16(monkeypatch) -> None:
    cpu = torch.device("cpu")
    assert autocast_dtype("", cpu) is None
    with pytest.raises(ValueError, match="bfloat16 or empty"):
        autocast_dtype("float16", cpu)
    native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert autocast_dtype("bfloat16", cpu) == (torch.bfloat16 if native else None)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    assert autocast_dtype("bfloat16", cpu) is None


def test_triton_log_says_each_models_precision(triton: LocalTriton) -> None:
    """The runner reads each config's `autocast`; the log says what each model runs in."""
    log = triton.log_path.read_text()
    repository = ModelRepository(MODEL_REPOSITORY)
    for model in repository.models():
        precision = precision_name(served_autocast(repository, model))
        assert f'"{model}: runs in {precision}"' in log
    assert repository.parameters("style")["autocast"] == "bfloat16"


class LowestFreePort:
    """A stand-in for `socket.socket` whose kernel, like a busy one can, binds port 0 to the
    lowest port not bound right now: a port probed and closed is handed out again."""

    bound: set[int] = set()

    def __enter__(self) -> "LowestFreePort":
        return self

    def __exit__(self, *exc: object) -> None:
        LowestFreePort.bound.discard(self.port)

    def bind(self, address: tuple[str, int]) -> None:
        self.port = min(set(range(40000, 40010)) - LowestFreePort.bound)
        LowestFreePort.bound.add(self.port)

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)


def test_free_ports_are_all_different(monkeypatch) -> None:
    """HTTP and gRPC once got the same port and Triton refused to start (seen in CI)."""
    monkeypatch.setattr(triton_module.socket, "socket", LowestFreePort)
    ports = TritonPorts()
    ports.fill_free()
    assert len({ports.http, ports.grpc, ports.metrics}) == 3
    assert LowestFreePort.bound == set()  # every probe was closed

"""The one way to talk to Triton: `InferenceClient.infer(model, inputs, version)`.

It checks inputs against the model's contract (deploy/contracts.py), puts a timeout on
every call and turns Triton's errors into `InferenceError`s whose message a user
understands. The slash commands and the CLI both use it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import tritonclient.grpc.aio as grpcclient
from tritonclient.utils import InferenceServerException

from bot.errors import UserFacingError
from deploy.contracts import CONTRACTS

SERVER_DOWN = "The model server is busy or down. Try again in a minute."
MAX_MESSAGE = 2**31 - 1
CHANNEL_ARGS = [
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    # Reconnect quickly once a restarted server is back (gRPC's default backoff reaches 120 s).
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


class InferenceError(UserFacingError):
    """A model call failed; the message is for the user, `detail` for the log."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class InferenceResult:
    outputs: dict[str, np.ndarray]
    model: str
    model_version: str
    seconds: float  # round trip as the bot saw it


@dataclass(frozen=True)
class ModelStatus:
    name: str
    version: str
    state: str
    reason: str = ""


@dataclass(frozen=True)
class ServerStatus:
    live: bool
    models: list[ModelStatus]
    error: str = ""


class InferenceClient:
    """An asyncio gRPC client for one Triton server. Open it inside the running loop."""

    def __init__(self, url: str, *, timeout_s: float = 30.0, status_timeout_s: float = 2.0):
        self.url = url
        self.timeout_s = timeout_s
        self.status_timeout_s = status_timeout_s
        self._client: grpcclient.InferenceServerClient | None = None

    async def open(self) -> None:
        self._client = grpcclient.InferenceServerClient(self.url, channel_args=CHANNEL_ARGS)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    @property
    def client(self) -> grpcclient.InferenceServerClient:
        if self._client is None:
            raise RuntimeError("InferenceClient.open() was not called")
        return self._client

    async def infer(
        self, model: str, inputs: dict[str, np.ndarray], *, version: str = ""
    ) -> InferenceResult:
        """Run `model` (a given version, or Triton's latest) on contract-shaped inputs."""
        contract = CONTRACTS[model]
        request = []
        for spec in contract.inputs:
            array = np.ascontiguousarray(inputs[spec.name], dtype=spec.numpy_dtype)
            try:
                spec.check(array)
            except ValueError as error:
                raise InferenceError(f"That input doesn't fit the model: {error}.") from error
            tensor = grpcclient.InferInput(spec.name, list(array.shape), spec.dtype)
            tensor.set_data_from_numpy(array)
            request.append(tensor)
        outputs = [grpcclient.InferRequestedOutput(spec.name) for spec in contract.outputs]
        started = time.perf_counter()
        try:
            result = await self.client.infer(
                model,
                request,
                model_version=version,
                outputs=outputs,
                client_timeout=self.timeout_s,
            )
        except InferenceServerException as error:
            raise self._explain(model, error) from error
        seconds = time.perf_counter() - started
        arrays = {spec.name: result.as_numpy(spec.name) for spec in contract.outputs}
        return InferenceResult(arrays, model, result.get_response().model_version, seconds)

    def _explain(self, model: str, error: InferenceServerException) -> InferenceError:
        """Map a Triton error to a message for the user."""
        status, text = str(error.status() or ""), error.message() or ""
        detail = f"{status}: {text}"
        if "DEADLINE_EXCEEDED" in status:
            return InferenceError(
                f"The model took longer than {self.timeout_s:g} s. Try again in a minute.", detail
            )
        if "not found" in text or "not ready" in text or "no available versions" in text:
            return InferenceError(
                f"The `{model}` model isn't loaded right now. An admin can check /status.", detail
            )
        if "UNAVAILABLE" in status or "RESOURCE_EXHAUSTED" in status:
            return InferenceError(SERVER_DOWN, detail)
        if "INVALID_ARGUMENT" in status:
            return InferenceError(f"The model refused these options: {text}", detail)
        return InferenceError(f"The model failed on this request: {text[:300]}", detail)

    async def status(self) -> ServerStatus:
        """Liveness and each model's loaded versions, with a short timeout."""
        try:
            live = await self.client.is_server_live(client_timeout=self.status_timeout_s)
            index = await self.client.get_model_repository_index(
                as_json=True, client_timeout=self.status_timeout_s
            )
        except InferenceServerException as error:
            return ServerStatus(False, [], error.message() or str(error.status()))
        models = [
            ModelStatus(m["name"], m.get("version", ""), m.get("state", ""), m.get("reason", ""))
            for m in index.get("models", [])
        ]
        return ServerStatus(live, models)

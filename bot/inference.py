"""The one way to talk to Triton: `InferenceClient.infer(model, inputs, version)`.

It checks inputs against the model's contract (deploy/contracts.py), puts a timeout on
every call and turns Triton's errors into `InferenceError`s whose message a user
understands. The slash commands and the CLI both use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import tritonclient.grpc.aio as grpcclient
from tritonclient.utils import InferenceServerException

from bot.errors import UserFacingError
from deploy.contracts import CONTRACTS

if TYPE_CHECKING:
    from bot.metrics import Metrics

T = TypeVar("T")
Client = grpcclient.InferenceServerClient
SERVER_DOWN = "The model server is busy or down. Try again in a minute."
MAX_MESSAGE = 2**31 - 1
CHANNEL_ARGS = [
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    # Each channel its own connection: a shared one keeps a dead server's reconnect backoff.
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.max_reconnect_backoff_ms", 2000),
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

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 30.0,
        status_timeout_s: float = 2.0,
        metrics: Metrics | None = None,
    ):
        self.url = url
        self.metrics = metrics  # every infer() is counted there when given
        self.timeout_s = timeout_s
        self.status_timeout_s = status_timeout_s
        self._client: Client | None = None
        self._retired: list[Client] = []
        self._reconnecting = asyncio.Lock()

    async def open(self) -> None:
        self._client = Client(self.url, channel_args=CHANNEL_ARGS)

    async def close(self) -> None:
        for client in [*self._retired, *([self._client] if self._client else [])]:
            await client.close()
        self._client, self._retired = None, []

    @property
    def client(self) -> Client:
        if self._client is None:
            raise RuntimeError("InferenceClient.open() was not called")
        return self._client

    async def _call(self, call: Callable[[Client], Awaitable[T]]) -> T:
        """Run `call`; after a lost connection, retry once on a fresh channel.

        A gRPC channel that lost its server backs off before reconnecting, so the first
        requests after a Triton restart would fail; a new channel connects at once.
        """
        client = self.client
        try:
            return await call(client)
        except InferenceServerException as error:
            if not _connection_lost(error):
                raise
        async with self._reconnecting:
            if self._client is client:  # the first caller to notice replaces the channel
                self._retired.append(client)  # closed at shutdown: other calls may use it
                self._client = Client(self.url, channel_args=CHANNEL_ARGS)
        return await call(self.client)

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
            with self._in_flight(model):
                result = await self._call(
                    lambda client: client.infer(
                        model,
                        request,
                        model_version=version,
                        outputs=outputs,
                        client_timeout=self.timeout_s,
                    )
                )
        except InferenceServerException as error:
            self._record(model, version or "latest", _status_name(error), started)
            raise self._explain(model, error) from error
        served = result.get_response().model_version
        seconds = self._record(model, served, "ok", started)
        arrays = {spec.name: result.as_numpy(spec.name) for spec in contract.outputs}
        return InferenceResult(arrays, model, served, seconds)

    def _in_flight(self, model: str) -> contextlib.AbstractContextManager[None]:
        """Counts the call in flight, when there are metrics."""
        return self.metrics.inference_in_flight(model) if self.metrics else contextlib.nullcontext()

    def _record(self, model: str, version: str, outcome: str, started: float) -> float:
        """Record a call that began at `started` (perf_counter); returns its seconds."""
        seconds = time.perf_counter() - started
        if self.metrics:
            self.metrics.inference_done(model, version, outcome, seconds)
        return seconds

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

    async def model_parameters(self, model: str) -> dict[str, str]:
        """The `parameters` of a model's config (e.g. the style names), from Triton."""
        try:
            config = await self._call(
                lambda client: client.get_model_config(
                    model, as_json=True, client_timeout=self.status_timeout_s
                )
            )
        except InferenceServerException as error:
            raise self._explain(model, error) from error
        parameters = config.get("config", {}).get("parameters", {})
        return {key: value.get("string_value", "") for key, value in parameters.items()}

    async def status(self) -> ServerStatus:
        """Liveness and each model's loaded versions, with a short timeout."""
        timeout = self.status_timeout_s
        try:
            live = await self._call(lambda client: client.is_server_live(client_timeout=timeout))
            index = await self.client.get_model_repository_index(
                as_json=True, client_timeout=timeout
            )
        except InferenceServerException as error:
            return ServerStatus(False, [], error.message() or str(error.status()))
        models = [
            ModelStatus(m["name"], m.get("version", ""), m.get("state", ""), m.get("reason", ""))
            for m in index.get("models", [])
        ]
        return ServerStatus(live, models)


def _status_name(error: InferenceServerException) -> str:
    """The gRPC status of a failed call, e.g. "unavailable" (few values: a metric label)."""
    status = str(error.status() or "error")
    return status.removeprefix("StatusCode.").lower()


def _connection_lost(error: InferenceServerException) -> bool:
    """UNAVAILABLE because the connection failed (not because the server's queue is full)."""
    return "UNAVAILABLE" in str(error.status()) and "queue" not in (error.message() or "")

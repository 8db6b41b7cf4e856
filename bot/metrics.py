"""The bot's Prometheus metrics (one registry per bot) and the aiohttp server of `/metrics`.

Commands are counted where every one ends (the tree's completion event, `report_failure`);
model calls where every one goes (`InferenceClient.infer`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import discord
from aiohttp import web
from discord import app_commands
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from bot.errors import UserFacingError
from bot.inference import InferenceError

log = logging.getLogger(__name__)

OK, USER_ERROR, FAILURE = "ok", "user_error", "failure"
COMMAND_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
INFERENCE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_STARTED = "metrics_started"  # interaction.extras key: (command name, perf_counter at start)


def cause_of(error: Exception) -> Exception:
    """The exception a command raised, unwrapped from discord.py's CommandInvokeError."""
    return error.original if isinstance(error, app_commands.CommandInvokeError) else error


def outcome_of(error: Exception | None) -> str:
    """ok; user_error (bad option, permissions, a refusal explained to the user); failure."""
    if error is None:
        return OK
    cause = cause_of(error)
    if isinstance(cause, InferenceError):  # the model server's fault, though explained to users
        return FAILURE
    if isinstance(cause, UserFacingError | app_commands.TransformerError):
        return USER_ERROR
    if isinstance(cause, app_commands.CheckFailure):
        return USER_ERROR
    return FAILURE


def command_name(interaction: discord.Interaction) -> str:
    """A slash command's qualified name ("challenge submit"), or a button's feature and action
    ("button imagine v", from its custom_id `atelier:imagine:v:<job>:<i>`): few label values."""
    if interaction.type is discord.InteractionType.component:
        parts = str((interaction.data or {}).get("custom_id", "")).split(":")
        return " ".join(["button", *parts[1:3]]) if parts[0] == "atelier" else "button"
    return interaction.command.qualified_name if interaction.command else "unknown"


class Metrics:
    """Every metric of one bot, in its own registry (tests run several bots in one process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        kw = {"registry": self.registry, "namespace": "atelier"}
        self.commands = Counter(
            "commands", "Commands and button presses by outcome", ["command", "outcome"], **kw
        )
        self.command_seconds = Histogram(
            "command_duration_seconds",
            "Time from receiving a command to its end (answer or error)",
            ["command", "outcome"],
            buckets=COMMAND_BUCKETS,
            **kw,
        )
        self.command_errors = Counter(
            "command_errors",
            "Commands that ended in an error, by exception",
            ["command", "error"],
            **kw,
        )
        self.commands_in_flight = Gauge(
            "commands_in_flight", "Commands received and not yet ended", ["command"], **kw
        )
        self.inferences = Counter(
            "inference_requests",
            "Triton calls by model, served version and outcome (ok or the gRPC status)",
            ["model", "version", "outcome"],
            **kw,
        )
        self.inference_seconds = Histogram(
            "inference_duration_seconds",
            "Round trip of a Triton call as the bot sees it",
            ["model", "version"],
            buckets=INFERENCE_BUCKETS,
            **kw,
        )
        self.inferences_in_flight = Gauge(
            "inference_in_flight", "Triton calls sent and not yet answered", ["model"], **kw
        )

    def command_started(self, interaction: discord.Interaction) -> None:
        """Count `interaction` in flight and remember when it started."""
        name = command_name(interaction)
        interaction.extras[_STARTED] = (name, time.perf_counter())
        self.commands_in_flight.labels(name).inc()

    def command_finished(
        self, interaction: discord.Interaction, error: Exception | None = None
    ) -> str | None:
        """Record the end of `interaction` (once); returns its outcome, None if not started."""
        started = interaction.extras.pop(_STARTED, None)
        if started is None:
            return None
        name, at = started
        outcome = outcome_of(error)
        self.commands_in_flight.labels(name).dec()
        self.commands.labels(name, outcome).inc()
        self.command_seconds.labels(name, outcome).observe(time.perf_counter() - at)
        if error is not None:
            self.command_errors.labels(name, type(cause_of(error)).__name__).inc()
        return outcome

    @contextmanager
    def inference_in_flight(self, model: str) -> Iterator[None]:
        """Count a Triton call of `model` in flight for the duration of the block."""
        gauge = self.inferences_in_flight.labels(model)
        gauge.inc()
        try:
            yield
        finally:
            gauge.dec()

    def inference_done(self, model: str, version: str, outcome: str, seconds: float) -> None:
        """Record one Triton call (`version` served, or requested when it failed)."""
        self.inferences.labels(model, version, outcome).inc()
        self.inference_seconds.labels(model, version).observe(seconds)

    def render(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)


class MetricsServer:
    """Serves `GET /metrics` on host:port; a port already taken is logged, never fatal."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        self.metrics, self.host, self.port = metrics, host, port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._serve)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as error:
            log.warning("metrics: cannot listen on %s:%s (%s)", self.host, self.port, error)
            await runner.cleanup()
            return
        self._runner = runner
        log.info("metrics: %s", self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _serve(self, request: web.Request) -> web.Response:
        body = self.metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

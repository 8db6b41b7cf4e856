"""The bot's Prometheus metrics over HTTP, and the Grafana dashboard's metric names checked
against the bot's registry and a real tritonserver's /metrics."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import pytest_asyncio
from discord import app_commands
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from bot.app import AtelierBot
from bot.errors import UserFacingError
from bot.inference import InferenceClient, InferenceError
from bot.metrics import FAILURE, OK, USER_ERROR, Metrics, MetricsServer, outcome_of
from bot.stack import running_bot
from bot.standin import DiscordStandIn
from deploy.contracts import latent_for_seed
from deploy.triton import LocalTriton, free_port
from tests.helpers import GAN_VERSION, ROOT, make_settings

DASHBOARD = ROOT / "deploy" / "grafana" / "atelier-dashboard.json"
TRITON_METRICS = {
    "nv_inference_request_success",
    "nv_inference_request_failure",
    "nv_inference_count",
    "nv_inference_exec_count",
    "nv_inference_request_duration_us",
    "nv_inference_queue_duration_us",
    "nv_inference_compute_infer_duration_us",
}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest_asyncio.fixture
async def metered_bot(
    tmp_path: Path, triton: LocalTriton, standin: DiscordStandIn
) -> AsyncIterator[AtelierBot]:
    """A bot of its own (fresh counters) serving /metrics on a free port."""
    settings = make_settings(tmp_path, triton_url=triton.grpc_url, metrics_port=free_port())
    async with running_bot(settings, standin.token, guild_ready_timeout=0.1) as bot:
        yield bot


async def get_text(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200, url
        assert response.content_type == "text/plain"
        return await response.text()


async def scrape(bot: AtelierBot) -> Samples:
    """Every sample the bot serves on /metrics, keyed by (name, labels)."""
    text = await get_text(bot.metrics_server.url)
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def run_command(
    bot: AtelierBot, standin: DiscordStandIn, options: dict, **invoke: bool
) -> str:
    """Invoke /imagine, wait for its answer and return the outcome the bot counted."""
    done = asyncio.ensure_future(bot.wait_for("command_done", timeout=60))
    handle = await standin.invoke("imagine", options, **invoke)
    _, outcome = await done  # counted after the answer was sent
    await handle.wait_for(lambda message: not message.deferred, timeout=10)
    return outcome


async def test_imagine_and_a_user_error_are_counted_on_metrics(
    metered_bot: AtelierBot, standin: DiscordStandIn
) -> None:
    assert await run_command(metered_bot, standin, {"seed": 11}) == OK
    samples = await scrape(metered_bot)
    assert sample(samples, "atelier_commands_total", command="imagine", outcome=OK) == 1
    ok_count = sample(
        samples, "atelier_command_duration_seconds_count", command="imagine", outcome=OK
    )
    assert ok_count == 1
    gan = {"model": "gan", "version": GAN_VERSION}
    assert sample(samples, "atelier_inference_requests_total", **gan, outcome="ok") == 1
    assert sample(samples, "atelier_inference_duration_seconds_count", **gan) == 1
    assert sample(samples, "atelier_commands_in_flight", command="imagine") == 0
    assert sample(samples, "atelier_inference_in_flight", model="gan") == 0
    assert sample(samples, "process_resident_memory_bytes") > 0

    outcome = await run_command(metered_bot, standin, {"seed": -1}, enforce_limits=False)
    assert outcome == USER_ERROR
    samples = await scrape(metered_bot)
    assert sample(samples, "atelier_commands_total", command="imagine", outcome=OK) == 1
    assert sample(samples, "atelier_commands_total", command="imagine", outcome=USER_ERROR) == 1
    errors = {
        dict(labels)["error"]: value
        for (name, labels), value in samples.items()
        if name == "atelier_command_errors_total" and dict(labels)["command"] == "imagine"
    }
    assert errors == {"UserFacingError": 1}  # the cog's range check: "-1 is outside that"
    assert sample(samples, "atelier_inference_requests_total", **gan, outcome="ok") == 1


async def test_a_failed_model_call_is_counted_with_its_status(triton: LocalTriton) -> None:
    metrics = Metrics()
    client = InferenceClient(triton.grpc_url, metrics=metrics)
    await client.open()
    inputs = {"z": latent_for_seed(1)[None], "truncation": np.ones((1, 1), np.float32)}
    try:
        with pytest.raises(InferenceError):
            await client.infer("gan", inputs, version="999")
    finally:
        await client.close()
    failed = [
        (s.labels, s.value)
        for family in metrics.registry.collect()
        for s in family.samples
        if s.name == "atelier_inference_requests_total"
    ]
    assert len(failed) == 1
    labels, value = failed[0]
    assert value == 1 and labels["model"] == "gan" and labels["version"] == "999"
    assert labels["outcome"] not in ("ok", "") and labels["outcome"].islower()
    in_flight = metrics.registry.get_sample_value("atelier_inference_in_flight", {"model": "gan"})
    assert in_flight == 0


def test_outcomes() -> None:
    assert outcome_of(None) == OK
    assert outcome_of(UserFacingError("no such style")) == USER_ERROR
    assert outcome_of(app_commands.CheckFailure()) == USER_ERROR
    assert outcome_of(InferenceError("The model server is busy or down.")) == FAILURE
    assert outcome_of(RuntimeError("bug")) == FAILURE


async def test_a_taken_port_is_logged_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="bot.metrics")
    first = MetricsServer(Metrics(), "127.0.0.1", free_port())
    await first.start()
    second = MetricsServer(Metrics(), "127.0.0.1", first.port)
    try:
        await second.start()
        assert "cannot listen" in caplog.text
        assert "atelier_commands" in await get_text(first.url)
    finally:
        await second.stop()
        await first.stop()


# The dashboard


def dashboard_queries(dashboard: dict) -> list[str]:
    """Every PromQL expression of the panels (rows' nested ones too) and the variables."""
    panels = [*dashboard["panels"]]
    panels += [inner for panel in dashboard["panels"] for inner in panel.get("panels", [])]
    queries = [target["expr"] for panel in panels for target in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            queries.append(query["query"] if isinstance(query, dict) else query)
    return queries


PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and"}
PROMQL_WORDS |= {"or", "unless", "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names in a PromQL expression (label_values(metric, label) included)."""
    names = set(re.findall(r"label_values\(\s*([A-Za-z_:][\w:]*)", expr))
    expr = re.sub(r"label_values\([^)]*\)", " ", expr)
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', " ", expr)  # strings
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", expr)  # label matchers, ranges
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    for match in re.finditer(r"(?<![\w.$])([A-Za-z_:][\w:]*)(\s*\()?", expr):
        if not match.group(2) and match.group(1).lower() not in PROMQL_WORDS:
            names.add(match.group(1))  # a name followed by "(" is a function
    return names


def exported_names(registry: CollectorRegistry) -> set[str]:
    """The sample names a registry can export, whether or not a series exists yet."""
    suffixes = {
        "counter": ["_total", "_created"],
        "histogram": ["_bucket", "_count", "_sum", "_created"],
        "summary": ["", "_count", "_sum", "_created"],
        "info": ["_info"],
    }
    return {
        family.name + suffix
        for family in registry.collect()
        for suffix in suffixes.get(family.type, [""])
    }


def exposition_names(text: str) -> set[str]:
    """Metric names in Prometheus text: the declared (# TYPE) ones and every sample's."""
    declared = set(re.findall(r"^# TYPE (\S+)", text, re.M))
    return declared | set(re.findall(r"^([A-Za-z_:][\w:]*)[{ ]", text, re.M))


def test_metric_names_are_read_from_promql() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, model) (rate(a_bucket{model=~"$m"}'
        "[$__rate_interval]))) / on (model) b_total offset 5m"
    )
    assert metric_names(expr) == {"a_bucket", "b_total"}
    assert metric_names("label_values(nv_x, model)") == {"nv_x"}


async def test_dashboard_names_only_metrics_that_exist(triton: LocalTriton) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 39
    datasources = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert [v["query"] for v in datasources] == ["prometheus"]
    used = {name for query in dashboard_queries(dashboard) for name in metric_names(query)}

    bot_names = exported_names(Metrics().registry)
    triton_names = exposition_names(await get_text(triton.metrics_url))
    assert triton_names >= TRITON_METRICS, "the local Triton serves nv_inference_* metrics"
    unknown = used - bot_names - triton_names
    assert not unknown, f"the dashboard names metrics nobody exports: {sorted(unknown)}"

    assert used >= TRITON_METRICS
    families = {f.name for f in Metrics().registry.collect() if f.name.startswith("atelier_")}
    assert all(any(name.startswith(family) for name in used) for family in families)

"""Model versions on disk and in Triton: list, load, roll back, report. No torch here.

The bot imports this module (for `/admin`), so it uses only the standard library, numpy
and tritonclient. Every model keeps Triton's default version policy (`latest 1`): Triton
serves the highest numbered folder `<model>/<N>/`. So:

- publishing a version is renaming a validated folder to `<N+1>/` and asking Triton to load
  the model again: Triton loads the new version, moves traffic to it when it is ready and
  then unloads the old one, without losing a request (../shared/reference.md);
- rolling back to version V moves every newer version into `<model>/retired/` (Triton
  ignores folders whose names are not numbers) and loads the model again. Retired versions
  can be rolled forward to, and their numbers are never reused.

Several Tritons may serve one repository (a shared volume): every operation asks each URL
in turn. A URL `dns+grpc://NAME:PORT` stands for every address NAME resolves to (a
Kubernetes headless Service: one address per Triton pod), looked up when the operation
starts. All changes to a model's folder happen under a lock file, one at a time.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tritonclient.grpc.aio as grpcclient
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2
from tritonclient.utils import InferenceServerException

RETIRED = "retired"
STAGING_PREFIX = ".staging-"
LOCK_FILE = ".deploy.lock"
METADATA_FILE = "metadata.json"
DEFAULT_KEEP = 5
DNS_SCHEME = "dns+grpc://"


class DeployError(RuntimeError):
    """A deploy operation was refused or failed; the message says why, for people."""


@dataclass(frozen=True)
class Version:
    """One version folder of a model: served candidates are `active`, others `retired`."""

    number: int
    path: Path
    active: bool
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)


class ModelRepository:
    """The version folders of a Triton model repository (torch-free file operations)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def model_dir(self, model: str) -> Path:
        path = self.root / model
        if not (path / "config.pbtxt").is_file():
            raise DeployError(f"{model}: no such model in {self.root}")
        return path

    def models(self) -> list[str]:
        """Every model folder (one with a config.pbtxt), by name."""
        return sorted(p.parent.name for p in self.root.glob("*/config.pbtxt"))

    def parameters(self, model: str) -> dict[str, str]:
        """The `parameters` of a model's config.pbtxt, as the runner reads them."""
        text = (self.model_dir(model) / "config.pbtxt").read_text()
        config = text_format.Parse(text, model_config_pb2.ModelConfig())
        return {key: value.string_value for key, value in config.parameters.items()}

    def versions(self, model: str) -> list[Version]:
        """Active and retired versions, oldest first."""
        folder = self.model_dir(model)
        found = [_version(p, True) for p in folder.iterdir() if p.name.isdigit()]
        retired = folder / RETIRED
        if retired.is_dir():
            found += [_version(p, False) for p in retired.iterdir() if p.name.isdigit()]
        return sorted(found, key=lambda v: v.number)

    def live(self, model: str) -> Version | None:
        """The version Triton serves under `latest 1`: the highest active folder."""
        active = [v for v in self.versions(model) if v.active]
        return active[-1] if active else None

    def version(self, model: str, number: int) -> Version:
        for version in self.versions(model):
            if version.number == number:
                return version
        raise DeployError(f"{model} has no version {number}")

    def staging_dir(self, model: str) -> Path:
        """A fresh folder beside the versions (same file system, so the rename is atomic)."""
        path = self.model_dir(model) / f"{STAGING_PREFIX}{uuid.uuid4().hex[:8]}"
        path.mkdir()
        return path

    def install(self, model: str, staging: Path) -> int:
        """Rename a validated staging folder to `<N+1>/` (N: the highest number ever used)."""
        number = max((v.number for v in self.versions(model)), default=0) + 1
        staging.rename(self.model_dir(model) / str(number))
        return number

    def remove(self, model: str, number: int) -> None:
        """Delete a version folder (a refused or pruned one)."""
        shutil.rmtree(self.version(model, number).path)

    def activate(self, model: str, number: int) -> list[int]:
        """Make `number` the highest active version: retire the newer ones, bring it back
        from retired/ if needed. Returns the numbers moved to retired/."""
        target = self.version(model, number)
        folder = self.model_dir(model)
        moved = []
        for version in self.versions(model):
            if version.active and version.number > number:
                (folder / RETIRED).mkdir(exist_ok=True)
                version.path.rename(folder / RETIRED / str(version.number))
                moved.append(version.number)
        if not target.active:
            target.path.rename(folder / str(number))
        return moved

    def prune(self, model: str, keep: int) -> list[int]:
        """Delete all but the `keep` newest versions (the live one is always kept)."""
        live = self.live(model)
        versions = self.versions(model)
        doomed = [v for v in versions[: max(0, len(versions) - keep)] if v != live]
        for version in doomed:
            shutil.rmtree(version.path)
        return [v.number for v in doomed]

    @contextmanager
    def lock(self, model: str) -> Iterator[None]:
        """Hold the model's deploy lock; DeployError if a publish or rollback holds it.

        Never waits, so the bot's event loop is never blocked behind a long publish."""
        with open(self.model_dir(model) / LOCK_FILE, "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as error:
                raise DeployError(f"another publish or rollback of {model} is running") from error
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _version(path: Path, active: bool) -> Version:
    metadata_path = path / METADATA_FILE
    try:
        metadata = json.loads(metadata_path.read_text()) if metadata_path.exists() else {}
    except (OSError, json.JSONDecodeError):
        metadata = {}
    return Version(int(path.name), path, active, metadata)


@dataclass(frozen=True)
class VersionStats:
    """Triton's inference statistics of one loaded version on one server."""

    version: str
    success: int
    failure: int
    mean_ms: float  # request time from arrival to response, over successful requests
    compute_ms: float  # model execution per batch


@dataclass(frozen=True)
class ServerView:
    """What one Triton reports about a model."""

    url: str
    live: bool
    ready: dict[str, bool]  # version -> ready
    stats: list[VersionStats]
    error: str = ""


class TritonFleet:
    """Every configured Triton (gRPC `host:port` URLs) that serves the repository.

    `configured` keeps the URLs as given; `urls` has each `dns+grpc://` entry replaced by
    the addresses it resolves to now (create a fleet per operation to see new replicas)."""

    def __init__(
        self, urls: list[str], timeout_s: float = 300.0, headers: dict[str, str] | None = None
    ) -> None:
        if not urls:
            raise DeployError("no Triton URL: set TRITON_URL or pass --triton-url")
        self.configured = list(urls)
        self.urls = expand_urls(urls)
        self.timeout_s = timeout_s
        self.headers = headers or {}  # the repository API's key, when it is locked down

    async def load(self, model: str) -> None:
        """Ask each Triton to (re)load `model`; raise DeployError naming the first failure."""
        for url in self.urls:
            async with connect(url) as client:
                try:
                    await client.load_model(
                        model, headers=self.headers, client_timeout=self.timeout_s
                    )
                except InferenceServerException as error:
                    raise DeployError(
                        f"{url}: loading {model} failed: {error.message()}"
                    ) from error

    async def wait_ready(self, model: str, version: int, timeout_s: float = 60.0) -> None:
        """Return once every Triton reports `version` of `model` ready, else DeployError."""

        async def ready_everywhere() -> None:
            for url in self.urls:
                async with connect(url) as client:
                    while not await client.is_model_ready(model, str(version), self.headers):
                        await asyncio.sleep(0.1)  # polling Triton's own readiness endpoint

        try:
            await asyncio.wait_for(ready_everywhere(), timeout_s)
        except TimeoutError as error:
            raise DeployError(f"{model} v{version} not ready within {timeout_s:g} s") from error

    async def views(self, model: str, versions: list[int]) -> list[ServerView]:
        """Readiness of the given versions and the statistics of the loaded ones, per Triton."""
        return list(await asyncio.gather(*(self._view(url, model, versions) for url in self.urls)))

    async def _view(self, url: str, model: str, versions: list[int]) -> ServerView:
        async with connect(url) as client:
            try:
                live = await client.is_server_live(client_timeout=5)
                ready = {
                    str(v): await client.is_model_ready(model, str(v), self.headers, 5)
                    for v in versions
                }
                stats = await client.get_inference_statistics(
                    model, headers=self.headers, as_json=True, client_timeout=5
                )
            except InferenceServerException as error:
                return ServerView(url, False, {}, [], error.message() or str(error.status()))
        return ServerView(url, live, ready, [_stats(s) for s in stats.get("model_stats", [])])


@asynccontextmanager
async def connect(url: str) -> AsyncIterator[grpcclient.InferenceServerClient]:
    """A short-lived gRPC client for one Triton."""
    client = grpcclient.InferenceServerClient(url)
    try:
        yield client
    finally:
        await client.close()


def _stats(entry: dict[str, Any]) -> VersionStats:
    """One `model_stats` entry of Triton's statistics JSON, in counts and milliseconds."""
    inference = entry.get("inference_stats", {})
    success = inference.get("success", {})
    count = int(success.get("count", 0))
    mean_ms = int(success.get("ns", 0)) / count / 1e6 if count else 0.0
    batches = entry.get("batch_stats", [])
    compute = [b.get("compute_infer", {}) for b in batches]
    compute_count = sum(int(c.get("count", 0)) for c in compute)
    compute_ns = sum(int(c.get("ns", 0)) for c in compute)
    return VersionStats(
        version=str(entry.get("version", "")),
        success=count,
        failure=int(inference.get("fail", {}).get("count", 0)),
        mean_ms=mean_ms,
        compute_ms=compute_ns / compute_count / 1e6 if compute_count else 0.0,
    )


@dataclass(frozen=True)
class ModelReport:
    """`atelier deploy status` and `/admin models`: one model's versions and servers."""

    model: str
    versions: list[Version]
    live: int | None
    servers: list[ServerView]

    def lines(self) -> list[str]:
        """Plain text: one line per version, then one per server."""
        out = [f"{self.model}: live v{self.live if self.live is not None else '-'}"]
        for version in reversed(self.versions):
            where = "" if version.active else " (retired)"
            out.append(f"  v{version.number}{where}: {summary(version.metadata)}")
            for server in self.servers:
                ready = server.ready.get(str(version.number))
                stats = next((s for s in server.stats if s.version == str(version.number)), None)
                if ready or stats:
                    out.append(
                        f"    {server.url}: {'ready' if ready else 'not ready'}"
                        + (f", {describe_stats(stats)}" if stats else "")
                    )
        for server in self.servers:
            if not server.live:
                out.append(f"  {server.url}: not answering ({server.error or 'no reply'})")
        return out


def summary(metadata: dict[str, Any]) -> str:
    """A short description of a version from its metadata."""
    parts = []
    published = metadata.get("publish", {})
    checked = published.get("validation", {}).get("quality", {}).get("candidate")
    if checked:  # measured at publish, on the same test as the version it replaced
        parts.append(f"{checked['metric']} {checked['value']} ({checked['images']} images)")
    elif "swd_x1e3" in metadata:  # measured at export
        parts.append(f"SWD×1e3 {metadata['swd_x1e3']}")
    if published.get("published_at"):
        parts.append(f"published {published['published_at']}")
    if metadata.get("steps") is not None:
        parts.append(f"{metadata['steps']} steps")
    if metadata.get("git_commit"):
        parts.append(f"commit {str(metadata['git_commit'])[:8]}")
    return ", ".join(parts) or "no metadata"


def describe_stats(stats: VersionStats) -> str:
    if not stats.success and not stats.failure:
        return "no requests since it was loaded"
    return (
        f"{stats.success} ok / {stats.failure} failed, {stats.mean_ms:.1f} ms per request, "
        f"{stats.compute_ms:.1f} ms per batch"
    )


async def status(repository: ModelRepository, fleet: TritonFleet, model: str) -> ModelReport:
    """Versions on disk, with readiness and statistics from every Triton."""
    versions = repository.versions(model)
    live = repository.live(model)
    servers = await fleet.views(model, [v.number for v in versions])
    return ModelReport(model, versions, live.number if live else None, servers)


async def rollback(
    repository: ModelRepository, fleet: TritonFleet, model: str, version: int | None = None
) -> tuple[int, int]:
    """Serve `version` (default: the active one before the live one) on every Triton.

    Returns (previous live version, version now served). If a Triton cannot load it, the
    previous state is restored and DeployError raised.
    """
    with repository.lock(model):
        current = repository.live(model)
        if current is None:
            raise DeployError(f"{model} has no live version")
        if version is None:
            older = [
                v for v in repository.versions(model) if v.active and v.number < current.number
            ]
            if not older:
                raise DeployError(f"{model} v{current.number} is the only active version")
            version = older[-1].number
        if version == current.number:
            raise DeployError(f"{model} v{version} is already live")
        repository.version(model, version)  # raises if there is no such version
        repository.activate(model, version)
        try:
            await fleet.load(model)
            await fleet.wait_ready(model, version)
        except DeployError:
            repository.activate(model, current.number)
            await fleet.load(model)
            raise
    return current.number, version


def repository_headers(value: str | None) -> dict[str, str]:
    """`key=value` (as in Triton's --grpc-restricted-protocol=model-repository:key=value)
    as the gRPC header that unlocks the repository API; empty when unset. Triton expects
    the key prefixed with `triton-grpc-protocol-` on gRPC."""
    if not value:
        return {}
    key, separator, secret = value.partition("=")
    if not separator or not key.strip():
        raise DeployError("the repository API key must look like key=value")
    return {f"triton-grpc-protocol-{key.strip()}": secret.strip()}


def triton_urls(values: list[str] | None, environment: str | None) -> list[str]:
    """URLs from repeated options, else from a comma-separated environment value."""
    if values:
        return values
    return [url.strip() for url in (environment or "").split(",") if url.strip()]


def expand_urls(urls: list[str]) -> list[str]:
    """Replace each `dns+grpc://NAME:PORT` by `ADDRESS:PORT` for every address of NAME
    (sorted, without duplicates); other URLs are kept as they are, in order."""
    expanded: list[str] = []
    for url in urls:
        found = resolve_all(url) if url.startswith(DNS_SCHEME) else [url]
        expanded += [item for item in found if item not in expanded]
    return expanded


def resolve_all(url: str) -> list[str]:
    """Every A/AAAA address of a `dns+grpc://NAME:PORT` URL, as gRPC `host:port` targets."""
    host, separator, port = url.removeprefix(DNS_SCHEME).rstrip("/").rpartition(":")
    if not separator or not host or not port.isdigit():
        raise DeployError(f"{url}: expected {DNS_SCHEME}NAME:PORT")
    try:
        answers = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise DeployError(f"{url}: {host} does not resolve ({error.strerror})") from error
    addresses = {str(sockaddr[0]) for _, _, _, _, sockaddr in answers}
    if not addresses:
        raise DeployError(f"{url}: {host} has no addresses")
    return [f"[{a}]:{port}" if ":" in a else f"{a}:{port}" for a in sorted(addresses)]

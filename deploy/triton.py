"""The local Triton launcher, used by `atelier up`, the tests and the benchmarks.

It finds the `tritonserver` binary inside the nvidia-pytriton wheel, assembles a backend
folder (the Python backend plus Atelier's shared runner as the `atelier` backend),
starts the server with explicit model control and non-strict readiness, waits until
the models are ready, writes Triton's log to a file and stops cleanly. No torch here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import socket
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

RUNNER = Path(__file__).parent / "backend" / "model.py"
BACKEND_NAME = "atelier"
READY_LINE = "Started Metrics Service at"


class TritonLaunchError(RuntimeError):
    """Triton did not start; the message names the log file to read."""


@dataclass
class TritonPorts:
    http: int = 0
    grpc: int = 0
    metrics: int = 0

    def fill_free(self) -> None:
        """Pick free ports for the ones left at 0, all different: each probe socket stays
        bound until all are picked, so the kernel cannot hand out one port twice."""
        with contextlib.ExitStack() as probes:
            for name in ("http", "grpc", "metrics"):
                if not getattr(self, name):
                    sock = probes.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", 0))
                    setattr(self, name, sock.getsockname()[1])


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wheel_dir() -> Path:
    """The `pytriton/tritonserver` folder of the installed nvidia-pytriton wheel."""
    import pytriton  # the wheel's package: its folder holds the server binary

    return Path(pytriton.__file__).parent / "tritonserver"


def libs_dir() -> Path:
    """The wheel's bundled shared libraries (`nvidia_pytriton.libs`)."""
    return wheel_dir().parent.parent / "nvidia_pytriton.libs"


def assemble_backends(target: Path) -> Path:
    """Build `target/python` (Triton's Python backend + stub) and `target/atelier` (our runner)."""
    source = wheel_dir()
    python_dir = target / "python"
    python_dir.mkdir(parents=True, exist_ok=True)
    for item in (source / "backends" / "python").iterdir():
        if item.is_file():
            replace_file(item, python_dir / item.name)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = source / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.exists():
        raise TritonLaunchError(f"the wheel has no Python backend stub for Python {version}")
    replace_file(stub, python_dir / stub.name)
    runner_dir = target / BACKEND_NAME
    runner_dir.mkdir(exist_ok=True)
    replace_file(RUNNER, runner_dir / "model.py")
    return target


def replace_file(source: Path, target: Path) -> None:
    """Copy through a temporary name and rename, so a running server's files stay intact."""
    temporary = target.with_name(f".{target.name}.tmp")
    shutil.copy2(source, temporary)
    temporary.replace(target)


@dataclass
class LocalTriton:
    """One local `tritonserver` process over a model repository."""

    model_repository: Path
    workdir: Path
    models: list[str] = field(default_factory=lambda: ["*"])
    ports: TritonPorts = field(default_factory=TritonPorts)
    model_config_name: str | None = None
    startup_timeout: float = 180.0
    extra_args: list[str] = field(default_factory=list)  # more tritonserver flags
    process: asyncio.subprocess.Process | None = None
    _log_task: asyncio.Task | None = None

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.ports.grpc}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.http}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.metrics}/metrics"

    @property
    def log_path(self) -> Path:
        return self.workdir / "triton.log"

    def command(self) -> list[str]:
        """The tritonserver command line."""
        args = [
            str(wheel_dir() / "bin" / "tritonserver"),
            f"--model-repository={self.model_repository.resolve()}",
            f"--backend-directory={(self.workdir / 'backends').resolve()}",
            "--model-control-mode=explicit",
            "--strict-readiness=false",
            f"--http-port={self.ports.http}",
            f"--grpc-port={self.ports.grpc}",
            f"--metrics-port={self.ports.metrics}",
            "--http-address=127.0.0.1",
            "--grpc-address=127.0.0.1",
            "--log-verbose=0",
        ]
        args += [f"--load-model={name}" for name in self.models]
        if self.model_config_name:
            args.append(f"--model-config-name={self.model_config_name}")
        return args + self.extra_args

    def environment(self) -> dict[str, str]:
        """PATH with this venv's bin first (so the stub sees its packages), and the wheel's libs."""
        env = dict(os.environ)
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        libs = [str(libs_dir()), env.get("LD_LIBRARY_PATH", "")]
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in libs if p)
        return env

    async def start(self) -> None:
        """Start the server and return once it serves HTTP and gRPC with its models ready."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        assemble_backends(self.workdir / "backends")
        self.ports.fill_free()
        ready = asyncio.Event()
        self.process = await asyncio.create_subprocess_exec(
            *self.command(),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self.environment(),
            start_new_session=True,
        )
        self._log_task = asyncio.create_task(self._copy_log(ready))
        log.info("starting Triton (gRPC %s), log: %s", self.grpc_url, self.log_path)
        exited = asyncio.create_task(self.process.wait())
        waiting = asyncio.create_task(ready.wait())
        done, _ = await asyncio.wait(
            {exited, waiting}, timeout=self.startup_timeout, return_when="FIRST_COMPLETED"
        )
        waiting.cancel()
        exited.cancel()
        try:
            if waiting not in done:
                raise TritonLaunchError(f"Triton did not start; see {self.log_path}")
            await asyncio.to_thread(self.check_models_ready)
        except BaseException:
            await self.stop()
            raise
        log.info("Triton ready at %s", self.grpc_url)

    async def _copy_log(self, ready: asyncio.Event) -> None:
        """Copy Triton's output to the log file and set `ready` at its ready line."""
        assert self.process and self.process.stdout
        with self.log_path.open("ab") as out:
            async for line in self.process.stdout:
                out.write(line)
                out.flush()
                if READY_LINE.encode() in line:
                    ready.set()

    def check_models_ready(self) -> None:
        """Raise TritonLaunchError unless every model asked for reports READY."""
        index = self.repository_index()
        wanted = [m for m in index if "*" in self.models or m.get("name") in self.models]
        not_ready = [m for m in wanted if m.get("state") != "READY"]
        if not_ready:
            raise TritonLaunchError(f"models not ready: {not_ready}; see {self.log_path}")

    def repository_index(self) -> list[dict]:
        """Triton's repository index over HTTP."""
        request = urllib.request.Request(f"{self.http_url}/v2/repository/index", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    async def stop(self, timeout: float = 30.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after `timeout`) and close the log."""
        if self.process and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._log_task:
            await self._log_task
        self.process = None
        self._log_task = None

    async def __aenter__(self) -> LocalTriton:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

"""One retraining run at a time, as separate processes the bot starts and watches.

A run is two processes, one after the other:

1. `atelier train gan --init-from <live version> --data … --progress-json`: fine-tunes the
   served generator and prints a JSON line per sample grid (step, losses, grid path);
2. `atelier deploy publish gan <run>/checkpoint.pt`: the same validation as any publish,
   then the new version is served (or refused, with the reason).

The bot never imports torch: it only reads the processes' output. `RetrainRun.events()`
yields what happened (progress, a publish line, the outcome); `cancel()` stops a run
while it trains (publishing is short and is not interrupted halfway).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

ATELIER = [sys.executable, "-m", "bot.cli"]


@dataclass
class Progress:
    step: int
    total: int
    loss_d: float
    loss_g: float
    sample: Path


@dataclass
class Outcome:
    published: bool
    text: str  # the last line of the publish process, or why the run stopped


@dataclass
class RetrainPlan:
    """What to run: a model, its live version folder, data, length, where things go."""

    model: str
    live_dir: Path
    data: str
    steps: int
    run_dir: Path
    model_repository: Path
    triton_urls: list[str]
    quality_images: int = 128
    sample_every: int = 0  # 0: about ten reports over the run
    repository_key: str | None = field(default=None, repr=False)  # key=value; never shown

    def publish_environment(self) -> dict[str, str]:
        """The environment of the publish process: the repository API key, if any."""
        extra = (
            {"ATELIER_TRITON_REPOSITORY_KEY": self.repository_key} if self.repository_key else {}
        )
        return {**os.environ, **extra}

    def train_command(self) -> list[str]:
        every = self.sample_every or max(1, self.steps // 10)
        return [*ATELIER, "train", self.model, "--init-from", str(self.live_dir), "--data",
                self.data, "--steps", str(self.steps), "--out", str(self.run_dir),
                "--sample-every", str(every), "--eval-every", "0", "--progress-json"]  # fmt: skip

    def publish_command(self) -> list[str]:
        urls = [arg for url in self.triton_urls for arg in ("--triton-url", url)]
        return [*ATELIER, "deploy", "publish", self.model, str(self.run_dir / "checkpoint.pt"),
                "--model-repository", str(self.model_repository), *urls,
                "--quality-images", str(self.quality_images)]  # fmt: skip


@dataclass
class RetrainRun:
    """A running retraining; iterate `events()` to drive it to the end."""

    plan: RetrainPlan
    started_by: int
    phase: str = "starting"  # training, publishing, done
    cancelled: bool = False
    output: list[str] = field(default_factory=list)  # every line, for the log
    _process: asyncio.subprocess.Process | None = None

    async def events(self) -> AsyncIterator[Progress | str | Outcome]:
        """Progress while training, publish lines while publishing, then one Outcome."""
        self.plan.run_dir.mkdir(parents=True, exist_ok=True)
        self.phase = "training"
        async for line in self._run(self.plan.train_command()):
            if line.startswith("{"):
                event = json.loads(line)
                yield Progress(event["step"], event["total"], event["loss_d"], event["loss_g"],
                               Path(event["sample"]))  # fmt: skip
        if self.cancelled:
            self.phase = "done"
            yield Outcome(False, "cancelled")
            return
        if self._process and self._process.returncode != 0:
            self.phase = "done"
            yield Outcome(False, f"training failed: {self.last_line()}")
            return
        self.phase = "publishing"
        async for line in self._run(self.plan.publish_command(), self.plan.publish_environment()):
            yield line
        self.phase = "done"
        published = bool(self._process and self._process.returncode == 0)
        yield Outcome(published, self.last_line())

    async def _run(
        self, command: list[str], environment: dict[str, str] | None = None
    ) -> AsyncIterator[str]:
        """Start `command` and yield its output lines (stdout and stderr together)."""
        self._process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env=environment,
        )  # fmt: skip
        assert self._process.stdout
        if self.cancelled:  # cancelled while the process was starting
            self._process.send_signal(signal.SIGTERM)
        async for raw in self._process.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line:
                self.output.append(line)
                yield line
        await self._process.wait()

    def cancel(self) -> bool:
        """Stop the run before it publishes (SIGTERM: training saves its checkpoint and exits;
        a SIGINT could be ignored). False once publishing, which is not interrupted halfway."""
        if self.phase not in ("starting", "training"):
            return False
        self.cancelled = True
        if self._process and self._process.returncode is None:
            self._process.send_signal(signal.SIGTERM)
        return True

    def last_line(self) -> str:
        return self.output[-1] if self.output else "no output"

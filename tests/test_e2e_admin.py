"""End to end: /admin models and /admin rollback through the stand-in, with a real bot and a
Triton over a temporary copy of the repository (gan v1 and v2)."""

from __future__ import annotations

import io
import json
import re
import secrets
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest_asyncio
from PIL import Image

from bot.app import AtelierBot
from bot.stack import running_bot
from bot.standin import DiscordStandIn, StandInMessage
from deploy.triton import LocalTriton
from tests.gan_repository import served
from tests.helpers import make_settings


def folders(repo_dir: Path) -> list[str]:
    return sorted(p.name for p in (repo_dir / "gan").iterdir())


@pytest_asyncio.fixture
async def admin_bot(
    standin: DiscordStandIn, gan_triton: LocalTriton, repo_dir: Path, tmp_path: Path
) -> AsyncIterator[AtelierBot]:
    """The bot on the temporary repository; alice is on the owner allowlist, bob is not."""
    settings = make_settings(tmp_path, triton_url=gan_triton.grpc_url).model_copy(
        update={
            "model_repository": repo_dir,
            "admin_user_ids": [int(standin.users["alice"]["id"])],
            "retrain_quality_images": 16,
        }
    )
    async with running_bot(settings, standin.token, guild_ready_timeout=0.1) as bot:
        yield bot


async def reply(standin: DiscordStandIn, command: str, user: str, **options: object) -> str:
    handle = await standin.invoke(command, options, user=user)
    message = await handle.wait_for(lambda m: m.ephemeral and not m.deferred, timeout=60)
    return message.content


async def test_admin_is_refused_without_manage_server(
    admin_bot: AtelierBot,
    standin: DiscordStandIn,
    gan_triton: LocalTriton,
    repo_dir: Path,
    tmp_path: Path,
) -> None:
    _, before = await served(gan_triton.grpc_url)
    commands = [("admin models", {}), ("admin rollback", {"model": "gan"})]
    commands += [("admin retrain", {"steps": 10}), ("admin cancel", {})]
    for command, options in commands:
        answer = await reply(standin, command, "bob", **options)
        assert "Only members with the Manage Server permission" in answer, answer
    _, after = await served(gan_triton.grpc_url)
    assert after == before
    assert not (repo_dir / "gan" / "retired").exists()
    assert not (tmp_path / "runs").exists()  # no training run started


async def test_admin_models_and_rollback(
    admin_bot: AtelierBot, standin: DiscordStandIn, gan_triton: LocalTriton
) -> None:
    _, live = await served(gan_triton.grpc_url)
    models = await reply(standin, "admin models", "admin")
    assert f"gan: live v{live}" in models and "ready" in models, models
    assert "ms per request" in models  # Triton's statistics for the served version
    assert "gan: live" in await reply(standin, "admin models", "alice")  # on the allowlist

    answer = await reply(standin, "admin rollback", "admin", model="gan")
    previous = int(live) - 1
    assert f"serving v{previous} (was v{live})" in answer, answer
    assert (await served(gan_triton.grpc_url))[1] == str(previous)

    answer = await reply(standin, "admin rollback", "alice", model="gan", version=int(live))
    assert f"serving v{live} (was v{previous})" in answer, answer
    assert (await served(gan_triton.grpc_url))[1] == live
    assert "no model called" in await reply(standin, "admin rollback", "admin", model="nope")


def tiny_dataset(folder: Path, count: int = 24) -> None:
    """`count` 64 px pictures of one coloured disc each on white."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    rows, cols = np.mgrid[:64, :64]
    for index in range(count):
        y, x, r = rng.integers(16, 48, 3)
        pixels = np.full((64, 64, 3), 255, np.uint8)
        pixels[(rows - y) ** 2 + (cols - x) ** 2 < (r / 2 + 6) ** 2] = rng.integers(0, 255, 3)
        Image.fromarray(pixels).save(folder / f"{index:02d}.png")


async def retrain_message(standin: DiscordStandIn, text: str, timeout: float) -> StandInMessage:
    return await standin.wait_for_message(
        lambda m: m.content.startswith("Retraining `gan`") and text in m.content, timeout
    )


@contextmanager
def sigint_ignored() -> Iterator[None]:
    """SIGINT ignored here, and so in the processes started meanwhile: as for a bot started
    in the background by a shell without job control."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


async def test_retrain_one_at_a_time_and_cancel(
    admin_bot: AtelierBot, standin: DiscordStandIn, repo_dir: Path
) -> None:
    """/admin cancel stops the run even when the training process inherits SIGINT ignored."""
    before = folders(repo_dir)
    with sigint_ignored():
        answer = await reply(standin, "admin retrain", "admin", steps=100_000)
        assert "started" in answer, answer
        assert "already going" in await reply(standin, "admin retrain", "alice", steps=10)
        assert "Cancelling" in await reply(standin, "admin cancel", "admin")
        await retrain_message(standin, "❌ cancelled", timeout=120)
    assert folders(repo_dir) == before
    assert "No training run" in await reply(standin, "admin cancel", "admin")
    answer = await reply(standin, "admin retrain", "admin", challenge=999_999)
    assert "This server has no challenge #999999" in answer, answer


async def test_retrain_publishes_through_validation(
    admin_bot: AtelierBot,
    standin: DiscordStandIn,
    gan_triton: LocalTriton,
    tmp_path: Path,
    repo_dir: Path,
) -> None:
    """A short fine-tune on a tiny data set, from /admin retrain to the new version serving."""
    tiny_dataset(tmp_path / "datasets" / "tiny")
    _, live = await served(gan_triton.grpc_url)
    answer = await reply(standin, "admin retrain", "admin", data="tiny", steps=20)
    assert "started" in answer, answer
    progress = await retrain_message(standin, "step ", timeout=180)
    assert "loss D" in progress.content and progress.attachments  # the newest sample grid
    done = await retrain_message(standin, "✅", timeout=400)
    new = str(int(live) + 1)
    assert f"published gan v{new}" in done.content, done.content
    assert (await served(gan_triton.grpc_url))[1] == new
    metadata = json.loads((repo_dir / "gan" / new / "metadata.json").read_text())
    assert "--init-from" in metadata["training_command"]
    assert metadata["data"] == str((tmp_path / "datasets" / "tiny").resolve())
    assert metadata["publish"]["validation"]["quality"]["live"]["version"] == int(live)


def png(colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(buffer, format="PNG")
    return buffer.getvalue()


async def test_retrain_on_a_challenge_uses_only_consenting_entries(
    admin_bot: AtelierBot, standin: DiscordStandIn, tmp_path: Path
) -> None:
    """Submitters answer allow_training; /admin retrain challenge:ID exports only those."""
    answer = await reply(standin, "challenge start", "admin", theme="discs " + secrets.token_hex(2))
    challenge = int(re.search(r"Challenge #(\d+)", answer)[1])
    for user, colour, consent in (("alice", "red", True), ("bob", "blue", False)):
        handle = await standin.invoke(
            "challenge submit", {"allow_training": consent}, user=user,
            attachments={"image": ("art.png", png(colour), "image/png")},
        )  # fmt: skip
        message = await handle.wait_for(lambda m: m.ephemeral and not m.deferred, timeout=30)
        assert "is in" in message.content, message.content
    assert "started" in await reply(standin, "admin retrain", "admin", challenge=challenge)
    assert "Cancelling" in await reply(standin, "admin cancel", "admin")
    await retrain_message(standin, "❌ cancelled", timeout=120)
    folder = tmp_path / "datasets" / f"challenge-{challenge}"
    images = sorted(p for p in folder.iterdir() if p.suffix == ".png")
    assert [Image.open(p).convert("RGB").getpixel((0, 0)) for p in images] == [(255, 0, 0)]

"""End to end: the real bot on the stand-in, a real Triton, a real SQLite file."""

import asyncio
import io
import logging

import numpy as np
import pytest
from PIL import Image

from bot.app import AtelierBot
from bot.media.images import read_png_record
from bot.settings import Settings
from bot.stack import running_bot
from bot.standin import DiscordStandIn
from deploy.triton import LocalTriton
from tests.helpers import GAN_VERSION, local_images


async def first_answer(handle, timeout: float = 30):
    return await handle.wait_for(lambda m: not m.deferred, timeout=timeout)


async def test_imagine_seed_7_sends_the_generators_pixels(
    bot: AtelierBot, standin: DiscordStandIn
) -> None:
    finished = asyncio.ensure_future(bot.wait_for("job_finished", timeout=30))
    handle = await standin.invoke("imagine", {"seed": 7})
    ack = await handle.acknowledged(timeout=3)
    assert ack["type"] == 5  # deferred: "Atelier is thinking…"
    message = await first_answer(handle)
    assert not message.ephemeral and "seed `7`" in message.content
    (attachment,) = message.attachments
    data = standin.attachment_bytes(attachment)
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    np.testing.assert_array_equal(pixels, local_images([7])[0])
    record = read_png_record(data)
    assert record == {
        "model": "gan",
        "model_version": GAN_VERSION,
        "seed": 7,
        "variations": [],
        "params": {"truncation": 1.0},
    }

    job_id = await finished
    assert f"job `{job_id}`" in message.content
    job = await bot.jobs.get(job_id)
    assert job is not None and job.message_id == message.id
    assert (job.command, job.seed, job.model, job.model_version, job.status) == (
        "imagine",
        7,
        "gan",
        GAN_VERSION,
        "done",
    )
    assert job.user_id == int(standin.users["alice"]["id"])


async def test_same_seed_same_bytes(bot: AtelierBot, standin: DiscordStandIn) -> None:
    answers = []
    for _ in range(2):
        handle = await standin.invoke("imagine", {"seed": 1234, "truncation": 0.5})
        answers.append(await first_answer(handle))
    first, second = (standin.attachment_bytes(a.attachments[0]) for a in answers)
    assert first == second
    assert read_png_record(first)["params"] == {"truncation": 0.5}


async def test_random_seed_is_shown_and_recorded(bot: AtelierBot, standin: DiscordStandIn) -> None:
    message = await first_answer(await standin.invoke("imagine", {}))
    record = read_png_record(standin.attachment_bytes(message.attachments[0]))
    assert f"seed `{record['seed']}`" in message.content


@pytest.mark.parametrize(
    "options", [{"seed": -1}, {"seed": 2**31}, {"truncation": 2.5}], ids=["neg", "big", "trunc"]
)
async def test_out_of_range_options_get_an_ephemeral_message(
    bot: AtelierBot, standin: DiscordStandIn, options: dict, caplog: pytest.LogCaptureFixture
) -> None:
    """Discord refuses such values; a client that breaks the rules still gets a clear answer."""
    caplog.set_level(logging.WARNING, logger="bot.errors")
    with pytest.raises(ValueError, match="must be between"):
        await standin.invoke("imagine", options)
    handle = await standin.invoke("imagine", options, enforce_limits=False)
    message = await handle.wait_for(lambda m: m.ephemeral, timeout=10)
    assert "is outside" in message.content
    job = message.content.split("job `")[1].split("`")[0]
    assert any(job in record.getMessage() for record in caplog.records)
    assert bot.is_ready() and not bot.is_closed()


async def test_status_shows_triton_and_model_versions(
    bot: AtelierBot, standin: DiscordStandIn
) -> None:
    message = await first_answer(await standin.invoke("status", {}))
    assert message.ephemeral
    (embed,) = message.embeds
    assert "live" in embed["title"]
    assert f"`gan` v{GAN_VERSION} ready" in embed["description"]


async def test_commands_synced_once_and_not_again_when_unchanged(
    bot: AtelierBot, standin: DiscordStandIn
) -> None:
    assert {c["name"] for c in standin.commands} >= {"imagine", "status"}
    before = standin.sync_count
    await bot.sync_commands()
    assert standin.sync_count == before


async def test_token_is_never_logged(
    tmp_path, triton: LocalTriton, standin: DiscordStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    """A second bot with its own DB: its token appears in no log line, nor in its settings."""
    caplog.set_level(logging.DEBUG)
    token = standin.token
    settings = Settings(
        state_dir=tmp_path, triton_url=triton.grpc_url, discord_token=token, database_url=None
    )
    assert token not in repr(settings) and token not in str(settings.model_dump())
    async with running_bot(settings, token, guild_ready_timeout=0.1):
        await first_answer(await standin.invoke("imagine", {"seed": 3}))
    assert caplog.records and token not in caplog.text

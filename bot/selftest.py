"""`atelier selftest`: drive one interaction of every command through the whole stack."""

from __future__ import annotations

import io
import time
from collections.abc import Awaitable, Callable

from PIL import Image

from bot.assets import SAMPLE_PHOTO
from bot.media.images import read_png_record
from bot.settings import Settings
from bot.stack import running_stack
from bot.standin import DiscordStandIn, StandInMessage
from deploy.contracts import GAN

ANSWER_TIMEOUT = 60.0

Check = Callable[[DiscordStandIn], Awaitable[str]]


async def answer(standin: DiscordStandIn, command: str, **options: object) -> StandInMessage:
    """Invoke a command as a member and wait for its first real (not "thinking…") message."""
    handle = await standin.invoke(command, options)
    await handle.acknowledged(timeout=3)
    return await handle.wait_for(lambda m: not m.deferred, timeout=ANSWER_TIMEOUT)


async def check_imagine(standin: DiscordStandIn) -> str:
    """/imagine seed:7 twice: a 64x64 PNG with its record, byte-identical both times."""
    first, second = [await answer(standin, "imagine", seed=7) for _ in range(2)]
    if first.ephemeral or len(first.attachments) != 1:
        raise AssertionError(f"expected one public attachment, got {first.raw}")
    data = standin.attachment_bytes(first.attachments[0])
    size = Image.open(io.BytesIO(data)).size
    record = read_png_record(data)
    if size != (GAN.output("image").shape[1], GAN.output("image").shape[0]):
        raise AssertionError(f"image size {size}")
    if record["seed"] != 7 or record["model"] != "gan":
        raise AssertionError(f"record {record}")
    if standin.attachment_bytes(second.attachments[0]) != data:
        raise AssertionError("the same seed gave different bytes")
    return f"{size[0]}x{size[1]} PNG, gan v{record['model_version']}, reproducible"


async def check_imagine_buttons(standin: DiscordStandIn) -> str:
    """/imagine count:4, then V1 and U1 on the grid: a variation grid and an upscale."""
    grid = await answer(standin, "imagine", seed=11, count=4)
    ids = {c.get("label"): c["custom_id"] for row in grid.components for c in row["components"]}
    variation = await standin.click(grid, ids["V1"])
    upscaled = await standin.click(grid, ids["U1"])
    v1, u1 = [
        await h.wait_for(lambda m: not m.deferred, timeout=ANSWER_TIMEOUT)
        for h in (variation, upscaled)
    ]
    images = read_png_record(standin.attachment_bytes(v1.attachments[0]))["images"]
    if {image["seed"] for image in images} != {11} or len(images) != 4:
        raise AssertionError(f"V1 gave {images}")
    size = Image.open(io.BytesIO(standin.attachment_bytes(u1.attachments[0]))).size
    if size != (256, 256):
        raise AssertionError(f"U1 gave {size}")
    return "grid of 4, V1 variations of seed 11, U1 256x256"


async def check_style(standin: DiscordStandIn) -> str:
    """/styles lists the styles; /style restyles the sample photo in the first of them."""
    sheet = await answer(standin, "styles")
    names = [part.split("`")[1] for part in sheet.content.split(":", 1)[1].split(",")]
    photo = ("astronaut.jpg", SAMPLE_PHOTO.read_bytes(), "image/jpeg")
    handle = await standin.invoke("style", {"style": names[0]}, attachments={"image": photo})
    styled = await handle.wait_for(lambda m: not m.deferred, timeout=ANSWER_TIMEOUT)
    if not styled.attachments:
        raise AssertionError(f"/style answered {styled.content!r}")
    size = Image.open(io.BytesIO(standin.attachment_bytes(styled.attachments[0]))).size
    if size != Image.open(SAMPLE_PHOTO).size:
        raise AssertionError(f"/style changed the size to {size}")
    return f"{len(names)} styles; `{names[0]}` on a {size[0]}x{size[1]} photo"


async def check_compose(standin: DiscordStandIn) -> str:
    """/compose bars:4: Opus audio of 4 bars at the tempo, and a MIDI file with the same record."""
    from bot.media.audio import decode_audio, seconds_per_step
    from bot.pipelines.compose import read_midi_record, read_opus_record

    message = await answer(standin, "compose", seed=3, bars=4, tempo=120)
    files = {a["filename"].rsplit(".", 1)[1]: a for a in message.attachments}
    if message.ephemeral or not {"ogg", "mid"} <= set(files):
        raise AssertionError(f"expected .ogg and .mid, got {message.content!r} {files}")
    ogg, mid = (standin.attachment_bytes(files[kind]) for kind in ("ogg", "mid"))
    samples, rate = decode_audio(ogg)
    seconds = len(samples) / rate
    expected = 4 * 16 * seconds_per_step(120) + 1.0  # and one second of release
    if abs(seconds - expected) > 0.05 or not abs(samples).max() > 0.01:
        raise AssertionError(f"audio of {seconds:.2f} s (expected {expected:.2f}), or silent")
    record = read_opus_record(ogg)
    if record != read_midi_record(mid) or record["seed"] != 3:
        raise AssertionError(f"records {record} / {read_midi_record(mid)}")
    sheet = "with sheet music" if "png" in files and len(message.attachments) == 4 else ""
    return f"{seconds:.1f} s of Opus, MIDI, music v{record['model_version']} {sheet}".strip()


async def check_status(standin: DiscordStandIn) -> str:
    """/status: ephemeral, Triton live, the gan model ready."""
    message = await answer(standin, "status")
    text = " ".join(f"{e.get('title')} {e.get('description')}" for e in message.embeds)
    if not message.ephemeral or "live" not in text or "`gan`" not in text or "ready" not in text:
        raise AssertionError(f"unexpected /status answer: {text!r}")
    return text.replace("\n", " | ")


CHECKS: dict[str, Check] = {
    "imagine": check_imagine,
    "imagine V/U": check_imagine_buttons,
    "style": check_style,
    "compose": check_compose,
    "status": check_status,
}


async def run_selftest(settings: Settings) -> bool:
    """Start the stack on the stand-in, run every check, print one line each."""
    settings = settings.model_copy(update={"discord_token": None})
    ok = True
    async with running_stack(settings, guild_ready_timeout=0.5) as stack:
        assert stack.standin is not None
        for name, check in CHECKS.items():
            started = time.perf_counter()
            try:
                detail, passed = await check(stack.standin), True
            except Exception as error:  # report every failing command, then fail
                detail, passed = f"{type(error).__name__}: {error}", False
            ok = ok and passed
            mark = "ok  " if passed else "FAIL"
            print(f"{mark} /{name:<12} {time.perf_counter() - started:6.2f} s  {detail}")
    return ok

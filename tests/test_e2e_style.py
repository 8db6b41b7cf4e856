"""End to end: /style (named, blend, any picture's style), /styles and hostile uploads."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from bot.app import AtelierBot
from bot.media.images import decode_upload, read_png_record
from bot.standin import DiscordStandIn, StandInMessage
from deploy.contracts import STYLE, STYLE_ARBITRARY
from deploy.repository import ModelRepository
from deploy.validation import served_autocast
from tests.helpers import MODEL_REPOSITORY, latest_version
from tests.test_images import chunk, png_header_only, save
from training.export import run_module


def photo(width: int = 96, height: int = 64) -> bytes:
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], -1).astype(np.uint8)
    return save(Image.fromarray(pixels), "PNG")


def local(name: str, *inputs: np.ndarray) -> np.ndarray:
    """The latest version's output in this process, in the precision Triton serves it."""
    contract = {"style": STYLE, "style_arbitrary": STYLE_ARBITRARY}[name]
    model = torch.jit.load(str(latest_version(name) / "model.pt"))
    arrays = {spec.name: np.array(x) for spec, x in zip(contract.inputs, inputs, strict=True)}
    autocast = served_autocast(ModelRepository(MODEL_REPOSITORY), name)
    return run_module(model, contract, arrays, autocast)["image"][0]


def style_names() -> list[str]:
    return ModelRepository(MODEL_REPOSITORY).parameters("style")["styles"].split(",")


async def answer(handle, timeout: float = 60) -> StandInMessage:
    return await handle.wait_for(lambda m: not m.deferred, timeout=timeout)


def result_pixels(standin: DiscordStandIn, message: StandInMessage) -> np.ndarray:
    data = standin.attachment_bytes(message.attachments[0])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


async def test_named_style_equals_the_local_model(bot: AtelierBot, standin: DiscordStandIn) -> None:
    names = style_names()
    upload = photo()
    handle = await standin.invoke(
        "style",
        {"style": names[1], "strength": 0.8},
        attachments={"image": ("photo.png", upload, "image/png")},
    )
    message = await answer(handle)
    assert f"style `{names[1]}`" in message.content and not message.ephemeral
    weights = np.zeros((1, len(names)), np.float32)
    weights[0, 1] = 1.0
    content = decode_upload(upload, max_side=1024)
    expected = local("style", content[None], weights, np.array([[0.8]], np.float32))
    got = result_pixels(standin, message)
    assert got.shape == (64, 96, 3)  # the input's aspect ratio
    np.testing.assert_array_equal(got, expected)
    record = read_png_record(standin.attachment_bytes(message.attachments[0]))
    assert record["params"] == {"style": names[1], "strength": 0.8}


async def test_blend_and_arbitrary_style(bot: AtelierBot, standin: DiscordStandIn) -> None:
    names = style_names()
    upload = photo(80, 80)
    content = decode_upload(upload, max_side=1024)
    blend = await answer(
        await standin.invoke(
            "style",
            {"style": names[0], "blend_with": names[2], "blend": 0.25},
            attachments={"image": ("p.png", upload, "image/png")},
        )
    )
    weights = np.zeros((1, len(names)), np.float32)
    weights[0, [0, 2]] = (0.75, 0.25)
    expected = local("style", content[None], weights, np.ones((1, 1), np.float32))
    np.testing.assert_array_equal(result_pixels(standin, blend), expected)
    assert f"blended with `{names[2]}` at 0.25" in blend.content

    style_upload = save(Image.open(io.BytesIO(photo(50, 70))).rotate(90), "PNG")
    arbitrary = await answer(
        await standin.invoke(
            "style",
            {},
            attachments={
                "image": ("p.png", upload, "image/png"),
                "style_image": ("s.png", style_upload, "image/png"),
            },
        )
    )
    style_pixels = decode_upload(style_upload, max_side=256)
    expected = local(
        "style_arbitrary", content[None], style_pixels[None], np.ones((1, 1), np.float32)
    )
    np.testing.assert_array_equal(result_pixels(standin, arbitrary), expected)


async def test_styles_sheet_and_autocomplete(bot: AtelierBot, standin: DiscordStandIn) -> None:
    message = await answer(await standin.invoke("styles", {}))
    names = style_names()
    assert all(f"`{name}`" in message.content for name in names)
    sheet = result_pixels(standin, message)
    assert sheet.shape[1] == 4 * 256 and sheet.shape[0] == -(-len(names) // 4) * 256


def gif() -> bytes:
    frames = [Image.new("RGB", (20, 10), c) for c in ("red", "blue")]
    return save(frames[0], "GIF", save_all=True, append_images=frames[1:])


BAD = {
    "not-image": (b"just some text", "isn't an image"),
    "truncated": (save(Image.effect_noise((64, 64), 60), "PNG")[:2000], "damaged or cut short"),
    "20000x20000": (png_header_only(20000, 20000), "too large"),
    "bomb": (save(Image.new("1", (12000, 12000)), "PNG"), "too large"),
    "too-big-file": (
        photo() + chunk(b"zTXt", b"\0" * (26 * 2**20)),
        "the limit is 25 MiB",
    ),
}
GOOD = {
    "animated-gif": gif(),
    "cmyk": save(Image.new("CMYK", (30, 20), (0, 255, 255, 0)), "JPEG"),
    "16-bit": save(Image.fromarray(np.full((20, 30), 40000, np.uint16)), "PNG"),
    "alpha": save(Image.new("RGBA", (30, 20), (255, 0, 0, 128)), "PNG"),
    "1x1": save(Image.new("RGB", (1, 1), "green"), "PNG"),
}


@pytest.mark.parametrize("case", sorted(BAD))
async def test_hostile_uploads_get_a_clear_ephemeral_message(
    bot: AtelierBot, standin: DiscordStandIn, case: str
) -> None:
    data, message = BAD[case]
    handle = await standin.invoke(
        "style", {"style": style_names()[0]}, attachments={"image": (f"{case}.png", data, "")}
    )
    reply = await handle.wait_for(lambda m: m.ephemeral, timeout=30)
    assert message in reply.content and "job `" in reply.content
    assert not any(m.attachments for m in handle.messages)
    assert bot.is_ready() and not bot.is_closed()


@pytest.mark.parametrize("case", sorted(GOOD))
async def test_unusual_uploads_are_styled(
    bot: AtelierBot, standin: DiscordStandIn, case: str
) -> None:
    data = GOOD[case]
    handle = await standin.invoke(
        "style", {"style": style_names()[0]}, attachments={"image": (f"{case}.img", data, "")}
    )
    message = await answer(handle)
    assert not message.ephemeral
    expected = decode_upload(data, max_side=1024).shape
    assert result_pixels(standin, message).shape == expected


async def test_style_needs_exactly_one_style(bot: AtelierBot, standin: DiscordStandIn) -> None:
    handle = await standin.invoke(
        "style", {}, attachments={"image": ("p.png", photo(), "image/png")}
    )
    reply = await handle.wait_for(lambda m: m.ephemeral, timeout=10)
    assert "either a `style` name or a `style_image`" in reply.content

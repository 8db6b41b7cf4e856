"""End to end: /imagine grids and their buttons (V, U, 🎲, 🎞, 🔗), also after a restart."""

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence

from bot.app import AtelierBot
from bot.media.images import read_png_record, read_webp_record, upscale
from bot.media.video import count_frames
from bot.pipelines.imagine import WALK_FRAMES, Latent, walk_vectors
from bot.stack import running_bot
from bot.standin import DiscordStandIn, StandInMessage
from deploy.triton import LocalTriton
from tests.helpers import local_generate, local_images, make_settings

TILE = 64


def button(message: StandInMessage, name: str) -> str:
    """The custom_id of the button whose label or emoji is `name`."""
    for row in message.components:
        for component in row["components"]:
            emoji = (component.get("emoji") or {}).get("name", "")
            if component.get("label") == name or (emoji and emoji.startswith(name)):
                return component["custom_id"]
    raise KeyError(f"no button {name!r} in {message.components}")


async def answer(handle, timeout: float = 60) -> StandInMessage:
    return await handle.wait_for(lambda m: not m.deferred, timeout=timeout)


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def tiles(grid: np.ndarray) -> np.ndarray:
    """A 2x2 grid back into its four images."""
    return np.stack(
        [grid[r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE] for r in (0, 1) for c in (0, 1)]
    )


async def imagine_grid(standin: DiscordStandIn, seed: int) -> tuple[StandInMessage, bytes]:
    message = await answer(await standin.invoke("imagine", {"seed": seed, "count": 4}))
    return message, standin.attachment_bytes(message.attachments[0])


async def test_grid_and_every_button(bot: AtelierBot, standin: DiscordStandIn) -> None:
    grid_message, grid = await imagine_grid(standin, 7)
    assert "seeds `7` `8` `9` `10`" in grid_message.content
    assert pixels(grid).shape == (2 * TILE, 2 * TILE, 3)
    np.testing.assert_array_equal(tiles(pixels(grid)), local_images([7, 8, 9, 10]))
    assert [i["seed"] for i in read_png_record(grid)["images"]] == [7, 8, 9, 10]

    # V2: four variations of seed 8, each recorded as seed 8 plus one variation step.
    v2 = await answer(await standin.click(grid_message, button(grid_message, "V2")))
    data = standin.attachment_bytes(v2.attachments[0])
    latents = [Latent.from_record(r) for r in read_png_record(data)["images"]]
    assert [(lat.seed, len(lat.variations), lat.variations[0][1]) for lat in latents] == [
        (8, 1, 0.35)
    ] * 4
    vectors = np.stack([lat.vector() for lat in latents])
    np.testing.assert_array_equal(tiles(pixels(data)), local_generate(vectors))

    # U3: seed 9 alone, four times larger with Lanczos.
    u3 = await answer(await standin.click(grid_message, button(grid_message, "U3")))
    data = standin.attachment_bytes(u3.attachments[0])
    assert read_png_record(data)["seed"] == 9
    np.testing.assert_array_equal(pixels(data), upscale(local_images([9])[0], 4))

    # 🎲: four new consecutive seeds.
    reroll = await answer(await standin.click(grid_message, button(grid_message, "🎲")))
    data = standin.attachment_bytes(reroll.attachments[0])
    seeds = [i["seed"] for i in read_png_record(data)["images"]]
    assert seeds != [7, 8, 9, 10] and seeds == list(range(seeds[0], seeds[0] + 4))
    np.testing.assert_array_equal(tiles(pixels(data)), local_images(seeds))

    # 🎞: a latent walk from seed 7, as animated WebP and MP4 with the same frame count.
    walk = await answer(await standin.click(grid_message, button(grid_message, "🎞")), 120)
    by_type = {a["filename"].rsplit(".", 1)[1]: a for a in walk.attachments}
    webp, mp4 = (standin.attachment_bytes(by_type[kind]) for kind in ("webp", "mp4"))
    assert count_frames(mp4) == WALK_FRAMES
    record = read_webp_record(webp)
    assert record["walk"]["from"]["seed"] == 7 and record["walk"]["frames"] == WALK_FRAMES
    start, end = (Latent.from_record(record["walk"][k]) for k in ("from", "to"))
    expected = local_generate(walk_vectors(start.vector(), end.vector(), WALK_FRAMES))
    with Image.open(io.BytesIO(webp)) as animation:
        assert animation.size == (4 * TILE, 4 * TILE)
        # libwebp stores identical neighbouring frames once: one frame per run of equal ones.
        decoded = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(animation)]
    keep = [i == 0 or not np.array_equal(expected[i], expected[i - 1]) for i in range(WALK_FRAMES)]
    unique = [upscale(frame, 4) for frame, kept in zip(expected, keep, strict=True) if kept]
    np.testing.assert_array_equal(np.stack(decoded), np.stack(unique))  # lossless


async def test_only_the_requester_until_shared(bot: AtelierBot, standin: DiscordStandIn) -> None:
    message, _ = await imagine_grid(standin, 21)
    refused = await standin.click(message, button(message, "V1"), user="bob")
    reply = await refused.wait_for(lambda m: m.ephemeral, timeout=10)
    assert "can use these buttons" in reply.content
    assert not any(m.attachments for m in refused.messages)

    not_yours = await standin.click(message, button(message, "Share"), user="bob")
    assert "can use these buttons" in (await not_yours.wait_for(lambda m: True)).content

    shared = await standin.click(message, button(message, "Share"), user="alice")
    assert "shared" in (await shared.wait_for(lambda m: m.ephemeral)).content
    accepted = await answer(await standin.click(message, button(message, "V1"), user="bob"))
    assert read_png_record(standin.attachment_bytes(accepted.attachments[0]))["images"]


async def test_buttons_work_after_a_restart(
    tmp_path: Path, triton: LocalTriton, standin: DiscordStandIn
) -> None:
    """A V1 press on a message from a bot that has since been restarted still works."""
    settings = make_settings(tmp_path, triton_url=triton.grpc_url)
    async with running_bot(settings, standin.token, guild_ready_timeout=0.1):
        message, _ = await imagine_grid(standin, 33)
    async with running_bot(settings, standin.token, guild_ready_timeout=0.1):
        v1 = await answer(await standin.click(message, button(message, "V1")))
    data = standin.attachment_bytes(v1.attachments[0])
    assert {r["seed"] for r in read_png_record(data)["images"]} == {33}

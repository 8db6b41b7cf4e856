"""The playground page in a real browser: Debian's Chromium, headless, driven by Playwright.

The real bot serves it through the stand-in and a real Triton (the e2e fixtures). The test
types slash commands with the page's completion, attaches a file, picks a bot-suggested
(autocomplete) value, presses buttons, switches members, plays audio and saves a screenshot
that CI keeps (tests/artifacts/playground.png).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import discord
import numpy as np
import pytest
import pytest_asyncio
import soundfile as sf
from PIL import Image
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from bot.app import AtelierBot
from bot.standin import DiscordStandIn

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 60_000
SEED = 31337


@pytest_asyncio.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        message = "Debian's chromium is not installed (./atelier installs it with apt-get)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    """A small photo-like PNG to restyle."""
    image = Image.radial_gradient("L").resize((96, 96)).convert("RGB")
    path = tmp_path / "gradient.png"
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path


def tone_ogg(seconds: float = 0.5, rate: int = 48_000) -> bytes:
    """A short sine tone as OGG Opus, like the bot's music answers."""
    t = np.arange(int(seconds * rate)) / rate
    buffer = io.BytesIO()
    sf.write(buffer, 0.2 * np.sin(2 * np.pi * 440 * t), rate, format="OGG", subtype="OPUS")
    return buffer.getvalue()


async def image_loaded(page: Page, message: Locator) -> None:
    """Wait until the message shows an image that the browser has decoded."""
    image = message.locator("img").first
    await expect(image).to_be_visible(timeout=WAIT_MS)
    handle = await image.element_handle()
    await page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=handle, timeout=WAIT_MS
    )


async def last_id(page: Page) -> str:
    """The id of the newest message on the page ("0" if none)."""
    ids = await page.locator("li.message").evaluate_all("lis => lis.map(li => li.dataset.id)")
    return max(ids, key=int, default="0")


async def new_message(page: Page, after: str, text: str) -> Locator:
    """The first message newer than `after` whose text contains `text` (waits for it)."""
    found = await page.wait_for_function(
        """([after, text]) => [...document.querySelectorAll("li.message")]
            .find(li => BigInt(li.dataset.id) > BigInt(after) && li.textContent.includes(text))
            ?.dataset.id""",
        arg=[after, text],
        timeout=WAIT_MS,
    )
    return page.locator(f'li.message[data-id="{await found.json_value()}"]')


async def send(page: Page, command: str) -> None:
    """Type a complete command line and press Enter."""
    box = page.locator("#input")
    await box.fill(command)
    await box.press("Escape")
    await box.press("Enter")
    await expect(box).to_have_value("", timeout=WAIT_MS)


async def switch_to(page: Page, user: str) -> None:
    await page.click(f'#users button[data-user="{user}"]')
    await expect(page.locator(f'#users button[data-user="{user}"]')).to_have_class(
        re.compile("active"), timeout=WAIT_MS
    )
    await expect(page).to_have_url(re.compile(f"user={user}"))


async def test_playground_in_chromium(
    bot: AtelierBot, standin: DiscordStandIn, browser: Browser, picture: Path
) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 1200})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(standin.playground_url)
    await expect(page.locator("body")).to_have_attribute("data-ready", "true", timeout=WAIT_MS)
    box = page.locator("#input")
    suggestions = page.locator("#completions li.suggestion")

    # /imagine through the completion: the command, then its `seed` option.
    before = await last_id(page)
    await box.click()
    await box.press_sequentially("/imag")
    await expect(suggestions.first).to_have_text(re.compile(r"^/imagine"))
    await box.press("Enter")
    await expect(box).to_have_value("/imagine ")
    await expect(page.locator('#completions li[data-value="seed"]')).to_be_visible()
    await box.press_sequentially("se")
    await box.press("Tab")
    await expect(box).to_have_value("/imagine seed:")
    await box.press_sequentially(str(SEED))
    await box.press("Enter")
    await expect(box).to_have_value("")
    result = await new_message(page, before, f"seed {SEED}")
    await image_loaded(page, result)
    await expect(result.locator(".reply-line")).to_have_text("Alice used /imagine")
    assert await result.get_attribute("data-was-deferred") == "true"  # "thinking…" first

    # 🎲 on the reply: a new result arrives below it.
    before = await last_id(page)
    await result.locator("button", has_text="🎲").click()
    rerolled = await new_message(page, before, "truncation")
    await image_loaded(page, rerolled)
    await expect(rerolled.locator(".reply-line")).to_have_text("Alice pressed a button")

    # Bob may not press Alice's buttons: his answer is ephemeral, and only he sees it.
    await switch_to(page, "bob")
    before = await last_id(page)
    await result.locator("button", has_text="🎲").click()
    refusal = await new_message(page, before, "can use these buttons")
    await expect(refusal).to_have_attribute("data-ephemeral", "true")
    await expect(refusal).to_contain_text("Only @Alice can use these buttons")
    await expect(refusal).to_contain_text("Only you can see this")
    # /admin needs Manage Server: refused for Bob, answered for Admin.
    await send(page, "/admin models")
    denied = await new_message(page, before, "Manage Server permission")
    await expect(denied).to_have_attribute("data-ephemeral", "true")
    await switch_to(page, "admin")
    await expect(refusal).to_have_count(0)
    before = await last_id(page)
    await send(page, "/admin models")
    listing = await new_message(page, before, "gan")
    await expect(listing).to_have_attribute("data-ephemeral", "true")
    await switch_to(page, "alice")
    await expect(result.locator("img")).to_be_visible(timeout=WAIT_MS)
    for hidden in (refusal, denied, listing):
        await expect(hidden).to_have_count(0)

    # /style with an attached picture and a style the bot suggests (autocomplete).
    before = await last_id(page)
    await box.press_sequentially("/sty")
    await box.press("Enter")
    await expect(box).to_have_value("/style ")
    await box.press_sequentially("im")
    await box.press("Tab")
    await expect(box).to_have_value("/style image:")
    await page.set_input_files("#file", picture)
    await expect(box).to_have_value("/style image:gradient.png ")
    await expect(page.locator("#files")).to_contain_text("gradient.png")
    await box.press_sequentially("style:fa")
    await expect(suggestions.first).to_have_text(re.compile(r"^fauve"), timeout=WAIT_MS)
    await box.press("Enter")
    await expect(box).to_have_value("/style image:gradient.png style:fauve ")
    await box.press("Enter")
    styled = await new_message(page, before, "styled")
    await image_loaded(page, styled)
    await expect(styled.locator(".reply-line")).to_have_text("Alice used /style")

    # Audio the bot posts plays in the page (<audio>, decoded by Chromium).
    channel = bot.get_channel(standin.channel_id)
    assert isinstance(channel, discord.TextChannel)
    await channel.send("a short tone", file=discord.File(io.BytesIO(tone_ogg()), "tone.ogg"))
    audio = (await new_message(page, before, "a short tone")).locator("audio")
    await expect(audio).to_be_visible(timeout=WAIT_MS)
    await page.wait_for_function(
        "a => a.readyState >= 1 && a.duration > 0.4",
        arg=await audio.element_handle(),
        timeout=WAIT_MS,
    )

    await result.scroll_into_view_if_needed()
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "playground.png")
    assert (ARTIFACTS / "playground.png").stat().st_size > 10_000
    assert not errors, errors
    await page.close()

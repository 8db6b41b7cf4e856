"""End to end: /challenge through the stand-in with a real bot, a real database and a clock
that the tests move by hand.

The life cycle (start, submit, vote, close, winners), 50 concurrent votes on SQLite and
PostgreSQL, a restart mid-voting and downtime through the deadline, permission checks on
the bot's side, and bad input, each answered with a clear ephemeral message.
"""

from __future__ import annotations

import asyncio
import io
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from PIL import Image

from bot.app import AtelierBot
from bot.clock import ManualClock
from bot.stack import running_bot
from bot.standin import DiscordStandIn, InteractionHandle, StandInMessage
from deploy.triton import LocalTriton
from tests.helpers import make_settings
from tests.postgres import fresh_postgres_url

HOUR = timedelta(hours=1)
NO_TRITON = "127.0.0.1:9"  # these tests need no model; the bot only logs that Triton is away


def image(colour: str, side: int = 64, kind: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(buffer, format=kind)
    return buffer.getvalue()


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest) -> str | None:
    """Each test runs on a SQLite file (None: the default) and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    return await fresh_postgres_url(request.getfixturevalue("postgres_server"))


@asynccontextmanager
async def challenge_bot(
    standin: DiscordStandIn,
    state: Path,
    clock: ManualClock,
    database_url: str | None,
    triton_url: str = NO_TRITON,
) -> AsyncIterator[AtelierBot]:
    """The real bot on its own database, with `clock` for the challenge deadlines."""
    config = make_settings(state, triton_url=triton_url)
    config = config.model_copy(update={"database_url": database_url})
    async with running_bot(config, standin.token, guild_ready_timeout=0.1, clock=clock) as bot:
        yield bot


async def reply(handle: InteractionHandle) -> str:
    """The ephemeral answer to an interaction."""
    message = await handle.wait_for(lambda m: m.ephemeral and not m.deferred, timeout=30)
    return message.content


async def run(standin: DiscordStandIn, command: str, user: str, **options: object) -> str:
    files = {k: v for k, v in options.items() if isinstance(v, tuple)}
    values = {k: v for k, v in options.items() if not isinstance(v, tuple)}
    return await reply(await standin.invoke(command, values, user=user, attachments=files))


async def start(standin: DiscordStandIn, theme: str, **options: object) -> None:
    options = {"submission_hours": 1.0, "voting_hours": 1.0, **options}
    answer = await run(standin, "challenge start", "admin", theme=theme, **options)
    assert "started" in answer, answer
    await channel_message(standin, f"New art challenge: “{theme}”")


async def submit(
    standin: DiscordStandIn, theme: str, user: str, data: bytes
) -> tuple[int, StandInMessage]:
    """Submit a PNG as `user` to the challenge on `theme`; the entry's number and its post."""
    answer = await run(standin, "challenge submit", user, image=("art.png", data, "image/png"))
    match = re.search(r"Entry #(\d+) is in", answer)
    assert match, answer
    number = int(match[1])
    return number, await channel_message(standin, f"**Entry #{number}** · “{theme}”")


async def channel_message(standin: DiscordStandIn, text: str) -> StandInMessage:
    return await standin.wait_for_message(lambda m: text in m.content and not m.ephemeral, 30)


def button(message: StandInMessage, action: str) -> str:
    for row in message.components:
        for component in row["components"]:
            if component["custom_id"].split(":")[2] == action:
                return component["custom_id"]
    raise KeyError(f"no {action} button in {message.components}")


async def vote(standin: DiscordStandIn, message: StandInMessage, user: str, action: str = "vote"):
    return await reply(await standin.click(message, button(message, action), user=user))


def members(standin: DiscordStandIn, count: int) -> list[str]:
    """`count` new members with only @everyone's permissions."""
    prefix = secrets.token_hex(3)
    return [standin.add_member(f"m{prefix}{i}")["username"] for i in range(count)]


async def test_life_cycle(
    standin: DiscordStandIn, tmp_path: Path, database_url: str | None
) -> None:
    clock = ManualClock()
    theme = "lanterns " + secrets.token_hex(3)
    alice, bob = (standin.users[n]["id"] for n in ("alice", "bob"))
    carol, dave = members(standin, 2)
    async with challenge_bot(standin, tmp_path, clock, database_url):
        await start(standin, theme)
        red, blue = image("red"), image("blue", kind="JPEG")
        a, a_post = await submit(standin, theme, "alice", red)
        b, b_post = await submit(standin, theme, "bob", blue)
        # Anonymous in the gallery, with the submitted bytes as they came.
        assert alice not in a_post.content and bob not in b_post.content
        assert standin.attachment_bytes(a_post.attachments[0]) == red
        assert "Voting opens" in await vote(standin, a_post, "bob")

        await clock.advance(HOUR)
        await channel_message(standin, f"Voting is open for “{theme}”**: 2 entries")
        assert "counts" in await vote(standin, a_post, "bob")
        assert "already voted" in await vote(standin, a_post, "bob")
        assert "your own entry" in await vote(standin, a_post, "alice")
        assert "counts" in await vote(standin, a_post, carol)
        assert "counts" in await vote(standin, b_post, dave)
        assert "counts" in await vote(standin, b_post, carol)
        assert "taken back" in await vote(standin, b_post, carol, "unvote")
        secret = await run(standin, "challenge leaderboard", "bob")
        assert "secret" in secret and "2 entries" in secret
        late = await run(standin, "challenge submit", "bob", image=("x.png", red, "image/png"))
        assert "closed" in late

        await clock.advance(HOUR)
        results = await channel_message(standin, f"“{theme}”: the winners")
    assert f"🥇 Entry #{a} by <@{alice}> · 2 votes" in results.content
    assert f"🥈 Entry #{b} by <@{bob}> · 1 vote" in results.content
    assert [standin.attachment_bytes(f) for f in results.attachments] == [red, blue]
    revealed = standin.message(a_post.id)
    assert f"by <@{alice}>" in revealed.content and "2 votes" in revealed.content
    assert not revealed.components  # no more voting


async def test_leaderboard_after_close_and_info(
    standin: DiscordStandIn, tmp_path: Path, database_url: str | None
) -> None:
    clock = ManualClock()
    theme = "teacups " + secrets.token_hex(3)
    async with challenge_bot(standin, tmp_path, clock, database_url):
        await start(standin, theme, max_entries=2)
        first, post = await submit(standin, theme, "alice", image("green"))
        second, _ = await submit(standin, theme, "alice", image("yellow"))
        info = await run(standin, "challenge info", "alice")
        assert "submissions open" in info and f"#{first}, #{second}" in info
        assert "withdrawn" in await run(standin, "challenge withdraw", "alice", entry=second)
        await clock.advance(HOUR)
        await channel_message(standin, f"Voting is open for “{theme}”**: 1 entry")
        assert "counts" in await vote(standin, post, "bob")
        await clock.advance(HOUR)
        await channel_message(standin, f"“{theme}”: the winners")
        handle = await standin.invoke("challenge leaderboard", {}, user="bob")
        board = await handle.wait_for(lambda m: not m.deferred, timeout=30)
    assert not board.ephemeral
    assert f"1. Entry #{first} · <@{standin.users['alice']['id']}> · 1 vote" in board.content
    assert f"#{second}" not in board.content


async def test_fifty_concurrent_votes(
    standin: DiscordStandIn, tmp_path: Path, database_url: str | None
) -> None:
    """50 members press 🗳️ at once, 10 of them twice: each counts once, the rest are told."""
    clock = ManualClock()
    theme = "islands " + secrets.token_hex(3)
    voters = members(standin, 50)
    async with challenge_bot(standin, tmp_path, clock, database_url):
        await start(standin, theme)
        number, post = await submit(standin, theme, "alice", image("purple"))
        await clock.advance(HOUR)
        await channel_message(standin, f"Voting is open for “{theme}”")
        pressers = voters + voters[:10]
        vote_id = button(post, "vote")
        handles = await asyncio.gather(*(standin.click(post, vote_id, user=u) for u in pressers))
        answers = await asyncio.gather(*(reply(h) for h in handles))
        await clock.advance(HOUR)
        results = await channel_message(standin, f"“{theme}”: the winners")
    assert sum("counts" in a for a in answers) == 50
    assert sum("already voted" in a for a in answers) == 10
    assert f"Entry #{number} by <@{standin.users['alice']['id']}> · 50 votes" in results.content


async def test_restart_mid_voting_and_downtime_through_the_deadline(
    standin: DiscordStandIn, tmp_path: Path, database_url: str | None
) -> None:
    clock = ManualClock()
    theme = "restarts " + secrets.token_hex(3)
    async with challenge_bot(standin, tmp_path, clock, database_url):
        await start(standin, theme)
        _, post = await submit(standin, theme, "alice", image("orange"))
        await clock.advance(HOUR)
        await channel_message(standin, f"Voting is open for “{theme}”")
        assert "counts" in await vote(standin, post, "bob")

    async with challenge_bot(
        standin, tmp_path, clock, database_url
    ):  # restarted: the button still works
        assert "already voted" in await vote(standin, post, "bob")
        assert "counts" in await vote(standin, post, "admin")

    await clock.advance(2 * HOUR)  # the deadline passes while the bot is down
    async with challenge_bot(standin, tmp_path, clock, database_url) as bot:
        results = await channel_message(standin, f"“{theme}”: the winners")
        assert "2 votes" in results.content
        scheduler = bot.get_cog("Challenges").scheduler  # type: ignore[union-attr]
        assert await scheduler.catch_up() == []  # nothing left to announce
    announced = [m for m in standin.messages if f"“{theme}”: the winners" in m.content]
    assert len(announced) == 1
    openings = [m for m in standin.messages if f"Voting is open for “{theme}”" in m.content]
    assert len(openings) == 1


async def test_moderation_needs_manage_server(
    standin: DiscordStandIn, tmp_path: Path, database_url: str | None
) -> None:
    """Members without Manage Server can't start, remove or cancel; the bot checks itself."""
    clock = ManualClock()
    theme = "permissions " + secrets.token_hex(3)
    async with challenge_bot(standin, tmp_path, clock, database_url):
        refused = await run(standin, "challenge start", "alice", theme=theme)
        assert "Manage Server" in refused
        assert "no challenges yet" in await run(standin, "challenge info", "alice")

        await start(standin, theme)
        number, post = await submit(standin, theme, "bob", image("teal"))
        for command, options in (
            ("challenge remove", {"entry": number, "reason": "off topic"}),
            ("challenge cancel", {}),
        ):
            assert "Manage Server" in await run(standin, command, "alice", **options)
        assert not standin.message(post.id).deleted

        removed = await run(standin, "challenge remove", "admin", entry=number, reason="off topic")
        assert f"Entry #{number} was removed" in removed and "by direct message" in removed
        assert post.deleted
        (dm,) = [m for m in standin.direct_messages("bob") if theme in m.content]
        assert f"entry #{number}" in dm.content and "off topic" in dm.content

        (shy,) = members(standin, 1)  # DMs closed: the reason goes to the channel instead
        standin.close_dms(shy)
        number, _ = await submit(standin, theme, shy, image("navy"))
        removed = await run(standin, "challenge remove", "admin", entry=number, reason="blurry")
        assert "in the challenge channel" in removed
        shy_id = standin.users[shy]["id"]
        notice = await channel_message(standin, f"<@{shy_id}> Your entry #{number}")
        assert "blurry" in notice.content

        assert "cancelled" in await run(standin, "challenge cancel", "admin")
        await channel_message(standin, f"“{theme}” was cancelled")


async def test_bad_input_gets_clear_answers(
    standin: DiscordStandIn, tmp_path: Path, database_url: str | None
) -> None:
    clock = ManualClock()
    theme = "bad input " + secrets.token_hex(3)
    async with challenge_bot(standin, tmp_path, clock, database_url):
        assert "no challenge running" in await run(
            standin, "challenge submit", "alice", image=("a.png", image("red"), "image/png")
        )
        await start(standin, theme)
        cases = {
            "isn't an image I can use": ("notes.png", b"hello, not a picture", "image/png"),
            "at most 10.0 MiB": ("huge.png", b"\0" * (10 * 2**20 + 1), "image/png"),
            "at most 8192 px a side": ("wide.png", wide_png(), "image/png"),
            "is BMP": ("old.bmp", image("red", kind="BMP"), "image/bmp"),
        }
        for expected, upload in cases.items():
            answer = await run(standin, "challenge submit", "alice", image=upload)
            assert expected in answer and "job `" in answer, answer
        neither = await run(standin, "challenge submit", "alice")
        assert "either an `image` or the `job`" in neither
        assert "no Atelier job" in await run(standin, "challenge submit", "alice", job="abc123")
        assert "no entry #999999" in await run(standin, "challenge withdraw", "bob", entry=999999)
        await submit(standin, theme, "alice", image("red"))
        second = await run(
            standin, "challenge submit", "alice", image=("b.png", image("blue"), "image/png")
        )
        assert "the limit is 1" in second
        await clock.advance(HOUR)
        await channel_message(standin, f"Voting is open for “{theme}”")
        late = await run(
            standin, "challenge submit", "bob", image=("c.png", image("red"), "image/png")
        )
        assert "closed" in late


def wide_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (9000, 40)).save(buffer, format="PNG")
    return buffer.getvalue()


async def test_submit_an_atelier_image_by_job_id(
    standin: DiscordStandIn, tmp_path: Path, database_url: str | None, triton: LocalTriton
) -> None:
    clock = ManualClock()
    theme = "seeds " + secrets.token_hex(3)
    async with challenge_bot(standin, tmp_path, clock, database_url, triton.grpc_url):
        await start(standin, theme)
        made = await (await standin.invoke("imagine", {"seed": 5})).wait_for(
            lambda m: not m.deferred and bool(m.attachments), timeout=60
        )
        job = re.search(r"job `([0-9a-f]+)`", made.content)[1]  # type: ignore[index]
        assert "no Atelier job" in await run(standin, "challenge submit", "bob", job=job)
        answer = await run(standin, "challenge submit", "alice", job=job)
        number = int(re.search(r"Entry #(\d+) is in", answer)[1])  # type: ignore[index]
        post = await channel_message(standin, f"**Entry #{number}** · “{theme}”")
        suggestion = await run(standin, "challenge theme", "bob", source="seeds")
    generated = standin.attachment_bytes(made.attachments[0])
    assert standin.attachment_bytes(post.attachments[0]) == generated
    assert "`5`" in suggestion

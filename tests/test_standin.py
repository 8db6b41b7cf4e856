"""The Discord stand-in against a real discord.py client (a tiny bot defined here)."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import AsyncIterator

import aiohttp
import discord
import discord.gateway
import discord.http
import pytest
import pytest_asyncio
import yarl
from discord import app_commands
from discord.ext import commands
from PIL import Image

from bot.standin import DiscordStandIn, InteractionHandle, StandInMessage, point_discord_py_at
from bot.standin.responses import Responder
from bot.standin.state import StandInState
from bot.standin.wire import DiscordError

FILE_BYTES = bytes(range(256)) * 8
WAIT = 10.0


def png_bytes(width: int = 3, height: int = 2) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


# the tiny bot under test


@app_commands.command(name="render", description="Defer, then follow up with a file.")
async def render(interaction: discord.Interaction, text: str) -> None:
    await interaction.response.defer(thinking=True)
    file = discord.File(io.BytesIO(FILE_BYTES), filename="render.bin")
    await interaction.followup.send(f"rendered {text}", file=file)


@app_commands.command(name="secret", description="Answer ephemerally.")
async def secret(interaction: discord.Interaction) -> None:
    await interaction.response.send_message("only you can see this", ephemeral=True)


@app_commands.command(name="measure", description="Read an attachment and report its size.")
async def measure(interaction: discord.Interaction, image: discord.Attachment) -> None:
    data = await image.read()
    digest = hashlib.sha256(data).hexdigest()[:12]
    await interaction.response.send_message(f"{image.filename}: {len(data)} bytes {digest}")


class BumpView(discord.ui.View):
    @discord.ui.button(label="Bump", custom_id="bump")
    async def bump(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.edit_message(content="bumped", view=None)


@app_commands.command(name="counter", description="A message with a button.")
async def counter(interaction: discord.Interaction) -> None:
    response = await interaction.response.send_message("count 0", view=BumpView())
    assert isinstance(interaction.client, TinyBot) and response is not None
    interaction.client.response_message_ids.put_nowait(response.message_id)


@app_commands.command(name="announce", description="Post to the channel.")
async def announce(interaction: discord.Interaction, text: str) -> None:
    await interaction.response.send_message("posting", ephemeral=True)
    channel = interaction.client.get_channel(interaction.channel_id or 0)
    assert isinstance(channel, discord.TextChannel)
    await channel.send(text, file=discord.File(io.BytesIO(b"notes"), filename="notes.txt"))


@app_commands.command(name="paint", description="Paint in a colour (autocomplete).")
async def paint(interaction: discord.Interaction, colour: str, size: int = 1) -> None:
    await interaction.response.send_message(f"painted {colour} x{size}")


@paint.autocomplete("colour")
async def paint_colours(
    interaction: discord.Interaction, current: str
) -> list[app_commands.Choice[str]]:
    size = interaction.namespace.size or 1
    names = [n for n in ("crimson", "cobalt", "cream", "umber") if n.startswith(current)]
    return [app_commands.Choice(name=f"{name} x{size}", value=name) for name in names]


challenge = app_commands.Group(name="challenge", description="Challenges.")


@challenge.command(name="submit", description="Submit an entry.")
async def submit(interaction: discord.Interaction, entry: str, score: int) -> None:
    await interaction.response.send_message(f"{entry}:{score}")


class TinyBot(commands.Bot):
    """A minimal bot; `guild_id` set means it also syncs its commands to that guild."""

    def __init__(self, guild_id: int | None = None) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.default(),
            guild_ready_timeout=0.1,
        )
        self.sync_guild_id = guild_id
        self.ready = asyncio.Event()
        self.response_message_ids: asyncio.Queue[int | None] = asyncio.Queue()

    async def setup_hook(self) -> None:
        for command in (render, secret, measure, counter, announce, paint, challenge):
            self.tree.add_command(command)
        await self.tree.sync()
        if self.sync_guild_id is not None:
            guild = discord.Object(self.sync_guild_id)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)

    async def on_ready(self) -> None:
        self.ready.set()


class Harness:
    """The stand-in plus the currently running bot."""

    def __init__(self, standin: DiscordStandIn) -> None:
        self.standin = standin
        self.bot = TinyBot()
        self.task: asyncio.Task[None] | None = None

    async def start_bot(self, bot: TinyBot) -> None:
        self.bot = bot
        self.task = asyncio.create_task(bot.start(self.standin.token))
        ready = asyncio.create_task(bot.ready.wait())
        done, _ = await asyncio.wait(
            {self.task, ready}, timeout=WAIT, return_when=asyncio.FIRST_COMPLETED
        )
        if ready not in done:
            ready.cancel()
            if self.task in done:
                self.task.result()
            raise TimeoutError("the bot did not become ready")

    async def stop_bot(self) -> None:
        await self.bot.close()
        if self.task is not None:
            await asyncio.wait_for(self.task, WAIT)


@pytest_asyncio.fixture(scope="module")
async def harness() -> AsyncIterator[Harness]:
    saved = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    standin = DiscordStandIn()
    await standin.start()
    standin.point_discord_py_here()
    harness = Harness(standin)
    try:
        await harness.start_bot(TinyBot())
        yield harness
    finally:
        await harness.stop_bot()
        await standin.stop()
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# tests


def test_canary_attributes_exist() -> None:
    assert isinstance(discord.http.Route.BASE, str)
    assert isinstance(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY, yarl.URL)


@pytest.mark.parametrize(
    ("owner", "attribute"),
    [(discord.http.Route, "BASE"), (discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY")],
)
def test_canary_raises_clear_error(monkeypatch: pytest.MonkeyPatch, owner, attribute) -> None:
    before = discord.http.Route.BASE if attribute != "BASE" else None
    monkeypatch.delattr(owner, attribute)
    with pytest.raises(RuntimeError, match=attribute):
        point_discord_py_at("http://127.0.0.1:1/api/v10", "ws://127.0.0.1:1/gateway")
    if before is not None:
        assert before == discord.http.Route.BASE  # nothing was half-applied


async def test_login_ready_and_sync(harness: Harness) -> None:
    standin, bot = harness.standin, harness.bot
    assert bot.ready.is_set()
    assert bot.user is not None and bot.user.id == standin.application_id
    guild = bot.get_guild(standin.guild_id)
    assert guild is not None and guild.owner_id == int(standin.users["admin"]["id"])
    channel = bot.get_channel(standin.channel_id)
    assert isinstance(channel, discord.TextChannel) and channel.name == "atelier"
    await standin.wait_for_commands(timeout=WAIT)
    assert standin.sync_count >= 1
    names = {command["name"] for command in standin.commands}
    assert {"render", "secret", "measure", "counter", "announce", "challenge"} <= names
    paths = [(r.method, r.path) for r in standin.requests]
    assert ("GET", "/api/v10/users/@me") in paths
    assert ("GET", "/api/v10/oauth2/applications/@me") in paths


async def test_deferred_followup_fills_placeholder_with_file(harness: Harness) -> None:
    handle = await harness.standin.invoke("render", {"text": "cat"})
    ack = await handle.acknowledged(timeout=3)
    assert ack["type"] == 5
    assert ack["at"] - handle.created_at < 3
    message = await handle.next_message(timeout=WAIT)
    assert message.content == "rendered cat"
    assert message.files == [("render.bin", FILE_BYTES)]
    assert handle.original is message and not message.deferred
    assert harness.standin.attachment_bytes(message.attachments[0]) == FILE_BYTES
    assert message.raw["interaction_metadata"]["id"] == str(handle.id)


async def test_cdn_serves_uploaded_bytes(harness: Harness, http: aiohttp.ClientSession) -> None:
    attachment = harness.standin.upload("x.png", png_bytes(5, 4), "image/png")
    assert (attachment["width"], attachment["height"]) == (5, 4)
    async with http.get(attachment["url"]) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/png"
        assert await response.read() == png_bytes(5, 4)


async def test_ephemeral_direct_response(harness: Harness) -> None:
    handle = await harness.standin.invoke("secret", user="bob")
    message = await handle.next_message(timeout=WAIT)
    assert handle.callbacks[0]["type"] == 4
    assert message.flags & 64 and message.ephemeral
    assert message.content == "only you can see this"
    assert message.raw["interaction_metadata"]["user"]["username"] == "bob"


async def test_attachment_option_round_trip(harness: Harness) -> None:
    data = png_bytes()
    handle = await harness.standin.invoke(
        "measure", attachments={"image": ("pic.png", data, "image/png")}
    )
    message = await handle.next_message(timeout=WAIT)
    digest = hashlib.sha256(data).hexdigest()[:12]
    assert message.content == f"pic.png: {len(data)} bytes {digest}"


async def test_invalid_options_are_refused(harness: Harness) -> None:
    standin = harness.standin
    with pytest.raises(KeyError, match="no option"):
        await standin.invoke("render", {"text": "a", "colour": "red"})
    with pytest.raises(ValueError, match="requires option 'text'"):
        await standin.invoke("render")
    with pytest.raises(ValueError, match="takes an integer"):
        await standin.invoke("challenge submit", {"entry": "a", "score": "3"})
    with pytest.raises(ValueError, match="needs a subcommand"):
        await standin.invoke("challenge")
    with pytest.raises(ValueError, match="attachments="):
        await standin.invoke("measure", {"image": "pic.png"})


async def test_subcommand(harness: Harness) -> None:
    handle = await harness.standin.invoke("challenge submit", {"entry": "owl", "score": 7})
    message = await handle.next_message(timeout=WAIT)
    assert message.content == "owl:7"


async def test_button_click_updates_message(harness: Harness) -> None:
    standin = harness.standin
    handle = await standin.invoke("counter")
    message = await handle.next_message(timeout=WAIT)
    assert message.components[0]["components"][0]["custom_id"] == "bump"
    # discord.py stores the view under the message id it read from the with_response body;
    # waiting for the bot to have it also keeps the click from racing that bookkeeping.
    seen = await asyncio.wait_for(harness.bot.response_message_ids.get(), WAIT)
    assert seen == message.id
    with pytest.raises(KeyError, match="bump"):
        await standin.click(message, "nope")
    click = await standin.click(message, "bump", user="bob")
    assert (await click.acknowledged(timeout=3))["type"] == 7
    updated = await click.next_message(timeout=WAIT)
    assert updated is message
    assert message.content == "bumped" and message.components == []


async def test_channel_send_with_file(harness: Harness) -> None:
    standin = harness.standin
    await standin.invoke("announce", {"text": "hello channel"})
    posted = await standin.wait_for_message(
        lambda m: m.interaction_id is None and m.content == "hello channel", timeout=WAIT
    )
    assert posted.files == [("notes.txt", b"notes")]
    assert posted.attachments[0]["content_type"].startswith("text/plain")
    assert posted.raw["type"] == 0 and "webhook_id" not in posted.raw
    path = f"/api/v10/channels/{standin.channel_id}/messages"
    sent = [r for r in standin.requests if r.method == "POST" and r.path == path]
    assert sent and sent[-1].files[0][2] == b"notes" and sent[-1].status == 200


async def test_double_acknowledge_is_refused(harness: Harness, http: aiohttp.ClientSession) -> None:
    standin = harness.standin
    handle = await standin.invoke("secret")
    await handle.acknowledged(timeout=3)
    url = f"{standin.api_base}/interactions/{handle.id}/{handle.token}/callback"
    body = {"type": 4, "data": {"content": "again"}}
    async with http.post(url, json=body, params={"with_response": "1"}) as response:
        assert response.status == 400
        assert response.headers["Content-Type"] == "application/json"
        assert (await response.json())["code"] == 40060
    assert len(handle.callbacks) == 1


async def test_expired_token_refuses_followups(
    harness: Harness, http: aiohttp.ClientSession
) -> None:
    standin = harness.standin
    handle = await standin.invoke("secret")
    await handle.next_message(timeout=WAIT)
    handle.expire()
    url = f"{standin.api_base}/webhooks/{standin.application_id}/{handle.token}"
    async with http.post(url, json={"content": "late"}, params={"wait": "true"}) as response:
        assert response.status == 401
        assert (await response.json())["code"] == 50027


async def test_gateway_resume_replays_missed_events(harness: Harness) -> None:
    standin, bot = harness.standin, harness.bot
    resumed = asyncio.Event()

    async def on_resumed() -> None:
        resumed.set()

    bot.add_listener(on_resumed)
    assert bot.ws is not None
    await bot.ws.socket.close(code=4000)  # an unclean drop: discord.py RESUMEs
    handle = await standin.invoke("challenge submit", {"entry": "late", "score": 1})
    message = await handle.next_message(timeout=WAIT)
    assert message.content == "late:1"
    await asyncio.wait_for(resumed.wait(), WAIT)
    bot.remove_listener(on_resumed)


async def test_json_content_type_and_errors(harness: Harness, http: aiohttp.ClientSession) -> None:
    standin = harness.standin
    auth = {"Authorization": f"Bot {standin.token}"}
    async with http.get(f"{standin.api_base}/users/@me", headers=auth) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        assert (await response.json())["id"] == str(standin.application_id)
    async with http.get(f"{standin.api_base}/no/such/route", headers=auth) as response:
        assert response.status == 404
        assert response.headers["Content-Type"] == "application/json"
    assert standin.requests[-1].path == "/api/v10/no/such/route"
    assert standin.requests[-1].status == 404
    async with http.get(f"{standin.api_base}/users/@me") as response:
        assert response.status == 401


async def test_unknown_command_and_bot_restart(harness: Harness) -> None:
    standin = harness.standin
    with pytest.raises(KeyError, match="unknown command /nope"):
        await standin.invoke("nope")
    syncs = standin.sync_count
    await harness.stop_bot()
    await harness.start_bot(TinyBot(guild_id=standin.guild_id))
    assert standin.sync_count >= syncs + 2
    assert {c["name"] for c in standin.guild_commands} >= {"render", "secret"}
    handle = await standin.invoke("secret")
    message = await handle.next_message(timeout=WAIT)
    assert message.content == "only you can see this"


async def test_control_api_invoke(harness: Harness, http: aiohttp.ClientSession) -> None:
    base = harness.standin.base_url
    body = {"command": "render", "options": {"text": "dog"}, "user": "admin"}
    async with http.post(f"{base}/_standin/invoke", json=body) as response:
        assert response.status == 200
        result = await response.json()
    assert not result["timed_out"]
    [message] = result["messages"]
    assert message["content"] == "rendered dog"
    async with http.get(message["attachments"][0]["url"]) as response:
        assert await response.read() == FILE_BYTES
    async with http.get(f"{base}/_standin/messages") as response:
        assert message["id"] in {m["id"] for m in await response.json()}
    async with http.get(f"{base}/_standin/commands") as response:
        assert "render" in {c["name"] for c in await response.json()}
    async with http.post(f"{base}/_standin/invoke", json={"command": "nope"}) as response:
        assert response.status == 400
        assert "unknown command" in (await response.json())["error"]


def test_message_is_plain_data() -> None:
    message = StandInMessage(id=1, channel_id=2, flags=64)
    assert message.ephemeral and not message.deferred


async def test_new_members_and_direct_messages(harness: Harness) -> None:
    """A member added later can invoke commands; the bot can DM members unless they closed DMs."""
    standin, bot = harness.standin, harness.bot
    erin = standin.add_member("erin")
    handle = await standin.invoke("render", {"text": "hi"}, user="erin")
    assert (await handle.acknowledged(timeout=WAIT))["type"] in (4, 5)
    assert handle.user["id"] == erin["id"]

    user = await bot.fetch_user(int(erin["id"]))
    assert user.name == "erin"
    sent = await user.send("hello erin")
    assert isinstance(sent.channel, discord.DMChannel) and sent.guild is None
    assert [m.content for m in standin.direct_messages("erin")] == ["hello erin"]
    standin.close_dms("erin")
    with pytest.raises(discord.Forbidden):
        await user.send("again")
    with pytest.raises(discord.NotFound):
        await bot.fetch_user(123)


async def test_autocomplete_round_trip(harness: Harness, http: aiohttp.ClientSession) -> None:
    """A type-4 interaction with the focused option's text; the bot answers with type 8."""
    standin = harness.standin
    choices = await standin.autocomplete("paint", {"colour": "c", "size": 2}, "colour", user="bob")
    assert choices == [
        {"name": "crimson x2", "value": "crimson"},
        {"name": "cobalt x2", "value": "cobalt"},
        {"name": "cream x2", "value": "cream"},
    ]
    assert await standin.autocomplete("paint", {}, "colour") == [
        {"name": f"{name} x1", "value": name} for name in ("crimson", "cobalt", "cream", "umber")
    ]
    callbacks = [r for r in standin.requests if r.path.endswith("/callback")]
    assert callbacks[-1].json["type"] == 8 and callbacks[-1].status in (200, 204)
    with pytest.raises(ValueError, match="no autocomplete"):
        await standin.autocomplete("paint", {}, "size")
    with pytest.raises(KeyError, match="no option"):
        await standin.autocomplete("paint", {}, "shade")
    # the message command itself still runs as usual
    message = await (await standin.invoke("paint", {"colour": "cream"})).next_message(timeout=WAIT)
    assert message.content == "painted cream x1"
    body = {"command": "paint", "focused": "colour", "options": {"colour": "u"}}
    async with http.post(f"{standin.base_url}/_standin/autocomplete", json=body) as response:
        assert response.status == 200
        assert await response.json() == {"choices": [{"name": "umber x1", "value": "umber"}]}


@pytest.mark.parametrize(
    ("kind", "data", "code"),
    [
        (2, {"choices": []}, "INTERACTION_RESPONSE_TYPE_INVALID"),  # not an autocomplete
        (4, {"choices": [{"name": "x", "value": "x"}] * 26}, "BASE_TYPE_MAX_LENGTH"),
        (4, {"choices": [{"value": "x"}]}, "BASE_TYPE_REQUIRED"),
        (4, {}, "BASE_TYPE_MAX_LENGTH"),
    ],
)
def test_autocomplete_callback_rules(kind: int, data: dict, code: str) -> None:
    """Choices answer only autocomplete interactions: at most 25, each with a name and value."""
    state = StandInState(attachment_size_limit=1024, ack_deadline=None)
    handle = InteractionHandle(
        interaction_id=state.ids.next(),
        kind=kind,
        user=state.world.users["alice"],
        channel_id=state.world.channel_id,
        changes=state.changes,
    )
    with pytest.raises(DiscordError) as raised:
        Responder(state).callback(handle, {"type": 8, "data": data}, [])
    assert raised.value.code == 50035 and code in str(raised.value.errors)
    assert not handle.callbacks
    answer = {"type": 8, "data": {"choices": [{"name": "a", "value": "a"}]}}
    if kind == 4:
        assert Responder(state).callback(handle, answer, [])["resource"] == {"type": 8}
        assert handle.callbacks[0]["data"] == answer["data"]


async def test_events_tell_listeners_of_every_change(harness: Harness) -> None:
    standin = harness.standin
    events: list[tuple[str, object]] = []
    unsubscribe = standin.subscribe(lambda event, subject: events.append((event, subject)))
    handle = await standin.invoke("render", {"text": "ev"})
    message = await handle.next_message(timeout=WAIT)
    unsubscribe()
    await (await standin.invoke("secret")).next_message(timeout=WAIT)
    names = [event for event, subject in events if subject in (handle, message)]
    assert names == [
        "interaction_create",
        "message_create",  # the "thinking…" placeholder
        "interaction_callback",
        "message_update",  # filled by the followup
    ]
    assert all(subject in (handle, message) for _, subject in events)


async def test_playground_socket_is_live_and_private(
    harness: Harness, http: aiohttp.ClientSession
) -> None:
    """The page's socket: hello + snapshot, then live messages; others' ephemerals never."""
    standin = harness.standin
    async with http.get(standin.playground_url) as response:
        assert response.status == 200 and "playground" in await response.text()
    async with http.get(f"{standin.playground_url}/static/secret.py") as response:
        assert response.status == 404
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await http.ws_connect(f"{standin.playground_url}/ws", origin="http://example.com")
    async with http.ws_connect(f"{standin.playground_url}/ws?user=bob") as ws:
        hello, snapshot = await ws.receive_json(), await ws.receive_json()
        assert hello["type"] == "hello" and hello["viewer"] == "bob"
        managers = {u["name"]: u["manage_server"] for u in hello["users"]}
        assert (managers["alice"], managers["bob"], managers["admin"]) == (False, False, True)
        assert "paint" in {c["name"] for c in hello["commands"]}
        assert snapshot["type"] == "snapshot"
        await (await standin.invoke("secret", user="alice")).next_message(timeout=WAIT)
        await ws.send_json({"op": "invoke", "ref": 1, "command": "secret"})
        await ws.send_json({"op": "autocomplete", "ref": 2, "command": "paint",
                            "options": {"colour": "um"}, "focused": "colour"})  # fmt: skip
        frames: list[dict] = []
        while not {"choices", "message"} <= {f["type"] for f in frames}:
            frames.append(await ws.receive_json(timeout=WAIT))
    kinds = [(f["type"], f.get("state") or f.get("ref")) for f in frames]
    assert ("interaction", "sent") in kinds and ("done", 1) in kinds
    [message] = [f["message"] for f in frames if f["type"] == "message"]
    assert message["content"] == "only you can see this" and message["flags"] & 64
    assert message["interaction_metadata"]["user"]["username"] == "bob"
    [choices] = [f for f in frames if f["type"] == "choices"]
    assert choices["ref"] == 2 and choices["choices"] == [{"name": "umber x1", "value": "umber"}]

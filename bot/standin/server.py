"""DiscordStandIn: a local Discord (REST, gateway, CDN) that a real discord.py client logs into."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .control import ControlApi
from .discordpy import point_discord_py_at
from .gateway import Gateway
from .interactions import (
    APPLICATION_COMMAND,
    APPLICATION_COMMAND_AUTOCOMPLETE,
    MESSAGE_COMPONENT,
    InteractionHandle,
    custom_ids,
    find_component,
    interaction_payload,
)
from .models import JSON, Listener, RecordedRequest, StandInMessage
from .options import InvocationBuilder
from .playground import Playground
from .rest import API_PREFIX, RestApi
from .state import StandInState
from .wire import DiscordError

BUTTON = 2
SELECTS = frozenset({3, 5, 6, 7, 8})
MAX_BODY = 512 * 1024 * 1024


class DiscordStandIn:
    """Serves Discord's protocol on 127.0.0.1 and sends slash commands and clicks to the bot.

    It knows nothing of the bot's commands beyond what the bot syncs, as Discord does.
    `ack_deadline` (seconds), if set, makes callbacks after it fail like Discord's 3 s limit.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        attachment_size_limit: int = 10 * 1024 * 1024,
        ack_deadline: float | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.token = "standin." + secrets.token_urlsafe(32)
        self._state = StandInState(
            attachment_size_limit=attachment_size_limit, ack_deadline=ack_deadline
        )
        state = self._state
        self._gateway = Gateway(state.world, state.changes, lambda: state.gateway_url)
        self._builder = InvocationBuilder(self._state.world, self.upload)
        self._runner: web.AppRunner | None = None

    # lifecycle

    async def start(self) -> None:
        """Bind and serve (port 0 picks a free port)."""
        rest = RestApi(self._state)
        app = web.Application(middlewares=[rest.middleware], client_max_size=MAX_BODY)
        app.add_routes([web.get("/gateway", self._gateway.handle), *rest.routes()])
        app.add_routes(ControlApi(self).routes())
        app.add_routes(Playground(self).routes())
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]
        self._state.base_url = f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        """Close every gateway connection and stop serving."""
        await self._gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DiscordStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # addresses

    @property
    def base_url(self) -> str:
        """`http://HOST:PORT`, once started."""
        self._require_started()
        return self._state.base_url

    @property
    def playground_url(self) -> str:
        """The playground page, `base_url + "/playground"`."""
        return self.base_url + "/playground"

    @property
    def api_base(self) -> str:
        """The REST base, `base_url + "/api/v10"`."""
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        """The gateway websocket URL, `ws://HOST:PORT/gateway`."""
        self._require_started()
        return self._state.gateway_url

    def _require_started(self) -> None:
        if not self._state.base_url:
            raise RuntimeError("the stand-in is not started; await start() first")

    def point_discord_py_here(self) -> None:
        """Make discord.py's REST and gateway defaults point at this stand-in."""
        point_discord_py_at(self.api_base, self.gateway_url)

    # the simulated world and what the bot did

    @property
    def application_id(self) -> int:
        return self._state.world.application_id

    @property
    def bot_user(self) -> JSON:
        return self._state.world.bot_user

    @property
    def guild_id(self) -> int:
        return self._state.world.guild_id

    @property
    def channel_id(self) -> int:
        """The text channel #atelier."""
        return self._state.world.channel_id

    @property
    def users(self) -> dict[str, JSON]:
        """Simulated members by short name: alice, bob, admin (owner, Administrator)."""
        return self._state.world.users

    def permissions(self, user: str) -> int:
        """A member's computed guild permissions (a bit field), by short name."""
        world = self._state.world
        return world.permissions(int(world.user(user)["id"]))

    def dm_recipient(self, channel_id: int) -> int | None:
        """The member a DM channel talks to; None for the guild's channel."""
        return self._state.world.dm_recipient(channel_id)

    def direct_messages(self, user: str) -> list[StandInMessage]:
        """The live messages the bot sent `user` (a short name) in their DMs."""
        world = self._state.world
        user_id = int(world.user(user)["id"])
        return [m for m in self.messages
                if not m.deleted and world.dm_recipient(m.channel_id) == user_id]  # fmt: skip

    def close_dms(self, user: str) -> None:
        """Make `user` refuse direct messages (Discord's 403 'Cannot send messages')."""
        self._state.world.closed_dms.add(int(self._state.world.user(user)["id"]))

    def add_member(self, name: str) -> JSON:
        """Add a member (only @everyone's permissions) who can then `invoke` and `click`."""
        return self._state.world.add_member(name)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every REST request the bot made, in order."""
        return self._state.requests

    @property
    def commands(self) -> list[JSON]:
        """The synced commands, guild ones first."""
        return self._state.commands.all

    @property
    def global_commands(self) -> list[JSON]:
        return self._state.commands.global_commands

    @property
    def guild_commands(self) -> list[JSON]:
        return self._state.commands.guild_commands

    @property
    def sync_count(self) -> int:
        """How many command-sync PUTs arrived."""
        return self._state.commands.sync_count

    @property
    def messages(self) -> list[StandInMessage]:
        """Every message the bot created, in order, edits applied (deleted ones flagged)."""
        return self._state.store.messages

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(event, subject)` on every change until the returned function is called.

        Events: message_create / message_update / message_delete (a StandInMessage),
        commands_sync (the command list), interaction_create / interaction_callback /
        interaction_failed (an InteractionHandle; failed: no bot was connected to receive it).
        Listeners run synchronously inside the stand-in; they must not block.
        """
        return self._state.events.subscribe(listener)

    def message(self, message_id: int) -> StandInMessage:
        """A message the bot created, by id; KeyError if unknown or deleted."""
        try:
            return self._state.store.get(message_id)
        except DiscordError:
            raise KeyError(f"no live message {message_id}") from None

    # waiting

    async def wait_until_ready(self, timeout: float = 10) -> None:
        """Wait until a client has identified and received READY and GUILD_CREATE."""
        await self._state.changes.wait(self._gateway.ready_session, timeout)

    async def wait_for_commands(self, timeout: float = 10) -> None:
        """Wait until at least one command-sync PUT has arrived."""
        await self._state.changes.wait(lambda: self.sync_count or None, timeout)

    async def wait_for_message(
        self, predicate: Callable[[StandInMessage], bool], timeout: float = 10
    ) -> StandInMessage:
        """The first live message (existing or future) that matches `predicate`."""

        def check() -> StandInMessage | None:
            return next((m for m in self.messages if not m.deleted and predicate(m)), None)

        return await self._state.changes.wait(check, timeout)

    # attachments

    def upload(self, filename: str, data: bytes, content_type: str) -> JSON:
        """Store a user's file; return its attachment object, served by the CDN route."""
        return self._state.store.store_file(
            self.channel_id, filename, data, content_type, enforce_limit=False
        )

    def attachment_bytes(self, attachment: JSON) -> bytes:
        """The bytes of an attachment the bot uploaded (or upload() stored)."""
        return self._state.store.attachment_bytes(attachment)

    # interactions

    async def invoke(
        self,
        command: str,
        options: dict[str, Any] | None = None,
        *,
        user: str = "alice",
        attachments: dict[str, tuple[str, bytes, str]] | None = None,
        enforce_limits: bool = True,
    ) -> InteractionHandle:
        """Run `/command` ("imagine", "group sub") as `user`, typed by the synced definition.

        Attachment options go in `attachments` as name -> (filename, bytes, content_type).
        Raises KeyError for an unknown command or option, ValueError for a bad value.
        `enforce_limits=False` sends out-of-range values as a rule-breaking client would.
        """
        name, *path = command.split() or [""]
        definition = self._state.commands.find(name)
        member = self._state.world.user(user)
        data = self._builder.build(
            definition, path, options or {}, attachments or {}, member, enforce_limits
        )
        handle = self._new_handle(APPLICATION_COMMAND, member, command=" ".join([name, *path]))
        await self._send(handle, data)
        return handle

    async def autocomplete(
        self,
        command: str,
        options: dict[str, Any],
        focused: str,
        *,
        user: str = "alice",
        timeout: float = 3,
    ) -> list[JSON]:
        """The choices the bot suggests while `user` types option `focused` of `/command`.

        Sends an APPLICATION_COMMAND_AUTOCOMPLETE interaction (type 4) whose focused option
        holds the text typed so far (`options[focused]`, "" if absent); the bot answers with
        a callback of type 8. TimeoutError if it does not within `timeout` s.
        """
        name, *path = command.split() or [""]
        definition = self._state.commands.find(name)
        member = self._state.world.user(user)
        data = self._builder.build(definition, path, options, {}, member, focused=focused)
        label = " ".join([name, *path])
        handle = self._new_handle(APPLICATION_COMMAND_AUTOCOMPLETE, member, command=label)
        await self._send(handle, data)
        return await handle.choices(timeout)

    async def click(
        self,
        message: StandInMessage | JSON,
        custom_id: str,
        *,
        user: str = "alice",
        values: list[str] | None = None,
    ) -> InteractionHandle:
        """Click the component `custom_id` on a message the bot sent (`values` for selects)."""
        if not isinstance(message, StandInMessage):
            message = self.message(int(message["id"]))
        component_type = _component_type(message, custom_id)
        data: JSON = {"custom_id": custom_id, "component_type": component_type}
        if component_type in SELECTS:
            data["values"] = list(values or [])
        member = self._state.world.user(user)
        handle = self._new_handle(MESSAGE_COMPONENT, member, target=message)
        await self._send(handle, data)
        return handle

    def _new_handle(self, kind: int, user: JSON, **extra: Any) -> InteractionHandle:
        return InteractionHandle(
            interaction_id=self._state.ids.next(),
            kind=kind,
            user=user,
            channel_id=self.channel_id,
            changes=self._state.changes,
            **extra,
        )

    async def _send(self, handle: InteractionHandle, data: JSON) -> None:
        """Register the interaction and send INTERACTION_CREATE to the bot."""
        limit = self._state.attachment_size_limit
        payload = interaction_payload(self._state.world, handle, data, limit)
        self._state.interactions[handle.id] = handle
        handle.mark_sent()
        self._state.events.emit("interaction_create", handle)
        try:
            await self._gateway.dispatch("INTERACTION_CREATE", payload)
        except RuntimeError:
            del self._state.interactions[handle.id]
            self._state.events.emit("interaction_failed", handle)
            raise


def _component_type(message: StandInMessage, custom_id: str) -> int:
    """The type of the component `custom_id` on `message` (a button if it has none)."""
    if not message.components:
        return BUTTON
    component = find_component(message.components, custom_id)
    if component is None:
        known = custom_ids(message.components)
        raise KeyError(f"message {message.id} has no component {custom_id!r}; it has {known}")
    if component.get("disabled"):
        raise ValueError(f"component {custom_id!r} on message {message.id} is disabled")
    return int(component["type"])

"""Discord's REST API (v10), as much of it as a discord.py bot uses, plus the CDN route."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from .interactions import InteractionHandle
from .models import RecordedRequest, StandInMessage
from .responses import Responder
from .state import StandInState
from .wire import BODY, DiscordError, invalid_form, json_response, read_body

_log = logging.getLogger(__name__)

API_PREFIX = "/api/v10"
UNAUTHENTICATED = ("/interactions/", "/webhooks/")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RestApi:
    """Route handlers for the REST API; every request under /api is recorded."""

    def __init__(self, state: StandInState) -> None:
        self._state = state
        self._responder = Responder(state)

    def routes(self) -> list[web.RouteDef]:
        """The REST and CDN routes."""
        api = API_PREFIX
        app = "/applications/{app_id}"
        hook = "/webhooks/{app_id}/{token}"
        channel = "/channels/{channel_id}"
        return [
            web.get(api + "/users/@me", self.current_user),
            web.get(api + "/oauth2/applications/@me", self.application),
            web.post(api + "/users/@me/channels", self.create_dm),
            web.get(api + "/users/{user_id}", self.get_user),
            web.get(api + "/gateway", self.gateway),
            web.get(api + "/gateway/bot", self.gateway_bot),
            web.get(api + app + "/commands", self.get_commands),
            web.put(api + app + "/commands", self.put_commands),
            web.get(api + app + "/guilds/{guild_id}/commands", self.get_commands),
            web.put(api + app + "/guilds/{guild_id}/commands", self.put_commands),
            web.post(api + "/interactions/{interaction_id}/{token}/callback", self.callback),
            web.post(api + hook, self.followup),
            web.get(api + hook + "/messages/{message}", self.get_webhook_message),
            web.patch(api + hook + "/messages/{message}", self.edit_webhook_message),
            web.delete(api + hook + "/messages/{message}", self.delete_webhook_message),
            web.get(api + channel, self.get_channel),
            web.post(api + channel + "/messages", self.create_channel_message),
            web.get(api + channel + "/messages/{message_id}", self.get_channel_message),
            web.patch(api + channel + "/messages/{message_id}", self.edit_channel_message),
            web.delete(api + channel + "/messages/{message_id}", self.delete_channel_message),
            web.post(api + channel + "/typing", self.typing),
            web.get("/attachments/{channel_id}/{attachment_id}/{filename}", self.cdn),
        ]

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Record API requests, check bot auth, and answer errors the way Discord does."""
        if not request.path.startswith("/api/"):
            return await handler(request)
        record = RecordedRequest(request.method, request.path, dict(request.query), None, [])
        self._state.requests.append(record)
        try:
            response = await self._handle(request, handler, record)
        except DiscordError as error:
            response = error.response()
        record.status = response.status
        await self._state.changes.notify()
        return response

    async def _handle(
        self, request: web.Request, handler: Handler, record: RecordedRequest
    ) -> web.StreamResponse:
        body = await read_body(request)
        request[BODY] = body
        record.json = body.json
        record.files = [(f.filename, f.content_type, f.data) for f in body.files]
        relative = request.path.removeprefix(API_PREFIX)
        if not relative.startswith(UNAUTHENTICATED) and not _has_bot_token(request):
            raise DiscordError(401, 0, "401: Unauthorized")
        try:
            return await handler(request)
        except web.HTTPException as error:
            _log.warning("stand-in has no route for %s %s", request.method, request.path)
            raise DiscordError(error.status, 0, f"{error.status}: {error.reason}") from None
        except DiscordError:
            raise
        except Exception:
            _log.exception("stand-in failed on %s %s", request.method, request.path)
            raise DiscordError(500, 0, "500: Internal Server Error") from None

    # login and gateway discovery

    async def current_user(self, request: web.Request) -> web.Response:
        """GET /users/@me."""
        return json_response({**self._state.world.bot_user, "verified": True, "mfa_enabled": False})

    async def application(self, request: web.Request) -> web.Response:
        """GET /oauth2/applications/@me."""
        return json_response(self._state.world.application())

    async def get_user(self, request: web.Request) -> web.Response:
        """GET /users/{id}."""
        try:
            return json_response(self._state.world.user(int(request.match_info["user_id"])))
        except (KeyError, ValueError):
            raise DiscordError(404, 10013, "Unknown User") from None

    async def create_dm(self, request: web.Request) -> web.Response:
        """POST /users/@me/channels {recipient_id}: the DM channel with a member."""
        try:
            recipient = int(request[BODY].payload.get("recipient_id", ""))
            return json_response(self._state.world.dm_channel(recipient))
        except (KeyError, ValueError):
            raise invalid_form("recipient_id", "USER_NOT_FOUND", "Unknown user.") from None

    async def gateway(self, request: web.Request) -> web.Response:
        """GET /gateway."""
        return json_response({"url": self._state.gateway_url})

    async def gateway_bot(self, request: web.Request) -> web.Response:
        """GET /gateway/bot (used by AutoShardedClient)."""
        limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
        payload = {"url": self._state.gateway_url, "shards": 1, "session_start_limit": limit}
        return json_response(payload)

    # application commands

    async def get_commands(self, request: web.Request) -> web.Response:
        """GET the global or guild command list."""
        self._check_app(request)
        commands = self._state.commands
        guild = self._is_guild_route(request)
        return json_response(commands.guild_commands if guild else commands.global_commands)

    async def put_commands(self, request: web.Request) -> web.Response:
        """PUT (bulk overwrite) the global or guild command list."""
        self._check_app(request)
        guild = self._is_guild_route(request)
        return json_response(self._state.commands.replace(request[BODY].json, guild=guild))

    # interactions

    async def callback(self, request: web.Request) -> web.Response:
        """POST /interactions/{id}/{token}/callback."""
        interaction_id = _snowflake(request.match_info["interaction_id"], 10062, "interaction")
        handle = self._state.interaction(interaction_id, request.match_info["token"])
        body = request[BODY]
        response = self._responder.callback(handle, body.payload, body.files)
        if request.query.get("with_response", "").lower() in ("1", "true"):
            return json_response(response)
        return web.Response(status=204)

    async def followup(self, request: web.Request) -> web.Response:
        """POST /webhooks/{app}/{token}: an interaction followup."""
        body = request[BODY]
        message = self._responder.followup(self._webhook(request), body.payload, body.files)
        if request.query.get("wait", "").lower() in ("1", "true"):
            return json_response(message.raw)
        return web.Response(status=204)

    async def get_webhook_message(self, request: web.Request) -> web.Response:
        """GET /webhooks/{app}/{token}/messages/{id|@original}."""
        message = self._responder.message(self._webhook(request), request.match_info["message"])
        return json_response(message.raw)

    async def edit_webhook_message(self, request: web.Request) -> web.Response:
        """PATCH /webhooks/{app}/{token}/messages/{id|@original}."""
        body = request[BODY]
        ref = request.match_info["message"]
        message = self._responder.edit(self._webhook(request), ref, body.payload, body.files)
        return json_response(message.raw)

    async def delete_webhook_message(self, request: web.Request) -> web.Response:
        """DELETE /webhooks/{app}/{token}/messages/{id|@original}."""
        self._responder.delete(self._webhook(request), request.match_info["message"])
        return web.Response(status=204)

    # channels

    async def get_channel(self, request: web.Request) -> web.Response:
        """GET /channels/{id}."""
        channel_id = self._channel_id(request)
        world = self._state.world
        recipient = world.dm_recipient(channel_id)
        return json_response(world.channel() if recipient is None else world.dm_channel(recipient))

    async def create_channel_message(self, request: web.Request) -> web.Response:
        """POST /channels/{id}/messages."""
        body = request[BODY]
        payload = body.payload
        message_type = 19 if payload.get("message_reference") else 0
        channel_id = self._channel_id(request)
        if self._state.world.dm_recipient(channel_id) in self._state.world.closed_dms:
            raise DiscordError(403, 50007, "Cannot send messages to this user")
        message = self._state.store.create(
            channel_id,
            payload,
            body.files,
            ephemeral_allowed=False,
            message_type=message_type,
        )
        return json_response(message.raw)

    async def get_channel_message(self, request: web.Request) -> web.Response:
        """GET /channels/{id}/messages/{id}."""
        return json_response(self._channel_message(request).raw)

    async def edit_channel_message(self, request: web.Request) -> web.Response:
        """PATCH /channels/{id}/messages/{id}."""
        message = self._channel_message(request)
        body = request[BODY]
        self._state.store.edit(message, body.payload, body.files)
        return json_response(message.raw)

    async def delete_channel_message(self, request: web.Request) -> web.Response:
        """DELETE /channels/{id}/messages/{id}."""
        self._state.store.delete(self._channel_message(request))
        return web.Response(status=204)

    async def typing(self, request: web.Request) -> web.Response:
        """POST /channels/{id}/typing."""
        self._channel_id(request)
        return web.Response(status=204)

    # CDN

    async def cdn(self, request: web.Request) -> web.Response:
        """GET /attachments/{channel}/{attachment}/{filename}: the attachment's bytes."""
        try:
            attachment_id = int(request.match_info["attachment_id"])
            content_type, data = self._state.store.blob(attachment_id)
        except (KeyError, ValueError):
            raise web.HTTPNotFound() from None
        return web.Response(body=data, headers={"Content-Type": content_type})

    # helpers

    def _check_app(self, request: web.Request) -> None:
        if request.match_info["app_id"] != str(self._state.world.application_id):
            raise DiscordError(404, 10002, "Unknown Application")

    def _is_guild_route(self, request: web.Request) -> bool:
        guild_id = request.match_info.get("guild_id")
        if guild_id is not None and guild_id != str(self._state.world.guild_id):
            raise DiscordError(404, 10004, "Unknown Guild")
        return guild_id is not None

    def _webhook(self, request: web.Request) -> InteractionHandle:
        app_id = _snowflake(request.match_info["app_id"], 10015, "webhook")
        return self._state.by_token(app_id, request.match_info["token"])

    def _channel_id(self, request: web.Request) -> int:
        """The guild's text channel or a DM channel; Discord's 404 otherwise."""
        world, text = self._state.world, request.match_info["channel_id"]
        if text == str(world.channel_id):
            return world.channel_id
        if text.isdigit() and world.dm_recipient(int(text)) is not None:
            return int(text)
        raise DiscordError(404, 10003, "Unknown Channel")

    def _channel_message(self, request: web.Request) -> StandInMessage:
        channel_id = self._channel_id(request)
        message_id = _snowflake(request.match_info["message_id"], 10008, "message")
        message = self._state.store.get(message_id)
        if message.channel_id != channel_id or message.ephemeral:
            raise DiscordError(404, 10008, "Unknown Message")
        return message


def _has_bot_token(request: web.Request) -> bool:
    return request.headers.get("Authorization", "").startswith("Bot ")


def _snowflake(text: str, code: int, what: str) -> int:
    if not text.isdigit():
        raise DiscordError(404, code, f"Unknown {what}")
    return int(text)

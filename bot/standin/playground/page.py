"""Routes of the playground: the page, its static files, and a WebSocket per open page.

The socket speaks small JSON frames. The page sends ops:
  {"op": "viewer", "user"}                                   play as another member
  {"op": "invoke", "ref", "command", "options", "attachments"}  run a slash command
  {"op": "click", "ref", "message_id", "custom_id", "values"?}  press a button / pick an option
  {"op": "autocomplete", "ref", "command", "options", "focused"}  ask the bot for choices
The server answers each op by `ref` ("done", "choices" or "error") and pushes "hello",
"snapshot", "commands", "message", "message_delete" and "interaction" frames as they happen.
Messages only their user may see (ephemeral ones, DMs) go to that user's pages only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from yarl import URL

from bot.standin.control import decode_attachments, require_loopback
from bot.standin.interactions import APPLICATION_COMMAND_AUTOCOMPLETE
from bot.standin.models import JSON, StandInMessage
from bot.standin.world import MANAGE_GUILD

if TYPE_CHECKING:
    from bot.standin.interactions import InteractionHandle
    from bot.standin.server import DiscordStandIn

_log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
FILES = {"app.js", "style.css", "index.html"}
MAX_FRAME = 64 * 1024 * 1024
INTERACTION_STATES = {
    "interaction_create": "sent",
    "interaction_callback": "acknowledged",
    "interaction_failed": "failed",
}


class Playground:
    """`/playground`: the page; `/playground/static/*`: its files; `/playground/ws`: live."""

    def __init__(self, standin: DiscordStandIn) -> None:
        self._standin = standin

    def routes(self) -> list[web.RouteDef]:
        """The playground routes."""
        return [
            web.get("/playground", self.page),
            web.get("/playground/static/{name}", self.static),
            web.get("/playground/ws", self.socket),
        ]

    async def page(self, request: web.Request) -> web.StreamResponse:
        """GET the page."""
        require_loopback(request)
        return web.FileResponse(STATIC / "index.html")

    async def static(self, request: web.Request) -> web.StreamResponse:
        """GET one of the page's files."""
        require_loopback(request)
        name = request.match_info["name"]
        if name not in FILES:
            raise web.HTTPNotFound()
        return web.FileResponse(STATIC / name)

    async def socket(self, request: web.Request) -> web.WebSocketResponse:
        """The page's live connection (from this page only: other sites' pages are refused)."""
        require_loopback(request)
        origin = request.headers.get("Origin")
        if origin and not _same_origin(URL(origin), request.url):
            raise web.HTTPForbidden(text="the playground socket serves its own page only")
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME, heartbeat=30)
        await ws.prepare(request)
        viewer = request.query.get("user", "alice")
        if viewer not in self._standin.users:
            viewer = "alice"
        await Connection(self._standin, ws, viewer).run()
        return ws


class Connection:
    """One open page: who it plays as, and a queue of frames for it."""

    def __init__(self, standin: DiscordStandIn, ws: web.WebSocketResponse, viewer: str) -> None:
        self._standin = standin
        self._ws = ws
        self._viewer = viewer
        self._outbox: asyncio.Queue[JSON] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def viewer_id(self) -> str:
        return str(self._standin.users[self._viewer]["id"])

    async def run(self) -> None:
        """Send hello and a snapshot, then serve ops until the page closes."""
        unsubscribe = self._standin.subscribe(self._on_event)
        sender = asyncio.create_task(self._send_loop())
        try:
            self._outbox.put_nowait(self._hello())
            self._outbox.put_nowait(self._snapshot())
            async for message in self._ws:
                if message.type is aiohttp.WSMsgType.TEXT:
                    self._start(message.data)
        finally:
            unsubscribe()
            for task in [*self._tasks, sender]:
                task.cancel()
            await asyncio.gather(*self._tasks, sender, return_exceptions=True)

    # pushing

    def _on_event(self, event: str, subject: Any) -> None:
        if event.startswith("message_"):
            self._on_message(event, subject)
        elif event == "commands_sync":
            self._outbox.put_nowait({"type": "commands", "commands": subject})
        elif event in INTERACTION_STATES:
            self._on_interaction(event, subject)

    def _on_message(self, event: str, message: StandInMessage) -> None:
        if not self._visible(message, include_deleted=True):
            return
        if event == "message_delete":
            self._outbox.put_nowait({"type": "message_delete", "id": str(message.id)})
        else:
            self._outbox.put_nowait({"type": "message", "message": self._view(message)})

    def _on_interaction(self, event: str, handle: InteractionHandle) -> None:
        """Commands and clicks of the viewer (autocomplete has no visible state)."""
        if handle.type == APPLICATION_COMMAND_AUTOCOMPLETE:
            return
        if str(handle.user["id"]) != self.viewer_id:
            return
        callback = handle.callbacks[-1] if handle.callbacks else None
        frame: JSON = {
            "type": "interaction",
            "id": str(handle.id),
            "kind": handle.type,
            "command": handle.command,
            "state": INTERACTION_STATES[event],
            "callback_type": callback["type"] if callback else None,
            "target_id": str(handle.target.id) if handle.target else None,
        }
        self._outbox.put_nowait(frame)

    async def _send_loop(self) -> None:
        while True:
            frame = await self._outbox.get()
            if self._ws.closed:
                return
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self._ws.send_str(json.dumps(frame))

    def _hello(self) -> JSON:
        standin = self._standin
        users = [
            {
                "name": name,
                "id": user["id"],
                "display": user.get("global_name") or name,
                "manage_server": bool(standin.permissions(name) & MANAGE_GUILD),
                "permissions": str(standin.permissions(name)),
            }
            for name, user in standin.users.items()
        ]
        return {
            "type": "hello",
            "users": users,
            "bot": standin.bot_user,
            "channel_id": str(standin.channel_id),
            "commands": standin.commands,
            "viewer": self._viewer,
        }

    def _snapshot(self) -> JSON:
        messages = [self._view(m) for m in self._standin.messages if self._visible(m)]
        return {"type": "snapshot", "viewer": self._viewer, "messages": messages}

    def _visible(self, message: StandInMessage, *, include_deleted: bool = False) -> bool:
        """Live, and in the channel (ephemeral: for the viewer only) or a DM to the viewer."""
        if message.deleted and not include_deleted:
            return False
        recipient = self._standin.dm_recipient(message.channel_id)
        if recipient is not None:
            return str(recipient) == self.viewer_id
        if not message.ephemeral:
            return True
        user = (message.raw.get("interaction_metadata") or {}).get("user") or {}
        return str(user.get("id")) == self.viewer_id

    def _view(self, message: StandInMessage) -> JSON:
        return {**message.raw, "dm": self._standin.dm_recipient(message.channel_id) is not None}

    # ops from the page

    def _start(self, text: str) -> None:
        try:
            op = json.loads(text)
        except ValueError:
            return
        if isinstance(op, dict):
            task = asyncio.create_task(self._run_op(op))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run_op(self, op: JSON) -> None:
        ref = op.get("ref")
        try:
            frame = await self._op(op)
        except (KeyError, ValueError, RuntimeError, TimeoutError) as error:
            text = error.args[0] if error.args else "the bot did not answer in time"
            frame = {"type": "error", "error": str(text)}
        except Exception:
            _log.exception("playground op %s failed", op.get("op"))
            frame = {"type": "error", "error": "the stand-in failed on this request"}
        self._outbox.put_nowait({**frame, "ref": ref})

    async def _op(self, op: JSON) -> JSON:
        kind, user = op.get("op"), self._viewer
        if kind == "viewer":
            self._standin.users[str(op.get("user"))]  # KeyError for an unknown member
            self._viewer = str(op["user"])
            return self._snapshot()
        if kind == "invoke":
            handle = await self._standin.invoke(
                str(op.get("command", "")),
                _object(op, "options"),
                user=user,
                attachments=decode_attachments(_object(op, "attachments")),
            )
            return {"type": "done", "interaction_id": str(handle.id)}
        if kind == "click":
            message = self._standin.message(int(op.get("message_id") or 0))
            values = op.get("values")
            handle = await self._standin.click(
                message, str(op.get("custom_id", "")), user=user, values=values
            )
            return {"type": "done", "interaction_id": str(handle.id)}
        if kind == "autocomplete":
            choices = await self._standin.autocomplete(
                str(op.get("command", "")),
                _object(op, "options"),
                str(op.get("focused", "")),
                user=user,
            )
            return {"type": "choices", "choices": choices}
        raise ValueError(f"unknown op {kind!r}")


def _same_origin(origin: URL, url: URL) -> bool:
    return (origin.host, origin.port) == (url.host, url.port)


def _object(op: JSON, key: str) -> dict[str, Any]:
    value = op.get(key) or {}
    if not isinstance(value, dict):
        raise ValueError(f"{key!r} must be a JSON object")
    return value

"""The gateway websocket: HELLO, heartbeats, IDENTIFY/RESUME sessions and event dispatch."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import uuid
from collections import deque
from collections.abc import Callable

import aiohttp
from aiohttp import web

from .models import JSON, Changes
from .world import World

_log = logging.getLogger(__name__)

DISPATCH, HEARTBEAT, IDENTIFY, RESUME, REQUEST_MEMBERS = 0, 1, 2, 6, 8
INVALID_SESSION, HELLO, HEARTBEAT_ACK = 9, 10, 11
HEARTBEAT_INTERVAL_MS = 41_250
DECODE_ERROR, AUTHENTICATION_FAILED, ALREADY_AUTHENTICATED = 4002, 4004, 4005
CLEAN_CLOSES = frozenset({1000, 1001})
BACKLOG = 1000


class Session:
    """One gateway session: its sequence, its event backlog (for RESUME) and its websocket."""

    def __init__(self, order: int, shard: list[int] | None) -> None:
        self.id = uuid.uuid4().hex
        self.order = order
        self.shard = shard
        self.ws: web.WebSocketResponse | None = None
        self.seq = 0
        self.ready = False
        self.ended = False
        self._backlog: deque[JSON] = deque(maxlen=BACKLOG)
        self._lock = asyncio.Lock()

    @property
    def live(self) -> bool:
        """Whether a websocket is attached and open."""
        return self.ws is not None and not self.ws.closed and not self.ended

    async def dispatch(self, event: str, data: JSON) -> None:
        """Send an op-0 event; kept in the backlog so a RESUME can replay it."""
        async with self._lock:
            self.seq += 1
            frame = {"op": DISPATCH, "t": event, "s": self.seq, "d": data}
            self._backlog.append(frame)
            await self._send(frame)

    async def resume(self, ws: web.WebSocketResponse, after: int) -> None:
        """Attach `ws` and replay the events after sequence `after`."""
        async with self._lock:
            self.ws = ws
            for frame in self._backlog:
                if frame["s"] > after:
                    await self._send(frame)

    async def _send(self, frame: JSON) -> None:
        if self.ws is None or self.ws.closed:
            return
        try:
            await self.ws.send_str(json.dumps(frame))
        except (ConnectionError, RuntimeError):
            _log.debug("gateway session %s lost its websocket mid-send", self.id)


class Gateway:
    """Serves `/gateway`: sessions, READY + GUILD_CREATE, RESUME replays and dispatch."""

    def __init__(self, world: World, changes: Changes, url: Callable[[], str]) -> None:
        self._world = world
        self._changes = changes
        self._url = url
        self._sessions: dict[str, Session] = {}
        self._sockets: set[web.WebSocketResponse] = set()
        self._order = itertools.count(1)

    def ready_session(self) -> Session | None:
        """The most recently identified live session that has received READY."""
        live = [s for s in self._sessions.values() if s.live and s.ready]
        return max(live, key=lambda s: s.order, default=None)

    async def dispatch(self, event: str, data: JSON) -> None:
        """Send an event to the most recently identified live session (or one awaiting RESUME)."""
        session = self._target()
        if session is None:
            raise RuntimeError("no bot is connected to the stand-in gateway")
        await session.dispatch(event, data)

    async def close(self) -> None:
        """Close every websocket (code 1001, going away)."""
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"stand-in stopping")

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """The websocket handler: one connection, possibly one session."""
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self._sockets.add(ws)
        session: Session | None = None
        try:
            await ws.send_json({"op": HELLO, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}})
            async for message in ws:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    frame = json.loads(message.data)
                except ValueError:
                    await ws.close(code=DECODE_ERROR, message=b"Error while decoding payload.")
                    break
                session = await self._on_frame(ws, session, frame)
        finally:
            self._sockets.discard(ws)
            await self._detach(ws, session)
        return ws

    async def _on_frame(
        self, ws: web.WebSocketResponse, session: Session | None, frame: JSON
    ) -> Session | None:
        op, data = frame.get("op"), frame.get("d")
        if op == HEARTBEAT:
            await ws.send_json({"op": HEARTBEAT_ACK, "d": None})
        elif op in (IDENTIFY, RESUME) and session is not None:
            await ws.close(code=ALREADY_AUTHENTICATED, message=b"Already authenticated.")
        elif op == IDENTIFY and not (data or {}).get("token"):
            await ws.close(code=AUTHENTICATION_FAILED, message=b"Authentication failed.")
        elif op == IDENTIFY:
            return await self._identify(ws, data)
        elif op == RESUME:
            return await self._resume(ws, data or {})
        elif op == REQUEST_MEMBERS and session is not None:
            await self._members_chunk(session, data or {})
        return session

    async def _identify(self, ws: web.WebSocketResponse, data: JSON) -> Session:
        """Start a session; sessions left without a websocket are dropped (they cannot RESUME).

        discord.py closes with 4000 even on `Client.close()`, so a dead client's session would
        otherwise linger as resumable.
        """
        self._sessions = {key: s for key, s in self._sessions.items() if s.live}
        session = Session(next(self._order), data.get("shard"))
        session.ws = ws
        self._sessions[session.id] = session
        await session.dispatch("READY", self._ready_payload(session))
        await session.dispatch("GUILD_CREATE", self._world.guild())
        session.ready = True
        await self._changes.notify()
        return session

    async def _resume(self, ws: web.WebSocketResponse, data: JSON) -> Session | None:
        session = self._sessions.get(str(data.get("session_id")))
        if session is None or session.ended:
            await ws.send_json({"op": INVALID_SESSION, "d": False})
            return None
        await session.resume(ws, int(data.get("seq") or 0))
        await session.dispatch("RESUMED", {})
        await self._changes.notify()
        return session

    async def _members_chunk(self, session: Session, data: JSON) -> None:
        chunk = {
            "guild_id": str(self._world.guild_id),
            "members": self._world.members(),
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
            "nonce": data.get("nonce"),
        }
        await session.dispatch("GUILD_MEMBERS_CHUNK", chunk)

    async def _detach(self, ws: web.WebSocketResponse, session: Session | None) -> None:
        """Forget the websocket; a clean close (1000/1001) ends the session for good."""
        if session is not None and session.ws is ws:
            session.ws = None
            if ws.close_code in CLEAN_CLOSES:
                session.ended = True
                self._sessions.pop(session.id, None)
        await self._changes.notify()

    def _target(self) -> Session | None:
        candidates = [s for s in self._sessions.values() if s.ready and not s.ended]
        pool = [s for s in candidates if s.live] or candidates
        return max(pool, key=lambda s: s.order, default=None)

    def _ready_payload(self, session: Session) -> JSON:
        world = self._world
        payload: JSON = {
            "v": 10,
            "user": {**world.bot_user, "verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(world.guild_id), "unavailable": True}],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self._url(),
            "application": {"id": str(world.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
        }
        if session.shard is not None:
            payload["shard"] = session.shard
        return payload

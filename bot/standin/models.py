"""Plain data the stand-in keeps: snowflakes, recorded requests, uploads, messages, waits."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

JSON = dict[str, Any]
T = TypeVar("T")
_log = logging.getLogger(__name__)

DISCORD_EPOCH_MS = 1_420_070_400_000
EPHEMERAL = 1 << 6
LOADING = 1 << 7


class Snowflakes:
    """Generates unique, increasing Discord snowflakes stamped with the current time."""

    def __init__(self) -> None:
        self._counter = itertools.count()
        self._last = 0

    def next(self) -> int:
        """Return a fresh snowflake, larger than every earlier one."""
        millis = int(time.time() * 1000) - DISCORD_EPOCH_MS
        candidate = (millis << 22) | (next(self._counter) & 0xFFF)
        self._last = max(candidate, self._last + 1)
        return self._last


def now_iso() -> str:
    """The current UTC time as Discord's ISO 8601 timestamp."""
    return datetime.now(UTC).isoformat()


@dataclass
class RecordedRequest:
    """One REST request the bot made (the token is never recorded)."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: list[tuple[str, str, bytes]]
    status: int | None = None


@dataclass
class UploadedFile:
    """A file part of a multipart request: `files[index]`."""

    index: int
    filename: str
    content_type: str
    data: bytes


@dataclass(eq=False)
class StandInMessage:
    """A message the bot created, kept current as the bot edits it.

    `raw` is the message object exactly as returned to the bot; the other fields mirror it.
    `deferred` is true for a "thinking…" placeholder that has not been filled yet.
    """

    id: int
    channel_id: int
    content: str = ""
    embeds: list[JSON] = field(default_factory=list)
    components: list[JSON] = field(default_factory=list)
    attachments: list[JSON] = field(default_factory=list)
    flags: int = 0
    interaction_id: int | None = None
    deferred: bool = False
    deleted: bool = False
    files: list[tuple[str, bytes]] = field(default_factory=list)
    raw: JSON = field(default_factory=dict)

    @property
    def ephemeral(self) -> bool:
        """Whether only the invoking user can see this message (flag 64)."""
        return bool(self.flags & EPHEMERAL)

    def refresh(self, files: list[tuple[str, bytes]]) -> None:
        """Copy the mirrored fields from `raw`; `files` are the attachments' bytes."""
        self.content = self.raw.get("content") or ""
        self.embeds = list(self.raw.get("embeds") or [])
        self.components = list(self.raw.get("components") or [])
        self.attachments = list(self.raw.get("attachments") or [])
        self.flags = int(self.raw.get("flags") or 0)
        self.deferred = bool(self.flags & LOADING)
        self.files = files


Listener = Callable[[str, Any], None]


class Events:
    """Synchronous listeners told of every change: `(event, subject)`, e.g. a message."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` on every event until the returned function is called."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def emit(self, event: str, subject: Any) -> None:
        """Tell every listener; one that raises does not stop the others."""
        for listener in list(self._listeners):
            try:
                listener(event, subject)
            except Exception:
                _log.exception("stand-in event listener failed on %s", event)


class Changes:
    """Lets coroutines wait, with a timeout, until a check on the stand-in's state passes."""

    def __init__(self) -> None:
        self._condition = asyncio.Condition()

    async def notify(self) -> None:
        """Wake every waiter so it re-runs its check."""
        async with self._condition:
            self._condition.notify_all()

    async def wait(self, check: Callable[[], T | None], timeout: float) -> T:
        """Return the first non-None result of `check`; raise TimeoutError after `timeout` s."""
        async with asyncio.timeout(timeout), self._condition:
            while (result := check()) is None:
                await self._condition.wait()
            return result

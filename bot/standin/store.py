"""Messages the bot created, with edits and deletes applied, and the bytes of every attachment."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from PIL import Image

from .models import (
    EPHEMERAL,
    JSON,
    LOADING,
    Events,
    Snowflakes,
    StandInMessage,
    UploadedFile,
    now_iso,
)
from .wire import DiscordError, guess_content_type, invalid_form
from .world import World

MAX_CONTENT = 2000
MAX_EMBEDS = 10
SHOWN_FIELDS = ("content", "embeds", "attachments", "components", "poll")
CONTENT_FIELDS: tuple[tuple[str, Any], ...] = (
    ("content", ""),
    ("embeds", []),
    ("components", []),
    ("tts", False),
    ("poll", None),
)


class MessageStore:
    """Creates, edits and deletes messages the way Discord does, and serves attachment bytes.

    `events` hears "message_create", "message_update" and "message_delete" with the message.
    """

    def __init__(
        self,
        ids: Snowflakes,
        world: World,
        base_url: Callable[[], str],
        size_limit: int,
        events: Events | None = None,
    ) -> None:
        self.messages: list[StandInMessage] = []
        self.events = events or Events()
        self._ids = ids
        self._world = world
        self._base_url = base_url
        self._size_limit = size_limit
        self._by_id: dict[int, StandInMessage] = {}
        self._blobs: dict[int, tuple[str, bytes]] = {}

    # attachments

    def store_file(
        self,
        channel_id: int,
        filename: str,
        data: bytes,
        content_type: str,
        description: str | None = None,
        *,
        enforce_limit: bool = True,
    ) -> JSON:
        """Keep `data` and return its attachment object, served by the CDN route.

        The bot's uploads are held to the attachment size limit; a user's uploads are not.
        """
        if enforce_limit and len(data) > self._size_limit:
            raise DiscordError(413, 40005, "Request entity too large")
        attachment_id = self._ids.next()
        url = f"{self._base_url()}/attachments/{channel_id}/{attachment_id}/{quote(filename)}"
        attachment: JSON = {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
        }
        if description is not None:
            attachment["description"] = description
        if content_type.startswith("image/") and (size := image_size(data)):
            attachment["width"], attachment["height"] = size
        self._blobs[attachment_id] = (content_type, data)
        return attachment

    def blob(self, attachment_id: int) -> tuple[str, bytes]:
        """The content type and bytes of an attachment; KeyError if unknown."""
        return self._blobs[attachment_id]

    def attachment_bytes(self, attachment: JSON) -> bytes:
        """The bytes of an attachment object the bot uploaded or upload() stored."""
        try:
            return self._blobs[int(attachment["id"])][1]
        except KeyError:
            raise KeyError(f"no stored bytes for attachment {attachment.get('id')!r}") from None

    # messages

    def get(self, message_id: int) -> StandInMessage:
        """A live message by id; Discord's 404 Unknown Message otherwise."""
        message = self._by_id.get(message_id)
        if message is None or message.deleted:
            raise DiscordError(404, 10008, "Unknown Message")
        return message

    def create(
        self,
        channel_id: int,
        payload: JSON,
        files: list[UploadedFile],
        *,
        ephemeral_allowed: bool,
        **meta: Any,
    ) -> StandInMessage:
        """Create a message from a message payload; `meta` is passed to `_skeleton`."""
        raw = self._skeleton(channel_id, **meta)
        flags = int(payload.get("flags") or 0) & ~LOADING
        raw["flags"] = flags if ephemeral_allowed else flags & ~EPHEMERAL
        raw = self._compose(raw, payload, files)
        return self._register(raw, meta.get("interaction_id"))

    def create_deferred(self, channel_id: int, *, ephemeral: bool, **meta: Any) -> StandInMessage:
        """Create the "thinking…" placeholder of a deferred interaction response."""
        raw = self._skeleton(channel_id, **meta)
        raw["flags"] = LOADING | (EPHEMERAL if ephemeral else 0)
        return self._register(raw, meta.get("interaction_id"))

    def edit(self, message: StandInMessage, payload: JSON, files: list[UploadedFile]) -> None:
        """Apply an edit; editing a deferred placeholder fills it (it keeps its ephemerality)."""
        old_flags = int(message.raw.get("flags") or 0)
        requested = payload.get("flags")
        requested = old_flags if requested is None else int(requested)
        raw = self._compose(message.raw, payload, files)
        raw["flags"] = (old_flags & EPHEMERAL) | (requested & ~(EPHEMERAL | LOADING))
        if not message.deferred:
            raw["edited_timestamp"] = now_iso()
        message.raw = raw
        message.refresh(self._files_of(raw["attachments"]))
        self.events.emit("message_update", message)

    def delete(self, message: StandInMessage) -> None:
        """Mark a message deleted (it stays in `messages`)."""
        message.deleted = True
        self.events.emit("message_delete", message)

    def _skeleton(
        self,
        channel_id: int,
        *,
        message_type: int = 0,
        webhook: bool = False,
        interaction_id: int | None = None,
        extra: JSON | None = None,
    ) -> JSON:
        world = self._world
        in_guild = world.dm_recipient(channel_id) is None
        raw: JSON = {
            "id": str(self._ids.next()),
            "channel_id": str(channel_id),
            **({"guild_id": str(world.guild_id)} if in_guild else {}),
            "author": world.bot_user,
            "content": "",
            "timestamp": now_iso(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "mention_channels": [],
            "attachments": [],
            "embeds": [],
            "components": [],
            "reactions": [],
            "pinned": False,
            "type": message_type,
            "flags": 0,
            "application_id": str(world.application_id),
            **(extra or {}),
        }
        if webhook:
            raw["webhook_id"] = str(world.application_id)
        return raw

    def _register(self, raw: JSON, interaction_id: int | None) -> StandInMessage:
        message = StandInMessage(
            id=int(raw["id"]),
            channel_id=int(raw["channel_id"]),
            interaction_id=interaction_id,
            raw=raw,
        )
        message.refresh(self._files_of(raw["attachments"]))
        self.messages.append(message)
        self._by_id[message.id] = message
        self.events.emit("message_create", message)
        return message

    def _compose(self, raw: JSON, payload: JSON, files: list[UploadedFile]) -> JSON:
        """A copy of `raw` with the payload's content fields, attachments and files applied."""
        check_limits(payload)
        new = dict(raw)
        for key, default in CONTENT_FIELDS:
            if key in payload:
                new[key] = default if payload[key] is None else payload[key]
        new["attachments"] = self._attachments(
            int(raw["channel_id"]), raw["attachments"], payload.get("attachments"), files
        )
        new["embeds"] = [resolve_embed(embed, new["attachments"]) for embed in new["embeds"]]
        if is_empty(new):
            raise DiscordError(400, 50006, "Cannot send an empty message")
        return new

    def _attachments(
        self,
        channel_id: int,
        current: list[JSON],
        listed: list[JSON] | None,
        files: list[UploadedFile],
    ) -> list[JSON]:
        """Kept attachments (by id) plus new ones (files[n] referenced by id n, or unreferenced)."""
        if listed is None:
            return [*current, *(self._store_upload(channel_id, f) for f in files)]
        kept = {attachment["id"]: attachment for attachment in current}
        by_index = {upload.index: upload for upload in files}
        result: list[JSON] = []
        for entry in listed:
            key = str(entry.get("id"))
            if key in kept:
                result.append(kept[key])
            elif key.isdigit() and (upload := by_index.pop(int(key), None)):
                name = entry.get("filename") or upload.filename
                description = entry.get("description")
                result.append(self._store_upload(channel_id, upload, name, description))
        result += [self._store_upload(channel_id, upload) for upload in by_index.values()]
        return result

    def _store_upload(
        self,
        channel_id: int,
        upload: UploadedFile,
        filename: str | None = None,
        description: str | None = None,
    ) -> JSON:
        name = filename or upload.filename
        content_type = guess_content_type(name, upload.content_type)
        return self.store_file(channel_id, name, upload.data, content_type, description)

    def _files_of(self, attachments: list[JSON]) -> list[tuple[str, bytes]]:
        return [(a["filename"], self._blobs[int(a["id"])][1]) for a in attachments]


def check_limits(payload: JSON) -> None:
    """Discord's length limits on content and embeds."""
    content = payload.get("content")
    if content is not None and len(str(content)) > MAX_CONTENT:
        message = f"Must be {MAX_CONTENT} or fewer in length."
        raise invalid_form("content", "BASE_TYPE_MAX_LENGTH", message)
    embeds = payload.get("embeds") or []
    if len(embeds) > MAX_EMBEDS:
        message = f"Must be {MAX_EMBEDS} or fewer in length."
        raise invalid_form("embeds", "BASE_TYPE_MAX_LENGTH", message)


def is_empty(raw: JSON) -> bool:
    """Whether a message has nothing to show (Discord refuses those)."""
    return not any(raw.get(key) for key in SHOWN_FIELDS)


def resolve_embed(embed: JSON, attachments: list[JSON]) -> JSON:
    """Mark the embed rich and point `attachment://name` images at the attachment's URL."""
    by_name = {attachment["filename"]: attachment for attachment in attachments}
    resolved = {"type": "rich", **embed}
    for key in ("image", "thumbnail"):
        part = resolved.get(key)
        url = str(part.get("url", "")) if isinstance(part, dict) else ""
        attachment = by_name.get(url.removeprefix("attachment://"))
        if url.startswith("attachment://") and attachment is not None:
            resolved[key] = {**part, "url": attachment["url"], "proxy_url": attachment["proxy_url"]}
    return resolved


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of an image, or None if Pillow cannot read it."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return None

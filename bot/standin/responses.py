"""Discord's rules for interaction callbacks, followups and edits of interaction messages."""

from __future__ import annotations

import time
from collections.abc import Callable

from .interactions import (
    APPLICATION_COMMAND,
    APPLICATION_COMMAND_AUTOCOMPLETE,
    InteractionHandle,
    message_metadata,
)
from .models import EPHEMERAL, JSON, StandInMessage, UploadedFile
from .state import StandInState
from .wire import DiscordError, invalid_form

REPLY, DEFER, DEFER_UPDATE, UPDATE, AUTOCOMPLETE, MODAL = 4, 5, 6, 7, 8, 9
CHAT_INPUT_MESSAGE = 20
MAX_CHOICES = 25
Handler = Callable[[InteractionHandle, JSON, list[UploadedFile]], StandInMessage | None]


class Responder:
    """Applies what the bot answers to an interaction to the stand-in's messages."""

    def __init__(self, state: StandInState) -> None:
        self._state = state
        self._handlers: dict[int, Handler] = {
            REPLY: self._reply,
            DEFER: self._defer,
            DEFER_UPDATE: self._defer_update,
            UPDATE: self._update,
            AUTOCOMPLETE: self._autocomplete,
            MODAL: self._record,
        }

    def callback(self, handle: InteractionHandle, body: JSON, files: list[UploadedFile]) -> JSON:
        """Handle `POST /interactions/{id}/{token}/callback`; return the callback response."""
        deadline = self._state.ack_deadline
        if deadline is not None and time.monotonic() > handle.created_at + deadline:
            raise DiscordError(404, 10062, "Unknown interaction")
        if handle.callbacks:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        kind, data = body.get("type"), body.get("data") or {}
        handler = self._handlers.get(kind) if isinstance(kind, int) else None
        if handler is None:
            raise invalid_form("type", "BASE_TYPE_CHOICES", f"Value {kind!r} is not a valid type.")
        if (kind == AUTOCOMPLETE) != (handle.type == APPLICATION_COMMAND_AUTOCOMPLETE):
            message = "Interaction response type is not valid for this interaction."
            raise invalid_form("type", "INTERACTION_RESPONSE_TYPE_INVALID", message)
        message = handler(handle, data, files)
        handle.callbacks.append({"type": kind, "data": data, "at": time.monotonic()})
        self._state.events.emit("interaction_callback", handle)
        return callback_response(handle, kind, message)

    def followup(
        self, handle: InteractionHandle, payload: JSON, files: list[UploadedFile]
    ) -> StandInMessage:
        """Handle `POST /webhooks/{app}/{token}`: fill a pending deferral, else a new message."""
        self._check_token(handle)
        original = handle.original
        if original is not None and original.deferred and not original.deleted:
            self._state.store.edit(original, payload, files)
            return original
        message = self._create(handle, payload, files)
        handle.add_message(message)
        return message

    def message(self, handle: InteractionHandle, ref: str) -> StandInMessage:
        """The interaction message named `@original` or by id."""
        self._check_token(handle)
        if ref == "@original":
            if handle.original is None:
                raise DiscordError(404, 10008, "Unknown Message")
            return self._state.store.get(handle.original.id)
        if not ref.isdigit() or all(m.id != int(ref) for m in handle.messages):
            raise DiscordError(404, 10008, "Unknown Message")
        return self._state.store.get(int(ref))

    def edit(
        self, handle: InteractionHandle, ref: str, payload: JSON, files: list[UploadedFile]
    ) -> StandInMessage:
        """Handle `PATCH /webhooks/{app}/{token}/messages/{ref}`."""
        message = self.message(handle, ref)
        self._state.store.edit(message, payload, files)
        handle.add_message(message)
        return message

    def delete(self, handle: InteractionHandle, ref: str) -> None:
        """Handle `DELETE /webhooks/{app}/{token}/messages/{ref}`."""
        message = self.message(handle, ref)
        self._state.store.delete(message)
        handle.deleted.append(message.id)

    def _reply(
        self, handle: InteractionHandle, data: JSON, files: list[UploadedFile]
    ) -> StandInMessage:
        handle.original = self._create(handle, data, files)
        handle.add_message(handle.original)
        return handle.original

    def _defer(
        self, handle: InteractionHandle, data: JSON, files: list[UploadedFile]
    ) -> StandInMessage:
        handle.original = self._state.store.create_deferred(
            handle.channel_id,
            ephemeral=bool(int(data.get("flags") or 0) & EPHEMERAL),
            **self._meta(handle),
        )
        handle.add_message(handle.original)
        return handle.original

    def _defer_update(
        self, handle: InteractionHandle, data: JSON, files: list[UploadedFile]
    ) -> None:
        handle.original = self._target(handle)

    def _update(
        self, handle: InteractionHandle, data: JSON, files: list[UploadedFile]
    ) -> StandInMessage:
        target = self._target(handle)
        self._state.store.edit(target, data, files)
        handle.original = target
        handle.add_message(target)
        return target

    def _record(self, handle: InteractionHandle, data: JSON, files: list[UploadedFile]) -> None:
        """Modals are only recorded (in `handle.callbacks`)."""

    def _autocomplete(
        self, handle: InteractionHandle, data: JSON, files: list[UploadedFile]
    ) -> None:
        """Check the suggested choices (kept in `handle.callbacks`), as Discord does."""
        choices = data.get("choices")
        if not isinstance(choices, list) or len(choices) > MAX_CHOICES:
            message = f"Must be a list of {MAX_CHOICES} or fewer choices."
            raise invalid_form("choices", "BASE_TYPE_MAX_LENGTH", message)
        if not all(isinstance(c, dict) and c.get("name") and "value" in c for c in choices):
            message = "Each choice needs a name and a value."
            raise invalid_form("choices", "BASE_TYPE_REQUIRED", message)

    def _target(self, handle: InteractionHandle) -> StandInMessage:
        if handle.target is None:
            message = "This response type is only valid for component interactions."
            raise invalid_form("type", "INTERACTION_RESPONSE_TYPE_INVALID", message)
        return handle.target

    def _create(
        self, handle: InteractionHandle, payload: JSON, files: list[UploadedFile]
    ) -> StandInMessage:
        return self._state.store.create(
            handle.channel_id, payload, files, ephemeral_allowed=True, **self._meta(handle)
        )

    def _meta(self, handle: InteractionHandle) -> JSON:
        return {
            "webhook": True,
            "message_type": CHAT_INPUT_MESSAGE if handle.type == APPLICATION_COMMAND else 0,
            "interaction_id": handle.id,
            "extra": message_metadata(handle, self._state.world.guild_id),
        }

    @staticmethod
    def _check_token(handle: InteractionHandle) -> None:
        if not handle.callbacks:
            raise DiscordError(404, 10015, "Unknown Webhook")
        if handle.expired:
            raise DiscordError(401, 50027, "Invalid Webhook Token")


def callback_response(handle: InteractionHandle, kind: int, message: StandInMessage | None) -> JSON:
    """The body of a callback answered `with_response`."""
    interaction: JSON = {
        "id": str(handle.id),
        "type": handle.type,
        "response_message_loading": kind == DEFER,
        "response_message_ephemeral": bool(handle.original and handle.original.ephemeral),
    }
    if handle.original is not None:
        interaction["response_message_id"] = str(handle.original.id)
    resource: JSON = {"type": kind}
    if message is not None:
        resource["message"] = message.raw
    return {"interaction": interaction, "resource": resource}

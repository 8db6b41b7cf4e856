"""Interactions sent to the bot: their gateway payloads and what the bot answered."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from .models import JSON, Changes, StandInMessage
from .world import World

APPLICATION_COMMAND, MESSAGE_COMPONENT, APPLICATION_COMMAND_AUTOCOMPLETE = 2, 3, 4
TOKEN_LIFETIME = 15 * 60.0


class InteractionHandle:
    """One interaction the stand-in sent, and the callbacks and messages the bot answered with."""

    def __init__(
        self,
        *,
        interaction_id: int,
        kind: int,
        user: JSON,
        channel_id: int,
        changes: Changes,
        command: str | None = None,
        target: StandInMessage | None = None,
    ) -> None:
        self.id = interaction_id
        self.type = kind
        self.command = command
        self.token = secrets.token_urlsafe(48)
        self.user = user
        self.channel_id = channel_id
        self.target = target
        self.created_at = time.monotonic()
        self.expires_at = self.created_at + TOKEN_LIFETIME
        self.callbacks: list[JSON] = []
        self.messages: list[StandInMessage] = []
        self.deleted: list[int] = []
        self.original: StandInMessage | None = None
        self._changes = changes
        self._delivered: set[int] = set()

    @property
    def expired(self) -> bool:
        """Whether the interaction token is past its 15 minutes."""
        return time.monotonic() >= self.expires_at

    def expire(self) -> None:
        """Expire the token now, as if 15 minutes had passed."""
        self.expires_at = time.monotonic()

    def mark_sent(self) -> None:
        """Stamp the moment INTERACTION_CREATE went out."""
        self.created_at = time.monotonic()
        self.expires_at = self.created_at + TOKEN_LIFETIME

    def add_message(self, message: StandInMessage) -> None:
        """Attach a message to this interaction (once)."""
        if all(known is not message for known in self.messages):
            self.messages.append(message)

    async def choices(self, timeout: float = 3) -> list[JSON]:
        """The choices an autocomplete interaction was answered with."""
        callback = await self.acknowledged(timeout)
        return list(callback["data"].get("choices") or [])

    async def acknowledged(self, timeout: float = 3) -> JSON:
        """The first callback; TimeoutError if the bot sends none within `timeout` s."""
        return await self._changes.wait(lambda: next(iter(self.callbacks), None), timeout)

    async def next_message(self, timeout: float = 10) -> StandInMessage:
        """The next message of this interaction that is not a pending placeholder."""
        message = await self._changes.wait(self._undelivered, timeout)
        self._delivered.add(message.id)
        return message

    async def wait_for(
        self, predicate: Callable[[StandInMessage], bool], timeout: float = 10
    ) -> StandInMessage:
        """The first live message of this interaction matching `predicate` (now or later)."""

        def check() -> StandInMessage | None:
            return next((m for m in self.messages if not m.deleted and predicate(m)), None)

        return await self._changes.wait(check, timeout)

    def _undelivered(self) -> StandInMessage | None:
        for message in self.messages:
            if message.id not in self._delivered and not (message.deferred or message.deleted):
                return message
        return None

    def __repr__(self) -> str:
        return f"<InteractionHandle id={self.id} type={self.type} messages={len(self.messages)}>"


def interaction_payload(
    world: World, handle: InteractionHandle, data: JSON, attachment_size_limit: int
) -> JSON:
    """The INTERACTION_CREATE payload discord.py's `Interaction` needs."""
    payload: JSON = {
        "id": str(handle.id),
        "application_id": str(world.application_id),
        "type": handle.type,
        "token": handle.token,
        "version": 1,
        "data": data,
        "guild_id": str(world.guild_id),
        "guild": {"id": str(world.guild_id), "locale": "en-US", "features": []},
        "channel_id": str(handle.channel_id),
        "channel": world.channel(),
        "member": world.member(handle.user, with_permissions=True),
        "app_permissions": str(world.permissions(world.application_id)),
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "entitlement_sku_ids": [],
        "authorizing_integration_owners": {"0": str(world.guild_id)},
        "context": 0,
        "attachment_size_limit": attachment_size_limit,
    }
    if handle.target is not None:
        payload["message"] = handle.target.raw
    return payload


def message_metadata(handle: InteractionHandle, guild_id: int) -> JSON:
    """The `interaction_metadata` (and legacy `interaction`) fields of a response message."""
    metadata: JSON = {
        "id": str(handle.id),
        "type": handle.type,
        "user": handle.user,
        "authorizing_integration_owners": {"0": str(guild_id)},
    }
    if handle.original is not None:
        metadata["original_response_message_id"] = str(handle.original.id)
    if handle.target is not None:
        metadata["interacted_message_id"] = str(handle.target.id)
    extra: JSON = {"interaction_metadata": metadata}
    if handle.command is not None:
        metadata["name"] = handle.command
        metadata["command_type"] = 1
        extra["interaction"] = {
            "id": str(handle.id),
            "type": handle.type,
            "name": handle.command,
            "user": handle.user,
        }
    return extra


def find_component(components: list[JSON], custom_id: str) -> JSON | None:
    """The component with `custom_id` anywhere in a message's component tree."""
    for component in components:
        if component.get("custom_id") == custom_id:
            return component
        if found := find_component(_children(component), custom_id):
            return found
    return None


def custom_ids(components: list[JSON]) -> list[str]:
    """Every custom_id in a component tree."""
    found: list[str] = []
    for component in components:
        if "custom_id" in component:
            found.append(component["custom_id"])
        found += custom_ids(_children(component))
    return found


def _children(component: JSON) -> list[JSON]:
    accessory = component.get("accessory")
    return [*component.get("components", []), *([accessory] if accessory else [])]

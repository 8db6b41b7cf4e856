"""Application commands as the bot synced them, learnt from its bulk-overwrite PUTs."""

from __future__ import annotations

from typing import Any

from .models import JSON, Events, Snowflakes
from .wire import invalid_form

CHAT_INPUT = 1


class CommandRegistry:
    """The global and guild command lists, with stable ids like Discord assigns.

    `events` hears "commands_sync" with every command after each sync.
    """

    def __init__(
        self, ids: Snowflakes, application_id: int, guild_id: int, events: Events | None = None
    ) -> None:
        self.events = events or Events()
        self.global_commands: list[JSON] = []
        self.guild_commands: list[JSON] = []
        self.sync_count = 0
        self._ids = ids
        self._application_id = application_id
        self._guild_id = guild_id

    @property
    def all(self) -> list[JSON]:
        """Guild commands first, then global ones."""
        return [*self.guild_commands, *self.global_commands]

    def replace(self, payload: Any, *, guild: bool) -> list[JSON]:
        """Bulk-overwrite one list (as `PUT .../commands` does) and return it with ids."""
        if not isinstance(payload, list) or not all(
            isinstance(command, dict) and command.get("name") for command in payload
        ):
            raise invalid_form("commands", "LIST_TYPE_CONVERT", "Must be a list of commands.")
        current = self.guild_commands if guild else self.global_commands
        previous = {(c["name"], c["type"]): c for c in current}
        version = str(self._ids.next())
        commands = [self._assign(command, previous, version, guild) for command in payload]
        if guild:
            self.guild_commands = commands
        else:
            self.global_commands = commands
        self.sync_count += 1
        self.events.emit("commands_sync", self.all)
        return commands

    def find(self, name: str) -> JSON:
        """The chat-input command called `name` (a guild one wins); KeyError if none."""
        for command in self.all:
            if command["name"] == name and command["type"] == CHAT_INPUT:
                return command
        if not self.all:
            raise KeyError(f"unknown command /{name}: the bot has not synced any commands yet")
        known = ", ".join(sorted({f"/{c['name']}" for c in self.all if c["type"] == CHAT_INPUT}))
        raise KeyError(f"unknown command /{name}; synced commands: {known}")

    def _assign(
        self, command: JSON, previous: dict[tuple[str, int], JSON], version: str, guild: bool
    ) -> JSON:
        kind = int(command.get("type") or CHAT_INPUT)
        old = previous.get((command["name"], kind))
        result: JSON = {
            "description": "",
            "options": [],
            "default_member_permissions": None,
            "nsfw": False,
            "name_localizations": None,
            "description_localizations": None,
            **command,
            "id": old["id"] if old else str(self._ids.next()),
            "application_id": str(self._application_id),
            "version": version,
            "type": kind,
        }
        if guild:
            result["guild_id"] = str(self._guild_id)
        return result

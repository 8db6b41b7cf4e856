"""Build a slash command's interaction data from plain values, checked against its definition."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .models import JSON
from .world import World

SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE = 3, 4, 5, 6, 7, 8, 9
NUMBER, ATTACHMENT = 10, 11
Upload = Callable[[str, bytes, str], JSON]


class OptionError(ValueError):
    """A value that the command's definition does not accept."""


class InvocationBuilder:
    """Turns `invoke()` arguments into `data` for an INTERACTION_CREATE of type 2."""

    def __init__(self, world: World, upload: Upload) -> None:
        self._world = world
        self._upload = upload

    def build(
        self,
        command: JSON,
        path: list[str],
        options: dict[str, Any],
        attachments: dict[str, tuple[str, bytes, str]],
        user: JSON,
        enforce_limits: bool = True,
        focused: str | None = None,
    ) -> JSON:
        """Interaction data for `user` running `/command path...` with `options`.

        Raises KeyError for an unknown subcommand or option, ValueError for a bad value.
        `enforce_limits=False` skips min/max, length and choice checks, as a client that
        breaks Discord's rules would, so that a bot's own checks can be tested.
        `focused` names the option being typed (autocomplete): its value is sent as the typed
        text with `focused: true`, and required options may still be missing.
        """
        label = " ".join([command["name"], *path])
        chain, definitions = descend(command, path, label)
        resolved: JSON = {}
        permissions = self._world.permissions(int(user["id"]))
        if focused is not None:
            check_focused(label, definitions, focused)
            enforce_limits = False
        context = _Context(label, resolved, permissions, enforce_limits, focused)
        values = self._leaf(context, definitions, options, attachments)
        for sub in reversed(chain):
            values = [{"name": sub["name"], "type": sub["type"], "options": values}]
        data: JSON = {
            "id": command["id"],
            "name": command["name"],
            "type": command["type"],
            "options": values,
        }
        if resolved:
            data["resolved"] = resolved
        if "guild_id" in command:
            data["guild_id"] = command["guild_id"]
        return data

    def _leaf(
        self,
        context: _Context,
        definitions: list[JSON],
        options: dict[str, Any],
        attachments: dict[str, tuple[str, bytes, str]],
    ) -> list[JSON]:
        known = {definition["name"]: definition for definition in definitions}
        unknown = sorted((set(options) | set(attachments)) - set(known))
        if unknown:
            raise KeyError(f"/{context.label} has no option {unknown}; options: {sorted(known)}")
        values = []
        for name, definition in known.items():
            in_attachments = definition["type"] == ATTACHMENT
            source, other = (attachments, options) if in_attachments else (options, attachments)
            if name in other:
                where = "attachments=" if in_attachments else "options="
                raise OptionError(f"/{context.label}: pass option {name!r} in {where}")
            if name == context.focused:
                text = str(source.get(name, ""))
                values.append(
                    {"name": name, "type": definition["type"], "value": text, "focused": True}
                )
                continue
            if name not in source:
                if definition.get("required") and context.focused is None:
                    raise OptionError(f"/{context.label} requires option {name!r}")
                continue
            value = self._value(context, definition, source[name])
            values.append({"name": name, "type": definition["type"], "value": value})
        return values

    def _value(self, context: _Context, definition: JSON, value: Any) -> Any:
        kind = definition["type"]
        where = f"/{context.label} option {definition['name']!r}"
        if kind == ATTACHMENT:
            return self._attachment(context, value)
        if kind in (USER, CHANNEL, ROLE, MENTIONABLE):
            return self._mention(context, kind, value)
        limits = definition if context.enforce_limits else {}
        if kind == STRING:
            check_string(where, limits, value)
        elif kind in (INTEGER, NUMBER):
            check_number(where, limits, value, integer=kind == INTEGER)
        elif kind == BOOLEAN:
            if not isinstance(value, bool):
                raise OptionError(f"{where} takes a boolean, not {value!r}")
        else:
            raise OptionError(f"{where} has type {kind}, which the stand-in cannot send")
        check_choice(where, limits, value)
        return value

    def _attachment(self, context: _Context, value: tuple[str, bytes, str]) -> str:
        filename, data, content_type = value
        attachment = self._upload(filename, data, content_type)
        context.resolved.setdefault("attachments", {})[attachment["id"]] = attachment
        return attachment["id"]

    def _mention(self, context: _Context, kind: int, value: Any) -> str:
        """The id of a user, channel or role option, adding it to `resolved`."""
        world, resolved = self._world, context.resolved
        if kind == CHANNEL:
            channel = world.channel()
            if str(value) not in (channel["id"], channel["name"]):
                raise KeyError(f"unknown channel {value!r}; the guild has only #{channel['name']}")
            channel["permissions"] = str(context.permissions)
            resolved.setdefault("channels", {})[channel["id"]] = channel
            return channel["id"]
        if kind == ROLE or (kind == MENTIONABLE and not _is_user(world, value)):
            role = world.role(value)
            resolved.setdefault("roles", {})[role["id"]] = role
            return role["id"]
        user = world.user(value)
        member = world.member(user, with_permissions=True)
        del member["user"]
        resolved.setdefault("users", {})[user["id"]] = user
        resolved.setdefault("members", {})[user["id"]] = member
        return user["id"]


@dataclass
class _Context:
    label: str
    resolved: JSON
    permissions: int
    enforce_limits: bool = True
    focused: str | None = None


def descend(command: JSON, path: list[str], label: str) -> tuple[list[JSON], list[JSON]]:
    """The subcommand/group chain named by `path`, and the leaf's option definitions."""
    definitions: list[JSON] = command.get("options") or []
    chain: list[JSON] = []
    for part in path:
        nested = [d for d in definitions if d["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)]
        sub = next((d for d in nested if d["name"] == part), None)
        if sub is None:
            names = sorted(d["name"] for d in nested)
            raise KeyError(f"/{label}: no subcommand or group {part!r}; choices: {names}")
        chain.append(sub)
        definitions = sub.get("options") or []
    nested = sorted(d["name"] for d in definitions if d["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP))
    if nested:
        raise OptionError(f"/{label} needs a subcommand: one of {nested}")
    return chain, definitions


def check_focused(label: str, definitions: list[JSON], focused: str) -> None:
    """The focused option must exist and have autocomplete, as Discord only then asks."""
    definition = next((d for d in definitions if d["name"] == focused), None)
    if definition is None:
        raise KeyError(f"/{label} has no option {focused!r}")
    if not definition.get("autocomplete"):
        raise OptionError(f"/{label} option {focused!r} has no autocomplete")


def check_string(where: str, definition: JSON, value: Any) -> None:
    """A string within the definition's length bounds."""
    if not isinstance(value, str):
        raise OptionError(f"{where} takes a string, not {value!r}")
    low, high = definition.get("min_length"), definition.get("max_length")
    if (low is not None and len(value) < low) or (high is not None and len(value) > high):
        raise OptionError(f"{where} must be {low}..{high} characters long")


def check_number(where: str, definition: JSON, value: Any, *, integer: bool) -> None:
    """An integer (or number) within the definition's bounds."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        raise OptionError(f"{where} takes {'an integer' if integer else 'a number'}, not {value!r}")
    low, high = definition.get("min_value"), definition.get("max_value")
    if (low is not None and value < low) or (high is not None and value > high):
        raise OptionError(f"{where} must be between {low} and {high}")


def check_choice(where: str, definition: JSON, value: Any) -> None:
    """One of the definition's choices, if it has any."""
    choices = [choice["value"] for choice in definition.get("choices") or []]
    if choices and value not in choices:
        raise OptionError(f"{where} must be one of {choices}, not {value!r}")


def _is_user(world: World, value: Any) -> bool:
    try:
        world.user(value)
    except KeyError:
        return False
    return True

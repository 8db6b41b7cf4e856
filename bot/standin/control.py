"""A small control API on the stand-in for humans and scripts (loopback only, no auth)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .interactions import InteractionHandle
from .wire import guess_content_type, json_response

if TYPE_CHECKING:
    from .server import DiscordStandIn

DEFAULT_WAIT = 60.0


class ControlApi:
    """`/_standin/...`: invoke commands, click components, list messages and commands."""

    def __init__(self, standin: DiscordStandIn) -> None:
        self._standin = standin

    def routes(self) -> list[web.RouteDef]:
        """The control routes."""
        return [
            web.post("/_standin/invoke", self.invoke),
            web.post("/_standin/click", self.click),
            web.post("/_standin/autocomplete", self.autocomplete),
            web.get("/_standin/messages", self.messages),
            web.get("/_standin/commands", self.commands),
        ]

    async def invoke(self, request: web.Request) -> web.Response:
        """POST {"command", "options"?, "user"?, "attachments"?, "timeout"?}: run a command.

        Attachments map an option name to {"filename", "content_type"?, "data_base64"}.
        Answers once the interaction has a visible message (or after the timeout).
        """
        body = await _json_body(request)
        timeout = _timeout(body)
        try:
            handle = await self._standin.invoke(
                str(body.get("command", "")),
                _object(body, "options"),
                user=str(body.get("user", "alice")),
                attachments=decode_attachments(_object(body, "attachments")),
            )
        except (KeyError, ValueError) as error:
            return _error(400, error)
        except RuntimeError as error:
            return _error(409, error)
        return await _outcome(handle, timeout)

    async def click(self, request: web.Request) -> web.Response:
        """POST {"message_id", "custom_id", "user"?, "values"?, "timeout"?}: click a component."""
        body = await _json_body(request)
        timeout = _timeout(body)
        try:
            message = self._standin.message(int(body.get("message_id", 0)))
            handle = await self._standin.click(
                message,
                str(body.get("custom_id", "")),
                user=str(body.get("user", "alice")),
                values=body.get("values"),
            )
        except (KeyError, ValueError) as error:
            return _error(400, error)
        except RuntimeError as error:
            return _error(409, error)
        return await _outcome(handle, timeout)

    async def autocomplete(self, request: web.Request) -> web.Response:
        """POST {"command", "focused", "options"?, "user"?}: the bot's autocomplete choices."""
        body = await _json_body(request)
        try:
            choices = await self._standin.autocomplete(
                str(body.get("command", "")),
                _object(body, "options"),
                str(body.get("focused", "")),
                user=str(body.get("user", "alice")),
                timeout=_timeout(body, 3.0),
            )
        except (KeyError, ValueError) as error:
            return _error(400, error)
        except (RuntimeError, TimeoutError) as error:
            return _error(409, error if error.args else TimeoutError("the bot did not answer"))
        return json_response({"choices": choices})

    async def messages(self, request: web.Request) -> web.Response:
        """GET: every live message the bot created, as returned to the bot."""
        require_loopback(request)
        return json_response([m.raw for m in self._standin.messages if not m.deleted])

    async def commands(self, request: web.Request) -> web.Response:
        """GET: the commands the bot synced."""
        require_loopback(request)
        return json_response(self._standin.commands)


async def _json_body(request: web.Request) -> dict[str, Any]:
    require_loopback(request)
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="body must be JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return body


async def _outcome(handle: InteractionHandle, timeout: float) -> web.Response:
    """Wait for a visible message of `handle`, then describe the interaction."""
    timed_out = False
    try:
        await handle.wait_for(lambda m: not m.deferred, timeout)
    except TimeoutError:
        timed_out = True
    return json_response(
        {
            "interaction_id": str(handle.id),
            "timed_out": timed_out,
            "callbacks": [{"type": c["type"], "data": c["data"]} for c in handle.callbacks],
            "messages": [m.raw for m in handle.messages if not m.deleted],
        }
    )


def _object(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key) or {}
    if not isinstance(value, dict):
        raise ValueError(f"{key!r} must be a JSON object")
    return value


def _timeout(body: dict[str, Any], default: float = DEFAULT_WAIT) -> float:
    try:
        return float(body.get("timeout", default))
    except (TypeError, ValueError):
        raise web.HTTPBadRequest(text="timeout must be a number of seconds") from None


def decode_attachments(spec: dict[str, Any]) -> dict[str, tuple[str, bytes, str]]:
    """Option name -> {"filename", "content_type"?, "data_base64"} as invoke() takes them."""
    files = {}
    for name, item in spec.items():
        try:
            data = base64.b64decode(item["data_base64"], validate=True)
        except (KeyError, TypeError, binascii.Error) as error:
            raise ValueError(f"attachment {name!r} needs base64 'data_base64'") from error
        filename = str(item.get("filename") or name)
        files[name] = (filename, data, item.get("content_type") or guess_content_type(filename))
    return files


def require_loopback(request: web.Request) -> None:
    """403 unless the client is on this machine."""
    remote = request.remote or ""
    try:
        loopback = ipaddress.ip_address(remote).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise web.HTTPForbidden(text="the stand-in control API answers loopback clients only")


def _error(status: int, error: Exception) -> web.Response:
    text = error.args[0] if error.args else str(error)
    return json_response({"error": str(text)}, status)

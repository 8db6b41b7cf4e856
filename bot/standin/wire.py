"""Wire format helpers: Discord's JSON responses and errors, and request bodies."""

from __future__ import annotations

import json
import mimetypes
import re
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from .models import JSON, UploadedFile

FILE_FIELD = re.compile(r"^files\[(\d+)\]$|^file$")


def json_response(payload: Any, status: int = 200) -> web.Response:
    """A JSON response with exactly `Content-Type: application/json`, as discord.py requires."""
    return web.Response(
        status=status,
        body=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )


class DiscordError(Exception):
    """An error the stand-in answers the way Discord does: a status and `{code, message}`."""

    def __init__(self, status: int, code: int, message: str, errors: JSON | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def response(self) -> web.Response:
        """The error as a Discord-style JSON response."""
        body: JSON = {"code": self.code, "message": self.message}
        if self.errors is not None:
            body["errors"] = self.errors
        return json_response(body, self.status)


def invalid_form(field_name: str, code: str, message: str) -> DiscordError:
    """Discord's 50035 "Invalid Form Body" error for one field."""
    errors = {field_name: {"_errors": [{"code": code, "message": message}]}}
    return DiscordError(400, 50035, "Invalid Form Body", errors)


@dataclass
class Body:
    """A parsed request body: the JSON payload (or payload_json part) and any file parts."""

    json: Any = None
    files: list[UploadedFile] = field(default_factory=list)

    @property
    def payload(self) -> JSON:
        """The JSON payload as an object, `{}` when absent."""
        return self.json if isinstance(self.json, dict) else {}


BODY = web.RequestKey("standin_body", Body)


async def read_body(request: web.Request) -> Body:
    """Parse a JSON or multipart (payload_json + files[n]) request body."""
    if request.content_type.startswith("multipart/"):
        return await _read_multipart(request)
    raw = await request.read()
    if not raw:
        return Body()
    return Body(json=_parse_json(raw.decode()))


async def _read_multipart(request: web.Request) -> Body:
    body = Body()
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, aiohttp.BodyPartReader):
            continue
        if part.name == "payload_json":
            body.json = _parse_json(await part.text())
        elif part.name and (match := FILE_FIELD.match(part.name)):
            index = int(match.group(1)) if match.group(1) else len(body.files)
            filename = part.filename or f"file{index}"
            content_type = guess_content_type(filename, part.headers.get("Content-Type"))
            data = bytes(await part.read(decode=False))
            body.files.append(UploadedFile(index, filename, content_type, data))
    return body


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise DiscordError(400, 50109, "The request body contains invalid JSON.") from exc


def guess_content_type(filename: str, declared: str | None = None) -> str:
    """The declared content type, or one guessed from the filename like Discord does."""
    if declared and declared != "application/octet-stream":
        return declared
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"

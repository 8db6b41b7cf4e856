"""The playground: a web page on the stand-in that works like a Discord channel.

Plain HTML, CSS and JS (in `static/`) served with the stand-in's own aiohttp app, and one
WebSocket per page that pushes messages and interaction states live. Loopback only.
"""

from .page import Playground

__all__ = ["Playground"]

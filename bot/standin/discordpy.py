"""Point an unmodified discord.py client at the stand-in instead of discord.com."""

from __future__ import annotations

import discord
import discord.gateway
import discord.http
import yarl


def point_discord_py_at(api_base: str, gateway_url: str) -> None:
    """Set `discord.http.Route.BASE` and `DiscordWebSocket.DEFAULT_GATEWAY`.

    Raises RuntimeError if discord.py no longer has either attribute (a canary for upgrades).
    """
    targets = (
        (discord.http.Route, "BASE", "discord.http.Route.BASE"),
        (discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", "DiscordWebSocket.DEFAULT_GATEWAY"),
    )
    for owner, attribute, label in targets:
        if not hasattr(owner, attribute):
            raise RuntimeError(
                f"discord.py {discord.__version__} has no {label}; the stand-in cannot redirect "
                "the client to 127.0.0.1. Update bot/standin/discordpy.py for this version."
            )
    discord.http.Route.BASE = api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)

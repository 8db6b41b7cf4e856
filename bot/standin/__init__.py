"""A local Discord stand-in that a real, unmodified discord.py client can log into."""

from .discordpy import point_discord_py_at
from .interactions import InteractionHandle
from .models import RecordedRequest, StandInMessage
from .server import DiscordStandIn

__all__ = [
    "DiscordStandIn",
    "InteractionHandle",
    "RecordedRequest",
    "StandInMessage",
    "point_discord_py_at",
]

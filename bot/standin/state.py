"""Everything the stand-in knows, shared by its REST, gateway and control handlers."""

from __future__ import annotations

from .commands import CommandRegistry
from .interactions import InteractionHandle
from .models import Changes, Events, RecordedRequest, Snowflakes
from .store import MessageStore
from .wire import DiscordError
from .world import World


class StandInState:
    """The world, messages, commands, interactions and recorded requests of one stand-in.

    `events` hears every message and command change, and interactions as they are sent
    ("interaction_create") and answered ("interaction_callback"), with the handle.
    """

    def __init__(self, *, attachment_size_limit: int, ack_deadline: float | None) -> None:
        self.base_url = ""
        self.attachment_size_limit = attachment_size_limit
        self.ack_deadline = ack_deadline
        self.ids = Snowflakes()
        self.world = World(self.ids)
        self.changes = Changes()
        self.events = Events()
        self.store = MessageStore(
            self.ids, self.world, lambda: self.base_url, attachment_size_limit, self.events
        )
        self.commands = CommandRegistry(
            self.ids, self.world.application_id, self.world.guild_id, self.events
        )
        self.requests: list[RecordedRequest] = []
        self.interactions: dict[int, InteractionHandle] = {}

    @property
    def gateway_url(self) -> str:
        """The websocket URL of the gateway."""
        return "ws" + self.base_url.removeprefix("http") + "/gateway"

    def interaction(self, interaction_id: int, token: str) -> InteractionHandle:
        """The interaction a callback names; Discord's errors for a wrong id or token."""
        handle = self.interactions.get(interaction_id)
        if handle is None:
            raise DiscordError(404, 10062, "Unknown interaction")
        if handle.token != token:
            raise DiscordError(401, 50027, "Invalid Webhook Token")
        return handle

    def by_token(self, application_id: int, token: str) -> InteractionHandle:
        """The interaction behind a followup webhook `/webhooks/{app}/{token}`."""
        if application_id == self.world.application_id:
            for handle in self.interactions.values():
                if handle.token == token:
                    return handle
        raise DiscordError(404, 10015, "Unknown Webhook")

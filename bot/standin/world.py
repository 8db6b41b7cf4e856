"""The simulated Discord world: one guild, its roles, members, a text channel and the bot."""

from __future__ import annotations

from .models import JSON, Snowflakes, now_iso

ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
ALL_PERMISSIONS = (1 << 53) - 1
EVERYONE_PERMISSIONS = (
    (1 << 0)  # create instant invite
    | (1 << 6)  # add reactions
    | (1 << 10)  # view channel
    | (1 << 11)  # send messages
    | (1 << 14)  # embed links
    | (1 << 15)  # attach files
    | (1 << 16)  # read message history
    | (1 << 18)  # use external emojis
    | (1 << 20)  # connect
    | (1 << 21)  # speak
    | (1 << 26)  # change nickname
    | (1 << 31)  # use application commands
    | (1 << 38)  # send messages in threads
)
BOT_NAME = "standin-bot"
CHANNEL_NAME = "atelier"
MEMBER_NAMES = ("alice", "bob", "admin")


def user_payload(user_id: int, username: str, *, bot: bool = False) -> JSON:
    """A Discord user object."""
    return {
        "id": str(user_id),
        "username": username,
        "global_name": None if bot else username.capitalize(),
        "discriminator": "0",
        "avatar": None,
        "bot": bot,
        "system": False,
        "public_flags": 0,
        "flags": 0,
        "banner": None,
        "accent_color": None,
    }


def role_payload(role_id: int, name: str, permissions: int, position: int, **extra: object) -> JSON:
    """A Discord role object."""
    return {
        "id": str(role_id),
        "name": name,
        "permissions": str(permissions),
        "position": position,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "managed": False,
        "mentionable": False,
        "icon": None,
        "unicode_emoji": None,
        "flags": 0,
        **extra,
    }


class World:
    """Ids and payloads of everything the bot can see; permissions are computed per member."""

    def __init__(self, ids: Snowflakes) -> None:
        self._ids = ids
        self.application_id = ids.next()
        self.guild_id = ids.next()
        self.channel_id = ids.next()
        self.joined_at = now_iso()
        self.bot_user = user_payload(self.application_id, BOT_NAME, bot=True)
        self.users = {name: user_payload(ids.next(), name) for name in MEMBER_NAMES}
        admin_role, bot_role = ids.next(), ids.next()
        self.roles: list[JSON] = [
            role_payload(self.guild_id, "@everyone", EVERYONE_PERMISSIONS, 0),
            role_payload(admin_role, "Admin", ADMINISTRATOR | MANAGE_GUILD, 1),
            role_payload(
                bot_role,
                BOT_NAME,
                EVERYONE_PERMISSIONS,
                2,
                managed=True,
                tags={"bot_id": str(self.application_id)},
            ),
        ]
        self.owner_id = int(self.users["admin"]["id"])
        self._dm_channels: dict[int, int] = {}  # DM channel id -> the member it talks to
        self.closed_dms: set[int] = set()  # members who accept no direct messages
        self._member_roles: dict[int, list[int]] = {
            int(self.users["alice"]["id"]): [],
            int(self.users["bob"]["id"]): [],
            self.owner_id: [admin_role],
            self.application_id: [bot_role],
        }

    def add_member(self, name: str) -> JSON:
        """A new member with only @everyone's permissions (joining after GUILD_CREATE)."""
        if name in self.users:
            raise ValueError(f"there is already a member called {name!r}")
        user = user_payload(self._ids.next(), name)
        self.users[name] = user
        self._member_roles[int(user["id"])] = []
        return user

    def user(self, ref: str | int) -> JSON:
        """The user object for a short name ("alice") or a user id; KeyError if unknown."""
        if isinstance(ref, str) and ref in self.users:
            return self.users[ref]
        for user in [*self.users.values(), self.bot_user]:
            if user["id"] == str(ref):
                return user
        raise KeyError(f"unknown user {ref!r}; known: {', '.join(self.users)}")

    def role(self, ref: str | int) -> JSON:
        """The role object for a role name or id; KeyError if unknown."""
        for role in self.roles:
            if str(ref) in (role["name"], role["id"]):
                return role
        names = ", ".join(role["name"] for role in self.roles)
        raise KeyError(f"unknown role {ref!r}; known: {names}")

    def permissions(self, user_id: int) -> int:
        """The member's permissions in the guild (and its only channel, which has no overwrites)."""
        if user_id == self.owner_id:
            return ALL_PERMISSIONS
        held = {self.guild_id, *self._member_roles.get(user_id, [])}
        value = 0
        for role in self.roles:
            if int(role["id"]) in held:
                value |= int(role["permissions"])
        return ALL_PERMISSIONS if value & ADMINISTRATOR else value

    def member(self, user: JSON, *, with_permissions: bool = False) -> JSON:
        """A guild member object for `user`, optionally with computed `permissions`."""
        user_id = int(user["id"])
        member: JSON = {
            "user": user,
            "roles": [str(role) for role in self._member_roles.get(user_id, [])],
            "joined_at": self.joined_at,
            "nick": None,
            "avatar": None,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if with_permissions:
            member["permissions"] = str(self.permissions(user_id))
        return member

    def members(self) -> list[JSON]:
        """Every member of the guild, the bot included."""
        return [self.member(user) for user in [*self.users.values(), self.bot_user]]

    def dm_channel(self, user_id: int) -> JSON:
        """The bot's direct-message channel with a member (made on first use, like Discord)."""
        recipient = self.user(user_id)
        channel_id = next((c for c, u in self._dm_channels.items() if u == user_id), None)
        if channel_id is None:
            channel_id = self._ids.next()
            self._dm_channels[channel_id] = user_id
        return {"id": str(channel_id), "type": 1, "recipients": [recipient], "flags": 0,
                "last_message_id": None}  # fmt: skip

    def dm_recipient(self, channel_id: int) -> int | None:
        """The member a DM channel talks to; None if it is not a DM channel."""
        return self._dm_channels.get(channel_id)

    def channel(self) -> JSON:
        """The guild's text channel, #atelier."""
        return {
            "id": str(self.channel_id),
            "type": 0,
            "guild_id": str(self.guild_id),
            "name": CHANNEL_NAME,
            "position": 0,
            "permission_overwrites": [],
            "topic": None,
            "nsfw": False,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "parent_id": None,
            "flags": 0,
        }

    def guild(self) -> JSON:
        """The full guild object sent in GUILD_CREATE."""
        return {
            "id": str(self.guild_id),
            "name": "Stand-in Guild",
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "system_channel_id": str(self.channel_id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "application_id": None,
            "max_members": 500_000,
            "features": [],
            "roles": self.roles,
            "emojis": [],
            "stickers": [],
            "joined_at": self.joined_at,
            "large": False,
            "unavailable": False,
            "member_count": len(self.users) + 1,
            "members": self.members(),
            "channels": [self.channel()],
            "threads": [],
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def application(self) -> JSON:
        """The application object from GET /oauth2/applications/@me."""
        return {
            "id": str(self.application_id),
            "name": BOT_NAME,
            "description": "",
            "icon": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": self.users["admin"],
            "team": None,
            "verify_key": "0" * 64,
            "flags": 0,
            "summary": "",
            "bot": self.bot_user,
            "rpc_origins": [],
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "approximate_guild_count": 1,
        }

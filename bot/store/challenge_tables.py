"""The challenge tables: challenges, their entries and the votes on entries.

A challenge moves through phases stored in its row: `submissions` → `voting` → `closed`
(or `cancelled`). One vote per user per entry is enforced by the votes table's primary key.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from bot.store.models import Base, utcnow

SUBMISSIONS, VOTING, CLOSED, CANCELLED = "submissions", "voting", "closed", "cancelled"
OPEN_PHASES = (SUBMISSIONS, VOTING)
ACTIVE, WITHDRAWN, REMOVED = "active", "withdrawn", "removed"


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database (SQLite stores it naive, in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Challenge(Base):
    """One art challenge in one guild: a theme, two windows, a channel, an entry limit."""

    __tablename__ = "challenges"
    __table_args__ = (
        # At most one open challenge per guild, enforced by the database.
        Index(
            "ix_challenges_one_open_per_guild",
            "guild_id",
            unique=True,
            sqlite_where=text("phase IN ('submissions', 'voting')"),
            postgresql_where=text("phase IN ('submissions', 'voting')"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    guild_id: Mapped[int] = mapped_column(BigInteger)
    channel_id: Mapped[int] = mapped_column(BigInteger)
    theme: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[int] = mapped_column(BigInteger)
    max_entries: Mapped[int] = mapped_column(Integer)
    phase: Mapped[str] = mapped_column(String(16), default=SUBMISSIONS, index=True)
    submissions_close_at: Mapped[datetime] = mapped_column(UTCDateTime())
    voting_close_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Entry(Base):
    """A submitted image: stored in the row itself, so it outlives Discord's attachment URLs."""

    __tablename__ = "challenge_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    challenge_id: Mapped[int] = mapped_column(ForeignKey("challenges.id"), index=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    job_id: Mapped[str | None] = mapped_column(String(32))  # the Atelier job it came from
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(64))
    image: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)  # loaded only when asked
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=ACTIVE)
    reason: Mapped[str | None] = mapped_column(Text)  # why a moderator removed it
    message_id: Mapped[int | None] = mapped_column(BigInteger)  # its gallery post
    training_consent: Mapped[bool] = mapped_column(Boolean, default=False)  # may train models
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Vote(Base):
    """One member's vote for one entry; the primary key makes a second vote impossible."""

    __tablename__ = "challenge_votes"

    entry_id: Mapped[int] = mapped_column(ForeignKey("challenge_entries.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

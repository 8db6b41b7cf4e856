"""Challenge queries: start, submit, vote, withdraw, remove, cancel, leaderboard, phase changes.

Rules that must hold under concurrency live in the database: one open challenge per guild
(a partial unique index), one vote per member per entry (the votes' primary key), and a
phase changes only once (a conditional UPDATE that one caller wins).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import undefer

from bot.errors import UserFacingError
from bot.media.submissions import SubmittedImage
from bot.store.challenge_tables import (
    ACTIVE,
    CANCELLED,
    CLOSED,
    OPEN_PHASES,
    REMOVED,
    SUBMISSIONS,
    VOTING,
    WITHDRAWN,
    Challenge,
    Entry,
    UTCDateTime,
    Vote,
)
from bot.store.db import Database
from bot.store.models import Job


class ChallengeError(UserFacingError):
    """A challenge rule the user ran into; the message says which."""


@dataclass(frozen=True)
class Standing:
    """One line of a leaderboard."""

    rank: int
    entry_id: int
    user_id: int
    votes: int
    message_id: int | None


def stamp(when: datetime) -> str:
    """A Discord timestamp that each reader sees in their own time zone, e.g. 'in 2 hours'."""
    return f"<t:{int(when.timestamp())}:R>"


def check_submission_window(challenge: Challenge | None, now: datetime) -> None:
    """ChallengeError unless the challenge takes submissions at `now`."""
    if challenge is None or challenge.phase != SUBMISSIONS or now >= challenge.submissions_close_at:
        closed = f"closed {stamp(challenge.submissions_close_at)}" if challenge else "closed"
        theme = f"“{challenge.theme}”" if challenge else "this challenge"
        raise ChallengeError(f"Submissions for {theme} {closed}.")


class ChallengeStore:
    """Every challenge query the cog and the scheduler make."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # challenges

    async def start(
        self,
        *,
        guild_id: int,
        channel_id: int,
        theme: str,
        created_by: int,
        max_entries: int,
        submissions_close_at: datetime,
        voting_close_at: datetime,
    ) -> Challenge:
        """A new challenge in its submission phase; ChallengeError if one is already open."""
        challenge = Challenge(
            guild_id=guild_id,
            channel_id=channel_id,
            theme=theme,
            created_by=created_by,
            max_entries=max_entries,
            phase=SUBMISSIONS,
            submissions_close_at=submissions_close_at,
            voting_close_at=voting_close_at,
        )
        try:
            async with self.db.session.begin() as session:
                session.add(challenge)
        except IntegrityError:
            current = await self.open_challenge(guild_id)
            theme = f" (“{current.theme}”)" if current else ""
            raise ChallengeError(
                f"A challenge is already running here{theme}. Cancel it or let it close first."
            ) from None
        return challenge

    async def get(self, challenge_id: int) -> Challenge | None:
        async with self.db.session() as session:
            return await session.get(Challenge, challenge_id)

    async def open_challenge(self, guild_id: int) -> Challenge | None:
        """The guild's challenge in its submission or voting phase, if any."""
        query = select(Challenge).where(
            Challenge.guild_id == guild_id, Challenge.phase.in_(OPEN_PHASES)
        )
        async with self.db.session() as session:
            return await session.scalar(query)

    async def latest(self, guild_id: int) -> Challenge | None:
        """The guild's open challenge, or else its most recent one."""
        query = (
            select(Challenge)
            .where(Challenge.guild_id == guild_id)
            .order_by(Challenge.phase.in_(OPEN_PHASES).desc(), Challenge.id.desc())
            .limit(1)
        )
        async with self.db.session() as session:
            return await session.scalar(query)

    async def require_open(self, guild_id: int) -> Challenge:
        challenge = await self.open_challenge(guild_id)
        if challenge is None:
            raise ChallengeError("There is no challenge running here right now.")
        return challenge

    async def cancel(self, guild_id: int, now: datetime) -> Challenge:
        """Cancel the guild's open challenge (no winners); ChallengeError if none is open."""
        challenge = await self.require_open(guild_id)
        if not await self.advance(challenge.id, challenge.phase, CANCELLED, now):
            raise ChallengeError("That challenge changed phase just now; look at /challenge info.")
        challenge.phase = CANCELLED
        return challenge

    # entries

    async def submit(
        self,
        challenge_id: int,
        user_id: int,
        image: SubmittedImage,
        now: datetime,
        job_id: str | None = None,
        training_consent: bool = False,
    ) -> Entry:
        """Store an entry durably; ChallengeError if the window closed or the limit is reached.

        The limit is checked inside the INSERT (… SELECT … WHERE held < limit), with the
        challenge's row locked on PostgreSQL, so simultaneous submissions can't exceed it.
        """
        entry = Entry(
            challenge_id=challenge_id, user_id=user_id, job_id=job_id, filename=image.filename,
            content_type=image.content_type, image=image.data, width=image.width,
            height=image.height, status=ACTIVE, created_at=now, training_consent=training_consent,
        )  # fmt: skip
        table = Entry.__table__
        columns = ["challenge_id", "user_id", "job_id", "filename", "content_type", "image",
                   "width", "height", "status", "created_at", "training_consent"]  # fmt: skip
        async with self.db.session.begin() as session:
            challenge = await session.scalar(
                select(Challenge).where(Challenge.id == challenge_id).with_for_update()
            )
            check_submission_window(challenge, now)
            assert challenge is not None
            held = self._held(challenge_id, user_id).scalar_subquery()
            values = select(*(literal(getattr(entry, c), table.c[c].type) for c in columns))
            statement = insert(table).from_select(
                columns, values.where(held < challenge.max_entries)
            )
            entry.id = await session.scalar(statement.returning(table.c.id))
            if entry.id is None:
                count = await session.scalar(self._held(challenge_id, user_id)) or 0
                raise ChallengeError(
                    f"You have {count} entr{'y' if count == 1 else 'ies'} already; the limit is "
                    f"{challenge.max_entries}. `/challenge withdraw` one to submit another."
                )
        return entry

    @staticmethod
    def _held(challenge_id: int, user_id: int) -> Select[tuple[int]]:
        """How many active entries `user_id` has in the challenge."""
        return (
            select(func.count())
            .select_from(Entry)
            .where(
                Entry.challenge_id == challenge_id,
                Entry.user_id == user_id,
                Entry.status == ACTIVE,
            )
        )

    async def set_entry_message(self, entry_id: int, message_id: int | None) -> None:
        """Remember the entry's gallery post."""
        async with self.db.session.begin() as session:
            await session.execute(
                update(Entry).where(Entry.id == entry_id).values(message_id=message_id)
            )

    async def entry(self, entry_id: int) -> Entry | None:
        """An entry with its image (other queries leave the image bytes in the database)."""
        async with self.db.session() as session:
            return await session.get(Entry, entry_id, options=[undefer(Entry.image)])

    async def entries(self, challenge_id: int, user_id: int | None = None) -> list[Entry]:
        """The challenge's active entries (only `user_id`'s if given), oldest first."""
        query = select(Entry).where(Entry.challenge_id == challenge_id, Entry.status == ACTIVE)
        if user_id is not None:
            query = query.where(Entry.user_id == user_id)
        async with self.db.session() as session:
            return list(await session.scalars(query.order_by(Entry.id)))

    async def training_entries(self, challenge_id: int) -> list[Entry]:
        """Active entries whose authors agreed to model training, with their images."""
        query = select(Entry).where(
            Entry.challenge_id == challenge_id,
            Entry.status == ACTIVE,
            Entry.training_consent.is_(True),
        )
        async with self.db.session() as session:
            rows = await session.scalars(query.order_by(Entry.id).options(undefer(Entry.image)))
            return list(rows)

    async def withdraw(self, entry_id: int, user_id: int) -> Entry:
        """The author takes their entry out while the challenge is open."""
        entry, challenge = await self._open_entry(entry_id)
        if entry.user_id != user_id:
            raise ChallengeError(f"Entry #{entry_id} isn't yours, so you can't withdraw it.")
        return await self._set_status(entry, challenge, WITHDRAWN, None)

    async def remove(self, entry_id: int, guild_id: int, reason: str) -> Entry:
        """A moderator takes an entry out, with a reason for its author."""
        entry, challenge = await self._open_entry(entry_id)
        if challenge.guild_id != guild_id:
            raise ChallengeError(f"There is no entry #{entry_id} in this server.")
        return await self._set_status(entry, challenge, REMOVED, reason)

    async def _open_entry(self, entry_id: int) -> tuple[Entry, Challenge]:
        async with self.db.session() as session:
            entry = await session.get(Entry, entry_id)
            challenge = entry and await session.get(Challenge, entry.challenge_id)
        if entry is None or challenge is None or entry.status != ACTIVE:
            raise ChallengeError(f"There is no entry #{entry_id} (or it was already taken out).")
        if challenge.phase not in OPEN_PHASES:
            raise ChallengeError(f"Entry #{entry_id}'s challenge is over; its entries stay.")
        return entry, challenge

    async def _set_status(
        self, entry: Entry, challenge: Challenge, status: str, reason: str | None
    ) -> Entry:
        async with self.db.session.begin() as session:
            result = await session.execute(
                update(Entry)
                .where(Entry.id == entry.id, Entry.status == ACTIVE)
                .values(status=status, reason=reason)
            )
        if result.rowcount != 1:
            raise ChallengeError(f"Entry #{entry.id} was already taken out.")
        entry.status, entry.reason = status, reason
        return entry

    # votes

    async def vote(self, entry_id: int, user_id: int, now: datetime) -> None:
        """One vote by `user_id` for an entry; ChallengeError says why not when it can't count.

        Checks and insert are one statement (INSERT … SELECT … WHERE), and the votes' primary
        key refuses a second vote, so concurrent presses can never count twice.
        """
        allowed = (
            select(Entry.id, literal(user_id), literal(now, UTCDateTime()))
            .join(Challenge, Challenge.id == Entry.challenge_id)
            .where(
                Entry.id == entry_id,
                Entry.status == ACTIVE,
                Entry.user_id != user_id,
                Challenge.phase == VOTING,
                Challenge.voting_close_at > now,
            )
        )
        statement = insert(Vote).from_select(["entry_id", "user_id", "created_at"], allowed)
        try:
            async with self.db.session.begin() as session:
                result = await session.execute(statement)
        except IntegrityError:
            raise ChallengeError(
                f"You already voted for entry #{entry_id}. Press ↩️ to take your vote back."
            ) from None
        if result.rowcount != 1:
            raise await self._why_no_vote(entry_id, user_id, now)

    async def unvote(self, entry_id: int, user_id: int, now: datetime) -> None:
        """Take back a vote while voting is open."""
        entry, challenge = await self._open_entry(entry_id)
        if challenge.phase != VOTING or now >= challenge.voting_close_at:
            raise ChallengeError("Voting is closed, so votes can't be taken back.")
        async with self.db.session.begin() as session:
            result = await session.execute(
                Vote.__table__.delete().where(Vote.entry_id == entry_id, Vote.user_id == user_id)
            )
        if result.rowcount != 1:
            raise ChallengeError(f"You haven't voted for entry #{entry_id}.")

    async def _why_no_vote(self, entry_id: int, user_id: int, now: datetime) -> ChallengeError:
        async with self.db.session() as session:
            entry = await session.get(Entry, entry_id)
            challenge = entry and await session.get(Challenge, entry.challenge_id)
        if entry is None or challenge is None or entry.status != ACTIVE:
            return ChallengeError(f"Entry #{entry_id} was taken out of the challenge.")
        if entry.user_id == user_id:
            return ChallengeError("You can't vote for your own entry.")
        if challenge.phase == SUBMISSIONS and now < challenge.voting_close_at:
            return ChallengeError(f"Voting opens {stamp(challenge.submissions_close_at)}.")
        return ChallengeError("Voting for this challenge is closed.")

    async def has_voted(self, entry_id: int, user_id: int) -> bool:
        async with self.db.session() as session:
            return await session.get(Vote, (entry_id, user_id)) is not None

    # results

    async def leaderboard(self, challenge_id: int) -> list[Standing]:
        """Active entries by votes (ties share a rank; the earlier entry is listed first)."""
        votes = func.count(Vote.user_id).label("votes")
        query = (
            select(Entry.id, Entry.user_id, Entry.message_id, votes)
            .outerjoin(Vote, Vote.entry_id == Entry.id)
            .where(Entry.challenge_id == challenge_id, Entry.status == ACTIVE)
            .group_by(Entry.id, Entry.user_id, Entry.message_id)
            .order_by(votes.desc(), Entry.id)
        )
        async with self.db.session() as session:
            rows = (await session.execute(query)).all()
        standings: list[Standing] = []
        for position, row in enumerate(rows, start=1):
            tied = standings and standings[-1].votes == row.votes
            rank = standings[-1].rank if tied else position
            standings.append(Standing(rank, row.id, row.user_id, row.votes, row.message_id))
        return standings

    async def seeds_of_the_week(self, guild_id: int, since: datetime, limit: int = 3) -> list[int]:
        """The GAN seeds this guild generated most often since `since` (most used first)."""
        uses = func.count(Job.id).label("uses")
        query = (
            select(Job.seed, uses)
            .where(
                Job.guild_id == guild_id,
                Job.model == "gan",
                Job.seed.is_not(None),
                Job.status == "done",
                Job.created_at >= since,
            )
            .group_by(Job.seed)
            .order_by(uses.desc(), Job.seed)
            .limit(limit)
        )
        async with self.db.session() as session:
            return [row.seed for row in (await session.execute(query)).all()]

    # phases

    async def due(self, now: datetime) -> list[Challenge]:
        """Open challenges whose current window has ended."""
        query = select(Challenge).where(
            ((Challenge.phase == SUBMISSIONS) & (Challenge.submissions_close_at <= now))
            | ((Challenge.phase == VOTING) & (Challenge.voting_close_at <= now))
        )
        async with self.db.session() as session:
            return list(await session.scalars(query.order_by(Challenge.id)))

    async def next_deadline(self) -> datetime | None:
        """The earliest window end among open challenges."""
        async with self.db.session() as session:
            submissions = await session.scalar(
                select(func.min(Challenge.submissions_close_at)).where(
                    Challenge.phase == SUBMISSIONS
                )
            )
            voting = await session.scalar(
                select(func.min(Challenge.voting_close_at)).where(Challenge.phase == VOTING)
            )
        return min((d for d in (submissions, voting) if d is not None), default=None)

    async def advance(self, challenge_id: int, old: str, new: str, now: datetime) -> bool:
        """Move a challenge from phase `old` to `new`; True only for the one caller that did."""
        values: dict[str, object] = {"phase": new}
        if new in (CLOSED, CANCELLED):
            values["closed_at"] = now
        async with self.db.session.begin() as session:
            result = await session.execute(
                update(Challenge)
                .where(Challenge.id == challenge_id, Challenge.phase == old)
                .values(**values)
            )
        return result.rowcount == 1

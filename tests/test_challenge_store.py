"""The challenge tables and queries on real databases: SQLite files and PostgreSQL.

Migrations against the models, the rules the database enforces (one vote per member per
entry, one open challenge per guild), 50 concurrent votes, and the scheduler's catch-up.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from PIL import Image
from sqlalchemy import inspect, text

from bot.clock import ManualClock
from bot.media.submissions import SubmittedImage, check_image
from bot.scheduler import ChallengeScheduler, PhaseChange
from bot.store.challenge_tables import CLOSED, VOTING, Challenge
from bot.store.challenges import ChallengeError, ChallengeStore
from bot.store.db import Database
from bot.store.migrate import head_revision
from bot.store.models import Base, Job
from tests.postgres import fresh_postgres_url

HOUR = timedelta(hours=1)
GUILD, CHANNEL, MOD = 1, 2, 3


def png(side: int = 64, colour: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(buffer, format="PNG")
    return buffer.getvalue()


IMAGE: SubmittedImage = check_image(png(), "entry.png", limit=2**20)


@pytest_asyncio.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'atelier.db'}"
    else:
        url = await fresh_postgres_url(request.getfixturevalue("postgres_server"))
    database = Database(url)
    await database.open()
    yield database
    await database.close()


async def start(store: ChallengeStore, clock: ManualClock, max_entries: int = 1) -> Challenge:
    now = clock.now()
    return await store.start(
        guild_id=GUILD,
        channel_id=CHANNEL,
        theme="moonlit gardens",
        created_by=MOD,
        max_entries=max_entries,
        submissions_close_at=now + HOUR,
        voting_close_at=now + 2 * HOUR,
    )


async def test_migrations_match_the_models(db: Database) -> None:
    async with db.engine.connect() as connection:
        diff = await connection.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
        version = await connection.scalar(text("SELECT version_num FROM alembic_version"))
    assert diff == []
    assert version == head_revision()


async def test_a_database_from_before_migrations_is_upgraded(tmp_path: Path) -> None:
    """Tables made by create_all (no alembic_version) are stamped as the baseline, then kept."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    old = Database(url)
    async with old.engine.begin() as connection:
        tables = [Job.__table__, Base.metadata.tables["bot_state"]]
        await connection.run_sync(lambda sync: Base.metadata.create_all(sync, tables=tables))
    async with old.session.begin() as session:
        session.add(Job(id="abc123", command="imagine", params={"seed": 7}))
    await old.close()

    upgraded = Database(url)
    await upgraded.open()
    async with upgraded.engine.connect() as connection:
        names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        version = await connection.scalar(text("SELECT version_num FROM alembic_version"))
    async with upgraded.session() as session:
        job = await session.get(Job, "abc123")
    await upgraded.close()
    assert {"challenges", "challenge_entries", "challenge_votes"} <= set(names)
    assert version == head_revision()
    assert job is not None and job.params == {"seed": 7}


async def test_one_open_challenge_per_guild(db: Database) -> None:
    store, clock = ChallengeStore(db), ManualClock()
    first = await start(store, clock)
    with pytest.raises(ChallengeError, match="already running"):
        await start(store, clock)
    await store.cancel(GUILD, clock.now())
    second = await start(store, clock)
    assert second.id != first.id


async def test_submission_rules(db: Database) -> None:
    store, clock = ChallengeStore(db), ManualClock()
    challenge = await start(store, clock, max_entries=2)
    await store.submit(challenge.id, 10, IMAGE, clock.now())
    second = await store.submit(challenge.id, 10, IMAGE, clock.now())
    with pytest.raises(ChallengeError, match="the limit is 2"):
        await store.submit(challenge.id, 10, IMAGE, clock.now())
    await store.withdraw(second.id, 10)
    await store.submit(challenge.id, 10, IMAGE, clock.now())  # a withdrawn one frees a place
    with pytest.raises(ChallengeError, match="isn't yours"):
        await store.withdraw(second.id + 1, 11)
    await clock.advance(HOUR)
    with pytest.raises(ChallengeError, match="closed"):
        await store.submit(challenge.id, 11, IMAGE, clock.now())


async def test_simultaneous_submissions_keep_the_limit(db: Database) -> None:
    store, clock = ChallengeStore(db), ManualClock()
    challenge = await start(store, clock, max_entries=2)
    outcomes = await asyncio.gather(
        *(store.submit(challenge.id, 10, IMAGE, clock.now()) for _ in range(6)),
        return_exceptions=True,
    )
    refused = [o for o in outcomes if isinstance(o, ChallengeError)]
    assert len(refused) == 4 and all("the limit is 2" in str(o) for o in refused)
    assert len(await store.entries(challenge.id, 10)) == 2


async def test_fifty_concurrent_votes_with_duplicates(db: Database) -> None:
    """50 members vote at once, 15 of them twice, 2 authors for themselves: exact counts."""
    store, clock = ChallengeStore(db), ManualClock()
    challenge = await start(store, clock)
    a = await store.submit(challenge.id, 1, IMAGE, clock.now())
    b = await store.submit(challenge.id, 2, IMAGE, clock.now())
    await store.advance(challenge.id, "submissions", VOTING, clock.now())
    await clock.advance(HOUR)

    presses = [(a.id if voter % 3 else b.id, voter) for voter in range(100, 150)]
    presses += presses[:15]  # duplicates, pressed concurrently with the originals
    presses += [(a.id, 1), (b.id, 2)]  # the authors themselves
    outcomes = await asyncio.gather(
        *(store.vote(entry, voter, clock.now()) for entry, voter in presses),
        return_exceptions=True,
    )
    refused = [str(o) for o in outcomes if isinstance(o, ChallengeError)]
    assert not [o for o in outcomes if isinstance(o, Exception | BaseException)
                and not isinstance(o, ChallengeError)]  # fmt: skip
    assert sum("already voted" in r for r in refused) == 15
    assert sum("your own entry" in r for r in refused) == 2
    expected_a = sum(1 for voter in range(100, 150) if voter % 3)
    board = {s.entry_id: s.votes for s in await store.leaderboard(challenge.id)}
    assert board == {a.id: expected_a, b.id: 50 - expected_a}

    await store.unvote(a.id, 101, clock.now())
    assert not await store.has_voted(a.id, 101)
    board = {s.entry_id: s.votes for s in await store.leaderboard(challenge.id)}
    assert board[a.id] == expected_a - 1


async def test_leaderboard_ranks_share_ties(db: Database) -> None:
    store, clock = ChallengeStore(db), ManualClock()
    challenge = await start(store, clock)
    entries = [await store.submit(challenge.id, author, IMAGE, clock.now()) for author in (1, 2, 3)]
    await store.advance(challenge.id, "submissions", VOTING, clock.now())
    for entry, voters in zip(entries, ([7, 8], [7, 9], [9]), strict=True):
        for voter in voters:
            await store.vote(entry.id, voter, clock.now())
    board = await store.leaderboard(challenge.id)
    assert [(s.rank, s.entry_id, s.votes) for s in board] == [
        (1, entries[0].id, 2),
        (1, entries[1].id, 2),
        (3, entries[2].id, 1),
    ]


async def test_scheduler_catches_up_and_two_schedulers_announce_once(db: Database) -> None:
    """Down through both deadlines: one catch-up does both changes; a rival announces nothing."""
    store, clock = ChallengeStore(db), ManualClock()
    challenge = await start(store, clock)
    announced: list[PhaseChange] = []

    async def record(change: PhaseChange) -> None:
        announced.append(change)

    await clock.advance(3 * HOUR)
    rivals = [ChallengeScheduler(store, clock, record) for _ in range(2)]
    await asyncio.gather(*(rival.catch_up() for rival in rivals))
    assert [(c.challenge.id, c.phase) for c in announced] == [
        (challenge.id, VOTING),
        (challenge.id, CLOSED),
    ]
    assert (await store.get(challenge.id)).phase == CLOSED  # type: ignore[union-attr]
    assert await rivals[0].catch_up() == []


async def test_scheduler_wakes_at_the_deadline(db: Database) -> None:
    store, clock = ChallengeStore(db), ManualClock()
    changes: asyncio.Queue[PhaseChange] = asyncio.Queue()
    scheduler = ChallengeScheduler(store, clock, changes.put)
    task = asyncio.create_task(scheduler.run())
    try:
        challenge = await start(store, clock)
        scheduler.wake()
        await clock.advance(HOUR - timedelta(seconds=1))
        assert changes.empty()
        await clock.advance(timedelta(seconds=1))
        change = await asyncio.wait_for(changes.get(), timeout=10)
        assert (change.challenge.id, change.phase) == (challenge.id, VOTING)
        await clock.advance(HOUR)
        change = await asyncio.wait_for(changes.get(), timeout=10)
        assert change.phase == CLOSED
    finally:
        task.cancel()

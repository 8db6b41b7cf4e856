"""Community art challenges: challenges, entries (with their images) and votes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OPEN = sa.text("phase IN ('submissions', 'voting')")


def upgrade() -> None:
    op.create_table(
        "challenges",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("guild_id", sa.BigInteger(), nullable=False),
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
        sa.Column("theme", sa.String(200), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=False),
        sa.Column("max_entries", sa.Integer(), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("submissions_close_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("voting_close_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_challenges_phase", "challenges", ["phase"])
    op.create_index(
        "ix_challenges_one_open_per_guild",
        "challenges",
        ["guild_id"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )
    op.create_table(
        "challenge_entries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("challenge_id", sa.Integer(), sa.ForeignKey("challenges.id"), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=True),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("image", sa.LargeBinary(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_challenge_entries_challenge_id", "challenge_entries", ["challenge_id"])
    op.create_table(
        "challenge_votes",
        sa.Column(
            "entry_id", sa.Integer(), sa.ForeignKey("challenge_entries.id"), primary_key=True
        ),
        sa.Column("user_id", sa.BigInteger(), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("challenge_votes")
    op.drop_index("ix_challenge_entries_challenge_id", "challenge_entries")
    op.drop_table("challenge_entries")
    op.drop_index("ix_challenges_one_open_per_guild", "challenges")
    op.drop_index("ix_challenges_phase", "challenges")
    op.drop_table("challenges")
